//! CPU rate (`usage_nano_cores`) from two cumulative samples, as containerd
//! computes it. Each cgroup keeps its last two samples; a call that comes
//! within [`MIN_WINDOW_NS`] of the newer one is measured against the older,
//! so two callers polling close together do not get a rate over a few
//! milliseconds (all noise).

use std::collections::HashMap;
use std::sync::Mutex;

/// The shortest window a rate is computed over when a longer one exists.
pub const MIN_WINDOW_NS: i64 = 1_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub timestamp_ns: i64,
    pub usage_ns: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct History {
    older: Option<Sample>,
    newer: Option<Sample>,
}

/// Nanoseconds of CPU per second of wall time between `base` and `now`;
/// `None` when time did not move forward or the counter went back (the
/// cgroup was recreated).
pub fn nano_cores(base: Sample, now: Sample) -> Option<u64> {
    let wall = now.timestamp_ns.checked_sub(base.timestamp_ns)?;
    if wall <= 0 || now.usage_ns < base.usage_ns {
        return None;
    }
    let used = (now.usage_ns - base.usage_ns) as u128;
    Some((used * 1_000_000_000 / wall as u128).min(u64::MAX as u128) as u64)
}

impl History {
    /// Records `now` and returns the rate since the chosen base sample.
    pub fn observe(&mut self, now: Sample) -> Option<u64> {
        let base = match (self.older, self.newer) {
            (_, Some(n)) if now.timestamp_ns - n.timestamp_ns >= MIN_WINDOW_NS => Some(n),
            (Some(o), _) => Some(o),
            (None, n) => n,
        };
        let rate = base.and_then(|b| nano_cores(b, now));
        match self.newer {
            // Shift only once a full window has passed, so the older sample
            // stays at least a window behind.
            Some(n) if now.timestamp_ns - n.timestamp_ns < MIN_WINDOW_NS => {
                if self.older.is_none() {
                    self.older = Some(n);
                    self.newer = Some(now);
                }
            }
            _ => {
                self.older = self.newer;
                self.newer = Some(now);
            }
        }
        // A counter that went back starts a new history.
        if rate.is_none() && base.is_some_and(|b| now.usage_ns < b.usage_ns) {
            *self = History {
                older: None,
                newer: Some(now),
            };
        }
        rate
    }
}

/// Histories by key (a container ID, or `pod:<sandbox ID>`).
#[derive(Default)]
pub struct Rates {
    by_key: Mutex<HashMap<String, History>>,
}

impl Rates {
    pub fn observe(&self, key: &str, now: Sample) -> Option<u64> {
        let mut map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key.to_string()).or_default().observe(now)
    }

    /// Drops the histories of keys no longer alive.
    pub fn retain(&self, alive: impl Fn(&str) -> bool) {
        let mut map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|k, _| alive(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn s(t: i64, u: u64) -> Sample {
        Sample {
            timestamp_ns: t,
            usage_ns: u,
        }
    }

    #[test]
    fn rate_from_two_samples() {
        // Half a core for two seconds.
        assert_eq!(nano_cores(s(0, 0), s(2 * S, S as u64)), Some(500_000_000));
        // Two full cores.
        assert_eq!(
            nano_cores(s(10 * S, 5), s(11 * S, 5 + 2 * S as u64)),
            Some(2_000_000_000)
        );
        assert_eq!(nano_cores(s(S, 0), s(S, 10)), None, "no time passed");
        assert_eq!(nano_cores(s(0, 10), s(S, 5)), None, "counter went back");
    }

    #[test]
    fn first_sample_has_no_rate_then_rates_follow() {
        let mut h = History::default();
        assert_eq!(h.observe(s(0, 0)), None);
        assert_eq!(h.observe(s(S, 250_000_000)), Some(250_000_000));
        assert_eq!(h.observe(s(2 * S, 1_250_000_000)), Some(1_000_000_000));
    }

    #[test]
    fn close_calls_measure_against_the_older_sample() {
        let mut h = History::default();
        h.observe(s(0, 0));
        h.observe(s(S, S as u64 / 2));
        // 10 ms later, with a burst of 10 ms of CPU: measured from t=0, not
        // as one full core over 10 ms.
        let r = h.observe(s(S + 10_000_000, S as u64 / 2 + 10_000_000));
        assert_eq!(
            r,
            Some(((S / 2 + 10_000_000) * S / (S + 10_000_000)) as u64)
        );
        // A second apart again: the window is from the newer sample (t=1s).
        let r = h.observe(s(2 * S, S as u64));
        assert_eq!(r, Some(500_000_000));
    }

    #[test]
    fn second_close_sample_still_gets_a_rate() {
        let mut h = History::default();
        h.observe(s(0, 0));
        assert_eq!(h.observe(s(100_000_000, 50_000_000)), Some(500_000_000));
    }

    #[test]
    fn a_restarted_counter_starts_over() {
        let mut h = History::default();
        h.observe(s(0, 5 * S as u64));
        assert_eq!(h.observe(s(S, 0)), None);
        assert_eq!(h.observe(s(2 * S, S as u64 / 4)), Some(250_000_000));
    }

    #[test]
    fn keys_are_independent_and_retained_by_liveness() {
        let r = Rates::default();
        r.observe("a", s(0, 0));
        r.observe("b", s(0, 0));
        r.retain(|k| k == "a");
        assert!(r.observe("a", s(S, 1000)).is_some());
        assert!(r.observe("b", s(S, 1000)).is_none(), "b was forgotten");
    }
}
