//! Prometheus metrics: per-RPC and per-Docker-call counts and latency
//! histograms, Docker's connection state and build info. Recording is
//! atomics only (no lock on the RPC path); `/metrics` renders them in the
//! Prometheus text format through the `prometheus-client` encoder.

mod histogram;
pub mod server;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

pub use histogram::AtomicHistogram;

/// gRPC status codes 0..=16 by name, as Prometheus labels.
const GRPC_CODES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

/// How a Docker call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DockerOutcome {
    Ok,
    NotFound,
    Refused,
    Unavailable,
    Timeout,
    Error,
}

const DOCKER_OUTCOMES: [&str; 6] = [
    "ok",
    "not_found",
    "refused",
    "unavailable",
    "timeout",
    "error",
];

/// The most distinct names a table keeps; later ones count as "other".
const TABLE_SLOTS: usize = 96;

/// Counts by outcome and a latency histogram for one named call.
#[derive(Debug, Default)]
struct CallStats {
    outcomes: [AtomicU64; 17],
    latency: AtomicHistogram,
}

/// Named call statistics, append-only: a lookup is a scan of a few dozen
/// static names, an insertion a one-time `OnceLock` set.
#[derive(Debug)]
struct CallTable {
    slots: Vec<OnceLock<(&'static str, CallStats)>>,
    other: CallStats,
}

impl Default for CallTable {
    fn default() -> Self {
        CallTable {
            slots: (0..TABLE_SLOTS).map(|_| OnceLock::new()).collect(),
            other: CallStats::default(),
        }
    }
}

impl CallTable {
    fn get(&self, name: &'static str) -> &CallStats {
        for slot in &self.slots {
            match slot.get() {
                Some((n, stats)) if *n == name => return stats,
                Some(_) => continue,
                None => {
                    // Another thread may claim this slot first, for its
                    // own name; then keep looking.
                    let (n, stats) = slot.get_or_init(|| (name, CallStats::default()));
                    if *n == name {
                        return stats;
                    }
                }
            }
        }
        &self.other
    }

    fn entries(&self) -> impl Iterator<Item = (&'static str, &CallStats)> {
        self.slots
            .iter()
            .filter_map(|s| s.get().map(|(n, st)| (*n, st)))
            .chain(std::iter::once(("other", &self.other)))
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    rpcs: CallTable,
    docker: CallTable,
    docker_connected: AtomicBool,
    streaming_sessions: AtomicI64,
    log_writers: AtomicI64,
    log_bytes: AtomicU64,
    /// From Docker's timestamp on a batch's newest line to its write.
    log_lag: AtomicHistogram,
}

/// Counts one in-flight thing (a streaming session, a log writer) while it
/// lives.
pub struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// One finished CRI call: its method name, gRPC code and duration.
    pub fn record_rpc(&self, method: &'static str, code: i32, took: Duration) {
        let stats = self.rpcs.get(method);
        let code = usize::try_from(code).unwrap_or(2).min(16);
        stats.outcomes[code].fetch_add(1, Ordering::Relaxed);
        stats.latency.observe(took);
    }

    /// One finished Docker API call.
    pub fn record_docker(&self, call: &'static str, outcome: DockerOutcome, took: Duration) {
        let stats = self.docker.get(call);
        stats.outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
        stats.latency.observe(took);
    }

    /// A streaming (exec/attach/port-forward) session, counted while the
    /// guard lives.
    pub fn streaming_session(&self) -> InFlight<'_> {
        self.streaming_sessions.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.streaming_sessions)
    }

    /// A container log writer, counted while the guard lives.
    pub fn log_writer(&self) -> InFlight<'_> {
        self.log_writers.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.log_writers)
    }

    /// One write of CRI log lines; `lag`: since Docker stamped the newest.
    pub fn record_log_write(&self, bytes: usize, lag: Option<Duration>) {
        self.log_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        if let Some(lag) = lag {
            self.log_lag.observe(lag);
        }
    }

    pub fn set_docker_connected(&self, connected: bool) {
        self.docker_connected.store(connected, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of everything recorded.
    pub fn render(self: &std::sync::Arc<Self>) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.clone()));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

