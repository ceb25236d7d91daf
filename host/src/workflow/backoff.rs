//! Retry delays: exponential backoff with jitter.

use std::time::Duration;

/// Delay before retry number `retry` (1 for the first retry): a random
/// duration between half of `base * 2^(retry-1)` (capped at `max`) and
/// all of it ("equal jitter"). The jitter spreads retries of many failing
/// runs instead of having them hammer a recovering dependency in lockstep;
/// the floor keeps a retry from coming back at once.
pub fn delay(retry: u32, base: Duration, max: Duration) -> Duration {
    delay_with(retry, base, max, 2.0)
}

/// [`delay`] with the delay growing by `multiplier` (1 to 10) per retry.
pub fn delay_with(retry: u32, base: Duration, max: Duration, multiplier: f64) -> Duration {
    let growth = multiplier
        .clamp(1.0, 10.0)
        .powi(retry.saturating_sub(1).min(60) as i32);
    let exp = Duration::try_from_secs_f64(base.as_secs_f64() * growth).unwrap_or(Duration::MAX);
    let ceiling = exp.min(max);
    let millis = ceiling.as_millis() as u64;
    if millis == 0 {
        return Duration::ZERO;
    }
    let floor = millis / 2;
    Duration::from_millis(floor + random_below(millis - floor + 1))
}

fn random_below(n: u64) -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return n / 2;
    }
    u64::from_le_bytes(bytes) % n.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_stays_within_bounds() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for retry in 1..=12 {
            let ceiling = (base * 2u32.pow(retry - 1)).min(max);
            for _ in 0..50 {
                let d = delay(retry, base, max);
                assert!(d <= ceiling, "retry {retry}: {d:?} > {ceiling:?}");
                assert!(
                    d >= ceiling / 2,
                    "retry {retry}: {d:?} < half of {ceiling:?}"
                );
            }
        }
        assert_eq!(delay(1, Duration::ZERO, max), Duration::ZERO);
    }
}
