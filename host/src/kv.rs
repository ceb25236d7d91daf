//! The key-value store plugins reach through the `kv` interface.
//!
//! Keys are namespaced per plugin by the host, so a plugin cannot read or
//! overwrite another's keys. Two backends:
//!
//! - in-process, the embedded default: entries expire lazily on read and
//!   are swept when a namespace grows;
//! - Redis (`REDIS_URL`): key `{prefix}:kv:{plugin}:{key}`, TTL by
//!   `SET … PX`, shared by every process of a deployment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fred::prelude::{Expiration, KeysInterface};

use crate::redis::Connection;

pub const MAX_KEY_BYTES: usize = 512;
pub const MAX_VALUE_BYTES: usize = 1 << 20;
pub const MAX_KEYS_PER_PLUGIN: usize = 10_000;
/// Keys and values together, per plugin: bounds what one plugin can make
/// the host hold.
pub const MAX_BYTES_PER_PLUGIN: usize = 64 << 20;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum KvError {
    #[error("key is empty or longer than {MAX_KEY_BYTES} bytes")]
    BadKey,
    #[error("value of {0} bytes is over the {MAX_VALUE_BYTES}-byte limit")]
    ValueTooLarge(usize),
    #[error("this plugin already holds {MAX_KEYS_PER_PLUGIN} keys or {} MiB", MAX_BYTES_PER_PLUGIN >> 20)]
    Full,
    #[error("kv store unavailable: {0}")]
    Redis(String),
}

struct Entry {
    value: Vec<u8>,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|at| at > now)
    }
}

#[derive(Default)]
struct Namespace {
    entries: HashMap<String, Entry>,
    /// Key and value bytes held, expired entries included until swept.
    bytes: usize,
}

impl Namespace {
    fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.bytes -= key.len() + entry.value.len();
        Some(entry)
    }

    fn sweep(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| !e.live(now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.remove(&key);
        }
    }

    fn fits(&self, key: &str, value: &[u8]) -> bool {
        let replaced = self
            .entries
            .get(key)
            .map_or(0, |e| key.len() + e.value.len());
        let keys = self.entries.len() + usize::from(replaced == 0);
        keys <= MAX_KEYS_PER_PLUGIN
            && self.bytes - replaced + key.len() + value.len() <= MAX_BYTES_PER_PLUGIN
    }
}

/// A handle to the store; clones share it.
#[derive(Clone)]
pub struct Kv {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    InProcess(Arc<Mutex<HashMap<String, Namespace>>>),
    Redis(Arc<RedisKv>),
}

struct RedisKv {
    conn: Connection,
    prefix: String,
}

impl Default for Kv {
    fn default() -> Self {
        Kv {
            backend: Backend::InProcess(Arc::default()),
        }
    }
}

impl Kv {
    pub fn in_process() -> Self {
        Self::default()
    }

    /// Redis at `url`, keys under `{prefix}:kv:`. Fails if Redis cannot be
    /// reached now; later outages fail single calls while the client
    /// reconnects.
    ///
    /// The key and value size limits hold as in-process; the per-plugin
    /// caps ([`MAX_KEYS_PER_PLUGIN`], [`MAX_BYTES_PER_PLUGIN`]) do not. They
    /// bound what a plugin makes the host process hold, and here the data
    /// lives in Redis, bounded by its `maxmemory` and eviction policy; a
    /// per-plugin counter kept beside it would drift, since keys expire
    /// server-side without telling anyone.
    pub async fn redis(url: &str, prefix: &str) -> Result<Self, KvError> {
        if prefix.is_empty() {
            return Err(KvError::Redis("the key prefix must not be empty".into()));
        }
        let conn = Connection::open(url).await.map_err(redis_error)?;
        tracing::info!(prefix, "kv store on redis");
        Ok(Kv {
            backend: Backend::Redis(Arc::new(RedisKv {
                conn,
                prefix: prefix.to_owned(),
            })),
        })
    }

    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::InProcess(_) => "in-process",
            Backend::Redis(_) => "redis",
        }
    }

    pub async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        let map = match &self.backend {
            Backend::InProcess(map) => map,
            Backend::Redis(redis) => return redis.get(namespace, key).await,
        };
        let now = Instant::now();
        let map = lock(map);
        Ok(map
            .get(namespace)
            .and_then(|ns| ns.entries.get(key))
            .filter(|e| e.live(now))
            .map(|e| e.value.clone()))
    }

    pub async fn set(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<(), KvError> {
        check_key(key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(KvError::ValueTooLarge(value.len()));
        }
        let map = match &self.backend {
            Backend::InProcess(map) => map,
            Backend::Redis(redis) => return redis.set(namespace, key, value, ttl).await,
        };
        let now = Instant::now();
        let mut map = lock(map);
        let ns = map.entry(namespace.to_owned()).or_default();
        if !ns.fits(key, &value) {
            ns.sweep(now);
            if !ns.fits(key, &value) {
                return Err(KvError::Full);
            }
        }
        ns.remove(key);
        ns.bytes += key.len() + value.len();
        ns.entries.insert(
            key.to_owned(),
            Entry {
                value,
                expires: ttl.map(|t| now + t),
            },
        );
        Ok(())
    }

    pub async fn delete(&self, namespace: &str, key: &str) -> Result<bool, KvError> {
        check_key(key)?;
        let map = match &self.backend {
            Backend::InProcess(map) => map,
            Backend::Redis(redis) => return redis.delete(namespace, key).await,
        };
        let now = Instant::now();
        let mut map = lock(map);
        Ok(map
            .get_mut(namespace)
            .and_then(|ns| ns.remove(key))
            .is_some_and(|e| e.live(now)))
    }
}

