//! Rate limiting of the knowledge API: a token bucket per client.
//!
//! Each client (by IP address) may make `burst` requests at once and
//! `rate` per second sustained. The buckets live in process by default; in
//! Redis with `REDIS_URL` (a Lua script updates a bucket atomically, on
//! Redis's clock), so that every host of a deployment shares them.
//! If Redis cannot be reached the request is let through: a limiter must
//! not turn a Redis outage into an API outage.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fred::types::scripts::Script;
use parking_lot::Mutex;

use crate::redis::Connection;

/// Buckets held in process before idle ones are swept.
const MAX_BUCKETS: usize = 100_000;

const BUCKET_LUA: &str = r#"
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local allowed = 0
local retry_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry_ms = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, retry_ms}
"#;

/// Requests per second and burst; `rate` 0 turns limiting off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateConfig {
    pub rate: f64,
    pub burst: f64,
}

/// The verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    Allow,
    /// Over the limit: retry after this long.
    Deny(Duration),
}

#[derive(Clone)]
pub struct RateLimiter {
    config: RateConfig,
    backend: Arc<dyn Backend>,
}

/// Where the buckets live: this process ([`MemoryBuckets`]) or Redis
/// ([`RedisBuckets`]).
#[async_trait]
trait Backend: Send + Sync {
    /// "memory" or "redis".
    fn name(&self) -> &'static str;
    /// Takes a token from `client`'s bucket (`config.rate` > 0).
    async fn take(&self, client: &str, config: RateConfig) -> Verdict;
}

#[derive(Default)]
struct MemoryBuckets {
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct RedisBuckets {
    connection: Arc<Connection>,
    prefix: String,
    script: Script,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub fn memory(config: RateConfig) -> Self {
        RateLimiter {
            config,
            backend: Arc::new(MemoryBuckets::default()),
        }
    }

    pub fn redis(config: RateConfig, connection: Arc<Connection>, prefix: &str) -> Self {
        RateLimiter {
            config,
            backend: Arc::new(RedisBuckets {
                connection,
                prefix: prefix.to_owned(),
                script: Script::from_lua(BUCKET_LUA),
            }),
        }
    }

    pub fn enabled(&self) -> bool {
        self.config.rate > 0.0
    }

    pub fn backend(&self) -> &'static str {
        self.backend.name()
    }

    /// Takes a token from `client`'s bucket.
    pub async fn check(&self, client: &str) -> Verdict {
        if !self.enabled() {
            return Verdict::Allow;
        }
        self.backend.take(client, self.config).await
    }
}

#[async_trait]
impl Backend for MemoryBuckets {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn take(&self, client: &str, RateConfig { rate, burst }: RateConfig) -> Verdict {
        let mut buckets = self.buckets.lock();
        if buckets.len() >= MAX_BUCKETS {
            // Idle long enough to be full again: forgetting them
            // changes nothing.
            let full_after = Duration::from_secs_f64(burst / rate);
            buckets.retain(|_, b| b.at.elapsed() < full_after);
        }
        let now = Instant::now();
        let bucket = buckets.entry(client.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        take(bucket, now, rate, burst)
    }
}

#[async_trait]
impl Backend for RedisBuckets {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn take(&self, client: &str, RateConfig { rate, burst }: RateConfig) -> Verdict {
        let key = format!("{}:ratelimit:rag:{client}", self.prefix);
        let answer: Result<(i64, i64), _> = self
            .script
            .evalsha_with_reload(
                self.connection.client(),
                key,
                vec![rate.to_string(), burst.to_string()],
            )
            .await;
        match answer {
            Ok((1, _)) => Verdict::Allow,
            Ok((_, retry_ms)) => Verdict::Deny(Duration::from_millis(retry_ms.max(1) as u64)),
            Err(e) => {
                tracing::warn!(error = %e, "rate limiter unavailable; allowing the request");
                Verdict::Allow
            }
        }
    }
}

fn take(bucket: &mut Bucket, now: Instant, rate: f64, burst: f64) -> Verdict {
    let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * rate;
    bucket.tokens = (bucket.tokens + refill).min(burst);
    bucket.at = now;
    if bucket.tokens >= 1.0 {
        bucket.tokens -= 1.0;
        Verdict::Allow
    } else {
        Verdict::Deny(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_refills_at_the_rate() {
        let start = Instant::now();
        let mut bucket = Bucket {
            tokens: 3.0,
            at: start,
        };
        for _ in 0..3 {
            assert_eq!(take(&mut bucket, start, 2.0, 3.0), Verdict::Allow);
        }
        let Verdict::Deny(wait) = take(&mut bucket, start, 2.0, 3.0) else {
            panic!("a fourth request at once must be denied");
        };
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
        // Half a second later one token is back, and only one.
        let later = start + Duration::from_millis(500);
        assert_eq!(take(&mut bucket, later, 2.0, 3.0), Verdict::Allow);
        assert!(matches!(
            take(&mut bucket, later, 2.0, 3.0),
            Verdict::Deny(_)
        ));
        // Never more than the burst, however long the wait.
        let much_later = later + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(take(&mut bucket, much_later, 2.0, 3.0), Verdict::Allow);
        }
        assert!(matches!(
            take(&mut bucket, much_later, 2.0, 3.0),
            Verdict::Deny(_)
        ));
    }

    #[tokio::test]
    async fn clients_have_their_own_buckets_and_zero_rate_is_off() {
        let limiter = RateLimiter::memory(RateConfig {
            rate: 1.0,
            burst: 1.0,
        });
        assert_eq!(limiter.check("a").await, Verdict::Allow);
        assert!(matches!(limiter.check("a").await, Verdict::Deny(_)));
        assert_eq!(limiter.check("b").await, Verdict::Allow);
        let off = RateLimiter::memory(RateConfig {
            rate: 0.0,
            burst: 0.0,
        });
        for _ in 0..100 {
            assert_eq!(off.check("a").await, Verdict::Allow);
        }
    }
}
