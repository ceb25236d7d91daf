//! The key-value store plugins reach through the `kv` interface.
//!
//! Keys are namespaced per plugin by the host, so a plugin cannot read or
//! overwrite another's keys. Two backends:
//!
//! - in-process, the embedded default: entries expire lazily on read and
//!   are swept when a namespace grows;
//! - Redis (`REDIS_URL`): key `{prefix}:kv:{plugin}:{key}`, TTL by
//!   `SET … PX`, shared by every process of a deployment. Beside the keys,
//!   a hash `{prefix}:kvusage:{plugin}` records each key's size and expiry
//!   and the totals, updated by the same Lua script that writes the key.
//!
//! Every plugin has a quota of keys and of bytes (keys and values
//! together), from its manifest under the host's maxima: a write past it
//! fails with [`KvError::Full`], and leaves other plugins untouched. A key
//! that expired counts until it is swept, which a write at the quota does
//! first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fred::prelude::{ClientLike, KeysInterface};
use fred::types::scripts::Script;

use crate::redis::Connection;

pub const MAX_KEY_BYTES: usize = 512;
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// What one plugin may keep: keys, and bytes of keys and values together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvQuota {
    pub keys: u64,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum KvError {
    #[error("key is empty or longer than {MAX_KEY_BYTES} bytes")]
    BadKey,
    #[error("value of {0} bytes is over the {MAX_VALUE_BYTES}-byte limit")]
    ValueTooLarge(usize),
    #[error("over this plugin's kv quota of {} keys and {} bytes", .0.keys, .0.bytes)]
    Full(KvQuota),
    #[error("kv store unavailable: {0}")]
    Redis(String),
    #[error("the value of {0:?} is not a decimal number, so it cannot be incremented")]
    NotANumber(String),
    #[error("incrementing {0:?} would pass 9223372036854775807")]
    Overflow(String),
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

    fn fits(&self, key: &str, value: &[u8], quota: KvQuota) -> bool {
        let replaced = self.entries.get(key).map(|e| key.len() + e.value.len());
        let keys = self.entries.len() + usize::from(replaced.is_none());
        let bytes = self.bytes - replaced.unwrap_or(0) + key.len() + value.len();
        // A write that does not grow what is held always fits.
        (replaced.is_some() || keys as u64 <= quota.keys)
            && (bytes <= self.bytes || bytes as u64 <= quota.bytes)
    }
}

/// A handle to the store; clones share it.
#[derive(Clone)]
pub struct Kv {
    backend: Arc<dyn Backend>,
}

/// Where the entries live: this process ([`InProcessKv`]) or Redis
/// ([`RedisKv`]). [`Kv`] checks keys and values before either sees them.
#[async_trait]
trait Backend: Send + Sync {
    /// "in-process" or "redis".
    fn name(&self) -> &'static str;
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    async fn set(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
        quota: KvQuota,
    ) -> Result<(), KvError>;
    async fn delete(&self, namespace: &str, key: &str) -> Result<bool, KvError>;
    async fn list(
        &self,
        namespace: &str,
        cursor: Option<u64>,
        limit: u32,
    ) -> Result<(Vec<String>, Option<u64>), KvError>;
    async fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: i64,
        quota: KvQuota,
    ) -> Result<u64, KvError>;
}

/// Entries in this process's memory, per namespace.
#[derive(Default)]
struct InProcessKv {
    map: Mutex<HashMap<String, Namespace>>,
}

struct RedisKv {
    conn: Arc<Connection>,
    prefix: String,
    set: Script,
    delete: Script,
    increment: Script,
}

/// Adds to a key's decimal value within its plugin's quota, and keeps the
/// usage hash in step. KEYS: the key, the usage hash. ARGV: the plugin's
/// key, the delta, the quota's keys and bytes. Returns {1, new value as
/// text}, {-1, ""} when the value is not a decimal number, {0, ""} when a
/// new key is over the quota. The key's expiry is kept.
const INCREMENT_LUA: &str = r#"
local field = 'k:' .. ARGV[1]
local current = redis.call('GET', KEYS[1])
if current and not string.match(current, '^%d+$') then
  return {-1, ''}
