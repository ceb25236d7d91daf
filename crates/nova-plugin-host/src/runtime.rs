//! Compiling, validating and calling components.
//!
//! Every call gets a fresh instance from an `InstancePre` (the linking work
//! is done once, at load) in a fresh store, and the store is dropped when
//! the call ends: nothing a call does can leak into the next, and a trapped
//! instance is never entered again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use super::cache::{CompileCache, elapsed_ms};
use super::capability::Capabilities;
use super::contract::{self, v0_1};
use super::engine::{self, EpochTicker};
use super::error::{CallError, LoadError};
use super::manifest::{Grants, Manifest};
use super::sandbox::{HostState, Lent};
use super::schema::{ConfigSchema, SchemaError};
use super::{
    CallLimits, Limits, OutputLimits, Plugin, PluginInfo, PluginKind, RuntimeConfig, Stats, text,
};
use nova_client::RawJson;

/// Time a call may take beyond its limit before the host abandons it. The
/// epoch deadline stops guest code on time; this only bounds a host call
/// (kv, knowledge) that hangs.
const HOST_GRACE: Duration = Duration::from_secs(2);
/// Longest a plugin's `describe()` may take at load.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most bytes the host copies out of a `describe()` answer.
const DESCRIBE_OUTPUT: u64 = 1 << 20;
/// Tries of a load's describe() that find the pool busy, about 40 s in all.
const DESCRIBE_BUSY_TRIES: u32 = 25;
/// Most extensions, and most media types, a loader may claim.
const MAX_DESCRIBE_ENTRIES: usize = 64;
/// Beyond the call's output limit, what a host call may copy out of the
/// guest (a kv value, a document, a log message): wasmtime's "hostcall
/// fuel", which stops the copy before it is made.
const HOSTCALL_MARGIN: usize = 2 << 20;
/// What wasmtime says when the hostcall fuel runs out (a test holds the
/// host to this wording across upgrades).
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";
/// Handles (streams, resources) one instance may hold at once.
const MAX_HANDLES: usize = 10_000;

/// A linked component, ready to instantiate, per contract version.
pub(crate) enum Pre {
    LoaderV0_1(v0_1::loader::LoaderPre<HostState>),
    StepV0_1(v0_1::step::StepPre<HostState>),
}

/// A chunk returned by a loader.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Chunk {
    pub text: String,
    pub metadata: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot create the plugin engine: {0}")]
    Engine(String),
    #[error("cannot use the compile cache at {path}: {error}")]
    Cache { path: String, error: std::io::Error },
}

/// Per plugin: its `http_concurrency` and the semaphore that enforces it.
type InFlight = HashMap<Arc<str>, (u32, Arc<Semaphore>)>;

pub struct Runtime {
    engine: Engine,
    loader_linker: Linker<HostState>,
    step_linker: Linker<HostState>,
    capabilities: Capabilities,
    /// One permit per pool slot: a call beyond the pool's size waits for a
    /// free instance, up to its time limit (see [`Runtime::slot`]).
    slots: Arc<Semaphore>,
    /// Compilations at once, each in its own bounded child.
    compiles: Arc<Semaphore>,
    cache: CompileCache,
    config: RuntimeConfig,
    /// Per plugin: its `http_concurrency` and the permits that enforce it.
    http_in_flight: std::sync::Mutex<InFlight>,
    /// Compiled functions shared by the compiles (the child opens the same
    /// directory).
    functions: Option<Arc<crate::functions::FunctionCache>>,
    _ticker: EpochTicker,
}

