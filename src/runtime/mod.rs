//! The runtime: CRI operations carried out on Docker. The gRPC adapters in
//! `server/` call into this; it calls `docker/` and the pure `mapping/`.

mod fs_usage;
mod images;
mod info;
pub mod pause_image;

use std::sync::Arc;

use tokio::sync::RwLock;

use crate::config::Config;
use crate::docker::DockerClient;
use crate::mapping::image::PinnedImages;

pub use fs_usage::FsUsageSampler;

pub struct Runtime {
    config: Arc<Config>,
    docker: Arc<DockerClient>,
    pinned: PinnedImages,
    fs_usage: FsUsageSampler,
    /// Set by kubelet through UpdateRuntimeConfig; used by pod networking.
    pod_cidr: RwLock<String>,
}

impl Runtime {
    pub fn new(config: Arc<Config>) -> Self {
        let docker = Arc::new(DockerClient::new(
            &config.docker_socket,
            config.runtime_request_timeout,
        ));
        let fs_usage = FsUsageSampler::new(docker.clone(), config.image_fs_sample_interval);
        Runtime {
            pinned: PinnedImages::new(&[config.pause_image.as_str()]),
            config,
            docker,
            fs_usage,
            pod_cidr: RwLock::new(String::new()),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn docker(&self) -> &DockerClient {
        &self.docker
    }
}
