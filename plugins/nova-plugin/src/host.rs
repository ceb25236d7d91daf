//! The host's imports, typed. In a component they call the host; natively
//! they call the in-memory host of [`crate::testing`] (feature `testing`),
//! or, without it, log to stderr and panic on any other call with a
//! message that says what to enable.

use std::fmt;

/// A failed `kv` or `knowledge` call: the host's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError(pub String);

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostError {}

impl From<HostError> for crate::Error {
    fn from(e: HostError) -> Self {
        crate::Error::Failed(e.0)
    }
}

#[cfg(not(target_arch = "wasm32"))]
#[cfg_attr(feature = "testing", allow(dead_code))]
fn no_host(what: &str) -> ! {
    panic!(
        "nova_plugin::{what} needs a host: natively, enable the `testing` feature of nova-plugin \
         (in [dev-dependencies]) to run against nova_plugin::testing's in-memory host"
    )
}

/// Lines in the host's log, tagged with the plugin's name. The macros
/// [`crate::info!`] and friends are the short way.
pub mod log {
    /// How much a line matters. The host shows `info` and above by
    /// default.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Level {
        Debug,
        Info,
        Warn,
        Error,
    }

    /// Writes one line.
    pub fn write(level: Level, message: &str) {
        #[cfg(target_arch = "wasm32")]
        {
            use crate::__bindings::step::nova::plugin::log as wit;
            let level = match level {
                Level::Debug => wit::Level::Debug,
                Level::Info => wit::Level::Info,
                Level::Warn => wit::Level::Warn,
                Level::Error => wit::Level::Error,
            };
            wit::log(level, message);
        }
        #[cfg(all(not(target_arch = "wasm32"), feature = "testing"))]
        crate::testing::log(level, message);
        #[cfg(all(not(target_arch = "wasm32"), not(feature = "testing")))]
        eprintln!("[{level:?}] {message}");
    }
}

/// A small key-value store private to this plugin (steps only): counters,
/// caches, tokens. Values are bytes; [`get_json`](kv::get_json) and
/// [`set_json`](kv::set_json) store JSON. The host bounds key and value
/// sizes and the plugin's total (`kv_quota`).
pub mod kv {
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use super::HostError;

    /// The value under `key`, none when there is none (or it expired).
    pub fn get(key: &str) -> Result<Option<Vec<u8>>, HostError> {
        #[cfg(target_arch = "wasm32")]
        return crate::__bindings::step::nova::plugin::kv::get(key).map_err(HostError);
        #[cfg(all(not(target_arch = "wasm32"), feature = "testing"))]
        return crate::testing::kv_get(key);
        #[cfg(all(not(target_arch = "wasm32"), not(feature = "testing")))]
        super::no_host(&format!("kv::get({key:?})"))
    }

    /// Sets `key`; with `ttl_seconds` it expires after that long.
    pub fn set(key: &str, value: &[u8], ttl_seconds: Option<u32>) -> Result<(), HostError> {
        #[cfg(target_arch = "wasm32")]
        return crate::__bindings::step::nova::plugin::kv::set(key, value, ttl_seconds)
            .map_err(HostError);
        #[cfg(all(not(target_arch = "wasm32"), feature = "testing"))]
        return crate::testing::kv_set(key, value, ttl_seconds);
        #[cfg(all(not(target_arch = "wasm32"), not(feature = "testing")))]
        {
            let _ = (value, ttl_seconds);
            super::no_host(&format!("kv::set({key:?})"))
        }
    }

    /// Deletes `key`; says whether it existed.
    pub fn delete(key: &str) -> Result<bool, HostError> {
        #[cfg(target_arch = "wasm32")]
        return crate::__bindings::step::nova::plugin::kv::delete(key).map_err(HostError);
        #[cfg(all(not(target_arch = "wasm32"), feature = "testing"))]
        return crate::testing::kv_delete(key);
        #[cfg(all(not(target_arch = "wasm32"), not(feature = "testing")))]
        super::no_host(&format!("kv::delete({key:?})"))
    }

