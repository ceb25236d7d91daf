//! The query cache: answers to recent `/rag/query` requests, per
//! collection, dropped whenever that collection's index changes.
//!
//! - in-process by default;
//! - in Redis with `REDIS_URL`: one hash per collection,
//!   `{prefix}:rag:cache:{collection}`, so an ingest on any host
//!   invalidates the cache of every host with one `DEL`. Entries carry
//!   their expiry; the hash itself expires a TTL after its last write.
//!
//! A Redis failure is a miss, never an error: the cache only saves work.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use fred::prelude::{HashesInterface, KeysInterface};
use parking_lot::Mutex;

use crate::redis::Connection;

/// Entries kept per collection in process; the oldest half is dropped
/// when full.
const MAX_ENTRIES: usize = 10_000;

#[derive(Clone)]
pub struct QueryCache {
    /// None: caching is off.
    backend: Option<Arc<dyn Backend>>,
    ttl: Duration,
    hits: Arc<AtomicU64>,
    misses: Arc<AtomicU64>,
    /// Bumped on every invalidation: an answer computed before one is not
    /// stored after it.
    generation: Arc<AtomicU64>,
}

/// Where the answers live: this process ([`MemoryAnswers`]) or Redis
/// ([`RedisAnswers`]). Neither fails: a fault is a miss.
#[async_trait]
trait Backend: Send + Sync {
    /// "memory" or "redis".
    fn name(&self) -> &'static str;
    async fn get(&self, collection: &str, key: &str, ttl: Duration) -> Option<String>;
    async fn put(&self, collection: &str, key: &str, value: String, ttl: Duration);
    async fn invalidate(&self, collection: &str);
}

/// Answers of one collection: key → (stored at, answer).
type Entries = HashMap<String, (Instant, String)>;

#[derive(Default)]
struct MemoryAnswers {
    map: Mutex<HashMap<String, Entries>>,
}

struct RedisAnswers {
    connection: Arc<Connection>,
    prefix: String,
}

/// Cache counters for `/rag/stats`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CacheStats {
    pub backend: &'static str,
    pub ttl_s: u64,
    pub hits: u64,
    pub misses: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl QueryCache {
    fn new(backend: Arc<dyn Backend>, ttl: Duration) -> Self {
        QueryCache {
            // A zero TTL turns caching off.
            backend: (!ttl.is_zero()).then_some(backend),
            ttl,
            hits: Arc::default(),
            misses: Arc::default(),
            generation: Arc::default(),
        }
    }

    /// An in-process cache; a zero `ttl` turns caching off.
    pub fn memory(ttl: Duration) -> Self {
        Self::new(Arc::new(MemoryAnswers::default()), ttl)
    }

    /// A cache shared through Redis; a zero `ttl` turns caching off.
    pub fn redis(connection: Arc<Connection>, prefix: &str, ttl: Duration) -> Self {
        let answers = RedisAnswers {
            connection,
            prefix: prefix.to_owned(),
        };
        Self::new(Arc::new(answers), ttl)
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            backend: self.backend.as_ref().map_or("off", |b| b.name()),
            ttl_s: self.ttl.as_secs(),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// The current generation, to pass back to [`QueryCache::put`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub async fn get(&self, collection: &str, key: &str) -> Option<String> {
        let backend = self.backend.as_ref()?;
        let found = backend.get(collection, key, self.ttl).await;
        crate::metrics::query_cache(found.is_some());
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Stores an answer computed while the cache was at `generation`.
    pub async fn put(&self, collection: &str, key: &str, value: String, generation: u64) {
        if generation != self.generation() {
            return;
        }
        if let Some(backend) = &self.backend {
            backend.put(collection, key, value, self.ttl).await;
        }
    }

    /// Forgets every answer for `collection`.
    pub async fn invalidate(&self, collection: &str) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(backend) = &self.backend {
            backend.invalidate(collection).await;
        }
    }
}

#[async_trait]
impl Backend for MemoryAnswers {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, collection: &str, key: &str, ttl: Duration) -> Option<String> {
        self.map
            .lock()
            .get(collection)
            .and_then(|entries| entries.get(key))
            .filter(|(stored, _)| stored.elapsed() < ttl)
            .map(|(_, value)| value.clone())
    }

    async fn put(&self, collection: &str, key: &str, value: String, ttl: Duration) {
        let mut map = self.map.lock();
        let entries = map.entry(collection.to_owned()).or_default();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (stored, _)| stored.elapsed() < ttl / 2);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key.to_owned(), (Instant::now(), value));
    }

    async fn invalidate(&self, collection: &str) {
        self.map.lock().remove(collection);
    }
}

impl RedisAnswers {
    fn hash_key(&self, collection: &str) -> String {
        format!("{}:rag:cache:{collection}", self.prefix)
    }
}

#[async_trait]
impl Backend for RedisAnswers {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, collection: &str, key: &str, _ttl: Duration) -> Option<String> {
        let stored: Result<Option<String>, _> = self
            .connection
            .client()
            .hget(self.hash_key(collection), key)
            .await;
        match stored {
            Ok(Some(entry)) => entry.split_once('|').and_then(|(expires, value)| {
                let expires: u64 = expires.parse().ok()?;
                (expires > now_ms()).then(|| value.to_owned())
            }),
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(error = %e, "query cache read failed; treated as a miss");
                None
            }
        }
    }

    async fn put(&self, collection: &str, key: &str, value: String, ttl: Duration) {
        let hash = self.hash_key(collection);
        let entry = format!("{}|{value}", now_ms() + ttl.as_millis() as u64);
        let client = self.connection.client();
        let stored: Result<(), _> = client.hset(&hash, (key, entry)).await;
        let expired: Result<(), _> = client.pexpire(&hash, ttl.as_millis() as i64, None).await;
        if let Err(e) = stored.and(expired) {
            tracing::debug!(error = %e, "query cache write failed");
        }
    }

    async fn invalidate(&self, collection: &str) {
        let deleted: Result<i64, _> = self
            .connection
            .client()
            .del(self.hash_key(collection))
            .await;
        if let Err(e) = deleted {
            tracing::warn!(collection, error = %e, "cannot invalidate the shared query cache");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_cache_hits_expires_and_invalidates() {
        let cache = QueryCache::memory(Duration::from_millis(200));
        assert_eq!(cache.get("c", "q").await, None);
        cache
            .put("c", "q", "answer".into(), cache.generation())
            .await;
        assert_eq!(cache.get("c", "q").await.as_deref(), Some("answer"));
        assert_eq!(cache.get("other", "q").await, None);

        // An answer computed before an invalidation is not stored after it.
        let before = cache.generation();
        cache.invalidate("c").await;
        assert_eq!(cache.get("c", "q").await, None);
        cache.put("c", "q", "stale".into(), before).await;
        assert_eq!(cache.get("c", "q").await, None);

        cache
            .put("c", "q", "fresh".into(), cache.generation())
            .await;
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(cache.get("c", "q").await, None, "expired");
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (1, 5));
    }

    #[tokio::test]
    async fn zero_ttl_turns_the_cache_off() {
        let cache = QueryCache::memory(Duration::ZERO);
        cache
            .put("c", "q", "answer".into(), cache.generation())
            .await;
        assert_eq!(cache.get("c", "q").await, None);
        assert_eq!(cache.stats().backend, "off");
    }
}
