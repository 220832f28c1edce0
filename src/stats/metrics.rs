//! The cAdvisor metric families kubelet serves on `/metrics/cadvisor` when it
//! takes them from the runtime (ListMetricDescriptors), and their values
//! from one [`Reading`]. Every metric carries the base labels `id`, `name`
//! and `image` (kubelet adds `namespace`, `pod` and `container` itself),
//! then its family's own. Values are whole numbers (the CRI's `UInt64Value`),
//! so `*_seconds_total` families are whole seconds.

use super::layer::LayerUsage;
use super::parse::Interface;
use super::reading::Reading;
use crate::api;

pub const BASE_LABELS: [&str; 3] = ["id", "name", "image"];

struct Family {
    name: &'static str,
    help: &'static str,
    extra_labels: &'static [&'static str],
    counter: bool,
}

const fn counter(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        help,
        extra_labels: &[],
        counter: true,
    }
}

const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        help,
        extra_labels: &[],
        counter: false,
    }
}

const fn with(f: Family, extra_labels: &'static [&'static str]) -> Family {
    Family { extra_labels, ..f }
}

const IFACE: &[&str] = &["interface"];
const BLKIO: &[&str] = &["device", "major", "minor", "operation"];
const DEVICE: &[&str] = &["device"];

const FAMILIES: &[Family] = &[
    with(
        counter(
            "container_blkio_device_usage_total",
            "Bytes read from and written to a block device.",
        ),
        BLKIO,
    ),
    gauge(
        "container_memory_kernel_usage",
        "Kernel memory charged to the container, in bytes.",
    ),
    counter(
        "container_oom_events_total",
        "Processes killed by the OOM killer in the container.",
    ),
    gauge(
        "container_sockets",
        "Open sockets of the container's processes.",
    ),
    counter(
        "container_cpu_usage_seconds_total",
        "Cumulative CPU time consumed, in seconds.",
    ),
    counter(
        "container_cpu_user_seconds_total",
        "Cumulative CPU time consumed in user mode, in seconds.",
    ),
    counter(
        "container_cpu_system_seconds_total",
        "Cumulative CPU time consumed in kernel mode, in seconds.",
    ),
    counter(
        "container_cpu_cfs_periods_total",
        "Number of elapsed CFS enforcement periods.",
    ),
    counter(
        "container_cpu_cfs_throttled_periods_total",
        "Number of CFS periods in which the container was throttled.",
    ),
    counter(
        "container_cpu_cfs_throttled_seconds_total",
        "Total time the container was throttled, in seconds.",
    ),
    gauge(
        "container_memory_usage_bytes",
        "Memory in use, including page cache, in bytes.",
    ),
    gauge(
        "container_memory_working_set_bytes",
        "Working set (usage less inactive file cache), in bytes.",
    ),
    gauge(
        "container_memory_rss",
        "Anonymous and swap cache memory (RSS), in bytes.",
    ),
    gauge("container_memory_cache", "Page cache memory, in bytes."),
    gauge(
        "container_memory_mapped_file",
        "Memory-mapped file memory, in bytes.",
    ),
    gauge("container_memory_swap", "Swap in use, in bytes."),
    gauge(
        "container_memory_max_usage_bytes",
        "Highest memory usage recorded, in bytes.",
    ),
    counter(
        "container_memory_failcnt",
        "Times memory usage hit the cgroup v1 limit.",
    ),
    with(
        counter(
            "container_memory_failures_total",
            "Cumulative count of page faults, by type and scope.",
        ),
        &["failure_type", "scope"],
    ),
    with(
        counter(
            "container_network_receive_bytes_total",
            "Cumulative bytes received.",
        ),
        IFACE,
    ),
    with(
        counter(
            "container_network_receive_packets_total",
            "Cumulative packets received.",
        ),
        IFACE,
    ),
    with(
        counter(
            "container_network_receive_errors_total",
            "Cumulative errors while receiving.",
        ),
        IFACE,
    ),
    with(
        counter(
            "container_network_receive_packets_dropped_total",
            "Cumulative packets dropped while receiving.",
        ),
        IFACE,
    ),
    with(
        counter(
            "container_network_transmit_bytes_total",
            "Cumulative bytes transmitted.",
        ),
        IFACE,
    ),
    with(
        counter(
            "container_network_transmit_packets_total",
            "Cumulative packets transmitted.",
        ),
        IFACE,
    ),
    with(
        counter(
            "container_network_transmit_errors_total",
            "Cumulative errors while transmitting.",
        ),
        IFACE,
    ),
    with(
        counter(
            "container_network_transmit_packets_dropped_total",
            "Cumulative packets dropped while transmitting.",
        ),
        IFACE,
    ),
    with(
        gauge(
            "container_fs_usage_bytes",
            "Bytes the container's writable layer uses on this filesystem.",
        ),
        DEVICE,
    ),
    with(
        gauge(
            "container_fs_inodes_used",
            "Inodes the container's writable layer uses on this filesystem.",
        ),
        DEVICE,
    ),
    with(
        gauge(
            "container_fs_limit_bytes",
            "Size of the filesystem holding the writable layer, in bytes.",
        ),
        DEVICE,
    ),
    with(
        gauge(
            "container_fs_inodes_total",
            "Inodes of the filesystem holding the writable layer.",
        ),
        DEVICE,
    ),
    with(
        gauge(
            "container_fs_inodes_free",
            "Free inodes of the filesystem holding the writable layer.",
        ),
        DEVICE,
    ),
    with(
        counter(
            "container_fs_reads_bytes_total",
            "Cumulative bytes read from block devices.",
        ),
        DEVICE,
    ),
    with(
        counter(
            "container_fs_writes_bytes_total",
            "Cumulative bytes written to block devices.",
        ),
        DEVICE,
    ),
    with(
        counter("container_fs_reads_total", "Cumulative reads completed."),
        DEVICE,
    ),
    with(
        counter("container_fs_writes_total", "Cumulative writes completed."),
        DEVICE,
    ),
    gauge(
        "container_processes",
        "Number of processes in the container.",
    ),
    gauge("container_threads", "Number of threads in the container."),
    gauge(
        "container_threads_max",
        "Most threads the container may have; 0 for no limit.",
    ),
    gauge(
        "container_file_descriptors",
        "Open file descriptors of the container's processes.",
    ),
    gauge(
        "container_start_time_seconds",
        "Start time of the container since the Unix epoch, in seconds.",
    ),
    gauge(
        "container_last_seen",
        "Time the container was last read, in seconds since the Unix epoch.",
    ),
    gauge("container_spec_cpu_shares", "CPU shares of the container."),
    gauge(
        "container_spec_cpu_quota",
        "CPU quota of the container, in microseconds per period.",
    ),
    gauge(
        "container_spec_cpu_period",
        "CPU period of the container, in microseconds.",
    ),
    gauge(
        "container_spec_memory_limit_bytes",
        "Memory limit of the container, in bytes; 0 for none.",
    ),
    gauge(
        "container_spec_memory_reservation_limit_bytes",
        "Memory reservation of the container, in bytes.",
    ),
    gauge(
        "container_spec_memory_swap_limit_bytes",
        "Swap limit of the container, in bytes.",
    ),
];

