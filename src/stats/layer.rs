//! The writable-layer sampler: measures each running container's own upper
//! directory in the background and serves the last figure. Walking a tree
//! costs CPU in proportion to its files, so the walks are paced to a CPU
//! budget (a walk that took `t` owes a rest of `t·(1/f − 1)`, so the
//! sampler works about a fraction `f` of one core however many containers
//! there are) and no layer is walked more often than a minimum interval.
//! A layer never measured (a container just started) may go ahead of the
//! rest owed, up to a bound, so its first figure comes at once without
//! letting a restart's many new layers break the budget. A request never
//! walks; it may wait a moment for a new layer's first figure.

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
    /// How much rest may still be owed when a never-measured layer is
    /// walked: past this, new layers wait too. Over any stretch of time
    /// the walks use at most `f` of a core plus `f` times this (2 s at
    /// 5 %: 100 ms of walking, e.g. after a restart).
    pub new_layer_max_owed: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            cpu_fraction: 0.05,
            min_interval: Duration::from_secs(10),
            new_layer_max_owed: Duration::from_secs(2),
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
    /// A layer was registered: the walker looks again.
    wake: tokio::sync::Notify,
    /// A walk ended: requests waiting for a first figure look again.
    walked: tokio::sync::Notify,
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

    /// Waits, at most `within`, until each of `ids` that is registered
    /// but was never walked has had its first walk (a container just
    /// started: its first stats should carry its layer). Returns at once
    /// when there is none.
    pub async fn first_figures(&self, ids: &[&str], within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let walked = self.shared.walked.notified();
            tokio::pin!(walked);
            // Registered before looking, so a walk ending in between is
            // not missed.
            walked.as_mut().enable();
            let waiting = {
                let layers = self.shared.lock();
                ids.iter()
                    .any(|id| layers.get(*id).is_some_and(|l| l.last_walk.is_none()))
            };
            if !waiting || tokio::time::timeout_at(deadline, walked).await.is_err() {
                return;
            }
        }
    }

    /// Forgets containers that are gone.
    pub fn retain(&self, alive: impl Fn(&str) -> bool) {
        self.shared.lock().retain(|k, _| alive(k));
    }
}

/// What the walker does next.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Walk(String, PathBuf),
    /// Nothing to walk for this long (`None`: until a layer comes).
    Wait(Option<Duration>),
}

/// Picks the layer to walk next, given the rest still `owed`: a
/// never-measured layer while the rest owed is within the budget's bound
/// for new layers, else the longest-unwalked one once the rest is over
/// and its interval has passed.
fn next(layers: &HashMap<String, Layer>, owed: Duration, budget: &Budget) -> Next {
    if let Some((id, l)) = layers.iter().find(|(_, l)| l.last_walk.is_none()) {
        return match owed.checked_sub(budget.new_layer_max_owed) {
            Some(wait) if !wait.is_zero() => Next::Wait(Some(wait)),
            _ => Next::Walk(id.clone(), l.upper.clone()),
        };
    }
    let Some((id, l)) = layers.iter().min_by_key(|(_, l)| l.last_walk) else {
        return Next::Wait(None);
    };
    let since = l.last_walk.map_or(budget.min_interval, |t| t.elapsed());
    let wait = owed.max(budget.min_interval.saturating_sub(since));
    if wait.is_zero() {
        Next::Walk(id.clone(), l.upper.clone())
    } else {
        Next::Wait(Some(wait))
    }
}

