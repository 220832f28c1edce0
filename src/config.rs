//! Command-line flags and the TOML config file, validated once into a
//! [`Config`] that is passed down. Flag names follow cri-dockerd where it has
//! the same setting, so existing unit files keep working.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use serde::Deserialize;

use crate::mapping::duration::parse_go_duration;
use crate::mapping::image_ref::ImageRef;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Parser)]
#[command(
    name = "docker-cri",
    version,
    about = "Kubernetes CRI runtime on Docker"
)]
pub struct Cli {
    /// TOML config file; flags given on the command line take precedence.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Where the CRI gRPC server listens (unix:///path).
    #[arg(long, global = true, value_name = "ENDPOINT")]
    pub container_runtime_endpoint: Option<String>,

    /// Group that may use the CRI socket (name or numeric gid); mode is 0660.
    #[arg(long, global = true, value_name = "GROUP")]
    pub socket_group: Option<String>,

    /// The Docker daemon socket (unix:///path).
    #[arg(long, global = true, value_name = "ENDPOINT")]
    pub docker_endpoint: Option<String>,

    /// Image used for the pause container of every pod sandbox.
    #[arg(long, global = true, value_name = "IMAGE")]
    pub pod_infra_container_image: Option<String>,

    /// docker-cri's state directory (checkpoints).
    #[arg(
        long,
        alias = "cri-dockerd-root-directory",
        global = true,
        value_name = "DIR"
    )]
    pub root_directory: Option<PathBuf>,

    /// Docker network for pod sandboxes: `bridge`, `none`, or the name of a
    /// user-defined Docker network.
    #[arg(long, global = true, value_name = "NETWORK")]
    pub sandbox_network: Option<String>,

    /// Address of the streaming (exec/attach/port-forward) server.
    #[arg(long, global = true, value_name = "ADDR")]
    pub streaming_bind_addr: Option<String>,

    /// A streaming (exec/attach/port-forward) session with no traffic for
    /// this long is closed, as kubelet's flag of the same name.
    #[arg(long, global = true, value_name = "DURATION")]
    pub streaming_connection_idle_timeout: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics (off unless given; a
    /// bare port means loopback).
    #[arg(long, global = true, value_name = "ADDR")]
    pub metrics_bind_addr: Option<String>,

    /// Timeout of each non-streaming Docker call, Go duration syntax (2m, 30s).
    #[arg(long, global = true, value_name = "DURATION")]
    pub runtime_request_timeout: Option<String>,

    /// A pull that makes no progress for this long is cancelled.
    #[arg(long, global = true, value_name = "DURATION")]
    pub image_pull_progress_deadline: Option<String>,

    /// How long in-flight calls may run after SIGTERM before the server exits.
    #[arg(long, global = true, value_name = "DURATION")]
    pub shutdown_grace_period: Option<String>,

    /// How often the image filesystem usage is measured in the background.
    #[arg(long, global = true, value_name = "DURATION")]
    pub image_fs_sample_interval: Option<String>,

    /// Size of each of Docker's json-file log files for containers
    /// docker-cri creates (Docker's `max-size` syntax: 10m, 512k, 1g). With
    /// --docker-log-max-file it bounds how much output Docker keeps while
    /// docker-cri is down.
    #[arg(long, global = true, value_name = "SIZE")]
    pub docker_log_max_size: Option<String>,

    /// How many json-file log files Docker keeps per container.
    #[arg(long, global = true, value_name = "COUNT")]
    pub docker_log_max_file: Option<u32>,

    /// error, warn, info, debug or trace; RUST_LOG overrides it when set.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Log output format.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,

    /// Pod networking: `docker` (Docker's own networks, see
    /// --sandbox-network; also when empty, as cri-dockerd's unit passes it)
    /// or `cni`.
    #[arg(long, global = true, value_name = "NAME")]
    pub network_plugin: Option<String>,

    /// CNI network configs: the first valid .conflist/.conf/.json in
    /// lexical order is used.
    #[arg(long, global = true, value_name = "DIR")]
    pub cni_conf_dir: Option<PathBuf>,

    /// CNI plugin binaries, several comma-separated allowed; /usr/lib/cni
    /// (Debian's) is searched last.
    #[arg(long, global = true, value_name = "DIRS")]
    pub cni_bin_dir: Option<String>,

    /// Where CNI ADD results are kept for DEL (libcni's layout).
    #[arg(long, global = true, value_name = "DIR")]
    pub cni_cache_dir: Option<PathBuf>,

    /// How long one CNI plugin call may take before it is killed.
    #[arg(long, global = true, value_name = "DURATION")]
    pub cni_plugin_timeout: Option<String>,

    /// CNI: hairpin-veth (or promiscuous-bridge, which means the same
    /// outside kubenet) sets `hairpinMode` on the chain's bridge plugin
    /// unless its config sets it; none or unset leaves configs alone.
    #[arg(long, global = true, value_name = "MODE")]
    pub hairpin_mode: Option<String>,

    /// CNI: the `mtu` of the chain's interface plugins (bridge, ptp,
    /// macvlan, ipvlan, vlan) unless their config sets one; 0 leaves it
    /// to the plugins.
    #[arg(long, global = true, value_name = "MTU")]
    pub network_plugin_mtu: Option<String>,

    /// Upper bound on the encoded size of one message of the Stream* list
    /// RPCs. Hidden: the default suits every node; tests lower it so that a
    /// handful of objects already spans several messages.
    #[arg(long, global = true, value_name = "BYTES", hide = true)]
    pub list_stream_message_bytes: Option<usize>,

    /// cri-dockerd compatibility: accepted so its unit files start
    /// docker-cri; see `Config::compat_warnings` for what acts.
    #[command(flatten)]
    pub compat: CompatFlags,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// cri-dockerd's flags that docker-cri takes without (yet) acting on all of
/// them, so an operator's existing unit file or drop-in keeps working.
#[derive(Debug, Default, clap::Args)]
pub struct CompatFlags {
    #[arg(long, global = true, value_name = "CIDR", hide = true)]
    pub pod_cidr: Option<String>,
    #[arg(long, global = true, value_name = "BOOL", hide = true, num_args = 0..=1, default_missing_value = "true")]
    pub ipv6_dual_stack: Option<String>,
    #[arg(long, global = true, value_name = "CGROUP", hide = true)]
    pub runtime_cgroups: Option<String>,
}

impl CompatFlags {
    /// One line for each accepted flag that does not act (yet).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (flag, given) in [
            ("pod-cidr", &self.pod_cidr),
            ("ipv6-dual-stack", &self.ipv6_dual_stack),
            ("runtime-cgroups", &self.runtime_cgroups),
        ] {
            if given.is_some() {
                out.push(format!(
                    "--{flag} is accepted for cri-dockerd compatibility and has no effect yet"
                ));
            }
        }
        out
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve CRI (the default).
    Serve,
    /// Build the configured pause image into Docker without any registry.
    PauseImage {
        /// Tag to give the image instead of --pod-infra-container-image.
        #[arg(long)]
        tag: Option<String>,
        /// Do nothing when Docker already has the image.
        #[arg(long)]
        if_missing: bool,
    },
    /// Check this host for running pods through docker-cri; exits non-zero
    /// when something would stop pods from running.
    Check {
        /// The --cgroup-driver kubelet will be given (systemd or cgroupfs).
        #[arg(long)]
        cgroup_driver: Option<String>,
        /// Where kubelet writes pod logs.
        #[arg(long, default_value = "/var/log/pods")]
        pod_log_directory: PathBuf,
    },
}

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

