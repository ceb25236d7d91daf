//! The per-call sandbox: the store data a plugin instance runs against.
//!
//! Each call gets a fresh `HostState`: a WASI context that exposes only
//! what the plugin's manifest grants, a resource limiter enforcing its
//! memory limit, and a bounded capture of its stderr (a panicking Rust
//! guest prints its message there just before it traps).

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, format_err};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{
    FsPerms, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

use super::capability::Capabilities;
use super::manifest::Grants;
use super::outbound::HttpState;
use super::{ComponentCaps, Limits, Quota};

/// How much of a plugin's stderr is kept, to explain a trap.
const STDERR_CAPACITY: usize = 16 << 10;
/// Most bytes one `wasi:random` call may ask for.
const MAX_RANDOM_BYTES: u64 = 1 << 20;
/// Most WASI resources one call may hold at once.
const MAX_RESOURCES: usize = 10_000;
/// Log lines a single call may emit; more are dropped (and counted).
pub const MAX_LOG_LINES: u32 = 1_000;
/// Longest log message kept; longer ones are cut.
pub const MAX_LOG_MESSAGE: usize = 4 << 10;

/// Store data for one plugin call.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: HttpState,
    /// What `wasi:config/store` answers: `[config]` and granted secrets.
    config: wasmtime_wasi_config::WasiConfigVariables,
    pub limiter: Limiter,
    /// The calling plugin's name: namespaces its kv keys and tags its logs.
    pub plugin: Arc<str>,
    /// What the host lends, by capability.
    pub capabilities: Capabilities,
    pub stderr: MemoryOutputPipe,
    pub log_lines: u32,
    /// What the plugin may keep in the store, and in kv.
    pub store_quota: Quota,
    pub kv_quota: Quota,
    /// Most bytes of values one store listing returns.
    pub list_bytes: u64,
    /// The knowledge collections the plugin may search.
    pub knowledge: Vec<String>,
}

/// What one call is lent besides its manifest: who it is, the host's
/// capabilities, its plugin's outbound-request permits and its
/// `wasi:config` values.
pub struct Lent {
    pub plugin: Arc<str>,
    pub capabilities: Capabilities,
    pub http_in_flight: Arc<tokio::sync::Semaphore>,
    pub config: wasmtime_wasi_config::WasiConfigVariables,
}

impl HostState {
    pub fn new(
        lent: Lent,
        grants: &Grants,
        limits: &Limits,
        caps: ComponentCaps,
        list_bytes: u64,
    ) -> Result<Self, std::io::Error> {
        let Lent {
            plugin,
            capabilities,
            http_in_flight,
            config,
        } = lent;
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stderr(stderr.clone());
        // wasmtime-wasi's default is 64 MiB per call.
        wasi.max_random_size(MAX_RANDOM_BYTES);
        wasi.envs(&grants.env);
        if !grants.clocks {
            wasi.wall_clock(FrozenClock).monotonic_clock(FrozenClock);
        }
        if grants.network.is_empty() {
            wasi.allow_tcp(false).allow_udp(false);
        } else {
            // Outbound only, and only to the granted addresses: a plugin
            // may connect or send, never bind or listen.
            let allowed: Arc<[std::net::SocketAddr]> = grants.network.clone().into();
            wasi.allow_tcp(true)
                .allow_udp(true)
                .socket_addr_check(move |addr, use_| {
                    let ok = match use_ {
                        SocketAddrUse::TcpConnect
                        | SocketAddrUse::UdpSend
                        | SocketAddrUse::UdpReceive => allowed.contains(&addr),
                        // Connecting binds implicitly to the wildcard
                        // address with an ephemeral port; that is all.
                        SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => {
                            addr.ip().is_unspecified() && addr.port() == 0
                        }
                        _ => false,
                    };
                    Box::pin(async move { ok })
                });
        }
        for dir in &grants.dirs {
            let perms = if dir.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            wasi.preopened_dir(&dir.host, &dir.guest, perms)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", dir.host.display())))?;
        }
        // The resources (streams, descriptors) the WASI interfaces hand
        // out; wasmtime's default is a million.
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let http = HttpState::new(
            plugin.clone(),
            grants.allowed_outbound_hosts.clone(),
            limits.http,
            http_in_flight,
            capabilities.clone(),
        );
        Ok(HostState {
            wasi: wasi.build(),
            table,
            http,
            config,
            limiter: Limiter::new(limits.memory_bytes, caps),
            store_quota: limits.store,
            kv_quota: limits.kv,
            list_bytes,
            plugin,
            capabilities,
            stderr,
            log_lines: 0,
            knowledge: grants.knowledge(),
        })
    }

    /// The last line the plugin wrote to stderr, if any: for a Rust guest,
    /// its panic message.
    pub fn stderr_tail(&self) -> Option<String> {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        // Rust's hint about RUST_BACKTRACE is noise here: there is no
        // environment to set it in.
        let text = text
            .lines()
            .filter(|l| !l.starts_with("note: run with `RUST_BACKTRACE=1`"))
            .collect::<Vec<_>>()
            .join("\n");
        let text = text.trim();
        (!text.is_empty()).then(|| {
            // Keep the panic line and what follows it, bounded.
            let tail: String = text.chars().rev().take(1_000).collect();
            tail.chars().rev().collect()
        })
    }
}

impl HostState {
    pub(crate) fn config_variables(&self) -> &wasmtime_wasi_config::WasiConfigVariables {
        &self.config
    }

    /// The resources this call's guest holds.
    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// The resource table and the `wasi:http` state, borrowed together.
    pub(crate) fn http_parts(&mut self) -> (&mut ResourceTable, &mut HttpState) {
        (&mut self.table, &mut self.http)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Clocks for a plugin without the `clocks` grant: time stands still at
/// zero, so a plugin cannot time side channels or depend on the date.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Enforces the memory limit over all of an instance's memories, and
/// remembers that it did so, so the failure is reported as out-of-memory
/// rather than as the guest's confused reaction to it.
pub struct Limiter {
    limit: u64,
    used: u64,
    caps: ComponentCaps,
    pub exceeded: Option<u64>,
}

/// Generous bound on table growth: tables hold function references, and a
/// real plugin needs a few thousand at most.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl Limiter {
    fn new(limit: u64, caps: ComponentCaps) -> Self {
        Limiter {
            limit,
            used: 0,
            caps,
            exceeded: None,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = (desired - current) as u64;
        let total = self.used.saturating_add(grow);
        if total > self.limit {
            self.exceeded = Some(total);
            // An error (rather than `Ok(false)`) traps at once with this
            // message; a denied grow would let the guest abort confusedly.
            return Err(format_err!(
                "memory limit of {} MiB exceeded (asked for {} MiB)",
                self.limit >> 20,
                total.div_ceil(1 << 20)
            ));
        }
        self.used = total;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        // The pool's slot is smaller than the limit: treat it the same way.
        self.exceeded = Some(self.limit);
        Err(error.context("memory could not grow"))
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    // Per store, as the pool's per-component caps (which refuse a
    // component at load); wasmtime's defaults are 10,000 each.
    fn instances(&self) -> usize {
        self.caps.core_instances as usize
    }

    fn tables(&self) -> usize {
        self.caps.tables as usize
    }

    fn memories(&self) -> usize {
        self.caps.memories as usize
    }
}
