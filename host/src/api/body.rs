//! Request bodies that must say they are JSON, and a cap on the bytes the
//! host holds for requests at once: their bodies, and the runs they read.
//!
//! A JSON route refuses any other `Content-Type` with 415. That closes the
//! one request a web page can make a browser send to a host it cannot
//! read — a cross-site form post (`text/plain`, `application/x-www-form-
//! urlencoded`, `multipart/form-data`) — on top of the bearer credential
//! such a page cannot attach.
//!
//! Every route that takes a body reserves its size (its `Content-Length`,
//! or the route's limit for a chunked body) in the [`MemoryBudget`] before
//! it is read, and keeps the reservation until it has answered; the run
//! routes reserve what they read the same way. When the budget is spent, a
//! request waits for room up to [`MemoryBudget::wait`], then gets `503`
//! with `Retry-After`: concurrent large requests queue instead of growing
//! the heap. A body must arrive within `http.body_timeout_ms` of its
//! headers (408 after), so a slow sender holds its share no longer.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

use super::error::{ApiError, BodyTimeout};
use super::parse_json;

/// The budget is counted in KiB, so a `u32` of permits covers any size.
const UNIT: usize = 1024;

/// What holding `n` bytes of a request's JSON costs at its peak: the text
/// as it arrived (or as the store gave it), a copy made while reading or
/// parsing it, and the answer written from it.
pub const HELD_COPIES: usize = 3;

/// The bytes the host holds for requests at once.
#[derive(Clone)]
pub struct MemoryBudget {
    permits: Arc<Semaphore>,
    total: usize,
    wait: Duration,
    /// How long a body may take to arrive while it holds its share.
    body_timeout: Duration,
}

impl MemoryBudget {
    /// `bytes` of bodies at once; a request waits at most `wait` for room.
    pub fn new(bytes: usize, wait: Duration) -> Self {
        let units = bytes.div_ceil(UNIT).max(1);
        MemoryBudget {
            permits: Arc::new(Semaphore::new(units)),
            total: units * UNIT,
            wait,
            body_timeout: Duration::from_millis(crate::config::DEFAULT_BODY_TIMEOUT_MS),
        }
    }

    /// A body that has not arrived `after` its headers is given up (408):
    /// a slow sender holds its share of the budget no longer.
    pub fn with_body_timeout(mut self, after: Duration) -> Self {
        self.body_timeout = after;
        self
    }

    pub fn total(&self) -> usize {
        self.total
    }

    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Bytes free now.
    pub fn available(&self) -> usize {
        self.permits.available_permits() * UNIT
    }

    /// Holds `bytes` (at most the whole budget) until the permit is
    /// dropped; waits for room at most [`MemoryBudget::wait`], then 503.
    pub async fn hold(&self, bytes: usize) -> Result<OwnedSemaphorePermit, ApiError> {
        let units = u32::try_from(bytes.div_ceil(UNIT).min(self.total / UNIT)).unwrap_or(u32::MAX);
        match tokio::time::timeout(self.wait, self.permits.clone().acquire_many_owned(units)).await
        {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => {
                crate::metrics::memory_budget_refused();
                Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    format!(
                        "the host holds {} MiB for other requests, its limit; retry",
                        self.total >> 20
                    ),
                ))
            }
        }
    }
}

/// An answer's bytes that keep their hold on the budget until the last of
/// them is written to the client, or the connection drops. Released when
/// the handler returns, an answer waiting on a slow reader would sit
/// outside the budget: thirty such answers of a big run are thirty copies.
pub fn held_bytes(bytes: Vec<u8>, held: OwnedSemaphorePermit) -> Bytes {
    struct Held {
        bytes: Vec<u8>,
        _held: OwnedSemaphorePermit,
    }
    impl AsRef<[u8]> for Held {
        fn as_ref(&self) -> &[u8] {
            &self.bytes
        }
    }
    Bytes::from_owner(Held { bytes, _held: held })
}

/// What a request may send: its declared length, or the route's `limit`
/// when it streams a body of unknown length. None: no body.
fn declared(headers: &HeaderMap, limit: usize) -> Option<usize> {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return Some(limit);
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())?;
    // Over the limit: refused with 413 when read, so holding the limit is
    // enough.
    (length > 0).then(|| length.min(limit))
}

/// The middleware, with the route's body limit as its state.
pub async fn reserve(
    State((budget, limit)): State<(MemoryBudget, usize)>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(bytes) = declared(request.headers(), limit) else {
        return Ok(next.run(request).await);
    };
    let permit = budget.hold(HELD_COPIES * bytes).await?;
    let after = budget.body_timeout;
    let request = request.map(|body| Body::new(Deadline::new(body, after)));
    let response = next.run(request).await;
    drop(permit);
    Ok(response)
}

