//! Flags over the file over the defaults, checked once: the one place a
//! setting can be refused.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::mapping::duration::parse_go_duration;
use crate::mapping::image_ref::ImageRef;

use super::file::read_file;
use super::*;

impl Config {
    /// Reads `--config` (if any) and merges it under the flags.
    pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        Config::resolve(cli, file)
    }

    pub fn resolve(cli: &Cli, file: FileConfig) -> Result<Config, ConfigError> {
        let endpoint = pick(
            &cli.container_runtime_endpoint,
            file.container_runtime_endpoint,
        )
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let docker = pick(&cli.docker_endpoint, file.docker_endpoint)
            .unwrap_or_else(|| DEFAULT_DOCKER_ENDPOINT.to_string());
        let pause_image = pick(
            &cli.pod_infra_container_image,
            file.pod_infra_container_image,
        )
        .unwrap_or_else(|| DEFAULT_PAUSE_IMAGE.to_string());
        ImageRef::parse(&pause_image)
            .map_err(|e| bad("pod-infra-container-image", e.to_string()))?;
        let root_directory = pick(&cli.root_directory, file.root_directory)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT_DIR));
        if !root_directory.is_absolute() {
            return Err(bad("root-directory", "must be an absolute path"));
        }
        let sandbox_network = pick(&cli.sandbox_network, file.sandbox_network)
            .unwrap_or_else(|| "bridge".to_string());
        let network_ok = !sandbox_network.is_empty()
            && sandbox_network != "host"
            && !sandbox_network.starts_with("container:")
            && sandbox_network
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !network_ok {
            return Err(bad(
                "sandbox-network",
                format!("{sandbox_network:?} is not bridge, none or a Docker network name"),
            ));
        }
        let streaming = pick(&cli.streaming_bind_addr, file.streaming_bind_addr)
            .unwrap_or_else(|| "127.0.0.1:0".to_string());
        let streaming_bind_addr = streaming.parse::<SocketAddr>().map_err(|e| {
            bad(
                "streaming-bind-addr",
                format!("{streaming:?} is not IP:port ({e})"),
            )
        })?;
        let docker_log_max_size = pick(&cli.docker_log_max_size, file.docker_log_max_size)
            .unwrap_or_else(|| DEFAULT_DOCKER_LOG_MAX_SIZE.to_string());
        if !docker_size_ok(&docker_log_max_size) {
            return Err(bad(
                "docker-log-max-size",
                format!("{docker_log_max_size:?} is not a size like 10m, 512k or 1g"),
            ));
        }
        let docker_log_max_file = pick(&cli.docker_log_max_file, file.docker_log_max_file)
            .unwrap_or(DEFAULT_DOCKER_LOG_MAX_FILE);
        if docker_log_max_file == 0 {
            return Err(bad("docker-log-max-file", "must be at least 1"));
        }
        let metrics_bind_addr = pick(&cli.metrics_bind_addr, file.metrics_bind_addr)
            .map(|a| metrics_addr(&a))
            .transpose()?;
        let log_level = pick(&cli.log_level, file.log_level).unwrap_or_else(|| "info".into());
        if !["error", "warn", "info", "debug", "trace"].contains(&log_level.as_str()) {
            return Err(bad(
                "log-level",
                format!("{log_level:?} is not one of error, warn, info, debug, trace"),
            ));
        }
        let network_plugin = match pick(&cli.network_plugin, file.network_plugin).as_deref() {
            None | Some("") | Some("docker") => NetworkPlugin::Docker,
            Some("cni") => NetworkPlugin::Cni,
            Some(other) => {
                return Err(bad(
                    "network-plugin",
                    format!("{other:?} is not cni or docker (empty means docker)"),
                ));
            }
        };
        let absolute = |setting: &'static str, p: PathBuf| {
            if p.is_absolute() {
                Ok(p)
            } else {
                Err(bad(
                    setting,
                    format!("{} is not an absolute path", p.display()),
                ))
            }
        };
        let cni_conf_dir = absolute(
            "cni-conf-dir",
            pick(&cli.cni_conf_dir, file.cni_conf_dir)
                .unwrap_or_else(|| PathBuf::from("/etc/cni/net.d")),
        )?;
        let cni_cache_dir = absolute(
            "cni-cache-dir",
            pick(&cli.cni_cache_dir, file.cni_cache_dir)
                .unwrap_or_else(|| PathBuf::from("/var/lib/cni/cache")),
        )?;
        let cni_bin_dirs = pick(&cli.cni_bin_dir, file.cni_bin_dir)
            .unwrap_or_else(|| "/opt/cni/bin".to_string())
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(|d| absolute("cni-bin-dir", PathBuf::from(d)))
            .collect::<Result<Vec<_>, _>>()?;
        if cni_bin_dirs.is_empty() {
            return Err(bad("cni-bin-dir", "names no directory"));
        }
        let cni_plugin_timeout = duration(
            "cni-plugin-timeout",
            pick(&cli.cni_plugin_timeout, file.cni_plugin_timeout),
            "1m",
        )?;
        let cni_tuning = cni_tuning(cli, file.hairpin_mode, file.network_plugin_mtu)?;
        Ok(Config {
            network_plugin,
            cni_conf_dir,
            cni_bin_dirs,
            cni_cache_dir,
            cni_plugin_timeout,
            cni_tuning,
            listen: listen_endpoint(&endpoint)?,
            socket_group: pick(&cli.socket_group, file.socket_group),
            docker_socket: unix_path("docker-endpoint", &docker)?,
            pause_image,
            root_directory,
            sandbox_network,
            streaming_bind_addr,
            streaming_connection_idle_timeout: duration(
                "streaming-connection-idle-timeout",
                pick(
                    &cli.streaming_connection_idle_timeout,
                    file.streaming_connection_idle_timeout,
                ),
                "4h",
            )?,
            metrics_bind_addr,
            runtime_request_timeout: duration(
                "runtime-request-timeout",
                pick(&cli.runtime_request_timeout, file.runtime_request_timeout),
                "2m",
            )?,
            image_pull_progress_deadline: duration(
                "image-pull-progress-deadline",
                pick(
                    &cli.image_pull_progress_deadline,
                    file.image_pull_progress_deadline,
                ),
                "1m",
            )?,
            shutdown_grace_period: duration(
                "shutdown-grace-period",
                pick(&cli.shutdown_grace_period, file.shutdown_grace_period),
                "10s",
            )?,
            image_fs_sample_interval: duration(
                "image-fs-sample-interval",
                pick(&cli.image_fs_sample_interval, file.image_fs_sample_interval),
                "1m",
            )?,
            docker_log_max_size,
            docker_log_max_file,
            log_level,
            log_format: cli
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            list_stream_message_bytes: list_stream_message_bytes(cli.list_stream_message_bytes)?,
            image_volume_export_sweep_age: sweep_age(cli.image_volume_export_sweep_age.clone())?,
            compat_warnings: cli.compat.warnings(),
        })
    }
}