async fn run(weak: Weak<Shared>, budget: Budget) {
    // Wakes at least this often to notice the sampler was dropped.
    const IDLE_CHECK: Duration = Duration::from_secs(1);
    // Until when the walks so far owe their rest.
    let mut rest_until = Instant::now();
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let owed = rest_until.saturating_duration_since(Instant::now());
        let picked = next(&shared.lock(), owed, &budget);
        let (id, upper) = match picked {
            Next::Walk(id, upper) => (id, upper),
            Next::Wait(wait) => {
                // A layer registered meanwhile may be walked sooner.
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
        rest_until = rest_until.max(Instant::now()) + pause_after(cost, budget.cpu_fraction);
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
        shared.walked.notify_waiters();
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
    fn unmeasured_layers_come_first_within_the_bound_then_the_stalest_once_due() {
        let now = Instant::now();
        let layer = |walked: Option<Duration>| Layer {
            upper: PathBuf::from("/u"),
            measured: None,
            last_walk: walked.map(|ago| now - ago),
        };
        let budget = Budget {
            cpu_fraction: 0.05,
            min_interval: Duration::from_secs(10),
            new_layer_max_owed: Duration::from_secs(2),
        };
        let secs = Duration::from_secs;
        let mut layers = HashMap::from([
            ("a".to_string(), layer(Some(secs(3)))),
            ("b".to_string(), layer(Some(secs(5)))),
        ]);
        let Next::Wait(Some(wait)) = next(&layers, Duration::ZERO, &budget) else {
            panic!("nothing is due yet");
        };
        assert!(wait <= secs(5) && wait > secs(4));
        // A new layer goes first, even while rest is owed, up to the bound.
        layers.insert("c".into(), layer(None));
        let walk_c = Next::Walk("c".into(), "/u".into());
        assert_eq!(next(&layers, Duration::ZERO, &budget), walk_c);
        assert_eq!(next(&layers, secs(2), &budget), walk_c);
        assert_eq!(next(&layers, secs(3), &budget), Next::Wait(Some(secs(1))));
        layers.remove("c");
        // A due layer waits for the whole rest.
        layers.insert("d".into(), layer(Some(secs(11))));
        assert_eq!(
            next(&layers, Duration::ZERO, &budget),
            Next::Walk("d".into(), "/u".into())
        );
        let half = Duration::from_millis(500);
        assert_eq!(next(&layers, half, &budget), Next::Wait(Some(half)));
        assert_eq!(next(&HashMap::new(), half, &budget), Next::Wait(None));
    }

    /// A layer directory with one file, under `<dir>/overlay2/<name>/diff`.
    fn upper(dir: &Path, name: &str) -> PathBuf {
        let upper = dir.join("overlay2").join(name).join("diff");
        std::fs::create_dir_all(&upper).unwrap();
        std::fs::write(upper.join("f"), vec![1u8; 8192]).unwrap();
        upper
    }

    /// A budget whose rest after any walk is many seconds long.
    fn stingy(new_layer_max_owed: Duration) -> Budget {
        Budget {
            cpu_fraction: 1e-6,
            min_interval: Duration::from_secs(10),
            new_layer_max_owed,
        }
    }

    #[tokio::test]
    async fn a_new_layer_goes_ahead_of_the_rest_the_last_walk_owes() {
        let dir = tempfile::tempdir().unwrap();
        let sampler = LayerSampler::new(stingy(Duration::from_secs(3600)));
        sampler.register("c1", &upper(dir.path(), "l1"));
        sampler.first_figures(&["c1"], Duration::from_secs(5)).await;
        assert!(sampler.get("c1").is_some());
        // The walk of c1 owes seconds of rest; c2 is new, so it is walked
        // now, and a request waits for it.
        sampler.register("c2", &upper(dir.path(), "l2"));
        sampler.first_figures(&["c2"], Duration::from_secs(5)).await;
        assert_eq!(sampler.get("c2").map(|u| u.usage.inodes), Some(2));
    }

    #[tokio::test]
    async fn past_the_bound_a_new_layer_waits_out_the_rest_too() {
        let dir = tempfile::tempdir().unwrap();
        let sampler = LayerSampler::new(stingy(Duration::ZERO));
        sampler.register("c1", &upper(dir.path(), "l1"));
        sampler.first_figures(&["c1"], Duration::from_secs(5)).await;
        assert!(sampler.get("c1").is_some());
        sampler.register("c2", &upper(dir.path(), "l2"));
        let waited = Instant::now();
        sampler
            .first_figures(&["c2"], Duration::from_millis(300))
            .await;
        assert!(waited.elapsed() >= Duration::from_millis(300));
        assert_eq!(sampler.get("c2"), None);
        // Nothing registered and unwalked: no wait at all.
        let at_once = Instant::now();
        sampler
            .first_figures(&["c1", "unknown"], Duration::from_secs(5))
            .await;
        assert!(at_once.elapsed() < Duration::from_secs(1));
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
        let upper = upper(dir.path(), "layer1");
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
