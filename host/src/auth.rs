//! Who may call the API: the admin token, and API keys with scopes.
//!
//! Every route but `GET /health` needs a bearer credential. The admin token
//! (`NOVA_ADMIN_TOKEN`) holds every scope. API keys are made by an admin
//! (`POST /admin/keys`), hold the scopes they were made with, and are kept
//! in the store as a SHA-256 hash, so every host of a deployment knows
//! them. A key is shown once, when it is made.
//!
//! Hosts remember a key they looked up for [`CACHE_TTL`], so a revoked key
//! stops working on every host within that time.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::store::{ApiKeyRow, Store, StoreError};

/// How long a host trusts what it looked up about a key (valid or not).
pub const CACHE_TTL: Duration = Duration::from_millis(500);
/// Keys remembered at once; beyond, the cache starts over.
const CACHE_CAPACITY: usize = 10_000;
/// `last_used_at` is written at most this often per key.
const USED_EVERY_MS: i64 = 60_000;
/// What every key starts with, so a leaked one is recognisable (secret
/// scanners, logs).
pub const KEY_PREFIX: &str = "nova_";
/// Characters of a key shown in listings.
const SHOWN_PREFIX: usize = KEY_PREFIX.len() + 8;
/// Longest key name.
pub const MAX_NAME: usize = 64;
/// Most collections a key may be held to.
pub const MAX_KEY_COLLECTIONS: usize = 256;

pub use nova_client::{Scope, UnknownScope};

/// A scope's bit in a [`Scopes`] set.
fn bit(scope: Scope) -> u8 {
    1 << (scope as u8)
}

/// A set of scopes.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub fn all() -> Self {
        Scope::ALL.into_iter().collect()
    }

    /// Whether these scopes allow what `scope` guards: `admin` allows all.
    pub fn allow(self, scope: Scope) -> bool {
        self.0 & (bit(scope) | bit(Scope::Admin)) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .into_iter()
            .filter(move |s| self.0 & bit(*s) != 0)
    }

    /// Space-separated names, as the store keeps them.
    pub fn to_text(self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(" ")
    }

    pub fn parse_text(text: &str) -> Result<Self, UnknownScope> {
        text.split_whitespace().map(str::parse).collect()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().fold(0, |bits, s| bits | bit(s)))
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Who is calling, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The API key's id; none for the admin token (or with authentication
    /// off).
    pub key_id: Option<uuid::Uuid>,
    /// The key's name, `admin`, or `anonymous`.
    pub name: Arc<str>,
    pub scopes: Scopes,
    /// The knowledge collections the key is held to; `None` for all.
    pub collections: Option<Arc<[String]>>,
}

impl Principal {
    /// The holder of the admin token.
    pub fn admin() -> Self {
        Principal {
            key_id: None,
            name: "admin".into(),
            scopes: Scopes::all(),
            collections: None,
        }
    }

    /// Anyone, on a host started with authentication off.
    pub fn anonymous() -> Self {
        Principal {
            key_id: None,
            name: "anonymous".into(),
            scopes: Scopes::all(),
            collections: None,
        }
    }

    /// Whether the caller may read or write `collection` at all.
    pub fn may_use(&self, collection: &str) -> bool {
        self.collections
            .as_ref()
            .is_none_or(|list| list.iter().any(|c| c == collection))
    }
}

/// A key as it is listed: never the key itself.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyInfo {
    pub id: uuid::Uuid,
    pub name: String,
    pub prefix: String,
    pub scopes: Scopes,
    pub collections: Option<Vec<String>>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A key just made: the only time the key itself is known.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub info: KeyInfo,
    pub key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Scope(#[from] UnknownScope),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot generate a key: {0}")]
    Random(String),
}

struct Cached {
    at: Instant,
    /// None: no such key.
    principal: Option<Principal>,
}