end
local entry = redis.call('HGET', KEYS[2], field)
local old, expires = nil, '0'
if entry and current then
  local s, e = string.match(entry, '^(%d+) (%d+)$')
  old, expires = tonumber(s), e
end
if not old then
  if entry then
    -- The key expired or was evicted: forget its old entry.
    local s = tonumber(string.match(entry, '^(%d+) '))
    redis.call('HDEL', KEYS[2], field)
    redis.call('HINCRBY', KEYS[2], '#keys', -1)
    redis.call('HINCRBY', KEYS[2], '#bytes', -s)
  end
  local keys = tonumber(redis.call('HGET', KEYS[2], '#keys') or '0')
  local bytes = tonumber(redis.call('HGET', KEYS[2], '#bytes') or '0')
  if keys + 1 > tonumber(ARGV[3]) or bytes + string.len(ARGV[1]) + 20 > tonumber(ARGV[4]) then
    return {0, ''}
  end
end
redis.call('INCRBY', KEYS[1], ARGV[2])
local value = redis.call('GET', KEYS[1])
local size = string.len(ARGV[1]) + string.len(value)
redis.call('HSET', KEYS[2], field, size .. ' ' .. expires)
if not old then
  redis.call('HINCRBY', KEYS[2], '#keys', 1)
end
redis.call('HINCRBY', KEYS[2], '#bytes', size - (old or 0))
return {1, value}
"#;

/// Sets a key within its plugin's quota, and records it in the usage hash.
/// KEYS: the key, the usage hash. ARGV: the plugin's key, the value, the
/// TTL in ms (0: none), the quota's keys and bytes, and the prefix of the
/// plugin's keys. Returns 1, or 0 when over the quota (nothing written).
/// In the hash, `k:<key>` is "<size> <expires at ms, 0: never>"; `#keys`
/// and `#bytes` are the totals. At the quota, entries whose key expired
/// or was evicted are swept first (their keys are named from the prefix:
/// a single Redis, not a Cluster).
const SET_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local field = 'k:' .. ARGV[1]
local size = string.len(ARGV[1]) + string.len(ARGV[2])
local ttl = tonumber(ARGV[3])
local max_keys = tonumber(ARGV[4])
local max_bytes = tonumber(ARGV[5])
local function parse(entry)
  local s, e = string.match(entry, '^(%d+) (%d+)$')
  return tonumber(s), tonumber(e)
end
local function live(e)
  return e == 0 or e > now
end
-- The replaced entry, if it still stands (expired or evicted: gone).
local old = nil
local entry = redis.call('HGET', KEYS[2], field)
if entry then
  local s, e = parse(entry)
  if live(e) and redis.call('EXISTS', KEYS[1]) == 1 then
    old = s
  else
    redis.call('HDEL', KEYS[2], field)
    redis.call('HINCRBY', KEYS[2], '#keys', -1)
    redis.call('HINCRBY', KEYS[2], '#bytes', -s)
  end
end
local function over()
  local keys = tonumber(redis.call('HGET', KEYS[2], '#keys') or '0')
  local bytes = tonumber(redis.call('HGET', KEYS[2], '#bytes') or '0')
  local new_keys = keys + (old and 0 or 1)
  local new_bytes = bytes - (old or 0) + size
  return (old == nil and new_keys > max_keys) or (new_bytes > bytes and new_bytes > max_bytes)
end
if over() then
  -- Sweep the expired entries, recount, and look again.
  local keys, bytes = 0, 0
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    local f = all[i]
    if string.sub(f, 1, 2) == 'k:' then
      local s, e = parse(all[i + 1])
      if live(e) and redis.call('EXISTS', ARGV[6] .. string.sub(f, 3)) == 1 then
        keys = keys + 1
        bytes = bytes + s
      else
        redis.call('HDEL', KEYS[2], f)
      end
    end
  end
  redis.call('HSET', KEYS[2], '#keys', keys, '#bytes', bytes)
  if over() then
    return 0
  end
end
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[2])
end
redis.call('HSET', KEYS[2], field, size .. ' ' .. (ttl > 0 and (now + ttl) or 0))
if not old then
  redis.call('HINCRBY', KEYS[2], '#keys', 1)
end
redis.call('HINCRBY', KEYS[2], '#bytes', size - (old or 0))
return 1
"#;

