//! The writable-layer sampler: measures each running container's own upper
//! directory in the background and serves the last figure. Walking a tree
//! costs CPU in proportion to its files, so the walks are paced to a CPU
//! budget (after a walk that took `t`, the sampler rests `t·(1/f − 1)`, so
//! it works at most a fraction `f` of one core however many containers
//! there are) and no layer is walked more often than a minimum interval.
//! A request never walks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::du::{self, Usage};
use super::reader::now_ns;

#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// The share of one core the walks may use (0.05: 5 %).
    pub cpu_fraction: f64,
    /// The least time between two walks of the same layer.
    pub min_interval: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            cpu_fraction: 0.05,
            min_interval: Duration::from_secs(10),
        }
    }
}

/// The rest after a walk that took `cost`, keeping the walker within
/// `fraction` of a core.
pub fn pause_after(cost: Duration, fraction: f64) -> Duration {
    if fraction >= 1.0 || fraction <= 0.0 {
        return Duration::ZERO;
    }
    cost.mul_f64(1.0 / fraction - 1.0)
}

/// A measured writable layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerUsage {
    pub usage: Usage,
    pub timestamp_ns: i64,
    /// The filesystem's identifier as ImageFsInfo names it: the storage
    /// driver's directory (`<docker root>/overlay2`).
    pub mountpoint: PathBuf,
}

struct Layer {
    upper: PathBuf,
    measured: Option<LayerUsage>,
    last_walk: Option<Instant>,
}