    /// The JSON value under `key`, read as `T`.
    pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, HostError> {
        match get(key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                HostError(format!(
                    "the kv value under {key:?} is not the JSON expected: {e}"
                ))
            }),
        }
    }

    /// Sets `key` to `value` as JSON.
    pub fn set_json<T: Serialize + ?Sized>(
        key: &str,
        value: &T,
        ttl_seconds: Option<u32>,
    ) -> Result<(), HostError> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| HostError(format!("the value for {key:?} is not JSON: {e}")))?;
        set(key, &bytes, ttl_seconds)
    }
}

/// Durable JSON documents in the host's relational store, private to this
/// plugin (steps only). Every document has a version: read, then write
/// with the version read, and a concurrent writer cannot be overwritten
/// silently ([`StoreError::Conflict`](store::StoreError::Conflict)).
pub mod store {
    use std::fmt;

    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    /// One document.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Doc {
        pub key: String,
        pub value: Value,
        /// 1 for a new document, one more for each write.
        pub version: u64,
    }

    impl Doc {
        /// The value, read as `T`.
        pub fn value_as<T: DeserializeOwned>(&self) -> Result<T, StoreError> {
            serde_json::from_value(self.value.clone()).map_err(|e| {
                StoreError::Invalid(format!(
                    "document {:?} is not the JSON expected: {e}",
                    self.key
                ))
            })
        }
    }

    /// One page of a listing.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Page {
        /// By key.
        pub docs: Vec<Doc>,
        /// The `after` of the next page; none on the last.
        pub next: Option<String>,
    }

    /// Why a store call failed.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum StoreError {
        /// The document's version is not the one expected; carries the
        /// current version (none: it does not exist).
        Conflict(Option<u64>),
        /// A bad key, prefix or limit, or a write past the plugin's quota.
        Invalid(String),
        /// The store could not be reached; the call may be retried.
        Unavailable(String),
    }

    impl fmt::Display for StoreError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Self::Conflict(Some(v)) => {
                    write!(f, "version conflict: the document is at version {v}")
                }
                Self::Conflict(None) => {
                    f.write_str("version conflict: the document does not exist")
                }
                Self::Invalid(m) => write!(f, "invalid: {m}"),
                Self::Unavailable(m) => write!(f, "store unavailable: {m}"),
            }
        }
    }

    impl std::error::Error for StoreError {}

    impl From<StoreError> for crate::Error {
        fn from(e: StoreError) -> Self {
            crate::Error::Failed(e.to_string())
        }
    }

    /// What a write expects of the document already there.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Expect {
        /// Write whatever is there.
        Any,
        /// Create only: fail with a conflict if it exists.
        Absent,
        /// Replace only this version.
        Version(u64),
    }

    impl Expect {
        #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
        pub(crate) fn wire(self) -> Option<u64> {
            match self {
                Self::Any => None,
                Self::Absent => Some(0),
                Self::Version(v) => Some(v),
            }
        }
    }

    #[cfg(target_arch = "wasm32")]
    mod wire {
        use super::*;
        pub use crate::__bindings::step::nova::plugin::store as wit;

        pub fn error(e: wit::StoreError) -> StoreError {
            match e {
                wit::StoreError::Conflict(v) => StoreError::Conflict(v),
                wit::StoreError::Invalid(m) => StoreError::Invalid(m),
                wit::StoreError::Unavailable(m) => StoreError::Unavailable(m),
            }
        }

        pub fn doc(d: wit::Doc) -> Result<Doc, StoreError> {
            let value = serde_json::from_str(&d.value).map_err(|e| {
                StoreError::Invalid(format!("document {:?} is not JSON: {e}", d.key))
            })?;
            Ok(Doc {
                key: d.key,
                value,
                version: d.version,
            })
        }
    }

    /// The document under `key`.
    pub fn get(key: &str) -> Result<Option<Doc>, StoreError> {
        #[cfg(target_arch = "wasm32")]
        return wire::wit::get(key)
            .map_err(wire::error)?
            .map(wire::doc)
            .transpose();
        #[cfg(all(not(target_arch = "wasm32"), feature = "testing"))]
        return crate::testing::store_get(key);
        #[cfg(all(not(target_arch = "wasm32"), not(feature = "testing")))]
        super::no_host(&format!("store::get({key:?})"))
    }

    /// Writes `value` (as JSON) under `key` if `expect` holds; returns the
    /// new version.
    pub fn put<T: Serialize + ?Sized>(
        key: &str,
        value: &T,
        expect: Expect,
    ) -> Result<u64, StoreError> {
        let text = serde_json::to_string(value)
            .map_err(|e| StoreError::Invalid(format!("the value for {key:?} is not JSON: {e}")))?;
        #[cfg(target_arch = "wasm32")]
        return wire::wit::put(key, &text, expect.wire()).map_err(wire::error);
        #[cfg(all(not(target_arch = "wasm32"), feature = "testing"))]
        return crate::testing::store_put(key, text, expect);
        #[cfg(all(not(target_arch = "wasm32"), not(feature = "testing")))]
        {
            let _ = (text, expect);
            super::no_host(&format!("store::put({key:?})"))
        }
    }

    /// Deletes the document under `key`; says whether it existed.
    pub fn delete(key: &str) -> Result<bool, StoreError> {
        #[cfg(target_arch = "wasm32")]
        return wire::wit::delete(key).map_err(wire::error);
        #[cfg(all(not(target_arch = "wasm32"), feature = "testing"))]
        return crate::testing::store_delete(key);
        #[cfg(all(not(target_arch = "wasm32"), not(feature = "testing")))]
        super::no_host(&format!("store::delete({key:?})"))
    }

    /// Documents whose key starts with `prefix` and comes after `after`,
    /// by key: at most `limit` (1 to 1000) and about `max_bytes` of values
    /// (never more than the host's limit; the first is always listed).
    pub fn list(
        prefix: &str,
        after: Option<&str>,
        limit: u32,
        max_bytes: u32,
    ) -> Result<Page, StoreError> {
        #[cfg(target_arch = "wasm32")]
        return wire::wit::list_page(prefix, after, limit, max_bytes)
            .map_err(wire::error)
            .and_then(|page| {
                Ok(Page {
                    docs: page
                        .docs
                        .into_iter()
                        .map(wire::doc)
                        .collect::<Result<_, _>>()?,
                    next: page.next,
                })
            });
        #[cfg(all(not(target_arch = "wasm32"), feature = "testing"))]
        return crate::testing::store_list(prefix, after, limit, max_bytes);
        #[cfg(all(not(target_arch = "wasm32"), not(feature = "testing")))]
        {
            let _ = (after, limit, max_bytes);
            super::no_host(&format!("store::list({prefix:?})"))
        }
    }
}

