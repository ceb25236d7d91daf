//! The wasmtime engine every plugin shares, and the epoch ticker that gives
//! plugins a wall-clock limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::functions::FunctionCache;

/// How often the epoch advances. A running plugin yields to the async
/// runtime, and has its deadline checked, once per tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Stack for a plugin's wasm frames; deeper recursion traps as a stack
/// overflow. Set here, not left to wasmtime's default, so that an upgrade
/// cannot change it.
pub const MAX_WASM_STACK: usize = 512 << 10;
/// The stack each call runs on (wasm frames and the host calls under
/// them).
pub const ASYNC_STACK: usize = 2 << 20;

/// The most one component may hold. A component that asks for more is
/// refused when it loads; below them, calls up to the pool's concurrency
/// can never run the pool out (its totals are these times the
/// concurrency), so one component cannot starve the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComponentCaps {
    /// Linear memories (a Rust component has one).
    pub memories: u32,
    /// Tables, its adapter modules' included.
    pub tables: u32,
    /// Core module instances, its adapter and shim modules' included.
    pub core_instances: u32,
}

impl Default for ComponentCaps {
    fn default() -> Self {
        ComponentCaps {
            memories: 4,
            tables: 32,
            core_instances: 64,
        }
    }
}

/// The settings every plugin engine shares, the compiler's included:
/// wasmtime checks that an artifact was compiled with the same ones.
/// With `functions`, compiled functions are kept there and reused (see
/// [`crate::functions`]).
fn config(functions: Option<Arc<FunctionCache>>) -> wasmtime::Result<Config> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK);
    if let Some(functions) = functions {
        config.enable_incremental_compilation(functions)?;
    }
    Ok(config)
}

/// The engine a `nova compile-plugin` child compiles with: the host's
/// settings, without the instance pool (which would reserve terabytes of
/// address space the child's memory limit does not allow; the pool is not
/// part of what an artifact is checked against).
pub fn build_for_compile(functions: Option<Arc<FunctionCache>>) -> wasmtime::Result<Engine> {
    Engine::new(&config(functions)?)
}

/// Builds the engine: component model, async, epoch interruption and a
/// pooling allocator sized for `concurrency` instances of at most
/// `max_memory_bytes` each, each component within `caps`.
pub fn build(
    concurrency: u32,
    max_memory_bytes: u64,
    caps: ComponentCaps,
    functions: Option<Arc<FunctionCache>>,
) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(concurrency)
        .total_core_instances(concurrency.saturating_mul(caps.core_instances))
        .total_memories(concurrency.saturating_mul(caps.memories))
        .total_tables(concurrency.saturating_mul(caps.tables))
        .total_stacks(concurrency)
        .max_core_instances_per_component(caps.core_instances)
        .max_memories_per_component(caps.memories)
        .max_tables_per_component(caps.tables)
        .max_memory_size(usize::try_from(max_memory_bytes).unwrap_or(usize::MAX))
        // Measured with `just bench plugins` (2 cores): keeping linear
        // memory resident costs more in resetting it (memset, pagemap scan)
        // than it saves in page faults for plugins that touch little memory
        // (17 us vs 41 us per call at 1 MiB); keeping tables resident pays
        // (41 us vs 50 us without).
        .linear_memory_keep_resident(0)
        .table_keep_resident(64 << 10)
        .pagemap_scan(Enabled::Auto);

    let mut config = config(functions)?;
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a plain thread, so it
/// keeps ticking even when every async worker is busy running a plugin.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: &Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.clone();
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("nova-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(EpochTicker {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::hash::{DefaultHasher, Hash, Hasher};

    use super::*;

    fn hash(engine: &Engine) -> u64 {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        h.finish()
    }

    /// The compiler child's artifacts load into the host's engine, whether
    /// either keeps compiled functions or not.
    #[test]
    fn the_compile_engine_matches_the_serving_one() {
        let dir = tempfile::tempdir().unwrap();
        let functions = FunctionCache::open(dir.path(), 1 << 20).unwrap();
        let serving = build(4, 64 << 20, ComponentCaps::default(), None).unwrap();
        let compiling = build_for_compile(Some(functions)).unwrap();
        assert_eq!(hash(&serving), hash(&compiling));
        assert_eq!(hash(&serving), hash(&build_for_compile(None).unwrap()));
        // A component (the smallest there is) compiled by one loads in the
        // other.
        let artifact = compiling
            .precompile_component(b"\0asm\x0d\0\x01\0")
            .unwrap();
        // SAFETY: made just above, by an engine of the same settings.
        #[allow(unsafe_code)]
        unsafe { wasmtime::component::Component::deserialize(&serving, artifact) }.unwrap();
    }
}
