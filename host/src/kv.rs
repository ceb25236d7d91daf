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

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum KvError {
    #[error("key is empty or longer than {MAX_KEY_BYTES} bytes")]
    BadKey,
    #[error("value of {0} bytes is over the {MAX_VALUE_BYTES}-byte limit")]
    ValueTooLarge(usize),
    #[error("this plugin already holds {MAX_KEYS_PER_PLUGIN} keys")]
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

type Namespace = HashMap<String, Entry>;

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
            .and_then(|ns| ns.get(key))
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
        if !ns.contains_key(key) && ns.len() >= MAX_KEYS_PER_PLUGIN {
            ns.retain(|_, e| e.live(now));
            if ns.len() >= MAX_KEYS_PER_PLUGIN {
                return Err(KvError::Full);
            }
        }
        ns.insert(
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
}
