//! `wasi:config/store` (`wasi:config@0.2.0-rc.1`, through
//! `wasmtime-wasi-config`): a plugin reads its manifest's `[config]`
//! values and the secrets its manifest lists, by name. Any other name is
//! not found.
//!
//! The values are gathered when a call starts (secrets from the
//! [`Secrets`](crate::capability::Secrets) capability), so a rotated
//! secret is seen by the next call.

use wasmtime::component::Linker;
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};

use crate::sandbox::HostState;

pub(crate) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi_config::add_to_linker(linker, |state: &mut HostState| {
        WasiConfig::from(state.config_variables())
    })
}

/// The variables of one call: plain values first, then secrets.
pub(crate) fn variables(
    config: &[(String, String)],
    secrets: Vec<(String, String)>,
) -> WasiConfigVariables {
    config.iter().cloned().chain(secrets).collect()
}