/// The API keys of the deployment, with a short-lived cache of lookups.
#[derive(Clone)]
pub struct ApiKeys {
    store: Store,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

impl ApiKeys {
    pub fn new(store: Store) -> Self {
        ApiKeys {
            store,
            cache: Arc::default(),
        }
    }

    /// Makes a key named `name` with `scopes`, held to `collections` when
    /// given.
    pub async fn issue(
        &self,
        name: &str,
        scopes: Scopes,
        collections: Option<Vec<String>>,
    ) -> Result<IssuedKey, KeyError> {
        // Counted as sent, in characters, as the OpenAPI document says.
        let long = name.chars().count() > MAX_NAME;
        let name = name.trim();
        if name.is_empty() || long || name.chars().any(char::is_control) {
            return Err(KeyError::Invalid(format!(
                "name must be 1 to {MAX_NAME} characters, not only spaces, without control characters"
            )));
        }
        if scopes.is_empty() {
            return Err(KeyError::Invalid("give the key at least one scope".into()));
        }
        if let Some(list) = &collections {
            if list.is_empty() || list.len() > MAX_KEY_COLLECTIONS {
                return Err(KeyError::Invalid(format!(
                    "collections: name 1 to {MAX_KEY_COLLECTIONS} collections, or leave it out \
                     for all"
                )));
            }
            if let Some(bad) = list.iter().find(|c| !crate::vector::valid_collection(c)) {
                return Err(KeyError::Invalid(format!(
                    "collections: invalid collection name {bad:?}: use 1 to 64 of a-z, 0-9, \
                     '-' and '_'"
                )));
            }
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
        let key = format!("{KEY_PREFIX}{}", hex::encode(secret));
        let row = ApiKeyRow {
            id: uuid::Uuid::now_v7(),
            name: name.to_owned(),
            prefix: key[..SHOWN_PREFIX].to_owned(),
            hash: hash(&key),
            scopes: scopes.to_text(),
            collections: collections.map(|list| list.join(" ")),
            created_at: crate::store::now_ms(),
            last_used_at: None,
        };
        self.store.key_insert(&row).await?;
        tracing::info!(key_id = %row.id, name = %row.name, scopes = %row.scopes, "API key issued");
        Ok(IssuedKey {
            info: info(row)?,
            key,
        })
    }

    pub async fn list(&self) -> Result<Vec<KeyInfo>, KeyError> {
        self.store.key_list().await?.into_iter().map(info).collect()
    }

    /// Revokes a key; false if there is none with this id. Other hosts
    /// stop accepting it within [`CACHE_TTL`]; this one at once.
    pub async fn revoke(&self, id: uuid::Uuid) -> Result<bool, KeyError> {
        let revoked = self.store.key_delete(id).await?;
        if revoked {
            self.cache
                .lock()
                .retain(|_, c| c.principal.as_ref().and_then(|p| p.key_id) != Some(id));
            tracing::info!(key_id = %id, "API key revoked");
        }
        Ok(revoked)
    }

    /// The principal `presented` stands for, if it is a key of this
    /// deployment.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Principal>, StoreError> {
        if !presented.starts_with(KEY_PREFIX) || presented.len() > 128 {
            return Ok(None);
        }
        let hash = hash(presented);
        if let Some(cached) = self.cache.lock().get(&hash)
            && cached.at.elapsed() < CACHE_TTL
        {
            return Ok(cached.principal.clone());
        }
        let row = self.store.key_by_hash(&hash).await?;
        let principal = row.as_ref().map(|row| Principal {
            key_id: Some(row.id),
            name: row.name.as_str().into(),
            // A scope this version does not know grants nothing.
            scopes: row
                .scopes
                .split_whitespace()
                .filter_map(|s| s.parse().ok())
                .collect(),
            collections: collections_of(row.collections.as_deref()).map(Arc::from),
        });
        if let Some(row) = row {
            let now = crate::store::now_ms();
            if row.last_used_at.is_none_or(|t| now - t >= USED_EVERY_MS)
                && let Err(e) = self.store.key_used(row.id, now).await
            {
                tracing::debug!(key_id = %row.id, error = %e, "cannot record the key's use");
            }
        }
        let mut cache = self.cache.lock();
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, c| c.at.elapsed() < CACHE_TTL);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(
            hash,
            Cached {
                at: Instant::now(),
                principal: principal.clone(),
            },
        );
        Ok(principal)
    }
}

fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A key's collections as stored: `None` (all) or names.
fn collections_of(text: Option<&str>) -> Option<Vec<String>> {
    text.map(|t| t.split_whitespace().map(str::to_owned).collect())
}

fn info(row: ApiKeyRow) -> Result<KeyInfo, KeyError> {
    Ok(KeyInfo {
        id: row.id,
        scopes: Scopes::parse_text(&row.scopes)?,
        collections: collections_of(row.collections.as_deref()),
        name: row.name,
        prefix: row.prefix,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
    })
}

/// An address block: `10.0.0.0/8`, `::1/128`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            // An IPv4 peer on an IPv6 socket.
            (IpAddr::V4(_), IpAddr::V6(ip)) => ip
                .to_ipv4_mapped()
                .is_some_and(|v4| self.contains(IpAddr::V4(v4))),
            _ => false,
        }
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(IpNet { addr, prefix })
    }
}

/// Compares without an early exit, so response timing does not reveal how
/// much of a guessed token was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_print_and_admin_allows_all() {
        let s = Scopes::parse_text("runs:read rag:query").unwrap();
        assert!(s.allow(Scope::RunsRead));
        assert!(s.allow(Scope::RagQuery));
        assert!(!s.allow(Scope::RunsWrite));
        assert!(!s.allow(Scope::Admin));
        assert_eq!(s.to_text(), "runs:read rag:query");
        let admin = Scopes::parse_text("admin").unwrap();
        for scope in Scope::ALL {
            assert!(admin.allow(scope), "{scope}");
        }
        assert!(Scopes::parse_text("runs:delete").is_err());
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
        }
    }

    #[test]
    fn blocks_contain_their_addresses() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.200.3.4".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
        let one: IpNet = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("::2".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("nope".parse::<IpNet>().is_err());
    }

    #[test]
    fn compares() {
        assert!(constant_time_eq(b"secret-token", b"secret-token"));
        assert!(!constant_time_eq(b"secret-token", b"secret-tokeN"));
        assert!(!constant_time_eq(b"secret", b"secret-token"));
    }

    #[tokio::test]
    async fn issued_keys_authenticate_until_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_default(dir.path()).await.unwrap();
        let keys = ApiKeys::new(store.clone());
        let scopes = Scopes::parse_text("runs:read").unwrap();
        let issued = keys.issue("ci", scopes, None).await.unwrap();
        assert!(issued.key.starts_with(KEY_PREFIX));
        assert_eq!(issued.info.prefix, &issued.key[..SHOWN_PREFIX]);
        let who = keys.authenticate(&issued.key).await.unwrap().unwrap();
        assert_eq!(who.key_id, Some(issued.info.id));
        assert_eq!(who.scopes, scopes);
        // Used: recorded, once.
        let listed = keys.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].last_used_at.is_some());
        // A near miss is nobody.
        let mut wrong = issued.key.clone();
        wrong.pop();
        wrong.push('x');
        assert_eq!(keys.authenticate(&wrong).await.unwrap(), None);
        assert!(keys.revoke(issued.info.id).await.unwrap());
        assert!(!keys.revoke(issued.info.id).await.unwrap());
        // This host forgets it at once; another host's cache within the TTL.
        assert_eq!(keys.authenticate(&issued.key).await.unwrap(), None);
        assert!(keys.issue("", scopes, None).await.is_err());
        assert!(keys.issue("x", Scopes::default(), None).await.is_err());
    }
}
