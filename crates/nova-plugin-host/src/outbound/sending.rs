//! The per-call state a plugin's `wasi:http` requests go through: the
//! manifest's allowed hosts are checked here, the plugin's
//! concurrent-request permits held, the guest's timeouts clamped and the
//! response body capped; the [`OutboundHttp`] capability resolves,
//! connects and sends.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::ResourceTable;
use wasmtime_wasi_http::{
    Error, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
};

use super::{AllowedHosts, HttpLimits};
use crate::capability::{Capabilities, OutboundHttp, OutboundRequest, Refusal};

/// The `wasi:http` state of one call.
pub struct HttpState {
    ctx: WasiHttpCtx,
    hooks: Hooks,
}

impl HttpState {
    pub fn new(
        plugin: Arc<str>,
        allowed: AllowedHosts,
        limits: HttpLimits,
        in_flight: Arc<Semaphore>,
        capabilities: Capabilities,
    ) -> Self {
        HttpState {
            ctx: WasiHttpCtx::new(),
            hooks: Hooks {
                plugin,
                allowed,
                limits,
                in_flight,
                capabilities,
            },
        }
    }
}

struct Hooks {
    plugin: Arc<str>,
    allowed: AllowedHosts,
    limits: HttpLimits,
    /// Shared by every call of the plugin: its concurrent-request limit.
    in_flight: Arc<Semaphore>,
    capabilities: Capabilities,
}

impl HttpState {
    /// The view `wasi:http`'s host functions work on, over `table`.
    pub(crate) fn view<'a>(&'a mut self, table: &'a mut ResourceTable) -> WasiHttpCtxView<'a> {
        WasiHttpCtxView {
            ctx: &mut self.ctx,
            hooks: &mut self.hooks,
            table,
        }
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let plugin = self.plugin.clone();
        let limits = self.limits;
        let in_flight = self.in_flight.clone();
        let lender = self.capabilities.get::<dyn OutboundHttp>();
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("").to_owned();
        let host = uri
            .host()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(match scheme.as_str() {
            "http" => 80,
            _ => 443,
        });
        let permit = self.allowed.check(&scheme, &host, port);
        let method = request.method().clone();
        Box::new(async move {
            let Some(lender) = lender else {
                tracing::warn!(%plugin, %method, %host, "outbound HTTP is not available on this host");
                return Err(Error::ConfigurationError);
            };
            let Some(permit) = permit else {
                tracing::warn!(
                    %plugin, %method, %host, port, scheme,
                    reason = "not in the manifest's allowed_outbound_hosts",
                    "outbound request refused"
                );
                lender.refused(&plugin, &host, Refusal::NotAllowed);
                return Err(Error::HttpRequestDenied);
            };
            let options = clamp(options, &limits);
            // Waits for one of the plugin's permits, no longer than a
            // connection may take.
            let slot = tokio::time::timeout(options.connect_timeout.unwrap_or_default(), {
                in_flight.acquire_owned()
            })
            .await;
            let Ok(Ok(slot)) = slot else {
                tracing::warn!(
                    %plugin, %method, %host,
                    reason = "the plugin's concurrent-request limit (limits.http_concurrency)",
                    "outbound request refused"
                );
                lender.refused(&plugin, &host, Refusal::Busy);
                return Err(Error::ConnectionLimitReached);
            };
            let response = lender
                .send(OutboundRequest {
                    plugin,
                    request,
                    options,
                    permit,
                })
                .await?;
            let cap = limits.response_bytes;
            let declared = response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if let Some(len) = declared.filter(|&len| len > cap) {
                return Err(Error::HttpResponseBodySize(Some(len)));
            }
            let response = response.map(|body| {
                Capped {
                    body,
                    left: cap,
                    cap,
                    _slot: slot,
                }
                .boxed_unsync()
            });
            let io: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(async { Ok(()) });
            Ok((response, io))
        })
    }
}

/// The guest's own timeouts, never beyond its manifest's.
fn clamp(options: Option<RequestOptions>, limits: &HttpLimits) -> RequestOptions {
    let pick =
        |asked: Option<Duration>, limit: Duration| Some(asked.map_or(limit, |a| a.min(limit)));
    let asked = options.unwrap_or_default();
    RequestOptions {
        connect_timeout: pick(asked.connect_timeout, limits.connect_timeout),
        first_byte_timeout: pick(asked.first_byte_timeout, limits.first_byte_timeout),
        between_bytes_timeout: pick(asked.between_bytes_timeout, limits.between_bytes_timeout),
    }
}

/// A response body that fails once it passes `cap` bytes, holding one of
/// the plugin's in-flight permits until it ends or is dropped.
struct Capped {
    body: WasiBody,
    left: u64,
    cap: u64,
    _slot: OwnedSemaphorePermit,
}

impl Body for Capped {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let frame = std::task::ready!(Pin::new(&mut self.body).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
        {
            let len = data.len() as u64;
            if len > self.left {
                let cap = self.cap;
                self.left = 0;
                return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(
                    cap.saturating_add(1),
                )))));
            }
            self.left -= len;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_cannot_lift_its_timeouts() {
        let limits = HttpLimits::default();
        let asked = RequestOptions {
            connect_timeout: Some(Duration::from_secs(3_600)),
            first_byte_timeout: Some(Duration::from_millis(5)),
            between_bytes_timeout: None,
        };
        let got = clamp(Some(asked), &limits);
        assert_eq!(got.connect_timeout, Some(limits.connect_timeout));
        assert_eq!(got.first_byte_timeout, Some(Duration::from_millis(5)));
        assert_eq!(
            got.between_bytes_timeout,
            Some(limits.between_bytes_timeout)
        );
    }
}
