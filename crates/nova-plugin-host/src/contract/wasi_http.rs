//! `wasi:http/outgoing-handler` (0.2), linked in [`super::link`]: the
//! host functions come from wasmtime-wasi-http, over the call's
//! [`HttpState`](crate::outbound::HttpState), where every request is
//! checked against the plugin's manifest before the
//! [`OutboundHttp`](crate::capability::OutboundHttp) lender sends it.

use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use crate::sandbox::HostState;

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let (table, http) = self.http_parts();
        http.view(table)
    }
}