/// Deletes a key and its usage entry. KEYS: the key, the usage hash.
/// ARGV: the plugin's key. Returns whether the key existed.
const DELETE_LUA: &str = r#"
local field = 'k:' .. ARGV[1]
local entry = redis.call('HGET', KEYS[2], field)
if entry then
  local s = tonumber(string.match(entry, '^(%d+) '))
  redis.call('HDEL', KEYS[2], field)
  redis.call('HINCRBY', KEYS[2], '#keys', -1)
  redis.call('HINCRBY', KEYS[2], '#bytes', -s)
end
return redis.call('DEL', KEYS[1])
"#;

impl Default for Kv {
    fn default() -> Self {
        Kv {
            backend: Arc::new(InProcessKv::default()),
        }
    }
}

impl Kv {
    pub fn in_process() -> Self {
        Self::default()
    }

    /// Redis at `url`, keys under `{prefix}:kv:`. Fails if Redis cannot be
    /// reached now; later outages fail single calls while the client
    /// reconnects. (A single Redis or a Sentinel group: the quota script
    /// touches two keys that a Redis Cluster may place apart.)
    pub async fn redis(url: &str, prefix: &str) -> Result<Self, KvError> {
        let conn = Connection::open(url).await.map_err(redis_error)?;
        Self::on(Arc::new(conn), prefix)
    }

    /// The same, over a connection the process already holds.
    pub fn on(conn: Arc<Connection>, prefix: &str) -> Result<Self, KvError> {
        if prefix.is_empty() {
            return Err(KvError::Redis("the key prefix must not be empty".into()));
        }
        tracing::info!(prefix, "kv store on redis");
        Ok(Kv {
            backend: Arc::new(RedisKv {
                conn,
                prefix: prefix.to_owned(),
                set: Script::from_lua(SET_LUA),
                delete: Script::from_lua(DELETE_LUA),
                increment: Script::from_lua(INCREMENT_LUA),
            }),
        })
    }

    pub fn backend(&self) -> &'static str {
        self.backend.name()
    }

    pub async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        self.backend.get(namespace, key).await
    }

    /// Sets `key` of `namespace`, within its `quota`.
    pub async fn set(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
        quota: KvQuota,
    ) -> Result<(), KvError> {
        check_key(key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(KvError::ValueTooLarge(value.len()));
        }
        self.backend.set(namespace, key, value, ttl, quota).await
    }

    pub async fn delete(&self, namespace: &str, key: &str) -> Result<bool, KvError> {
        check_key(key)?;
        self.backend.delete(namespace, key).await
    }

    /// About `limit` live keys of `namespace` from `cursor` (None: the
    /// start), and the next page's cursor (None: the last page).
    pub async fn list(
        &self,
        namespace: &str,
        cursor: Option<u64>,
        limit: u32,
    ) -> Result<(Vec<String>, Option<u64>), KvError> {
        self.backend.list(namespace, cursor, limit.max(1)).await
    }

    /// Adds `delta` to `key`'s decimal value (missing: 0), atomically.
    /// Values are kept as decimal text and stay within a signed 64-bit
    /// integer (Redis' INCRBY).
    pub async fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: u64,
        quota: KvQuota,
    ) -> Result<u64, KvError> {
        check_key(key)?;
        let delta = i64::try_from(delta).map_err(|_| KvError::Overflow(key.to_owned()))?;
        self.backend.increment(namespace, key, delta, quota).await
    }
}