/// Semantic search over the host's knowledge base (steps only).
pub mod knowledge {
    use super::HostError;

    /// One result.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Hit {
        pub source: String,
        pub text: String,
        /// Higher is closer (cosine similarity on the host).
        pub score: f32,
        pub metadata: Vec<(String, String)>,
    }

    /// The `top_k` chunks closest to `query`. `filter` pairs: `collection`,
    /// `source` (exact), `source_prefix`, or any metadata key (exact).
    pub fn search(query: &str, top_k: u32, filter: &[(&str, &str)]) -> Result<Vec<Hit>, HostError> {
        let filter: Vec<(String, String)> = filter
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        #[cfg(target_arch = "wasm32")]
        return crate::__bindings::step::nova::plugin::knowledge::search(query, top_k, &filter)
            .map(|hits| {
                hits.into_iter()
                    .map(|h| Hit {
                        source: h.source,
                        text: h.text,
                        score: h.score,
                        metadata: h.metadata,
                    })
                    .collect()
            })
            .map_err(HostError);
        #[cfg(all(not(target_arch = "wasm32"), feature = "testing"))]
        return crate::testing::search(query, top_k, &filter);
        #[cfg(all(not(target_arch = "wasm32"), not(feature = "testing")))]
        {
            let _ = (top_k, filter);
            super::no_host(&format!("knowledge::search({query:?})"))
        }
    }
}