/// `--hairpin-mode` and `--network-plugin-mtu` (the TOML file has the MTU
/// as a number).
fn cni_tuning(
    cli: &Cli,
    file_hairpin: Option<String>,
    file_mtu: Option<u32>,
) -> Result<crate::cni::tuning::Tuning, ConfigError> {
    use crate::cni::tuning::{HairpinMode, Tuning, parse_mtu};
    let hairpin = pick(&cli.hairpin_mode, file_hairpin)
        .map(|m| HairpinMode::parse(&m).map_err(|e| bad("hairpin-mode", e)))
        .transpose()?
        .flatten();
    let mtu = cli
        .network_plugin_mtu
        .clone()
        .or_else(|| file_mtu.map(|m| m.to_string()))
        .map(|m| parse_mtu(&m).map_err(|e| bad("network-plugin-mtu", e)))
        .transpose()?
        .flatten();
    Ok(Tuning { hairpin, mtu })
}

/// The Stream* message bound: the default, or a given one between 1 KiB
/// and 8 MiB (half the 16 MiB gRPC limit, leaving room for one object
/// larger than the bound, which goes out alone).
fn list_stream_message_bytes(given: Option<usize>) -> Result<usize, ConfigError> {
    const MIN: usize = 1024;
    const MAX: usize = 8 << 20;
    match given {
        None => Ok(DEFAULT_LIST_STREAM_MESSAGE_BYTES),
        Some(n) if (MIN..=MAX).contains(&n) => Ok(n),
        Some(n) => Err(bad(
            "list-stream-message-bytes",
            format!("{n} is not between {MIN} and {MAX}"),
        )),
    }
}

