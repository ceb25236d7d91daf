//! Request bodies: JSON bodies that must say they are JSON, and a cap on
//! the bytes of bodies being handled at once.
//!
//! A JSON route refuses any other `Content-Type` with 415. That closes the
//! one request a web page can make a browser send to a host it cannot
//! read — a cross-site form post (`text/plain`, `application/x-www-form-
//! urlencoded`, `multipart/form-data`) — on top of the bearer credential
//! such a page cannot attach.
//!
//! Every route that takes a body reserves its size (its `Content-Length`,
//! or the route's limit for a chunked body) in the [`BodyBudget`] before
//! it is read, and keeps the reservation until it has answered. When the
//! budget is spent, a request waits for room up to [`BodyBudget::wait`],
//! then gets `503` with `Retry-After`: concurrent large requests queue
//! instead of growing the heap.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

use super::error::ApiError;
use super::parse_json;

/// The budget is counted in KiB, so a `u32` of permits covers any size.
const UNIT: usize = 1024;

/// The bytes of request bodies the host holds at once.
#[derive(Clone)]
pub struct BodyBudget {
    permits: Arc<Semaphore>,
    total: usize,
    wait: Duration,
}

impl BodyBudget {
    /// `bytes` of bodies at once; a request waits at most `wait` for room.
    pub fn new(bytes: usize, wait: Duration) -> Self {
        let units = bytes.div_ceil(UNIT).max(1);
        BodyBudget {
            permits: Arc::new(Semaphore::new(units)),
            total: units * UNIT,
            wait,
        }
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
    State((budget, limit)): State<(BodyBudget, usize)>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(bytes) = declared(request.headers(), limit) else {
        return Ok(next.run(request).await);
    };
    let units = u32::try_from(bytes.div_ceil(UNIT).min(budget.total / UNIT)).unwrap_or(u32::MAX);
    let permit = match tokio::time::timeout(
        budget.wait,
        budget.permits.clone().acquire_many_owned(units),
    )
    .await
    {
        Ok(Ok(permit)) => permit,
        Ok(Err(_)) | Err(_) => {
            crate::metrics::body_budget_refused();
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                format!(
                    "the host is reading {} MiB of other request bodies, its limit; retry",
                    budget.total >> 20
                ),
            ));
        }
    };
    let response = next.run(request).await;
    drop(permit);
    Ok(response)
}

/// Whether `headers` say the body is JSON: `application/json` or
/// `application/<something>+json`, with any parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let media = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
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
        parse_json(&bytes).map(JsonBody)
    }
}

/// An optional JSON body: none when the body is empty (or blank),
/// otherwise as [`JsonBody`].
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
        parse_json(&bytes).map(|v| MaybeJsonBody(Some(v)))
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
    async fn the_budget_is_shared_and_given_back() {
        let budget = BodyBudget::new(4 * UNIT, Duration::from_millis(50));
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
