//! An in-memory host for native tests (feature `testing`): `cargo test`
//! runs a plugin's code, host calls included, without nova.
//!
//! Each test thread has its own host, empty at the start: `kv` and `store`
//! keep what the plugin writes, `knowledge` searches the documents a test
//! adds with [`add_document`], and [`logs`] returns the lines logged. The
//! checks the real host makes on keys, values and listings are made here
//! too, with the same limits, so a test sees the errors production would.
//!
//! ```
//! use nova_plugin::{Error, NoConfig, Step, json, testing};
//!
//! struct Count;
//! impl Step for Count {
//!     type Input = nova_plugin::Value;
//!     type Config = NoConfig;
//!     type Output = u64;
//!     const DESCRIPTION: &'static str = "Counts its calls";
//!     fn run(_: Self::Input, _: NoConfig) -> Result<u64, Error> {
//!         let n = nova_plugin::kv::get_json::<u64>("calls")?.unwrap_or(0) + 1;
//!         nova_plugin::kv::set_json("calls", &n, None)?;
//!         nova_plugin::info!("call {n}");
//!         Ok(n)
//!     }
//! }
//!
//! assert_eq!(testing::run::<Count>(json!(null), json!({})), Ok(json!(1)));
//! assert_eq!(testing::run::<Count>(json!(null), json!({})), Ok(json!(2)));
//! assert_eq!(testing::logs().last().unwrap().message, "call 2");
//! assert!(testing::run::<Count>(json!(null), json!({"x": 1})).is_err());
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::Value;

use crate::__bindings::step::nova::plugin::knowledge::Hit;
use crate::__bindings::step::nova::plugin::store::{Doc, Page, StoreError};
use crate::{Chunk, Error, Loader, RawStep, Step};

/// The host's limits, mirrored.
const MAX_KV_KEY_BYTES: usize = 512;
const MAX_KV_VALUE_BYTES: usize = 1 << 20;
const MAX_DOC_KEY_BYTES: usize = 512;
const MAX_DOC_VALUE_BYTES: usize = 1 << 20;
const MAX_LIST: u32 = 1000;
const MAX_LIST_BYTES: u64 = 4 << 20;

/// One line the plugin logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `debug`, `info`, `warn` or `error`, as the host reports it.
    pub level: &'static str,
    pub message: String,
}

#[derive(Default)]
struct Host {
    kv: BTreeMap<String, Vec<u8>>,
    docs: BTreeMap<String, (String, u64)>,
    documents: Vec<Hit>,
    logs: Vec<LogLine>,
    config: BTreeMap<String, String>,
    unavailable: Option<String>,
}

/// What answers [`crate::http::send`] in a native test.
#[cfg(feature = "http")]
pub type HttpHandler = crate::http::test_handler::Handler;

thread_local! {
    static HOST: RefCell<Host> = RefCell::new(Host::default());
}

fn with<R>(f: impl FnOnce(&mut Host) -> R) -> R {
    HOST.with(|h| f(&mut h.borrow_mut()))
}

/// Empties this thread's host: kv, store, knowledge, logs, failures and
/// the HTTP handler.
pub fn reset() {
    with(|h| *h = Host::default());
    #[cfg(feature = "http")]
    crate::http::test_handler::set(None);
}

/// Runs step `S` as the host would: `input` and `config` go through JSON
/// text, so a value the step's types refuse fails here as it would in
/// nova (`invalid-input`, naming the field).
pub fn run<S: Step>(input: Value, config: Value) -> Result<Value, Error> {
    run_json::<S>(&input.to_string(), &config.to_string())
}

/// [`run`] on JSON text, as the host passes it.
pub fn run_json<S: Step>(input: &str, config: &str) -> Result<Value, Error> {
    check_schema_text(S::CONFIG_SCHEMA);
    let out = crate::__private::run_step::<S>(input, config)?;
    serde_json::from_str(&out).map_err(|e| Error::Failed(format!("output is not JSON: {e}")))
}

/// Runs raw step `S` as the host would; returns its output text.
pub fn run_raw<S: RawStep>(input: &str, config: &str) -> Result<String, Error> {
    check_schema_text(S::CONFIG_SCHEMA);
    crate::__private::run_raw_step::<S>(input, config)
}

/// Panics when a step's `CONFIG_SCHEMA` is not JSON (the host would
/// refuse the component); whether it is a valid JSON Schema, and whether a
/// config matches it, the host checks (`nova plugin test` runs it).
fn check_schema_text(schema: &str) {
    if !schema.trim().is_empty()
        && let Err(e) = serde_json::from_str::<Value>(schema)
    {
        panic!("the step's CONFIG_SCHEMA is not JSON: {e}");
    }
}

/// Runs loader `L` on one document.
pub fn load<L: Loader>(source: &str, bytes: &[u8]) -> Result<Vec<Chunk>, Error> {
    L::load(source, bytes)
}

/// The lines logged so far on this thread.
pub fn logs() -> Vec<LogLine> {
    with(|h| h.logs.clone())
}

