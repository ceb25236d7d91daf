//! The plugin host: a wasmtime engine that loads WebAssembly components,
//! runs each call in a fresh sandboxed instance, and reloads plugins as
//! their files change.
//!
//! - [`Runtime`] compiles, validates and calls components;
//! - [`Registry`] holds the loaded plugins by name, with rejections;
//! - [`watcher`] keeps the registry in step with the plugin directory;
//! - [`capability`] holds what the host lends plugins, as traits: this
//!   crate knows no backend, no HTTP framework and no configuration file;
//! - [`contract`] is the WIT contract's host side, per version and
//!   interface.

mod cache;
pub mod capability;
pub mod compiler;
pub mod contract;
mod engine;
mod error;
pub mod functions;
pub mod imports;
pub mod logs;
pub mod manifest;
mod native_code;
pub mod outbound;
mod registry;
mod runtime;
mod sandbox;
pub mod schema;
mod stats;
pub mod text;
pub mod watcher;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

pub use cache::CompileInfo;
pub use capability::{Capabilities, CapabilityError};
pub use engine::ComponentCaps;

/// The stack limits every plugin engine is built with (for benchmarks
/// that build an engine of the same settings).
pub mod engine_limits {
    pub use crate::engine::{ASYNC_STACK, MAX_WASM_STACK};
}
pub use error::{CallError, LoadError};
pub use manifest::{ALL_KNOWLEDGE, DEFAULT_KNOWLEDGE, Manifest, Protected};
pub use registry::{Registry, RegistryError, Rejection, Slot, SyncOutcome};
pub use runtime::{Chunk, Runtime, RuntimeError, sha256_hex};
pub use stats::{Stats, StatsSnapshot};

/// Longest time limit a manifest, a workflow step or the compiler may
/// set: an hour.
pub const MAX_TIMEOUT_MS: u64 = 3_600_000;

/// Told of every call: the plugin, its kind, the outcome as a bounded
/// label (`ok`, `timeout`, `busy`, …) and how long it ran (none when it
/// never got an instance). How the process's metrics learn of calls.
pub type CallObserver =
    fn(plugin: &str, kind: &'static str, outcome: &'static str, ran: Option<Duration>);

static OBSERVER: std::sync::OnceLock<CallObserver> = std::sync::OnceLock::new();

/// Sets the process's [`CallObserver`]; the first call wins.
pub fn observe_calls(observer: CallObserver) {
    let _ = OBSERVER.set(observer);
}

fn observe_call(plugin: &str, kind: &'static str, outcome: &'static str, ran: Option<Duration>) {
    if let Some(observer) = OBSERVER.get() {
        observer(plugin, kind, outcome, ran);
    }
}

/// What a plugin is, from the interface its component exports.
pub use nova_client::PluginKind;

/// What a plugin says about itself through `describe()`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    /// Loaders only: the extensions and media types they handle.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub media_types: Vec<String>,
}

/// Resource limits of one call, and the plugin's quotas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub timeout: Duration,
    pub memory_bytes: u64,
    pub max_output_bytes: u64,
    /// What the plugin may keep in the store (documents, bytes).
    pub store: Quota,
    /// What it may keep in kv (keys, bytes of keys and values).
    pub kv: Quota,
    /// Its outbound HTTP requests.
    pub http: outbound::HttpLimits,
}

/// A caller's limits for one call (a workflow step's `timeout_ms`, a code
/// step's `timeout_ms` and `memory_mb`): each can only lower the plugin's
/// own limit, which is the operator's ceiling for that plugin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallLimits {
    pub timeout: Option<Duration>,
    pub memory_bytes: Option<u64>,
}

impl CallLimits {
    /// The tighter of two callers' limits, each field on its own.
    pub fn and(self, other: CallLimits) -> CallLimits {
        fn min<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        CallLimits {
            timeout: min(self.timeout, other.timeout),
            memory_bytes: min(self.memory_bytes, other.memory_bytes),
        }
    }
}

impl Limits {
    /// These limits, lowered where `call` asks for less.
    pub fn within(mut self, call: CallLimits) -> Limits {
        if let Some(timeout) = call.timeout {
            self.timeout = self.timeout.min(timeout);
        }
        if let Some(bytes) = call.memory_bytes {
            self.memory_bytes = self.memory_bytes.min(bytes);
        }
        self
    }
}

/// How many items, of how many bytes in all, a plugin may keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Quota {
    pub items: u64,
    pub bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        RuntimeConfig::default().defaults
    }
}

impl Serialize for Limits {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Limits", 8)?;
        st.serialize_field("timeout_ms", &(self.timeout.as_millis() as u64))?;
        st.serialize_field("memory_mb", &(self.memory_bytes >> 20))?;
        st.serialize_field("max_output_bytes", &self.max_output_bytes)?;
        st.serialize_field("store_docs", &self.store.items)?;
        st.serialize_field("store_bytes", &self.store.bytes)?;
        st.serialize_field("kv_keys", &self.kv.items)?;
        st.serialize_field("kv_bytes", &self.kv.bytes)?;
        st.serialize_field("http", &self.http)?;
        st.end()
    }
}

/// How the compiler child is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileLimits {
    /// Longest one compilation may take; the child is killed after it.
    pub timeout: Duration,
    /// The child's address space; a compilation that needs more fails.
    pub memory_bytes: u64,
    /// Compilations at once (each with its own child).
    pub concurrency: usize,
}