impl InProcessKv {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Namespace>> {
        // A panic while holding this lock cannot leave a map half-written
        // in a way that matters, so a poisoned lock is still usable.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Backend for InProcessKv {
    fn name(&self) -> &'static str {
        "in-process"
    }

    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let now = Instant::now();
        Ok(self
            .lock()
            .get(namespace)
            .and_then(|ns| ns.entries.get(key))
            .filter(|e| e.live(now))
            .map(|e| e.value.clone()))
    }

    async fn set(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
        quota: KvQuota,
    ) -> Result<(), KvError> {
        let now = Instant::now();
        let mut map = self.lock();
        let ns = map.entry(namespace.to_owned()).or_default();
        if !ns.fits(key, &value, quota) {
            ns.sweep(now);
            if !ns.fits(key, &value, quota) {
                return Err(KvError::Full(quota));
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

    async fn delete(&self, namespace: &str, key: &str) -> Result<bool, KvError> {
        let now = Instant::now();
        Ok(self
            .lock()
            .get_mut(namespace)
            .and_then(|ns| ns.remove(key))
            .is_some_and(|e| e.live(now)))
    }

    async fn list(
        &self,
        namespace: &str,
        cursor: Option<u64>,
        limit: u32,
    ) -> Result<(Vec<String>, Option<u64>), KvError> {
        let now = Instant::now();
        let map = self.lock();
        let Some(ns) = map.get(namespace) else {
            return Ok((Vec::new(), None));
        };
        let mut keys: Vec<&String> = ns
            .entries
            .iter()
            .filter(|(_, e)| e.live(now))
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        let start = usize::try_from(cursor.unwrap_or(0)).unwrap_or(usize::MAX);
        let page: Vec<String> = keys
            .iter()
            .skip(start)
            .take(limit as usize)
            .map(|k| (*k).clone())
            .collect();
        let end = start.saturating_add(page.len());
        let next = (end < keys.len()).then_some(end as u64);
        Ok((page, next))
    }

    async fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: i64,
        quota: KvQuota,
    ) -> Result<u64, KvError> {
        let now = Instant::now();
        let mut map = self.lock();
        let ns = map.entry(namespace.to_owned()).or_default();
        let (current, expires) = match ns.entries.get(key).filter(|e| e.live(now)) {
            Some(e) => (
                std::str::from_utf8(&e.value)
                    .ok()
                    .and_then(|t| t.parse::<i64>().ok())
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| KvError::NotANumber(key.to_owned()))?,
                e.expires,
            ),
            None => (0, None),
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| KvError::Overflow(key.to_owned()))?;
        let value = next.to_string().into_bytes();
        if !ns.fits(key, &value, quota) {
            ns.sweep(now);
            if !ns.fits(key, &value, quota) {
                return Err(KvError::Full(quota));
            }
        }
        ns.remove(key);
        ns.bytes += key.len() + value.len();
        ns.entries.insert(key.to_owned(), Entry { value, expires });
        Ok(next as u64)
    }
}

impl RedisKv {
    /// Plugin names cannot contain ':', so the namespace ends unambiguously
    /// where the plugin's own key begins.
    fn key(&self, namespace: &str, key: &str) -> String {
        format!("{}:kv:{namespace}:{key}", self.prefix)
    }

    fn usage(&self, namespace: &str) -> String {
        format!("{}:kvusage:{namespace}", self.prefix)
    }
}