pub fn descriptors() -> Vec<api::MetricDescriptor> {
    FAMILIES
        .iter()
        .map(|f| api::MetricDescriptor {
            name: f.name.to_string(),
            help: f.help.to_string(),
            label_keys: BASE_LABELS
                .iter()
                .chain(f.extra_labels)
                .map(|k| k.to_string())
                .collect(),
        })
        .collect()
}

/// Metrics of one object under construction.
pub struct Builder {
    base: [String; 3],
    timestamp_ns: i64,
    out: Vec<api::Metric>,
}

impl Builder {
    /// `id`, `name` and `image` label values.
    pub fn new(base: [String; 3], timestamp_ns: i64) -> Builder {
        Builder {
            base,
            timestamp_ns,
            out: Vec::new(),
        }
    }

    fn push(&mut self, name: &str, extra: &[&str], value: Option<u64>) {
        let Some(value) = value else { return };
        let Some(family) = FAMILIES.iter().find(|f| f.name == name) else {
            tracing::error!(metric = name, "metric without a descriptor");
            return;
        };
        self.out.push(api::Metric {
            name: name.to_string(),
            timestamp: self.timestamp_ns,
            metric_type: if family.counter {
                api::MetricType::Counter
            } else {
                api::MetricType::Gauge
            } as i32,
            label_values: self
                .base
                .iter()
                .cloned()
                .chain(extra.iter().map(|s| s.to_string()))
                .collect(),
            value: Some(api::UInt64Value { value }),
        });
    }