impl Default for CompileLimits {
    fn default() -> Self {
        CompileLimits {
            timeout: Duration::from_secs(120),
            memory_bytes: 2 << 30,
            concurrency: 2,
        }
    }
}

/// How much of what a plugin hands back the host keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimits {
    /// An error message (longer ones are cut).
    pub error_bytes: usize,
    /// Each field `describe()` returns; a longer one refuses the plugin.
    pub describe_bytes: usize,
    /// Chunks one document may give: at most this, and at most 64 more
    /// than one per 16 bytes of the document.
    pub max_chunks: usize,
    /// One chunk's text. The host splits chunks to the token budget
    /// itself, so a loader may give a whole section as one chunk: real
    /// pages have sections of 100 KB (a long table).
    pub chunk_bytes: usize,
}

impl Default for OutputLimits {
    fn default() -> Self {
        OutputLimits {
            error_bytes: 8 << 10,
            describe_bytes: 4 << 10,
            max_chunks: 10_000,
            chunk_bytes: 1 << 20,
        }
    }
}

impl OutputLimits {
    /// The chunks a document of `bytes` may give.
    pub fn chunks_for(&self, bytes: usize) -> usize {
        self.max_chunks.min(64 + bytes / 16)
    }
}

/// Everything the plugin runtime is built with.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeConfig {
    /// Limits of a plugin without a manifest.
    pub defaults: Limits,
    /// Ceiling of a manifest's memory limit; the size of each pool slot.
    pub max_memory_bytes: u64,
    /// Ceiling of a manifest's output limit.
    pub max_output_bytes: u64,
    /// Ceilings of a manifest's store and kv quotas.
    pub max_store: Quota,
    pub max_kv: Quota,
    /// Ceilings of a manifest's `http_*` limits.
    pub max_http: outbound::HttpLimits,
    /// Most bytes of values one store listing returns.
    pub list_bytes: u64,
    /// Instances at once: the pool's size.
    pub concurrency: u32,
    pub caps: ComponentCaps,
    pub compile: CompileLimits,
    pub output: OutputLimits,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            defaults: Limits {
                timeout: Duration::from_secs(10),
                memory_bytes: 128 << 20,
                max_output_bytes: 16 << 20,
                store: Quota {
                    items: 10_000,
                    bytes: 64 << 20,
                },
                kv: Quota {
                    items: 10_000,
                    bytes: 64 << 20,
                },
                http: outbound::HttpLimits::default(),
            },
            max_memory_bytes: 1 << 30,
            max_output_bytes: 64 << 20,
            max_store: Quota {
                items: 1_000_000,
                bytes: 1 << 30,
            },
            max_kv: Quota {
                items: 1_000_000,
                bytes: 1 << 30,
            },
            max_http: outbound::HttpLimits::maxima(),
            list_bytes: 4 << 20,
            concurrency: 64,
            caps: ComponentCaps::default(),
            compile: CompileLimits::default(),
            output: OutputLimits::default(),
        }
    }
}

/// One loaded, validated version of a plugin. Calls hold an `Arc` to it, so
/// a call in flight finishes on the version it started with even when a
/// newer one replaces it in the registry.
pub struct Plugin {
    pub name: Arc<str>,
    pub kind: PluginKind,
    /// Contract version the component was built against, e.g. `0.1`.
    pub contract: &'static str,
    pub info: PluginInfo,
    /// The JSON Schema its `config` must match (steps that declare one).
    pub config_schema: Option<schema::ConfigSchema>,
    pub sha256: String,
    pub size_bytes: u64,
    pub path: PathBuf,
    pub loaded_at: SystemTime,
    pub manifest: Manifest,
    pub compile: CompileInfo,
    pub stats: Stats,
    pre: runtime::Pre,
}

impl Plugin {
    pub fn limits(&self) -> &Limits {
        &self.manifest.limits
    }

    /// Checks a step's `config` (JSON text) against the plugin's schema,
    /// if it declares one; the refusal names each fault's place.
    pub fn check_config(&self, config: &str) -> Result<(), String> {
        match &self.config_schema {
            Some(schema) => schema.check(config),
            None => Ok(()),
        }
    }
}

/// A plugin name that passed [`valid_name`]. Every path the host builds
/// from a plugin name is built from one of these, wherever the name came
/// from: a URL, the plugin directory, the fleet's table, a listing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PluginName(Arc<str>);

impl PluginName {
    pub fn new(name: &str) -> Result<Self, LoadError> {
        if valid_name(name) {
            Ok(PluginName(name.into()))
        } else {
            Err(LoadError::BadName(name.into()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `dir/NAME.ext`.
    pub fn file_in(&self, dir: &std::path::Path, ext: &str) -> PathBuf {
        dir.join(format!("{}.{ext}", self.0))
    }
}

impl std::fmt::Display for PluginName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Plugin names are file stems: short, lowercase, safe in paths and URLs.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names() {
        assert!(valid_name("markdown"));
        assert!(valid_name("knowledge-search"));
        assert!(valid_name("a_1"));
        assert!(!valid_name(""));
        assert!(!valid_name("-x"));
        assert!(!valid_name(".hidden"));
        assert!(!valid_name("../etc"));
        assert!(!valid_name("Upper"));
        assert!(!valid_name(&"x".repeat(65)));
    }
}