#[async_trait]
impl Backend for RedisKv {
    fn name(&self) -> &'static str {
        "redis"
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
        quota: KvQuota,
    ) -> Result<(), KvError> {
        let ttl_ms = match ttl {
            None => 0,
            // Redis refuses a zero expiry; a value that expires at once is
            // a value that is gone.
            Some(ttl) if ttl.is_zero() => {
                self.delete(namespace, key).await?;
                return Ok(());
            }
            Some(ttl) => i64::try_from(ttl.as_millis().max(1)).unwrap_or(i64::MAX),
        };
        let written: i64 = self
            .set
            .evalsha_with_reload(
                self.conn.client(),
                vec![self.key(namespace, key), self.usage(namespace)],
                vec![
                    fred::types::Value::from(key),
                    fred::types::Value::from(fred::bytes::Bytes::from(value)),
                    fred::types::Value::from(ttl_ms),
                    fred::types::Value::from(clamp(quota.keys)),
                    fred::types::Value::from(clamp(quota.bytes)),
                    fred::types::Value::from(self.key(namespace, "")),
                ],
            )
            .await
            .map_err(redis_error)?;
        if written == 1 {
            Ok(())
        } else {
            Err(KvError::Full(quota))
        }
    }

    async fn list(
        &self,
        namespace: &str,
        cursor: Option<u64>,
        limit: u32,
    ) -> Result<(Vec<String>, Option<u64>), KvError> {
        // The usage hash names every key (`k:<key>` → "<size> <expires>"):
        // one HSCAN page of it, less the expired entries.
        let now = crate::store::now_ms();
        let reply: fred::types::Value = self
            .conn
            .client()
            .custom(
                fred::types::CustomCommand::new_static(
                    "HSCAN",
                    fred::types::ClusterHash::FirstKey,
                    false,
                ),
                vec![
                    fred::types::Value::from(self.usage(namespace)),
                    fred::types::Value::from(cursor.unwrap_or(0).to_string()),
                    fred::types::Value::from("COUNT"),
                    fred::types::Value::from(i64::from(limit)),
                ],
            )
            .await
            .map_err(redis_error)?;
        let fred::types::Value::Array(parts) = reply else {
            return Err(KvError::Redis("unexpected HSCAN reply".into()));
        };
        let next = parts
            .first()
            .and_then(|c| c.as_string())
            .and_then(|c| c.parse::<u64>().ok())
            .unwrap_or(0);
        let fields = match parts.get(1) {
            Some(fred::types::Value::Array(fields)) => fields.clone(),
            _ => Vec::new(),
        };
        let mut keys = Vec::new();
        for pair in fields.chunks(2) {
            let (Some(field), Some(entry)) = (
                pair.first().and_then(|f| f.as_string()),
                pair.get(1).and_then(|e| e.as_string()),
            ) else {
                continue;
            };
            let Some(key) = field.strip_prefix("k:") else {
                continue;
            };
            let expires: i64 = entry
                .split_once(' ')
                .and_then(|(_, e)| e.parse().ok())
                .unwrap_or(0);
            if expires == 0 || expires > now {
                keys.push(key.to_owned());
            }
        }
        Ok((keys, (next != 0).then_some(next)))
    }

    async fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: i64,
        quota: KvQuota,
    ) -> Result<u64, KvError> {
        let answer: Vec<fred::types::Value> = self
            .increment
            .evalsha_with_reload(
                self.conn.client(),
                vec![self.key(namespace, key), self.usage(namespace)],
                vec![
                    fred::types::Value::from(key),
                    fred::types::Value::from(delta),
                    fred::types::Value::from(clamp(quota.keys)),
                    fred::types::Value::from(clamp(quota.bytes)),
                ],
            )
            .await
            .map_err(|e| {
                if e.to_string().contains("overflow") {
                    KvError::Overflow(key.to_owned())
                } else {
                    redis_error(e)
                }
            })?;
        let status = answer.first().and_then(|v| v.as_i64()).unwrap_or(0);
        let value = answer
            .get(1)
            .and_then(|v| v.as_string())
            .unwrap_or_default();
        match status {
            1 => value
                .parse::<u64>()
                .map_err(|_| KvError::NotANumber(key.to_owned())),
            -1 => Err(KvError::NotANumber(key.to_owned())),
            _ => Err(KvError::Full(quota)),
        }
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<bool, KvError> {
        let removed: i64 = self
            .delete
            .evalsha_with_reload(
                self.conn.client(),
                vec![self.key(namespace, key), self.usage(namespace)],
                vec![key.to_owned()],
            )
            .await
            .map_err(redis_error)?;
        Ok(removed > 0)
    }
}