impl Runtime {
    pub fn new(
        cache_dir: &Path,
        config: RuntimeConfig,
        capabilities: Capabilities,
    ) -> Result<Self, RuntimeError> {
        // Compiled functions shared by every component compiled here: an
        // interpreter's are compiled once, not once per plugin.
        let functions_dir = cache_dir.join("functions");
        let functions = match crate::functions::FunctionCache::open(
            &functions_dir,
            crate::functions::MAX_BYTES,
        ) {
            Ok(functions) => Some(functions),
            Err(e) => {
                tracing::warn!(dir = %functions_dir.display(), error = %e, "no function cache: every component compiles whole");
                None
            }
        };
        let engine = engine::build(
            config.concurrency,
            config.max_memory_bytes,
            config.caps,
            functions.clone(),
        )
        .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let linker = |kind| {
            let mut linker = Linker::new(&engine);
            contract::link(&mut linker, kind)
                .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
            Ok::<_, RuntimeError>(linker)
        };
        let loader_linker = linker(PluginKind::Loader)?;
        let step_linker = linker(PluginKind::Step)?;
        let cache = CompileCache::new(cache_dir.to_owned(), &engine).map_err(|error| {
            RuntimeError::Cache {
                path: cache_dir.display().to_string(),
                error,
            }
        })?;
        let ticker =
            EpochTicker::start(&engine).map_err(|e| RuntimeError::Engine(e.to_string()))?;
        Ok(Runtime {
            engine,
            loader_linker,
            step_linker,
            capabilities,
            slots: Arc::new(Semaphore::new(config.concurrency as usize)),
            compiles: Arc::new(Semaphore::new(config.compile.concurrency.max(1))),
            cache,
            config,
            http_in_flight: std::sync::Mutex::default(),
            functions,
            _ticker: ticker,
        })
    }

