//! When to try a request again, and how long to wait before it.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often, and how patiently, a call is tried again.
///
/// A call is tried again after a connection error, a `429 Too Many
/// Requests` or a `503 Service Unavailable`, until `max_attempts` requests
/// have been sent. The wait before try `n + 1` is the host's `Retry-After`
/// when it sent one, else a random duration between zero and
/// `min(max_delay, base_delay * 2^(n-1))` ("full jitter", so that clients
/// refused together do not come back together); either way at most
/// `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Requests sent at most, the first included; 1 turns retries off.
    pub max_attempts: u32,
    /// The ceiling of the first wait; it doubles with each try.
    pub base_delay: Duration,
    /// No wait is longer, `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Four tries, waits of at most 0.2 s, 0.4 s, 0.8 s (or what
    /// `Retry-After` asks, up to 5 s).
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// One try only.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The ceiling of the wait after failed try number `attempt` (1-based).
    pub(crate) fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.base_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }

    /// The wait after failed try `attempt`, given the host's `Retry-After`.
    pub(crate) fn delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        jitter: &Jitter,
    ) -> Duration {
        match retry_after {
            Some(wait) => wait.min(self.max_delay),
            None => self.ceiling(attempt).mul_f64(jitter.unit()),
        }
    }
}

/// A small xorshift generator for jitter: the waits need to differ between
/// clients, not to be unpredictable, so no crate is pulled in for it.
#[derive(Debug)]
pub(crate) struct Jitter(AtomicU64);

impl Jitter {
    pub(crate) fn new() -> Jitter {
        // std seeds every RandomState from the OS once per process and
        // varies it per instance: a fresh seed without a dependency.
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Jitter(AtomicU64::new(seed | 1))
    }

    /// A number in [0, 1).
    pub(crate) fn unit(&self) -> f64 {
        let step = |mut x: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let previous = self
            .0
            .try_update(Ordering::Relaxed, Ordering::Relaxed, |x| Some(step(x)))
            .unwrap_or(1);
        // The top 53 bits make an evenly spread f64.
        (step(previous) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_maximum() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(700),
        };
        let ceilings: Vec<u128> = (1..=5).map(|a| policy.ceiling(a).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 700, 700]);
        assert_eq!(policy.ceiling(u32::MAX), Duration::from_millis(700));
    }

    #[test]
    fn waits_stay_under_the_ceiling_and_honour_retry_after() {
        let policy = RetryPolicy::default();
        let jitter = Jitter::new();
        let waits: Vec<Duration> = (0..200).map(|_| policy.delay(3, None, &jitter)).collect();
        assert!(waits.iter().all(|w| *w < policy.ceiling(3)), "{waits:?}");
        // Full jitter spreads the waits rather than repeating one.
        assert!(waits.iter().any(|w| *w != waits[0]), "{waits:?}");
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(2)), &jitter),
            Duration::from_secs(2)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(60)), &jitter),
            policy.max_delay
        );
    }

    #[test]
    fn units_are_in_range() {
        let jitter = Jitter::new();
        for _ in 0..1000 {
            let u = jitter.unit();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }
}
