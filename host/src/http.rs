//! The HTTP/1.1 server: hyper under the axum router, with the limits a
//! host reachable from a network needs.
//!
//! - At most `max_connections` connections are served at once; the accept
//!   loop waits for one to close before it takes the next, so the others
//!   wait in the kernel's listen backlog instead of costing file
//!   descriptors and memory.
//! - A client has `header_timeout` to send a request's headers, counted
//!   from the moment the connection is ready for one: a connection that
//!   sends nothing (slowloris), sends its headers a byte at a time, or sits
//!   idle between kept-alive requests is closed after that.
//! - On stop, the server takes no new connection, lets the requests in
//!   flight finish for up to `shutdown_timeout`, then closes what is left.
//! - hyper answers a request it cannot parse itself, with a bare status
//!   line (400, 414, 431). [`JsonErrors`] rewrites those answers into the
//!   `{"error": {"code", "message"}}` every other error has.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::config::HttpLimits;

/// Most headers a request may have; more is 431.
const MAX_HEADERS: usize = 100;
/// Largest request head (request line and headers); more is 431. Above
/// hyper's 64 KiB limit on the URI, so that a long URI is 414, not 431.
const MAX_HEAD_BYTES: usize = 96 << 10;

/// Serves `router` on `listener` until `stop` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(MAX_HEADERS)
        // Vectored writes (the default on a socket): hyper queues a body's
        // bytes instead of copying them into its buffer, so an answer
        // waiting on a slow reader is the answer's own bytes, still held
        // in the memory budget, not an untracked copy.
        .max_buf_size(MAX_HEAD_BYTES);
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before
                    // it was accepted: wait a little rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = tcp.set_nodelay(true);
        let service = router.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request.map(axum::body::Body::new)
            },
        );
        let connection = builder.serve_connection(
            TokioIo::new(JsonErrors::new(tcp)),
            TowerToHyperService::new(service),
        );
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
        // Reap the finished ones so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let open = graceful.count();
    if open > 0 {
        tracing::info!(connections = open, "waiting for the requests in flight");
    }
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = limits.shutdown_timeout.as_secs_f64(),
            connections = connections.len(),
            "requests still in flight at the shutdown deadline; closing their connections"
        );
        connections.abort_all();
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// A connection's stream, rewriting hyper's own bare error answers (400,
/// 414, 431, written when a request cannot be parsed) into JSON ones.
///
/// hyper writes such an answer as the last bytes of the connection: a
/// status line, `connection: close`, `content-length: 0` and a date, at the
/// end of its head buffer (the last slice of a vectored write). Every error
/// the router answers has a JSON body, so a bodiless 4xx head at the end of
/// a write can only be hyper's. The rewrite is reported to hyper as
/// written, and sent on the next flush.
pub struct JsonErrors<S> {
    inner: S,
    /// A rewritten answer, and how much of it is sent.
    pending: Option<(Vec<u8>, usize)>,
}

impl<S> JsonErrors<S> {
    pub fn new(inner: S) -> Self {
        JsonErrors {
            inner,
            pending: None,
        }
    }
}

/// The JSON answer standing for hyper's bare `status`, if `buf` ends with
/// one: (where it starts in `buf`, the answer).
fn rewrite(buf: &[u8]) -> Option<(usize, Vec<u8>)> {
    if !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let start = buf.windows(7).rposition(|w| w == b"HTTP/1.")?;
    let head = std::str::from_utf8(&buf[start..]).ok()?;
    // One head, to the end of the buffer.
    if head[..head.len() - 4].contains("\r\n\r\n") {
        return None;
    }
    let status: u16 = head.get(9..12)?.parse().ok()?;
    let bodiless = head
        .split("\r\n")
        .any(|line| line.eq_ignore_ascii_case("content-length: 0"));
    if !bodiless {
        return None;
    }
    let (code, message) = match status {
        400 => ("bad_request", "the request is not valid HTTP/1.1"),
        414 => ("uri_too_long", "the request's URI is longer than 64 KiB"),
        431 => (
            "headers_too_large",
            "the request's headers are over 96 KiB or 100 fields",
        ),
        _ => return None,
    };
    let reason = match status {
        400 => "Bad Request",
        414 => "URI Too Long",
        _ => "Request Header Fields Too Large",
    };
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    let answer = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    Some((start, answer.into_bytes()))
}

impl<S: AsyncWrite + Unpin> JsonErrors<S> {
    /// Sends what a rewrite left to send.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, sent)) = &mut self.pending {
            if *sent == bytes.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *sent += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some((start, answer)) = rewrite(buf) {
            let mut bytes = buf[..start].to_vec();
            bytes.extend_from_slice(&answer);
            self.pending = Some((bytes, 0));
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        let last = bufs.iter().rev().find(|b| !b.is_empty());
        if last.is_some_and(|b| rewrite(b).is_some()) {
            let whole: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            if let Some((start, answer)) = rewrite(&whole) {
                let mut bytes = whole[..start].to_vec();
                bytes.extend_from_slice(&answer);
                self.pending = Some((bytes, 0));
                return Poll::Ready(Ok(whole.len()));
            }
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_error_heads_become_json() {
        let canned = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n\
                       content-length: 0\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n";
        let (start, answer) = rewrite(canned).expect("rewritten");
        assert_eq!(start, 0);
        let text = String::from_utf8(answer).unwrap();
        assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
        let body = text.split("\r\n\r\n").nth(1).unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "headers_too_large");

        // After the bytes of an earlier answer, in the same write.
        let mut two = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".to_vec();
        two.extend_from_slice(
            &canned.replace(b"431 Request Header Fields Too Large", b"400 Bad Request"),
        );
        let (start, answer) = rewrite(&two).expect("rewritten");
        assert_eq!(start, 40);
        assert!(String::from_utf8(answer).unwrap().contains("bad_request"));

        // The router's own answers have bodies: left alone.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\
                     content-length: 57\r\n\r\n";
        assert!(rewrite(ours).is_none());
        let ok = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
        assert!(rewrite(ok).is_none());
    }

    trait Replace {
        fn replace(&self, from: &[u8], to: &[u8]) -> Vec<u8>;
    }

    impl Replace for [u8] {
        fn replace(&self, from: &[u8], to: &[u8]) -> Vec<u8> {
            let at = self.windows(from.len()).position(|w| w == from).unwrap();
            [&self[..at], to, &self[at + from.len()..]].concat()
        }
    }
}