impl Collector for Metrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let info = ConstGauge::new(1i64);
        let mut family = encoder.encode_descriptor(
            "docker_cri_build_info",
            "docker-cri's version (always 1)",
            None,
            info.metric_type(),
        )?;
        info.encode(family.encode_family(&[("version", env!("CARGO_PKG_VERSION"))])?)?;

        let connected = ConstGauge::new(i64::from(self.docker_connected.load(Ordering::Relaxed)));
        connected.encode(encoder.encode_descriptor(
            "docker_cri_docker_connected",
            "1 while docker-cri has a negotiated connection to the Docker daemon",
            None,
            connected.metric_type(),
        )?)?;

        for (name, help, value) in [
            (
                "docker_cri_streaming_sessions",
                "exec, attach and port-forward sessions in flight",
                &self.streaming_sessions,
            ),
            (
                "docker_cri_log_writers",
                "container log writers running",
                &self.log_writers,
            ),
        ] {
            let gauge = ConstGauge::new(value.load(Ordering::Relaxed));
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        // Tasks alive in the runtime serving this request: a session or
        // writer that leaks its tasks shows here before it shows anywhere.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let alive = handle.metrics().num_alive_tasks();
            let tasks = ConstGauge::new(i64::try_from(alive).unwrap_or(i64::MAX));
            tasks.encode(encoder.encode_descriptor(
                "docker_cri_runtime_tasks",
                "tokio tasks alive in docker-cri",
                None,
                tasks.metric_type(),
            )?)?;
        }
        let bytes = ConstCounter::new(self.log_bytes.load(Ordering::Relaxed));
        bytes.encode(encoder.encode_descriptor(
            "docker_cri_log_bytes",
            "bytes written to CRI container log files",
            None,
            bytes.metric_type(),
        )?)?;
        let (sum, count, buckets) = self.log_lag.snapshot();
        encoder
            .encode_descriptor(
                "docker_cri_log_lag_seconds",
                "time from Docker's timestamp on a log line to its write into the CRI log file",
                None,
                MetricType::Histogram,
            )?
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                sum, count, &buckets, None,
            )?;

        encode_table(
            &mut encoder,
            &self.rpcs,
            (
                "docker_cri_grpc_requests",
                "CRI calls served, by method and gRPC code",
            ),
            (
                "docker_cri_grpc_request_duration_seconds",
                "Time to answer a CRI call, by method",
            ),
            ("method", "code", &GRPC_CODES),
        )?;
        encode_table(
            &mut encoder,
            &self.docker,
            (
                "docker_cri_docker_calls",
                "Docker API calls made, by call and outcome",
            ),
            (
                "docker_cri_docker_call_duration_seconds",
                "Time a Docker API call took, by call",
            ),
            ("call", "outcome", &DOCKER_OUTCOMES),
        )
    }
}