    /// Compiles components in a child process running `exe` (the `nova`
    /// binary; see [`super::compiler`]) instead of in this one.
    pub fn compile_in_child(mut self, exe: PathBuf) -> Self {
        let functions = self.functions.as_ref().map(|f| f.dir().to_owned());
        self.cache.compile_in_child(super::compiler::Compiler::new(
            exe,
            self.config.compile,
            functions,
        ));
        self
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    pub fn defaults(&self) -> Limits {
        self.config.defaults
    }

    pub fn max_memory_bytes(&self) -> u64 {
        self.config.max_memory_bytes
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Compiles (or loads from the cache), links and validates `bytes`
    /// (whose digest is `sha256`, from [`sha256_hex`]) as
    /// plugin `name`. Nothing is registered: the caller decides whether the
    /// result replaces a serving version.
    pub async fn prepare(
        &self,
        name: &str,
        path: &Path,
        bytes: Vec<u8>,
        sha256: String,
        manifest: Manifest,
    ) -> Result<Plugin, LoadError> {
        check_header(&bytes)?;
        let unserved = crate::imports::unserved(&bytes);
        if !unserved.is_empty() {
            return Err(LoadError::Unserved {
                imports: unserved.join(", "),
                served: crate::imports::served(),
            });
        }
        // Read before the compile, so a bad schema is refused at once.
        let config_schema = ConfigSchema::find(&bytes)?;
        let size_bytes = bytes.len() as u64;
        let (engine, cache, sha) = (self.engine.clone(), self.cache.clone(), sha256.clone());
        // A compile slot, not a lock: uploads, reloads and calls of other
        // plugins go on while this one compiles.
        let _compiling = self
            .compiles
            .acquire()
            .await
            .map_err(|_| LoadError::Compile("the plugin runtime is shutting down".into()))?;
        let (component, compile) =
            tokio::task::spawn_blocking(move || cache.load_or_compile(&engine, &sha, &bytes))
                .await
                .map_err(|e| LoadError::Compile(format!("compiler task failed: {e}")))?
                .map_err(|e| LoadError::Compile(explain_pool_limit(format!("{e:#}"))))?;
        let (kind, pre) = self.link(&component)?;
        if config_schema.is_some() && kind != PluginKind::Step {
            return Err(SchemaError::NotAStep.into());
        }
        let name: Arc<str> = name.into();
        // A pool busy with calls is no fault of the plugin: its describe()
        // waits its turn, a while, rather than refusing it.
        let mut busy = 0u32;
        let info = loop {
            match self.describe(&pre, &name, &manifest).await {
                Err(e) if e.is_busy() && busy < DESCRIBE_BUSY_TRIES => {
                    busy += 1;
                    tokio::time::sleep(Duration::from_millis(50 << busy.min(5))).await;
                }
                other => break other.map_err(|e| LoadError::Describe(Box::new(e)))?,
            }
        };
        Ok(Plugin {
            name,
            kind,
            contract: "0.1",
            info,
            config_schema,
            sha256,
            size_bytes,
            path: path.to_owned(),
            loaded_at: SystemTime::now(),
            manifest,
            compile,
            stats: Stats::default(),
            pre,
        })
    }

    /// Tells the plugin's kind from its exports and links it against that
    /// world's imports.
    fn link(&self, component: &Component) -> Result<(PluginKind, Pre), LoadError> {
        let exports: Vec<String> = component
            .component_type()
            .exports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let has = |prefix: &str| exports.iter().any(|e| e.starts_with(prefix));
        let is_loader = has(v0_1::LOADER_EXPORT);
        let is_step = has(v0_1::STEP_EXPORT);
        let nonconforming = |world, e: wasmtime::Error| LoadError::NonConforming {
            world,
            message: format!("{e:#}"),
        };
        match (is_loader, is_step) {
            (true, true) => Err(LoadError::NonConforming {
                world: "loader",
                message: "it exports both document-loader and workflow-step; a plugin is one kind"
                    .into(),
            }),
            (true, false) => {
                let pre = self
                    .loader_linker
                    .instantiate_pre(component)
                    .and_then(v0_1::loader::LoaderPre::new)
                    .map_err(|e| nonconforming("loader", e))?;
                Ok((PluginKind::Loader, Pre::LoaderV0_1(pre)))
            }
            (false, true) => {
                let pre = self
                    .step_linker
                    .instantiate_pre(component)
                    .and_then(v0_1::step::StepPre::new)
                    .map_err(|e| nonconforming("step", e))?;
                Ok((PluginKind::Step, Pre::StepV0_1(pre)))
            }
            (false, false) => {
                let other = exports.iter().find(|e| {
                    e.starts_with("nova:plugin/document-loader@")
                        || e.starts_with("nova:plugin/workflow-step@")
                });
                match other {
                    Some(found) => Err(LoadError::UnsupportedVersion {
                        found: found.rsplit('@').next().unwrap_or(found).to_owned(),
                    }),
                    None => Err(LoadError::UnknownWorld {
                        exports: exports.join(", "),
                    }),
                }
            }
        }
    }

    /// The semaphore that bounds `plugin`'s outbound requests in flight over
    /// all its calls; a new one when its limit changed (calls in flight keep
    /// the old one until they end).
    fn http_in_flight(&self, plugin: &Arc<str>, limit: u32) -> Arc<Semaphore> {
        let mut map = self
            .http_in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let entry = map
            .entry(plugin.clone())
            .or_insert_with(|| (limit, Arc::new(Semaphore::new(limit as usize))));
        if entry.0 != limit {
            *entry = (limit, Arc::new(Semaphore::new(limit as usize)));
        }
        entry.1.clone()
    }

    /// A fresh store for one call, with the plugin's grants and limits.
    /// The current values of the secrets `grants` lists (none: no lookup).
    async fn secrets_of(&self, grants: &Grants) -> Result<Vec<(String, String)>, CallError> {
        if grants.secrets.is_empty() {
            return Ok(Vec::new());
        }
        let secrets = self
            .capabilities
            .require::<dyn crate::capability::Secrets>("secrets")
            .map_err(|e| CallError::Setup(e.to_string()))?;
        secrets
            .reveal(&grants.secrets)
            .await
            .map_err(|e| CallError::Setup(format!("cannot read the plugin's secrets: {e}")))
    }

    fn store(
        &self,
        plugin: &Arc<str>,
        limits: &Limits,
        grants: &Grants,
        secrets: Vec<(String, String)>,
    ) -> Result<Store<HostState>, CallError> {
        let lent = Lent {
            plugin: plugin.clone(),
            capabilities: self.capabilities.clone(),
            http_in_flight: self.http_in_flight(plugin, limits.http.concurrency),
            config: contract::wasi_config::variables(&grants.config, secrets),
        };
        let state = HostState::new(
            lent,
            grants,
            limits,
            self.config.caps,
            self.config.list_bytes,
        )
        .map_err(|e| CallError::Setup(e.to_string()))?;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // Caps that otherwise come from wasmtime's defaults, set here so an
        // upgrade cannot lift them: what one lift from the guest may copy
        // (the call's output, or a host call's arguments), and the handles
        // the instance may hold.
        let fuel = usize::try_from(limits.max_output_bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(HOSTCALL_MARGIN);
        store.set_hostcall_fuel(fuel);
        store.set_max_component_handles(MAX_HANDLES);
        // Checked at every epoch tick: yield to the async runtime so other
        // work proceeds, and interrupt once the wall-clock limit is past.
        let deadline = Instant::now() + limits.timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        Ok(store)
    }

    /// Runs `call` on a fresh store for plugin `name`: waits for a free
    /// slot, stops the call at its deadline, and turns a trap into the
    /// reason the sandbox stopped it.
    async fn sandboxed<T>(
        &self,
        name: &Arc<str>,
        limits: &Limits,
        grants: &Grants,
        call: impl AsyncFnOnce(&mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, CallError> {
        let _permit = self.slot(limits.timeout).await?;
        let secrets = self.secrets_of(grants).await?;
        let mut store = self.store(name, limits, grants, secrets)?;
        let outcome = tokio::time::timeout(limits.timeout + HOST_GRACE, call(&mut store)).await;
        settle(outcome, &store, limits, self.config.output.error_bytes)
    }

    async fn describe(
        &self,
        pre: &Pre,
        name: &Arc<str>,
        manifest: &Manifest,
    ) -> Result<PluginInfo, CallError> {
        // describe() only returns constants: a plugin that takes long over
        // it, or returns much, is broken, and must not hold up reloads for
        // its full limit nor make the host copy megabytes.
        let mut limits = manifest.limits;
        limits.timeout = limits.timeout.min(DESCRIBE_TIMEOUT);
        limits.max_output_bytes = limits.max_output_bytes.min(DESCRIBE_OUTPUT);
        let grants = &manifest.grants;
        match pre {
            Pre::LoaderV0_1(pre) => {
                let info = self
                    .sandboxed(name, &limits, grants, async |store| {
                        let instance = pre.instantiate_async(&mut *store).await?;
                        instance
                            .nova_plugin_document_loader()
                            .call_describe(store)
                            .await
                    })
                    .await?;
                self.checked_info(PluginInfo {
                    name: info.name,
                    version: info.version,
                    description: String::new(),
                    extensions: info.extensions,
                    media_types: info.media_types,
                })
            }
            Pre::StepV0_1(pre) => {
                let info = self
                    .sandboxed(name, &limits, grants, async |store| {
                        let instance = pre.instantiate_async(&mut *store).await?;
                        instance
                            .nova_plugin_workflow_step()
                            .call_describe(store)
                            .await
                    })
                    .await?;
                self.checked_info(PluginInfo {
                    name: info.name,
                    version: info.version,
                    description: info.description,
                    extensions: Vec::new(),
                    media_types: Vec::new(),
                })
            }
        }
    }

    /// What `describe()` said, within the limits: a field over them is
    /// refused (the host keeps it for the plugin's life and lists it).
    fn checked_info(&self, info: PluginInfo) -> Result<PluginInfo, CallError> {
        let max = self.config.output.describe_bytes;
        let too_long = |field: &str, len: usize| {
            CallError::InvalidOutput(format!(
                "describe() returned a {field} of {len} bytes; the limit is {max} \
                 (plugins.describe_bytes)"
            ))
        };
        for (field, value) in [
            ("name", &info.name),
            ("version", &info.version),
            ("description", &info.description),
        ] {
            if value.len() > max {
                return Err(too_long(field, value.len()));
            }
        }
        for (field, list) in [
            ("list of extensions", &info.extensions),
            ("list of media types", &info.media_types),
        ] {
            let len: usize = list.iter().map(String::len).sum();
            if len > max || list.len() > MAX_DESCRIBE_ENTRIES {
                return Err(too_long(field, len));
            }
        }
        // Kept and listed as text: no control characters.
        let clean = |text: String| text::clean(&text, max);
        Ok(PluginInfo {
            name: clean(info.name),
            version: clean(info.version),
            description: clean(info.description),
            extensions: info.extensions.into_iter().map(clean).collect(),
            media_types: info.media_types.into_iter().map(clean).collect(),
        })
    }

    /// Runs a step plugin on `input` (JSON) with `config` (JSON) and returns
    /// its output, checked to be JSON within the output limit.
    pub async fn run_step(
        &self,
        plugin: &Plugin,
        input: &str,
        config: &str,
    ) -> Result<RawJson, CallError> {
        self.run_step_within(plugin, input, config, CallLimits::default())
            .await
    }

    /// [`Runtime::run_step`] within a caller's limits (a workflow step's
    /// `timeout_ms`, a code step's `memory_mb`): they can only lower the
    /// plugin's own, which are the operator's ceiling for that plugin.
    pub async fn run_step_within(
        &self,
        plugin: &Plugin,
        input: &str,
        config: &str,
        call: CallLimits,
    ) -> Result<RawJson, CallError> {
        let Pre::StepV0_1(pre) = &plugin.pre else {
            return Err(wrong_kind(plugin, PluginKind::Step));
        };
        plugin
            .check_config(config)
            .map_err(CallError::InvalidInput)?;
        let limits = plugin.manifest.limits.within(call);
        let start = Instant::now();
        let result = self
            .sandboxed(
                &plugin.name,
                &limits,
                &plugin.manifest.grants,
                async |store| {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    instance
                        .nova_plugin_workflow_step()
                        .call_run(store, input, config)
                        .await
                },
            )
            .await
            .and_then(|answer| answer.map_err(|e| plugin_error(e, &self.config.output)))
            .and_then(|output| {
                check_size(output.len() as u64, &limits)?;
                // Checked once, here, and kept as text from now on.
                RawJson::parse(output)
                    .map_err(|e| CallError::InvalidOutput(format!("not JSON: {e}")))
            });
        record(plugin, start, &result);
        result
    }

    /// Runs a loader plugin on a document.
    pub async fn run_loader(
        &self,
        plugin: &Plugin,
        source: &str,
        bytes: &[u8],
    ) -> Result<Vec<Chunk>, CallError> {
        let Pre::LoaderV0_1(pre) = &plugin.pre else {
            return Err(wrong_kind(plugin, PluginKind::Loader));
        };
        let limits = plugin.manifest.limits;
        let start = Instant::now();
        let result = self
            .sandboxed(
                &plugin.name,
                &limits,
                &plugin.manifest.grants,
                async |store| {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    instance
                        .nova_plugin_document_loader()
                        .call_load(store, source, bytes)
                        .await
                },
            )
            .await
            .and_then(|answer| answer.map_err(|e| plugin_error(e, &self.config.output)))
            .and_then(|chunks| {
                let output = &self.config.output;
                let allowed = output.chunks_for(bytes.len());
                if chunks.len() > allowed {
                    return Err(CallError::InvalidOutput(format!(
                        "{} chunks from a document of {} bytes; the limit is {allowed} \
                         (plugins.max_chunks, and 64 more than one per 16 bytes)",
                        chunks.len(),
                        bytes.len()
                    )));
                }
                if let Some(long) = chunks.iter().find(|c| c.text.len() > output.chunk_bytes) {
                    return Err(CallError::InvalidOutput(format!(
                        "a chunk of {} bytes; the limit is {} (plugins.chunk_bytes)",
                        long.text.len(),
                        output.chunk_bytes
                    )));
                }
                let size: usize = chunks
                    .iter()
                    .map(|c| {
                        c.text.len()
                            + c.metadata
                                .iter()
                                .map(|(k, v)| k.len() + v.len())
                                .sum::<usize>()
                    })
                    .sum();
                check_size(size as u64, &limits)?;
                Ok(chunks
                    .into_iter()
                    .map(|c| Chunk {
                        text: c.text,
                        metadata: c.metadata,
                    })
                    .collect())
            });
        record(plugin, start, &result);
        result
    }

    /// Waits for a free instance slot, at most `wait`: under overload a
    /// call fails as busy rather than queueing without bound.
    async fn slot(&self, wait: Duration) -> Result<tokio::sync::SemaphorePermit<'_>, CallError> {
        match tokio::time::timeout(wait, self.slots.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(CallError::Setup(
                "the plugin runtime is shutting down".into(),
            )),
            Err(_) => Err(CallError::Busy {
                waited: wait,
                concurrency: self.config.concurrency,
            }),
        }
    }
}

/// A component over the pool's per-component caps is refused by wasmtime
/// with "exceeds the configured maximum … in the pooling allocator": say
/// which setting that is.
fn explain_pool_limit(message: String) -> String {
    let setting = if message.contains("core module instances") {
        "plugins.max_core_instances_per_component"
    } else if message.contains("linear memories") {
        "plugins.max_memories_per_component"
    } else if message.contains("tables") {
        "plugins.max_tables_per_component"
    } else {
        return message;
    };
    format!("{message} ({setting})")
}

/// Names the two common mistakes before the compiler does, in words an
/// author can act on.
fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8] = b"\0asm";
    const CORE_MODULE: &[u8] = &[1, 0, 0, 0];
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(LoadError::Compile(format!(
            "not a WebAssembly file ({} bytes, no \\0asm header)",
            bytes.len()
        )));
    }
    if &bytes[4..8] == CORE_MODULE {
        return Err(LoadError::Compile(
            "this is a core WebAssembly module, not a component: build the plugin with \
             `cargo build --target wasm32-wasip2` or `cargo component build`"
                .into(),
        ));
    }
    Ok(())
}

/// Counts a call in the plugin's stats and the process metrics; one that
/// never got an instance slot never ran, and is not a call of the plugin
/// (the metrics count it as `busy`, without a duration).
fn record<T>(plugin: &Plugin, start: Instant, result: &Result<T, CallError>) {
    let ran = !matches!(result, Err(e) if e.is_busy());
    if ran {
        plugin.stats.record(elapsed_ms(start), result.is_ok());
    }
    crate::observe_call(
        &plugin.name,
        plugin.kind.as_str(),
        outcome(result),
        ran.then(|| start.elapsed()),
    );
}

/// A call's outcome as a bounded metric label.
fn outcome<T>(result: &Result<T, CallError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(CallError::InvalidInput(_)) => "invalid_input",
        Err(CallError::Unsupported(_)) => "unsupported",
        Err(CallError::Failed(_)) => "failed",
        Err(CallError::Timeout { .. }) => "timeout",
        Err(CallError::OutOfMemory { .. }) => "out_of_memory",
        Err(CallError::StackOverflow) => "stack_overflow",
        Err(CallError::Trap { .. }) => "trap",
        Err(CallError::OutputTooLarge { .. } | CallError::OutputOverLimit { .. }) => {
            "output_too_large"
        }
        Err(CallError::InvalidOutput(_)) => "invalid_output",
        Err(CallError::Busy { .. } | CallError::PoolExhausted(_)) => "busy",
        Err(CallError::Setup(_)) => "setup",
    }
}