    pub fn finish(self) -> Vec<api::Metric> {
        self.out
    }

    /// CPU, memory, process and limit families from a cgroup reading.
    pub fn cgroup(&mut self, r: &Reading) {
        let secs = |ns: Option<u64>| ns.map(|n| n / 1_000_000_000);
        if let Some(c) = &r.cpu {
            self.push(
                "container_cpu_usage_seconds_total",
                &[],
                secs(Some(c.usage_ns)),
            );
            self.push("container_cpu_user_seconds_total", &[], secs(c.user_ns));
            self.push("container_cpu_system_seconds_total", &[], secs(c.system_ns));
            self.push("container_cpu_cfs_periods_total", &[], c.periods);
            self.push(
                "container_cpu_cfs_throttled_periods_total",
                &[],
                c.throttled_periods,
            );
            self.push(
                "container_cpu_cfs_throttled_seconds_total",
                &[],
                secs(c.throttled_ns),
            );
        }
        if let Some(m) = &r.memory {
            self.push("container_memory_usage_bytes", &[], Some(m.usage));
            self.push(
                "container_memory_working_set_bytes",
                &[],
                Some(m.working_set),
            );
            self.push("container_memory_rss", &[], m.rss);
            self.push("container_memory_cache", &[], m.cache);
            self.push("container_memory_mapped_file", &[], m.mapped_file);
            self.push("container_memory_max_usage_bytes", &[], m.max_usage);
            self.push("container_memory_failcnt", &[], m.failcnt);
            self.push("container_memory_kernel_usage", &[], m.kernel);
            self.push("container_oom_events_total", &[], m.oom_kills);
            let failures = "container_memory_failures_total";
            self.push(failures, &["pgfault", "container"], m.own_pgfault);
            self.push(failures, &["pgmajfault", "container"], m.own_pgmajfault);
            self.push(failures, &["pgfault", "hierarchy"], m.pgfault);
            self.push(failures, &["pgmajfault", "hierarchy"], m.pgmajfault);
            self.push(
                "container_spec_memory_limit_bytes",
                &[],
                Some(m.limit.unwrap_or(0)),
            );
        }
        self.push("container_memory_swap", &[], r.swap.map(|s| s.usage));
        if let Some(p) = &r.pids {
            self.push("container_processes", &[], Some(p.current));
            self.push("container_threads_max", &[], Some(p.max.unwrap_or(0)));
        }
        self.push("container_threads", &[], r.threads);
        self.push("container_spec_cpu_shares", &[], r.spec.cpu_shares);
        self.push("container_spec_cpu_quota", &[], r.spec.cpu_quota);
        self.push("container_spec_cpu_period", &[], r.spec.cpu_period);
        self.push(
            "container_spec_memory_reservation_limit_bytes",
            &[],
            r.spec.memory_reservation,
        );
        self.push(
            "container_spec_memory_swap_limit_bytes",
            &[],
            r.spec.swap_limit,
        );
        self.push(
            "container_last_seen",
            &[],
            Some((r.timestamp_ns.max(0) / 1_000_000_000) as u64),
        );
    }