fn encode_table(
    encoder: &mut DescriptorEncoder,
    table: &CallTable,
    counter: (&str, &str),
    histogram: (&str, &str),
    labels: (&str, &str, &[&str]),
) -> Result<(), std::fmt::Error> {
    let (name_key, outcome_key, outcome_names) = labels;
    let mut family = encoder.encode_descriptor(counter.0, counter.1, None, MetricType::Counter)?;
    for (name, stats) in table.entries() {
        for (i, outcome) in outcome_names.iter().enumerate() {
            let n = stats.outcomes[i].load(Ordering::Relaxed);
            if n > 0 {
                let set = [(name_key, name), (outcome_key, *outcome)];
                ConstCounter::new(n).encode(family.encode_family(&set)?)?;
            }
        }
    }
    let mut family =
        encoder.encode_descriptor(histogram.0, histogram.1, None, MetricType::Histogram)?;
    for (name, stats) in table.entries() {
        if stats.latency.count() == 0 {
            continue;
        }
        let (sum, count, buckets) = stats.latency.snapshot();
        let set = [(name_key, name)];
        family
            .encode_family(&set)?
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                sum, count, &buckets, None,
            )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn counts_and_histograms_render() {
        let m = Arc::new(Metrics::default());
        m.record_rpc("Version", 0, Duration::from_millis(2));
        m.record_rpc("Version", 0, Duration::from_millis(2));
        m.record_rpc("ContainerStatus", 5, Duration::from_micros(400));
        m.record_docker(
            "inspect container",
            DockerOutcome::NotFound,
            Duration::from_millis(1),
        );
        m.set_docker_connected(true);
        let text = m.render();
        for line in [
            "docker_cri_build_info{version=\"",
            "docker_cri_docker_connected 1",
            "docker_cri_grpc_requests_total{method=\"Version\",code=\"OK\"} 2",
            "docker_cri_grpc_requests_total{method=\"ContainerStatus\",code=\"NotFound\"} 1",
            "docker_cri_grpc_request_duration_seconds_bucket{le=\"0.0025\",method=\"Version\"} 2",
            "docker_cri_grpc_request_duration_seconds_count{method=\"Version\"} 2",
            "docker_cri_docker_calls_total{call=\"inspect container\",outcome=\"not_found\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        // Nothing recorded: no series.
        assert!(!text.contains("method=\"ListImages\""), "{text}");
        {
            let _session = m.streaming_session();
            let _w1 = m.log_writer();
            let _w2 = m.log_writer();
            m.record_log_write(100, Some(Duration::from_millis(20)));
            let text = m.render();
            assert!(text.contains("docker_cri_streaming_sessions 1"), "{text}");
            assert!(text.contains("docker_cri_log_writers 2"), "{text}");
            assert!(text.contains("docker_cri_log_bytes_total 100"), "{text}");
            assert!(
                text.contains("docker_cri_log_lag_seconds_count 1"),
                "{text}"
            );
        }
        let text = m.render();
        assert!(text.contains("docker_cri_streaming_sessions 0"), "{text}");
        assert!(text.contains("docker_cri_log_writers 0"), "{text}");
    }

    #[tokio::test]
    async fn runtime_tasks_are_counted() {
        let m = Arc::new(Metrics::default());
        let count = |text: &str| -> i64 {
            text.lines()
                .find_map(|l| l.strip_prefix("docker_cri_runtime_tasks "))
                .and_then(|v| v.parse().ok())
                .unwrap_or(-1)
        };
        let before = count(&m.render());
        assert!(before >= 0, "{}", m.render());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = rx.await;
        });
        assert_eq!(count(&m.render()), before + 1);
        let _ = tx.send(());
        let _ = task.await;
        assert_eq!(count(&m.render()), before);
        // Outside a runtime there is nothing to count, and no series.
        let text = std::thread::spawn(move || m.render()).join().unwrap();
        assert!(!text.contains("docker_cri_runtime_tasks"), "{text}");
    }

    #[test]
    fn tables_overflow_into_other() {
        let t = CallTable::default();
        let names: Vec<&'static str> = (0..TABLE_SLOTS + 3)
            .map(|i| &*Box::leak(format!("call{i}").into_boxed_str()))
            .collect();
        for n in &names {
            t.get(n).outcomes[0].fetch_add(1, Ordering::Relaxed);
        }
        let entries: Vec<_> = t.entries().collect();
        assert_eq!(entries.len(), TABLE_SLOTS + 1);
        let other = entries.last().unwrap();
        assert_eq!(other.0, "other");
        assert_eq!(other.1.outcomes[0].load(Ordering::Relaxed), 3);
        // The same name finds the same slot.
        assert!(std::ptr::eq(t.get(names[5]), t.get(names[5])));
    }
}
