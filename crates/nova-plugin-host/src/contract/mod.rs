//! The plugin contract, host side: one module per version of the WIT
//! package (`v0_1` for `nova:plugin@0.1.x`), and in it one file per
//! interface, each over the [`crate::capability`] it lends.
//!
//! When a `0.2` contract arrives, `v0_2` is generated beside `v0_1` from
//! `wit/v0.2` and the host serves both: a plugin is dispatched on the
//! version in the name of the interface it exports (see
//! `Runtime::prepare`).

pub mod v0_1;
pub mod wasi_config;
pub mod wasi_http;
pub mod wasi_keyvalue;

use wasmtime::component::{HasSelf, Linker};

use crate::PluginKind;
use crate::sandbox::HostState;

/// Adds every interface a plugin of `kind` may import to `linker`: the
/// standard WASI ones, then each contract version's world. A new
/// interface is one line here, beside its module.
pub(crate) fn link(linker: &mut Linker<HostState>, kind: PluginKind) -> wasmtime::Result<()> {
    // Guests built for wasip2 import wasi:cli and wasi:io through std even
    // when they use neither; the sandbox decides what those reach.
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    // wasi:http for both kinds: a plugin reaches only the hosts its
    // manifest allows (none by default), so a loader stays pure unless
    // granted; JavaScript components import it whether they use it or not.
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    // wasi:config for both kinds: the manifest's values and granted secrets.
    wasi_config::link(linker)?;
    // wasi:keyvalue for both kinds, over the plugin's own kv namespace.
    wasi_keyvalue::link(linker)?;
    match kind {
        PluginKind::Loader => v0_1::loader::Loader::add_to_linker::<_, HasSelf<_>>(linker, |s| s),
        PluginKind::Step => v0_1::step::Step::add_to_linker::<_, HasSelf<_>>(linker, |s| s),
    }
}
