//! The key-value store plugins reach through the `kv` interface.
//!
//! Keys are namespaced per plugin by the host, so a plugin cannot read or
//! overwrite another's keys. This is the in-process backend, the embedded
//! default; entries expire lazily on read and are swept when a namespace
//! grows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
#[derive(Clone, Default)]
pub struct Kv {
    inner: Arc<Mutex<HashMap<String, Namespace>>>,
}

impl Kv {
    pub fn in_process() -> Self {
        Self::default()
    }

    pub fn backend(&self) -> &'static str {
        "in-process"
    }

    pub async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        let now = Instant::now();
        let map = self.lock();
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
        let now = Instant::now();
        let mut map = self.lock();
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
        let now = Instant::now();
        let mut map = self.lock();
        Ok(map
            .get_mut(namespace)
            .and_then(|ns| ns.remove(key))
            .is_some_and(|e| e.live(now)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Namespace>> {
        // A panic while holding this lock cannot leave a map half-written
        // in a way that matters, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
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