/// A request body that fails with [`BodyTimeout`] once `after` has passed
/// and it has not all arrived.
struct Deadline {
    body: Body,
    sleep: Pin<Box<Sleep>>,
    after: Duration,
}

impl Deadline {
    fn new(body: Body, after: Duration) -> Self {
        Deadline {
            body,
            sleep: Box::pin(tokio::time::sleep(after)),
            after,
        }
    }
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if self.sleep.as_mut().poll(cx).is_ready() {
            let after = self.after;
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimeout(after)))));
        }
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The media type `headers` give the body, lowercased, without its
/// parameters (`application/json; charset=utf-8` → `application/json`).
pub(super) fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Whether `headers` say the body is JSON: `application/json` or
/// `application/<something>+json`, with any parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(media) = media_type(headers) else {
        return false;
    };
    media == "application/json"
        || media
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

fn unsupported(headers: &HeaderMap) -> ApiError {
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none");
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("send the body as Content-Type: application/json (got {given:.64})"),
    )
}

/// A JSON request body: 415 unless its `Content-Type` is JSON, 413 over
/// the route's limit, 400 unless it parses as `T`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(request.headers()) {
            return Err(unsupported(request.headers()));
        }
        let bytes = Bytes::from_request(request, state).await?;
        parse_object(&bytes).map(JsonBody)
    }
}

/// `bytes` as `T`, a request type: only from a JSON object (serde would
/// also read a struct from an array of its fields, which no document
/// describes).
fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        // Still JSON's own message when it is not JSON at all.
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
            .map_err(|e| ApiError::bad_request("invalid_json", format!("request body: {e}")))?;
        return Err(ApiError::bad_request(
            "invalid_request",
            "request body: send a JSON object",
        ));
    }
    parse_json(bytes)
}

/// An optional JSON body: none when the body is empty (or blank) or
/// `null`, otherwise as [`JsonBody`].
pub struct MaybeJsonBody<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for MaybeJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let json = is_json(request.headers());
        let headers = request.headers().clone();
        let bytes = Bytes::from_request(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(MaybeJsonBody(None));
        }
        if !json {
            return Err(unsupported(&headers));
        }
        if bytes.trim_ascii() == b"null" {
            return Ok(MaybeJsonBody(None));
        }
        parse_object(&bytes).map(|v| MaybeJsonBody(Some(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn json_media_types() {
        assert!(is_json(&headers(&[("content-type", "application/json")])));
        assert!(is_json(&headers(&[(
            "content-type",
            "Application/JSON; charset=utf-8"
        )])));
        assert!(is_json(&headers(&[(
            "content-type",
            "application/merge-patch+json"
        )])));
        for other in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
        ] {
            assert!(!is_json(&headers(&[("content-type", other)])), "{other}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn declared_sizes() {
        assert_eq!(declared(&HeaderMap::new(), 100), None);
        assert_eq!(declared(&headers(&[("content-length", "0")]), 100), None);
        assert_eq!(
            declared(&headers(&[("content-length", "40")]), 100),
            Some(40)
        );
        assert_eq!(
            declared(&headers(&[("content-length", "400")]), 100),
            Some(100)
        );
        assert_eq!(
            declared(&headers(&[("transfer-encoding", "chunked")]), 100),
            Some(100)
        );
    }

    #[tokio::test]
    async fn held_bytes_hold_until_the_last_copy_is_gone() {
        let budget = MemoryBudget::new(4 * UNIT, Duration::from_millis(50));
        let held = budget.hold(3 * UNIT).await.unwrap();
        let bytes = held_bytes(b"{}".to_vec(), held);
        let copy = bytes.slice(1..);
        drop(bytes);
        assert_eq!(budget.available(), UNIT);
        drop(copy);
        assert_eq!(budget.available(), 4 * UNIT);
    }

    #[tokio::test]
    async fn the_budget_is_shared_and_given_back() {
        let budget = MemoryBudget::new(4 * UNIT, Duration::from_millis(50));
        let a = budget.permits.clone().acquire_many_owned(3).await.unwrap();
        assert_eq!(budget.available(), UNIT);
        assert!(
            tokio::time::timeout(budget.wait, budget.permits.clone().acquire_many_owned(2))
                .await
                .is_err()
        );
        drop(a);
        assert_eq!(budget.available(), 4 * UNIT);
    }
}
