//! Outbound HTTP: sending a request a plugin's manifest allows.
//!
//! The plugin host decides whether a request may go (the manifest's
//! allowed hosts, see [`crate::outbound`]), holds the plugin's concurrency
//! limit and caps the response body; an implementation of [`OutboundHttp`]
//! resolves the name, refuses the addresses [`crate::outbound`] forbids
//! unless the request's [`Permit`] allows them, connects (TLS for
//! `https`) within the request's timeouts, and sends.

use async_trait::async_trait;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use crate::outbound::Permit;

/// One allowed request, ready to send.
pub struct OutboundRequest {
    /// The plugin that sends it: for logs and metrics.
    pub plugin: std::sync::Arc<str>,
    /// Absolute URI (scheme and authority set), headers and body.
    pub request: http::Request<WasiBody>,
    /// Timeouts, already clamped by the plugin's limits.
    pub options: RequestOptions,
    pub permit: Permit,
}

/// Why a request did not go, for the lender's logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No entry of the plugin's `allowed_outbound_hosts` matches.
    NotAllowed,
    /// The plugin already has its limit of requests in flight.
    Busy,
}

#[async_trait]
pub trait OutboundHttp: Send + Sync {
    /// Sends `request` and returns the response once its head arrived; the
    /// body streams. Errors are `wasi:http` error codes the plugin sees.
    async fn send(&self, request: OutboundRequest) -> Result<http::Response<WasiBody>, Error>;

    /// Told of each request the plugin host refused before sending.
    fn refused(&self, plugin: &str, host: &str, refusal: Refusal) {
        let _ = (plugin, host, refusal);
    }
}