#[derive(Default)]
struct Shared {
    layers: Mutex<HashMap<String, Layer>>,
    wake: tokio::sync::Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Layer>> {
        self.layers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct LayerSampler {
    shared: Arc<Shared>,
    budget: Budget,
    started: std::sync::Once,
}

/// `<root>/overlay2/<layer>/diff` → `<root>/overlay2`.
pub fn mountpoint_of(upper: &Path) -> PathBuf {
    upper
        .parent()
        .and_then(Path::parent)
        .unwrap_or(upper)
        .to_path_buf()
}

impl LayerSampler {
    pub fn new(budget: Budget) -> LayerSampler {
        LayerSampler {
            shared: Arc::default(),
            budget,
            started: std::sync::Once::new(),
        }
    }

    /// Starts measuring a container's upper directory (once; later calls
    /// are no-ops). Must be called inside a Tokio runtime: the first call
    /// starts the background walker.
    pub fn register(&self, id: &str, upper: &Path) {
        self.started.call_once(|| {
            let weak = Arc::downgrade(&self.shared);
            tokio::spawn(run(weak, self.budget));
        });
        let mut layers = self.shared.lock();
        if layers.contains_key(id) {
            return;
        }
        layers.insert(
            id.to_string(),
            Layer {
                upper: upper.to_path_buf(),
                measured: None,
                last_walk: None,
            },
        );
        drop(layers);
        self.shared.wake.notify_one();
    }

    /// The last figure for a container, if one was taken.
    pub fn get(&self, id: &str) -> Option<LayerUsage> {
        self.shared.lock().get(id).and_then(|l| l.measured.clone())
    }

    /// Forgets containers that are gone.
    pub fn retain(&self, alive: impl Fn(&str) -> bool) {
        self.shared.lock().retain(|k, _| alive(k));
    }
}

/// Picks the layer to walk next: never-measured ones first, then the
/// longest-unwalked once its interval has passed. Otherwise how long until
/// one is due.
fn next_due(
    layers: &HashMap<String, Layer>,
    min_interval: Duration,
) -> Result<(String, PathBuf), Option<Duration>> {
    if let Some((id, l)) = layers.iter().find(|(_, l)| l.last_walk.is_none()) {
        return Ok((id.clone(), l.upper.clone()));
    }
    let Some((id, l)) = layers.iter().min_by_key(|(_, l)| l.last_walk) else {
        return Err(None);
    };
    let since = l.last_walk.map_or(min_interval, |t| t.elapsed());
    if since >= min_interval {
        Ok((id.clone(), l.upper.clone()))
    } else {
        Err(Some(min_interval - since))
    }
}

async fn run(weak: Weak<Shared>, budget: Budget) {
    // Wakes at least this often to notice the sampler was dropped.
    const IDLE_CHECK: Duration = Duration::from_secs(1);
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let due = next_due(&shared.lock(), budget.min_interval);
        let (id, upper) = match due {
            Ok(next) => next,
            Err(wait) => {
                let wait = wait.unwrap_or(IDLE_CHECK).min(IDLE_CHECK);
                let _ = tokio::time::timeout(wait, shared.wake.notified()).await;
                continue;
            }
        };
        drop(shared);
        let started = Instant::now();
        let walked = {
            let upper = upper.clone();
            tokio::task::spawn_blocking(move || du::measure(&upper)).await
        };
        let cost = started.elapsed();
        let Some(shared) = weak.upgrade() else { return };
        if let Some(layer) = shared.lock().get_mut(&id) {
            layer.last_walk = Some(Instant::now());
            match walked {
                Ok(Some(usage)) => {
                    layer.measured = Some(LayerUsage {
                        usage,
                        timestamp_ns: now_ns(),
                        mountpoint: mountpoint_of(&upper),
                    })
                }
                // Gone (the container was removed): the next list forgets it.
                _ => tracing::debug!(container = %id, "writable layer not measurable"),
            }
        }
        drop(shared);
        tokio::time::sleep(pause_after(cost, budget.cpu_fraction)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_keeps_the_walker_within_its_share() {
        // 10 ms of walking at 5 % → 190 ms of rest: 10 / (10 + 190) = 5 %.
        assert_eq!(
            pause_after(Duration::from_millis(10), 0.05),
            Duration::from_millis(190)
        );
        assert_eq!(pause_after(Duration::from_millis(10), 1.0), Duration::ZERO);
        assert_eq!(pause_after(Duration::from_millis(10), 0.0), Duration::ZERO);
    }

    #[test]
    fn unmeasured_layers_come_first_then_the_stalest_once_due() {
        let now = Instant::now();
        let layer = |walked: Option<Duration>| Layer {
            upper: PathBuf::from("/u"),
            measured: None,
            last_walk: walked.map(|ago| now - ago),
        };
        let min = Duration::from_secs(10);
        let mut layers = HashMap::from([
            ("a".to_string(), layer(Some(Duration::from_secs(3)))),
            ("b".to_string(), layer(Some(Duration::from_secs(5)))),
        ]);
        let wait = next_due(&layers, min).unwrap_err().unwrap();
        assert!(wait <= Duration::from_secs(5) && wait > Duration::from_secs(4));
        layers.insert("c".into(), layer(None));
        assert_eq!(next_due(&layers, min).unwrap().0, "c");
        layers.remove("c");
        layers.insert("d".into(), layer(Some(Duration::from_secs(11))));
        assert_eq!(next_due(&layers, min).unwrap().0, "d");
        assert_eq!(next_due(&HashMap::new(), min).unwrap_err(), None);
    }

    #[test]
    fn mountpoint_is_the_driver_directory() {
        assert_eq!(
            mountpoint_of(Path::new("/var/lib/docker/overlay2/abc/diff")),
            PathBuf::from("/var/lib/docker/overlay2")
        );
    }

    #[tokio::test]
    async fn measures_in_the_background_and_serves_the_figure() {
        let dir = tempfile::tempdir().unwrap();
        let upper = dir.path().join("overlay2/layer1/diff");
        std::fs::create_dir_all(&upper).unwrap();
        std::fs::write(upper.join("f"), vec![1u8; 8192]).unwrap();
        let sampler = LayerSampler::new(Budget::default());
        assert_eq!(sampler.get("c1"), None);
        sampler.register("c1", &upper);
        let mut got = None;
        for _ in 0..100 {
            got = sampler.get("c1");
            if got.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let got = got.expect("measured within a second");
        assert_eq!(got.usage.inodes, 2);
        assert!(got.usage.bytes >= 8192);
        assert_eq!(got.mountpoint, dir.path().join("overlay2"));
        assert_eq!(Some(got.usage), du::measure(&upper));
        sampler.retain(|_| false);
        assert_eq!(sampler.get("c1"), None);
    }
}
