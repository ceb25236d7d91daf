//! The wasmtime engine every plugin shares, and the epoch ticker that gives
//! plugins a wall-clock limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances. A running plugin yields to the async
/// runtime, and has its deadline checked, once per tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Builds the engine: component model, async, epoch interruption and a
/// pooling allocator sized for `concurrency` instances of at most
/// `max_memory_bytes` each.
pub fn build(concurrency: u32, max_memory_bytes: u64) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    // A wasip2 component built from Rust instantiates its main module plus
    // a few small adapter and shim modules, each with tables.
    pool.total_component_instances(concurrency)
        .total_core_instances(concurrency.saturating_mul(8))
        .total_memories(concurrency.saturating_mul(2))
        .total_tables(concurrency.saturating_mul(8))
        .total_stacks(concurrency)
        .max_memory_size(usize::try_from(max_memory_bytes).unwrap_or(usize::MAX))
        // Measured with `just bench plugins` (2 cores): keeping linear
        // memory resident costs more in resetting it (memset, pagemap scan)
        // than it saves in page faults for plugins that touch little memory
        // (17 us vs 41 us per call at 1 MiB); keeping tables resident pays
        // (41 us vs 50 us without).
        .linear_memory_keep_resident(0)
        .table_keep_resident(64 << 10)
        .pagemap_scan(Enabled::Auto);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
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
