//! The TOML config file: every key optional, named as its flag in
//! snake_case.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, LogFormat, bad};

/// The TOML file: every key is optional and has the flag's name in
/// snake_case. See `config/docker-cri.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub container_runtime_endpoint: Option<String>,
    pub socket_group: Option<String>,
    pub docker_endpoint: Option<String>,
    pub pod_infra_container_image: Option<String>,
    pub root_directory: Option<PathBuf>,
    pub sandbox_network: Option<String>,
    pub streaming_bind_addr: Option<String>,
    pub streaming_connection_idle_timeout: Option<String>,
    pub metrics_bind_addr: Option<String>,
    pub runtime_request_timeout: Option<String>,
    pub image_pull_progress_deadline: Option<String>,
    pub shutdown_grace_period: Option<String>,
    pub image_fs_sample_interval: Option<String>,
    pub docker_log_max_size: Option<String>,
    pub docker_log_max_file: Option<u32>,
    pub log_level: Option<String>,
    pub log_format: Option<LogFormat>,
    pub network_plugin: Option<String>,
    pub cni_conf_dir: Option<PathBuf>,
    pub cni_bin_dir: Option<String>,
    pub cni_cache_dir: Option<PathBuf>,
    pub cni_plugin_timeout: Option<String>,
    pub hairpin_mode: Option<String>,
    pub network_plugin_mtu: Option<u32>,
}

pub(super) fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad("config", format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| bad("config", format!("{}: {e}", path.display())))
}