fn wrong_kind(plugin: &Plugin, wanted: PluginKind) -> CallError {
    CallError::Setup(format!(
        "{} is a {}, not a {}",
        plugin.name,
        plugin.kind.as_str(),
        wanted.as_str()
    ))
}

/// The content digest plugins are identified and cached by.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Turns the outcome of a guarded call into the plugin's answer or the
/// reason the sandbox stopped it.
fn settle<T>(
    outcome: Result<wasmtime::Result<T>, tokio::time::error::Elapsed>,
    store: &Store<HostState>,
    limits: &Limits,
    error_bytes: usize,
) -> Result<T, CallError> {
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(classify(error, store.data(), limits, error_bytes)),
        Err(_) => Err(CallError::Timeout {
            limit: limits.timeout,
        }),
    }
}

fn classify(
    error: wasmtime::Error,
    state: &HostState,
    limits: &Limits,
    error_bytes: usize,
) -> CallError {
    // The pool had no free slot of some kind: the host is busy, and the
    // call worth retrying (within the per-component caps, only more calls
    // than the concurrency can do this).
    if let Some(full) = error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
        return CallError::PoolExhausted(full.to_string());
    }
    // wasmtime's hostcall fuel ran out: the guest handed over more than
    // the host copies out of one call.
    if format!("{error:#}").contains(HOSTCALL_FUEL_EXHAUSTED) {
        return CallError::OutputOverLimit {
            limit: limits.max_output_bytes,
        };
    }
    if let Some(asked) = state.limiter.exceeded {
        return CallError::OutOfMemory {
            limit_mb: limits.memory_bytes >> 20,
            asked_mb: asked.div_ceil(1 << 20),
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallError::Timeout {
            limit: limits.timeout,
        },
        Some(Trap::StackOverflow) => CallError::StackOverflow,
        Some(trap) => CallError::Trap {
            message: trap.to_string(),
            detail: state.stderr_tail(),
        },
        None => CallError::Trap {
            message: text::clean(&format!("{error:#}"), error_bytes),
            detail: state.stderr_tail(),
        },
    }
}

/// The plugin's own error, its message cleaned and cut to the limit.
fn plugin_error(e: v0_1::types::PluginError, output: &OutputLimits) -> CallError {
    use v0_1::types::PluginError as E;
    let clean = |m: String| text::clean(&m, output.error_bytes);
    match e {
        E::InvalidInput(m) => CallError::InvalidInput(clean(m)),
        E::Unsupported(m) => CallError::Unsupported(clean(m)),
        E::Failed(m) => CallError::Failed(clean(m)),
    }
}

fn check_size(size: u64, limits: &Limits) -> Result<(), CallError> {
    if size > limits.max_output_bytes {
        Err(CallError::OutputTooLarge {
            size,
            limit: limits.max_output_bytes,
        })
    } else {
        Ok(())
    }
}