    /// Block I/O per device; `name` turns major:minor into a device name.
    pub fn block_io(&mut self, r: &Reading, name: impl Fn(u64, u64) -> String) {
        for d in &r.io {
            let dev = name(d.major, d.minor);
            self.push(
                "container_fs_reads_bytes_total",
                &[&dev],
                Some(d.read_bytes),
            );
            self.push(
                "container_fs_writes_bytes_total",
                &[&dev],
                Some(d.write_bytes),
            );
            self.push("container_fs_reads_total", &[&dev], Some(d.reads));
            self.push("container_fs_writes_total", &[&dev], Some(d.writes));
            let (major, minor) = (d.major.to_string(), d.minor.to_string());
            let usage = "container_blkio_device_usage_total";
            self.push(usage, &[&dev, &major, &minor, "Read"], Some(d.read_bytes));
            self.push(usage, &[&dev, &major, &minor, "Write"], Some(d.write_bytes));
        }
    }

    /// The writable layer and the filesystem holding it.
    pub fn writable_layer(&mut self, layer: &LayerUsage, fs: Option<FsCapacity>) {
        let dev = layer.mountpoint.display().to_string();
        self.push("container_fs_usage_bytes", &[&dev], Some(layer.usage.bytes));
        self.push(
            "container_fs_inodes_used",
            &[&dev],
            Some(layer.usage.inodes),
        );
        if let Some(fs) = fs {
            self.push("container_fs_limit_bytes", &[&dev], Some(fs.bytes));
            self.push("container_fs_inodes_total", &[&dev], Some(fs.inodes));
            self.push("container_fs_inodes_free", &[&dev], Some(fs.inodes_free));
        }
    }

    pub fn network(&mut self, interfaces: &[Interface]) {
        for i in interfaces {
            let n = [i.name.as_str()];
            self.push(
                "container_network_receive_bytes_total",
                &n,
                Some(i.rx_bytes),
            );
            self.push(
                "container_network_receive_packets_total",
                &n,
                Some(i.rx_packets),
            );
            self.push(
                "container_network_receive_errors_total",
                &n,
                Some(i.rx_errors),
            );
            self.push(
                "container_network_receive_packets_dropped_total",
                &n,
                Some(i.rx_dropped),
            );
            self.push(
                "container_network_transmit_bytes_total",
                &n,
                Some(i.tx_bytes),
            );
            self.push(
                "container_network_transmit_packets_total",
                &n,
                Some(i.tx_packets),
            );
            self.push(
                "container_network_transmit_errors_total",
                &n,
                Some(i.tx_errors),
            );
            self.push(
                "container_network_transmit_packets_dropped_total",
                &n,
                Some(i.tx_dropped),
            );
        }
    }

    pub fn start_time(&mut self, unix_seconds: i64) {
        self.push(
            "container_start_time_seconds",
            &[],
            Some(unix_seconds.max(0) as u64),
        );
    }

    pub fn sockets(&mut self, count: Option<u64>) {
        self.push("container_sockets", &[], count);
    }

    pub fn file_descriptors(&mut self, count: Option<u64>) {
        self.push("container_file_descriptors", &[], count);
    }
}

/// Size of a filesystem (statvfs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsCapacity {
    pub bytes: u64,
    pub inodes: u64,
    pub inodes_free: u64,
}

pub fn fs_capacity(path: &std::path::Path) -> Option<FsCapacity> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    Some(FsCapacity {
        bytes: (s.blocks() as u64).saturating_mul(s.fragment_size() as u64),
        inodes: s.files() as u64,
        inodes_free: s.files_free() as u64,
    })
}

/// A block device's name from sysfs (`/dev/sda`), else `major:minor`.
pub fn device_name(sys_root: &std::path::Path, major: u64, minor: u64) -> String {
    let uevent = sys_root.join(format!("dev/block/{major}:{minor}/uevent"));
    std::fs::read_to_string(uevent)
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("DEVNAME=").map(|n| format!("/dev/{n}")))
        })
        .unwrap_or_else(|| format!("{major}:{minor}"))
}
