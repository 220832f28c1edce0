//! Shared fixtures for the integration tests: the real docker-cri binary on
//! a temporary socket, a CRI client, locally built test images, a loopback
//! registry. Everything is uniquely named and cleaned up on drop, so a daemon
//! with leftovers never breaks a test.
#![allow(dead_code)]

pub mod pod;
pub mod proxy;
pub mod spdy;
pub mod stream;

mod docker;
mod host;
mod images;
mod registry;
mod server;

use std::sync::atomic::{AtomicUsize, Ordering};

// Re-exported as `common::X`; each test binary uses only some of them.
#[allow(unused_imports)]
pub use docker::{
    PodCleanup, block_on_aside, containers_with_label, containers_with_labels, create_and_start,
    docker, docker_logs, docker_socket, force_remove, run_in_pod, start_in_pod,
    start_plain_container,
};
#[allow(unused_imports)]
pub use host::{host_min_oom_score_adj, host_runs_privileged};
#[allow(unused_imports)]
pub use images::{
    TestImage, build, image_exists, image_spec, remove_image_quietly, test_pause_image,
};
#[allow(unused_imports)]
pub use registry::Registry;
#[allow(unused_imports)]
pub use server::Server;

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