/// Adds a document for `knowledge::search` to find. `metadata` may name a
/// `collection` (default: `default`).
pub fn add_document(source: &str, text: &str, metadata: &[(&str, &str)]) {
    with(|h| {
        h.documents.push(Hit {
            source: source.to_string(),
            text: text.to_string(),
            score: 0.0,
            metadata: metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    });
}

/// Sets a value `nova_plugin::config::get` reads: as a manifest's
/// `[config]` entry, or a secret it lists, would on the host.
pub fn set_config(key: &str, value: &str) {
    with(|h| {
        h.config.insert(key.to_string(), value.to_string());
    });
}

/// Answers every [`crate::http::send`] on this thread with `handler`
/// (feature `http`): a test sees the request the plugin built and gives
/// the response, or the error, a server or the host would. Without one,
/// `send` fails.
///
/// ```
/// use nova_plugin::http::{Request, Response, Url, send};
/// use nova_plugin::testing;
///
/// testing::set_http(|request| {
///     assert_eq!(request.url.authority, "api.example.com");
///     Ok(Response { status: 200, headers: vec![], body: b"{}".to_vec() })
/// });
/// let url = Url::parse("https://api.example.com/v1").unwrap();
/// let response = send(&Request { method: "GET", url: &url, headers: &[], body: None, timeout_ms: None });
/// assert_eq!(response.unwrap().status, 200);
/// ```
#[cfg(feature = "http")]
pub fn set_http(
    handler: impl Fn(&crate::http::Request<'_>) -> Result<crate::http::Response, Error> + 'static,
) {
    crate::http::test_handler::set(Some(std::rc::Rc::new(handler)));
}

/// Makes every `kv`, `store` and `knowledge` call fail as an unreachable
/// backend would (`Some(message)`), or work again (`None`).
pub fn set_unavailable(message: Option<&str>) {
    with(|h| h.unavailable = message.map(str::to_string));
}

/// The document under `key` as the plugin left it, without a host call.
pub fn doc(key: &str) -> Option<(Value, u64)> {
    with(|h| {
        h.docs
            .get(key)
            .map(|(v, version)| (serde_json::from_str(v).unwrap_or(Value::Null), *version))
    })
}

/// The in-memory host behind `nova_plugin::{log, kv, store, knowledge}`
/// natively: the contract's imports, same signatures, same checks.
pub(crate) mod backend {
    pub mod log {
        pub use crate::__bindings::step::nova::plugin::log::Level;

        pub fn log(level: Level, message: &str) {
            let level = match level {
                Level::Debug => "debug",
                Level::Info => "info",
                Level::Warn => "warn",
                Level::Error => "error",
            };
            super::super::with(|h| {
                h.logs.push(super::super::LogLine {
                    level,
                    message: message.to_string(),
                })
            });
        }
    }

    pub mod kv {
        pub(crate) use super::super::{kv_delete as delete, kv_get as get, kv_set as set};
    }

    pub mod store {
        pub(crate) use super::super::{
            store_delete as delete, store_get as get, store_list as list_page, store_put as put,
        };
        pub use crate::__bindings::step::nova::plugin::store::{Doc, StoreError};
    }

    pub mod knowledge {
        pub(crate) use super::super::search;
    }

    pub mod config {
        pub use crate::__bindings::config::wasi::config::store::Error;

        pub fn get(key: &str) -> Result<Option<String>, Error> {
            super::super::with(|h| Ok(h.config.get(key).cloned()))
        }

        pub fn get_all() -> Result<Vec<(String, String)>, Error> {
            super::super::with(|h| {
                Ok(h.config
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect())
            })
        }
    }
}

fn reachable(h: &Host) -> Result<(), String> {
    match &h.unavailable {
        Some(m) => Err(m.clone()),
        None => Ok(()),
    }
}

fn kv_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KV_KEY_BYTES {
        return Err(format!(
            "key is empty or longer than {MAX_KV_KEY_BYTES} bytes"
        ));
    }
    Ok(())
}

pub(crate) fn kv_get(key: &str) -> Result<Option<Vec<u8>>, String> {
    kv_key(key)?;
    with(|h| {
        reachable(h)?;
        Ok(h.kv.get(key).cloned())
    })
}

pub(crate) fn kv_set(key: &str, value: &[u8], ttl: Option<u32>) -> Result<(), String> {
    kv_key(key)?;
    if value.len() > MAX_KV_VALUE_BYTES {
        return Err(format!(
            "value of {} bytes is over the {MAX_KV_VALUE_BYTES}-byte limit",
            value.len()
        ));
    }
    with(|h| {
        reachable(h)?;
        // A zero TTL expires at once; others outlive a test.
        if ttl == Some(0) {
            h.kv.remove(key);
        } else {
            h.kv.insert(key.to_string(), value.to_vec());
        }
        Ok(())
    })
}

pub(crate) fn kv_delete(key: &str) -> Result<bool, String> {
    kv_key(key)?;
    with(|h| {
        reachable(h)?;
        Ok(h.kv.remove(key).is_some())
    })
}

fn doc_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_DOC_KEY_BYTES {
        return Err(StoreError::Invalid(format!(
            "a document key is 1 to {MAX_DOC_KEY_BYTES} bytes"
        )));
    }
    if key.contains('\0') {
        return Err(StoreError::Invalid(
            "a document key cannot contain NUL".into(),
        ));
    }
    Ok(())
}

fn to_doc(key: &str, value: &str, version: u64) -> Doc {
    Doc {
        key: key.to_string(),
        value: value.to_string(),
        version,
    }
}

pub(crate) fn store_get(key: &str) -> Result<Option<Doc>, StoreError> {
    doc_key(key)?;
    with(|h| {
        reachable(h).map_err(StoreError::Unavailable)?;
        Ok(h.docs.get(key).map(|(v, version)| to_doc(key, v, *version)))
    })
}

pub(crate) fn store_put(key: &str, value: &str, expected: Option<u64>) -> Result<u64, StoreError> {
    doc_key(key)?;
    if value.len() > MAX_DOC_VALUE_BYTES {
        return Err(StoreError::Invalid(format!(
            "document value of {} bytes is over the {MAX_DOC_VALUE_BYTES}-byte limit",
            value.len()
        )));
    }
    if serde_json::from_str::<serde::de::IgnoredAny>(value).is_err() {
        return Err(StoreError::Invalid("the document value is not JSON".into()));
    }
    with(|h| {
        reachable(h).map_err(StoreError::Unavailable)?;
        let actual = h.docs.get(key).map(|(_, v)| *v);
        let ok = match expected {
            None => true,
            Some(0) => actual.is_none(),
            Some(v) => actual == Some(v),
        };
        if !ok {
            return Err(StoreError::Conflict(actual));
        }
        let version = actual.unwrap_or(0) + 1;
        h.docs.insert(key.to_string(), (value.to_string(), version));
        Ok(version)
    })
}

pub(crate) fn store_delete(key: &str) -> Result<bool, StoreError> {
    doc_key(key)?;
    with(|h| {
        reachable(h).map_err(StoreError::Unavailable)?;
        Ok(h.docs.remove(key).is_some())
    })
}

pub(crate) fn store_list(
    prefix: &str,
    after: Option<&str>,
    limit: u32,
    max_bytes: u32,
) -> Result<Page, StoreError> {
    if !(1..=MAX_LIST).contains(&limit) {
        return Err(StoreError::Invalid(format!(
            "limit must be 1 to {MAX_LIST}, not {limit}"
        )));
    }
    with(|h| {
        reachable(h).map_err(StoreError::Unavailable)?;
        let budget = u64::from(max_bytes).min(MAX_LIST_BYTES);
        let mut docs: Vec<Doc> = Vec::new();
        let mut used = 0u64;
        let mut next = None;
        let matching = h
            .docs
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a));
        for (key, (value, version)) in matching {
            let size = value.len() as u64;
            if docs.len() as u32 == limit || (!docs.is_empty() && used + size > budget) {
                next = docs.last().map(|d| d.key.clone());
                break;
            }
            used += size;
            docs.push(to_doc(key, value, *version));
        }
        Ok(Page { docs, next })
    })
}