/// `--image-volume-export-sweep-age`: a Go duration, zero allowed (tests).
fn sweep_age(given: Option<String>) -> Result<Duration, ConfigError> {
    let text = given.unwrap_or_else(|| DEFAULT_IMAGE_VOLUME_EXPORT_SWEEP_AGE.to_string());
    parse_go_duration(&text).map_err(|e| bad("image-volume-export-sweep-age", e))
}

/// What Docker's json-file driver takes for `max-size`: a positive whole
/// number with an optional k, m or g (either case, optional b).
pub(super) fn docker_size_ok(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let unitless = lower.strip_suffix('b').unwrap_or(&lower);
    let digits = unitless.strip_suffix(['k', 'm', 'g']).unwrap_or(unitless);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.bytes().any(|b| b != b'0')
}

fn pick<T: Clone>(flag: &Option<T>, file: Option<T>) -> Option<T> {
    flag.clone().or(file)
}

fn duration(
    setting: &'static str,
    value: Option<String>,
    default: &str,
) -> Result<Duration, ConfigError> {
    let text = value.unwrap_or_else(|| default.to_string());
    let d = parse_go_duration(&text).map_err(|e| bad(setting, e))?;
    if d.is_zero() {
        return Err(bad(setting, "must be greater than zero"));
    }
    Ok(d)
}

/// `IP:port`, or a bare port (`9090`, `:9090`) on loopback: metrics are
/// not for the whole network unless the operator says so.
fn metrics_addr(text: &str) -> Result<SocketAddr, ConfigError> {
    let port_only = text.strip_prefix(':').unwrap_or(text);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse::<SocketAddr>().map_err(|e| {
        bad(
            "metrics-bind-addr",
            format!("{text:?} is not IP:port or a port ({e})"),
        )
    })
}

/// The CRI endpoint: a UNIX socket path, or systemd's socket (`fd://`).
fn listen_endpoint(endpoint: &str) -> Result<Listen, ConfigError> {
    if let Some(name) = endpoint.strip_prefix("fd://") {
        if name.contains('/') || name.contains(':') {
            return Err(bad(
                "container-runtime-endpoint",
                format!("{endpoint:?}: fd:// takes an optional socket name"),
            ));
        }
        return Ok(Listen::Systemd {
            name: (!name.is_empty()).then(|| name.to_string()),
        });
    }
    unix_path("container-runtime-endpoint", endpoint).map(Listen::Unix)
}

/// Only UNIX sockets: both kubelet and Docker are local.
fn unix_path(setting: &'static str, endpoint: &str) -> Result<PathBuf, ConfigError> {
    let path = if let Some(rest) = endpoint.strip_prefix("unix://") {
        rest
    } else if endpoint.starts_with('/') {
        endpoint
    } else {
        return Err(bad(
            setting,
            format!("{endpoint:?} is not a unix:///absolute/path endpoint"),
        ));
    };
    if !path.starts_with('/') {
        return Err(bad(setting, format!("{endpoint:?} needs an absolute path")));
    }
    Ok(PathBuf::from(path))
}
