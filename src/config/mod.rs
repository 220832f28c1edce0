//! Command-line flags and the TOML config file, validated once into a
//! [`Config`] that is passed down. Flag names follow cri-dockerd where it has
//! the same setting, so existing unit files keep working.
//!
//! `cli` holds the flags, `file` the TOML file, `validate` the merge and
//! checks that turn both into a [`Config`].

mod cli;
mod file;
#[cfg(test)]
mod tests;
mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::Deserialize;

pub use cli::{Cli, Command, CompatFlags};
pub use file::FileConfig;

pub const DEFAULT_ENDPOINT: &str = "unix:///run/docker-cri.sock";
pub const DEFAULT_DOCKER_ENDPOINT: &str = "unix:///var/run/docker.sock";
pub const DEFAULT_PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";
pub const DEFAULT_ROOT_DIR: &str = "/var/lib/docker-cri";
/// Docker keeps up to max-size × max-file of a container's output: what
/// docker-cri can still copy after being down (see README, Logs).
pub const DEFAULT_DOCKER_LOG_MAX_SIZE: &str = "10m";
pub const DEFAULT_DOCKER_LOG_MAX_FILE: u32 = 5;
/// A quarter of gRPC's 16 MiB message limit: thousands of pods or
/// containers per message, far from the limit.
pub const DEFAULT_LIST_STREAM_MESSAGE_BYTES: usize = 4 << 20;

/// Younger export containers may be another docker-cri's export in progress (same dockerd).
pub const DEFAULT_IMAGE_VOLUME_EXPORT_SWEEP_AGE: &str = "10m";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// How pods get their network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkPlugin {
    /// Docker's own networks (`--sandbox-network`).
    Docker,
    /// A CNI plugin chain run by docker-cri on the pause container's netns.
    Cni,
}

/// Where the CRI server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A socket docker-cri creates (`unix:///path`).
    Unix(PathBuf),
    /// The socket systemd passes by socket activation (`fd://`, or
    /// `fd://<name>` for a `FileDescriptorName=`).
    Systemd { name: Option<String> },
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Unix(p) => write!(f, "unix://{}", p.display()),
            Listen::Systemd { name } => write!(f, "fd://{}", name.as_deref().unwrap_or("")),
        }
    }
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub socket_group: Option<String>,
    pub docker_socket: PathBuf,
    pub pause_image: String,
    pub root_directory: PathBuf,
    pub sandbox_network: String,
    pub streaming_bind_addr: SocketAddr,
    pub streaming_connection_idle_timeout: Duration,
    /// Where `/metrics` is served; `None`: not at all.
    pub metrics_bind_addr: Option<SocketAddr>,
    pub runtime_request_timeout: Duration,
    pub image_pull_progress_deadline: Duration,
    pub shutdown_grace_period: Duration,
    pub image_fs_sample_interval: Duration,
    /// Docker's json-file `max-size` and `max-file` for app containers.
    pub docker_log_max_size: String,
    pub docker_log_max_file: u32,
    pub log_level: String,
    pub log_format: LogFormat,
    pub network_plugin: NetworkPlugin,
    pub cni_conf_dir: PathBuf,
    /// In search order.
    pub cni_bin_dirs: Vec<PathBuf>,
    pub cni_cache_dir: PathBuf,
    pub cni_plugin_timeout: Duration,
    /// `--hairpin-mode` and `--network-plugin-mtu` for the plugin chain.
    pub cni_tuning: crate::cni::tuning::Tuning,
    /// Bound on one Stream* list message (see `server::list_streams`).
    pub list_stream_message_bytes: usize,
    /// Minimum age of a leftover image volume export container before the
    /// startup sweep removes it.
    pub image_volume_export_sweep_age: Duration,
    /// Accepted cri-dockerd flags that do not act, one line each, logged
    /// once at startup.
    pub compat_warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid setting {setting}: {reason}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub reason: String,
}

fn bad(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        reason: reason.into(),
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::resolve(&Cli::parse_from(["docker-cri"]), FileConfig::default())
            .expect("built-in defaults are valid")
    }
}