/// Words of `text`, lowercased: what the fixture's search compares.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

pub(crate) fn search(
    query: &str,
    top_k: u32,
    filter: &[(String, String)],
) -> Result<Vec<Hit>, String> {
    if query.trim().is_empty() {
        return Err("the query is empty".into());
    }
    if !(1..=100).contains(&top_k) {
        return Err(format!("top_k must be 1 to 100, not {top_k}"));
    }
    let wanted = words(query);
    with(|h| {
        reachable(h)?;
        let meta = |hit: &Hit, key: &str| {
            hit.metadata
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        // As on the host: one collection per search, `default` unless
        // the filter names one.
        let collection = filter
            .iter()
            .find(|(k, _)| k == "collection")
            .map_or("default", |(_, v)| v.as_str());
        let mut hits: Vec<Hit> = h
            .documents
            .iter()
            .filter(|hit| {
                meta(hit, "collection").as_deref().unwrap_or("default") == collection
                    && filter.iter().all(|(k, v)| match k.as_str() {
                        "collection" => true,
                        "source" => hit.source == *v,
                        "source_prefix" => hit.source.starts_with(v.as_str()),
                        other => meta(hit, other).as_deref() == Some(v.as_str()),
                    })
            })
            .filter_map(|hit| {
                // The share of the query's words the text holds: a stand-in
                // for similarity that a test can reason about.
                let have = words(&hit.text);
                let found = wanted.iter().filter(|w| have.contains(w)).count();
                (found > 0).then(|| Hit {
                    score: found as f32 / wanted.len() as f32,
                    ..hit.clone()
                })
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(top_k as usize);
        Ok(hits)
    })
}