fn lock(
    map: &Mutex<HashMap<String, Namespace>>,
) -> std::sync::MutexGuard<'_, HashMap<String, Namespace>> {
    // A panic while holding this lock cannot leave a map half-written
    // in a way that matters, so a poisoned lock is still usable.
    map.lock().unwrap_or_else(|p| p.into_inner())
}

impl RedisKv {
    /// Plugin names cannot contain ':', so the namespace ends unambiguously
    /// where the plugin's own key begins.
    fn key(&self, namespace: &str, key: &str) -> String {
        format!("{}:kv:{namespace}:{key}", self.prefix)
    }

    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.conn
            .client()
            .get(self.key(namespace, key))
            .await
            .map_err(redis_error)
    }

    async fn set(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<(), KvError> {
        let full_key = self.key(namespace, key);
        let expire = match ttl {
            None => None,
            // Redis refuses a zero expiry; a value that expires at once is
            // a value that is gone.
            Some(ttl) if ttl.is_zero() => {
                self.delete(namespace, key).await?;
                return Ok(());
            }
            Some(ttl) => Some(Expiration::PX(
                i64::try_from(ttl.as_millis().max(1)).unwrap_or(i64::MAX),
            )),
        };
        let _: fred::prelude::Value = self
            .conn
            .client()
            .set(full_key, value, expire, None, false)
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<bool, KvError> {
        let removed: u64 = self
            .conn
            .client()
            .del(self.key(namespace, key))
            .await
            .map_err(redis_error)?;
        Ok(removed > 0)
    }
}

fn redis_error(e: fred::error::Error) -> KvError {
    KvError::Redis(e.to_string())
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        Err(KvError::BadKey)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn namespaces_are_isolated() {
        let kv = Kv::in_process();
        kv.set("a", "k", b"1".to_vec(), None).await.unwrap();
        assert_eq!(kv.get("a", "k").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(kv.get("b", "k").await.unwrap(), None);
        assert!(!kv.delete("b", "k").await.unwrap());
        assert!(kv.delete("a", "k").await.unwrap());
        assert_eq!(kv.get("a", "k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn ttl_expires_and_limits_hold() {
        let kv = Kv::in_process();
        kv.set("a", "t", b"x".to_vec(), Some(Duration::from_millis(20)))
            .await
            .unwrap();
        assert!(kv.get("a", "t").await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(kv.get("a", "t").await.unwrap(), None);
        assert_eq!(kv.get("a", "").await, Err(KvError::BadKey));
        let big = vec![0u8; MAX_VALUE_BYTES + 1];
        assert_eq!(
            kv.set("a", "big", big, None).await,
            Err(KvError::ValueTooLarge(MAX_VALUE_BYTES + 1))
        );
    }

    #[tokio::test]
    async fn a_plugin_cannot_hold_more_than_its_share() {
        let kv = Kv::in_process();
        let value = vec![7u8; MAX_VALUE_BYTES];
        let fit = MAX_BYTES_PER_PLUGIN / (MAX_VALUE_BYTES + 8);
        for i in 0..fit {
            kv.set("a", &format!("k{i:06}"), value.clone(), None)
                .await
                .unwrap();
        }
        assert_eq!(
            kv.set("a", "one-more", value.clone(), None).await,
            Err(KvError::Full)
        );
        // Overwriting an existing key does not grow the total.
        kv.set("a", "k000000", value.clone(), None).await.unwrap();
        // Other plugins are unaffected; freeing room makes it fit again.
        kv.set("b", "k", value.clone(), None).await.unwrap();
        assert!(kv.delete("a", "k000001").await.unwrap());
        kv.set("a", "one-more", value, None).await.unwrap();
    }
}