/// Lua numbers are doubles: a quota beyond 2^53 is as good as none.
fn clamp(n: u64) -> i64 {
    n.min(1 << 53) as i64
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

    const QUOTA: KvQuota = KvQuota {
        keys: 10_000,
        bytes: 64 << 20,
    };

    #[tokio::test]
    async fn namespaces_are_isolated() {
        let kv = Kv::in_process();
        kv.set("a", "k", b"1".to_vec(), None, QUOTA).await.unwrap();
        assert_eq!(kv.get("a", "k").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(kv.get("b", "k").await.unwrap(), None);
        assert!(!kv.delete("b", "k").await.unwrap());
        assert!(kv.delete("a", "k").await.unwrap());
        assert_eq!(kv.get("a", "k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn ttl_expires_and_limits_hold() {
        let kv = Kv::in_process();
        kv.set(
            "a",
            "t",
            b"x".to_vec(),
            Some(Duration::from_millis(20)),
            QUOTA,
        )
        .await
        .unwrap();
        assert!(kv.get("a", "t").await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(kv.get("a", "t").await.unwrap(), None);
        assert_eq!(kv.get("a", "").await, Err(KvError::BadKey));
        let big = vec![0u8; MAX_VALUE_BYTES + 1];
        assert_eq!(
            kv.set("a", "big", big, None, QUOTA).await,
            Err(KvError::ValueTooLarge(MAX_VALUE_BYTES + 1))
        );
    }

    #[tokio::test]
    async fn a_plugin_cannot_hold_more_than_its_quota() {
        let kv = Kv::in_process();
        let quota = KvQuota {
            keys: 3,
            bytes: 100,
        };
        for i in 0..3 {
            kv.set("a", &format!("k{i}"), vec![1; 10], None, quota)
                .await
                .unwrap();
        }
        assert_eq!(
            kv.set("a", "k3", vec![1; 10], None, quota).await,
            Err(KvError::Full(quota))
        );
        // Overwriting an existing key does not add a key.
        kv.set("a", "k0", vec![2; 10], None, quota).await.unwrap();
        // Bytes: 3 keys of 12 bytes; growing one past 100 bytes in all.
        assert_eq!(
            kv.set("a", "k1", vec![1; 80], None, quota).await,
            Err(KvError::Full(quota))
        );
        // Other plugins are unaffected; freeing room makes it fit again.
        kv.set("b", "k3", vec![1; 10], None, quota).await.unwrap();
        assert!(kv.delete("a", "k1").await.unwrap());
        kv.set("a", "k3", vec![1; 10], None, quota).await.unwrap();
        // Expired keys make room.
        kv.set(
            "c",
            "t",
            vec![1; 90],
            Some(Duration::from_millis(10)),
            quota,
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        kv.set("c", "u", vec![1; 90], None, quota).await.unwrap();
    }

    /// Both backends: the in-process map and the local Redis (the test
    /// fails when Redis is not running: `just services`).
    async fn backends() -> Vec<Kv> {
        let url = std::env::var("NOVA_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        let prefix = format!(
            "kvtest-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let redis = Kv::redis(&url, &prefix).await.expect("the local Redis");
        vec![Kv::in_process(), redis]
    }

    #[tokio::test]
    async fn keys_list_in_pages_and_increment_atomically() {
        for kv in backends().await {
            let name = kv.backend();
            for i in 0..25 {
                kv.set("p", &format!("k{i:02}"), b"v".to_vec(), None, QUOTA)
                    .await
                    .unwrap();
            }
            kv.set("other", "hidden", b"v".to_vec(), None, QUOTA)
                .await
                .unwrap();
            kv.set(
                "p",
                "gone",
                b"v".to_vec(),
                Some(Duration::from_millis(1)),
                QUOTA,
            )
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            let mut all = Vec::new();
            let mut cursor = None;
            for _ in 0..100 {
                let (keys, next) = kv.list("p", cursor, 10).await.unwrap();
                all.extend(keys);
                match next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            all.sort();
            all.dedup();
            let want: Vec<String> = (0..25).map(|i| format!("k{i:02}")).collect();
            assert_eq!(all, want, "{name}: live keys of this namespace only");

            assert_eq!(kv.increment("p", "n", 5, QUOTA).await.unwrap(), 5, "{name}");
            assert_eq!(
                kv.increment("p", "n", 7, QUOTA).await.unwrap(),
                12,
                "{name}"
            );
            assert_eq!(
                kv.get("p", "n").await.unwrap(),
                Some(b"12".to_vec()),
                "{name}"
            );
            assert!(
                matches!(
                    kv.increment("p", "k00", 1, QUOTA).await,
                    Err(KvError::NotANumber(_))
                ),
                "{name}"
            );
            kv.set("p", "max", b"9223372036854775807".to_vec(), None, QUOTA)
                .await
                .unwrap();
            assert!(
                matches!(
                    kv.increment("p", "max", 1, QUOTA).await,
                    Err(KvError::Overflow(_))
                ),
                "{name}"
            );
            let tight = KvQuota {
                keys: 1,
                bytes: 1 << 20,
            };
            assert!(
                matches!(kv.increment("q", "a", 1, tight).await, Ok(1)),
                "{name}"
            );
            assert!(
                matches!(
                    kv.increment("q", "b", 1, tight).await,
                    Err(KvError::Full(_))
                ),
                "{name}: a new key over the quota"
            );
            assert_eq!(kv.increment("q", "a", 1, tight).await.unwrap(), 2, "{name}");
        }
    }
}
