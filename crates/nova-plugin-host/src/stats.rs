//! Call statistics of one loaded plugin version.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many recent call durations the median is taken over.
const WINDOW: usize = 1024;

#[derive(Default)]
pub struct Stats {
    calls: AtomicU64,
    failures: AtomicU64,
    recent: Mutex<Recent>,
}

#[derive(Default)]
struct Recent {
    ms: Vec<f64>,
    next: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct StatsSnapshot {
    pub calls: u64,
    pub failures: u64,
    /// Median duration of the last calls, in milliseconds; null before any.
    pub p50_ms: Option<f64>,
}

impl Stats {
    pub fn record(&self, ms: f64, ok: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.ms.len() < WINDOW {
            recent.ms.push(ms);
        } else {
            let i = recent.next;
            recent.ms[i] = ms;
        }
        recent.next = (recent.next + 1) % WINDOW;
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let mut ms = self
            .recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ms
            .clone();
        let p50_ms = (!ms.is_empty()).then(|| {
            let mid = ms.len() / 2;
            *ms.select_nth_unstable_by(mid, f64::total_cmp).1
        });
        StatsSnapshot {
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            p50_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_over_a_window() {
        let s = Stats::default();
        assert_eq!(s.snapshot().p50_ms, None);
        for ms in [5.0, 1.0, 3.0] {
            s.record(ms, true);
        }
        s.record(100.0, false);
        s.record(2.0, true);
        let snap = s.snapshot();
        assert_eq!(snap.calls, 5);
        assert_eq!(snap.failures, 1);
        assert_eq!(snap.p50_ms, Some(3.0));
        for _ in 0..WINDOW {
            s.record(7.0, true);
        }
        assert_eq!(s.snapshot().p50_ms, Some(7.0));
    }
}
