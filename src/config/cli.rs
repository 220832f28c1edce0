//! The command line: cri-dockerd's flag names where it has the setting.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::LogFormat;

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

    /// How old a leftover image volume export container must be before the
    /// startup sweep removes it. Hidden: the default suits every node;
    /// tests shorten it, as Docker sets the creation time itself.
    #[arg(long, global = true, value_name = "DURATION", hide = true)]
    pub image_volume_export_sweep_age: Option<String>,

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
