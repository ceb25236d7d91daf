//! The host's imports, typed. Each call goes through `backend`, whose
//! functions have the signatures of the contract's imports: in a component
//! the imports themselves; natively the in-memory host of
//! [`crate::testing`] (feature `testing`), or, without it, one that logs to
//! stderr and panics on any other call with a message that says what to
//! enable.

use std::fmt;

#[cfg(target_arch = "wasm32")]
mod backend {
    pub use crate::__bindings::config::wasi::config::store as config;
    pub use crate::__bindings::step::nova::plugin::{knowledge, kv, log, store};
}

#[cfg(all(not(target_arch = "wasm32"), feature = "testing"))]
use crate::testing::backend;

#[cfg(all(not(target_arch = "wasm32"), not(feature = "testing")))]
mod backend {
    //! No host: logs go to stderr, anything else panics.
    use crate::__bindings::step::nova::plugin as wit;

    fn no_host(what: &str) -> ! {
        panic!(
            "nova_plugin::{what} needs a host: natively, enable the `testing` feature of \
             nova-plugin (in [dev-dependencies]) to run against nova_plugin::testing's \
             in-memory host"
        )
    }

    pub mod log {
        pub use super::wit::log::Level;
        pub fn log(level: Level, message: &str) {
            eprintln!("[{level:?}] {message}");
        }
    }

    pub mod kv {
        pub fn get(_: &str) -> Result<Option<Vec<u8>>, String> {
            super::no_host("kv::get")
        }
        pub fn set(_: &str, _: &[u8], _: Option<u32>) -> Result<(), String> {
            super::no_host("kv::set")
        }
        pub fn delete(_: &str) -> Result<bool, String> {
            super::no_host("kv::delete")
        }
    }

    pub mod store {
        pub use super::wit::store::{Doc, Page, StoreError};
        pub fn get(_: &str) -> Result<Option<Doc>, StoreError> {
            super::no_host("store::get")
        }
        pub fn put(_: &str, _: &str, _: Option<u64>) -> Result<u64, StoreError> {
            super::no_host("store::put")
        }
        pub fn delete(_: &str) -> Result<bool, StoreError> {
            super::no_host("store::delete")
        }
        pub fn list_page(_: &str, _: Option<&str>, _: u32, _: u32) -> Result<Page, StoreError> {
            super::no_host("store::list")
        }
    }

    pub mod knowledge {
        pub use super::wit::knowledge::Hit;
        pub fn search(_: &str, _: u32, _: &[(String, String)]) -> Result<Vec<Hit>, String> {
            super::no_host("knowledge::search")
        }
    }

    pub mod config {
        pub use crate::__bindings::config::wasi::config::store::Error;
        pub fn get(_: &str) -> Result<Option<String>, Error> {
            super::no_host("config::get")
        }
        pub fn get_all() -> Result<Vec<(String, String)>, Error> {
            super::no_host("config::get_all")
        }
    }
}

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
        use super::backend::log as wit;
        let level = match level {
            Level::Debug => wit::Level::Debug,
            Level::Info => wit::Level::Info,
            Level::Warn => wit::Level::Warn,
            Level::Error => wit::Level::Error,
        };
        wit::log(level, message);
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
        super::backend::kv::get(key).map_err(HostError)
    }

    /// Sets `key`; with `ttl_seconds` it expires after that long.
    pub fn set(key: &str, value: &[u8], ttl_seconds: Option<u32>) -> Result<(), HostError> {
        super::backend::kv::set(key, value, ttl_seconds).map_err(HostError)
    }

    /// Deletes `key`; says whether it existed.
    pub fn delete(key: &str) -> Result<bool, HostError> {
        super::backend::kv::delete(key).map_err(HostError)
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
        fn wire(self) -> Option<u64> {
            match self {
                Self::Any => None,
                Self::Absent => Some(0),
                Self::Version(v) => Some(v),
            }
        }
    }

    use super::backend::store as wit;

    fn error(e: wit::StoreError) -> StoreError {
        match e {
            wit::StoreError::Conflict(v) => StoreError::Conflict(v),
            wit::StoreError::Invalid(m) => StoreError::Invalid(m),
            wit::StoreError::Unavailable(m) => StoreError::Unavailable(m),
        }
    }

    fn doc(d: wit::Doc) -> Result<Doc, StoreError> {
        let value = serde_json::from_str(&d.value)
            .map_err(|e| StoreError::Invalid(format!("document {:?} is not JSON: {e}", d.key)))?;
        Ok(Doc {
            key: d.key,
            value,
            version: d.version,
        })
    }

    /// The document under `key`.
    pub fn get(key: &str) -> Result<Option<Doc>, StoreError> {
        wit::get(key).map_err(error)?.map(doc).transpose()
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
        wit::put(key, &text, expect.wire()).map_err(error)
    }

    /// Deletes the document under `key`; says whether it existed.
    pub fn delete(key: &str) -> Result<bool, StoreError> {
        wit::delete(key).map_err(error)
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
        let page = wit::list_page(prefix, after, limit, max_bytes).map_err(error)?;
        Ok(Page {
            docs: page.docs.into_iter().map(doc).collect::<Result<_, _>>()?,
            next: page.next,
        })
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
        let hits = super::backend::knowledge::search(query, top_k, &filter).map_err(HostError)?;
        Ok(hits
            .into_iter()
            .map(|h| Hit {
                source: h.source,
                text: h.text,
                score: h.score,
                metadata: h.metadata,
            })
            .collect())
    }
}

/// The plugin's configuration through `wasi:config/store` (steps and
/// loaders): the values of its manifest's `[config]` table, and the
/// secrets (`nova secrets set`) its manifest lists in `grants.secrets`.
/// Anything else reads as none.
pub mod config {
    use super::HostError;
    use super::backend::config as wit;

    fn error(e: wit::Error) -> HostError {
        HostError(match e {
            wit::Error::Upstream(m) => format!("config: {m}"),
            wit::Error::Io(m) => format!("config: {m}"),
        })
    }

    /// The value of `key`, none when the plugin has none.
    pub fn get(key: &str) -> Result<Option<String>, HostError> {
        wit::get(key).map_err(error)
    }

    /// Every key and value the plugin may read.
    pub fn get_all() -> Result<Vec<(String, String)>, HostError> {
        wit::get_all().map_err(error)
    }
}