/// What Docker's json-file driver takes for `max-size`: a positive whole
/// number with an optional k, m or g (either case, optional b).
fn docker_size_ok(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let unitless = lower.strip_suffix('b').unwrap_or(&lower);
    let digits = unitless.strip_suffix(['k', 'm', 'g']).unwrap_or(unitless);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.bytes().any(|b| b != b'0')
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad("config", format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| bad("config", format!("{}: {e}", path.display())))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["docker-cri"];
        all.extend_from_slice(args);
        Cli::parse_from(all)
    }

    #[test]
    fn defaults_match_cri_dockerd_conventions() {
        let c = Config::default();
        assert_eq!(
            c.listen,
            Listen::Unix(PathBuf::from("/run/docker-cri.sock"))
        );
        assert_eq!(c.docker_socket, PathBuf::from("/var/run/docker.sock"));
        assert_eq!(c.pause_image, DEFAULT_PAUSE_IMAGE);
        assert_eq!(c.runtime_request_timeout, Duration::from_secs(120));
        assert_eq!(
            c.streaming_connection_idle_timeout,
            Duration::from_secs(4 * 3600)
        );
        assert_eq!(c.root_directory, PathBuf::from(DEFAULT_ROOT_DIR));
    }

    #[test]
    fn docker_log_buffer_settings() {
        let c = Config::default();
        assert_eq!(
            (c.docker_log_max_size.as_str(), c.docker_log_max_file),
            ("10m", 5)
        );
        let file: FileConfig =
            toml::from_str("docker_log_max_size = \"100k\"\ndocker_log_max_file = 2").unwrap();
        let c = Config::resolve(&cli(&["--docker-log-max-size", "1G"]), file).unwrap();
        assert_eq!(
            (c.docker_log_max_size.as_str(), c.docker_log_max_file),
            ("1G", 2)
        );
        for ok in ["1", "512k", "10m", "10mb", "2g"] {
            assert!(docker_size_ok(ok), "{ok}");
        }
    }

    #[test]
    fn list_stream_message_bound() {
        let c = Config::default();
        assert_eq!(c.list_stream_message_bytes, 4 << 20);
        let c = Config::load(&cli(&["--list-stream-message-bytes", "2048"])).unwrap();
        assert_eq!(c.list_stream_message_bytes, 2048);
        for bad in ["0", "1023", "8388609"] {
            let e = Config::load(&cli(&["--list-stream-message-bytes", bad])).unwrap_err();
            assert_eq!(e.setting, "list-stream-message-bytes", "{bad}");
        }
    }

    #[test]
    fn cri_dockerd_root_directory_alias() {
        let c = Config::load(&cli(&["--cri-dockerd-root-directory", "/tmp/x"])).unwrap();
        assert_eq!(c.root_directory, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn flags_override_file() {
        let file: FileConfig =
            toml::from_str("runtime_request_timeout = \"30s\"\nlog_level = \"debug\"").unwrap();
        let c = Config::resolve(&cli(&["--log-level", "warn"]), file).unwrap();
        assert_eq!(c.runtime_request_timeout, Duration::from_secs(30));
        assert_eq!(c.log_level, "warn");
    }

    #[test]
    fn errors_name_the_setting() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["--container-runtime-endpoint", "tcp://x:1"],
                "container-runtime-endpoint",
            ),
            (&["--docker-endpoint", "unix://relative"], "docker-endpoint"),
            (
                &["--runtime-request-timeout", "soon"],
                "runtime-request-timeout",
            ),
            (
                &["--runtime-request-timeout", "0s"],
                "runtime-request-timeout",
            ),
            (&["--streaming-bind-addr", "nowhere"], "streaming-bind-addr"),
            (&["--log-level", "loud"], "log-level"),
            (
                &["--pod-infra-container-image", "UPPER/case"],
                "pod-infra-container-image",
            ),
            (&["--root-directory", "rel/dir"], "root-directory"),
            (&["--sandbox-network", "host"], "sandbox-network"),
            (&["--sandbox-network", "a b"], "sandbox-network"),
            (&["--network-plugin", "kubenet"], "network-plugin"),
            (&["--cni-conf-dir", "net.d"], "cni-conf-dir"),
            (&["--cni-bin-dir", "/opt/cni/bin,rel"], "cni-bin-dir"),
            (&["--cni-bin-dir", ","], "cni-bin-dir"),
            (&["--cni-cache-dir", "cache"], "cni-cache-dir"),
            (&["--cni-plugin-timeout", "0s"], "cni-plugin-timeout"),
            (&["--docker-log-max-size", "ten"], "docker-log-max-size"),
            (&["--docker-log-max-size", "0m"], "docker-log-max-size"),
            (&["--docker-log-max-size", "1x"], "docker-log-max-size"),
            (&["--docker-log-max-file", "0"], "docker-log-max-file"),
        ];
        for (args, setting) in cases {
            let err = Config::load(&cli(args)).unwrap_err();
            assert_eq!(err.setting, *setting, "{args:?}");
            assert!(err.to_string().contains(setting));
        }
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        assert!(toml::from_str::<FileConfig>("no_such_key = 1").is_err());
    }

    #[test]
    fn example_config_parses() {
        let text = include_str!("../config/docker-cri.toml");
        let file: FileConfig = toml::from_str(text).unwrap();
        Config::resolve(&cli(&[]), file).unwrap();
    }

    #[test]
    fn metrics_address_defaults_to_loopback() {
        assert_eq!(Config::default().metrics_bind_addr, None);
        for (given, want) in [
            ("9090", "127.0.0.1:9090"),
            (":9090", "127.0.0.1:9090"),
            ("0.0.0.0:9100", "0.0.0.0:9100"),
            ("[::1]:9100", "[::1]:9100"),
        ] {
            let c = Config::resolve(&cli(&["--metrics-bind-addr", given]), FileConfig::default())
                .unwrap();
            assert_eq!(c.metrics_bind_addr.unwrap().to_string(), want, "{given}");
        }
        let err = Config::resolve(
            &cli(&["--metrics-bind-addr", "lots"]),
            FileConfig::default(),
        )
        .unwrap_err();
        assert_eq!(err.setting, "metrics-bind-addr");
    }

    #[test]
    fn systemd_endpoints() {
        let c = Config::resolve(
            &cli(&["--container-runtime-endpoint", "fd://"]),
            FileConfig::default(),
        )
        .unwrap();
        assert_eq!(c.listen, Listen::Systemd { name: None });
        let c = Config::resolve(
            &cli(&["--container-runtime-endpoint", "fd://cri"]),
            FileConfig::default(),
        )
        .unwrap();
        assert_eq!(
            c.listen,
            Listen::Systemd {
                name: Some("cri".into())
            }
        );
        assert!(
            Config::resolve(
                &cli(&["--container-runtime-endpoint", "fd://a/b"]),
                FileConfig::default()
            )
            .is_err()
        );
    }
}
