//! Request ids: every HTTP request gets one (the client's `X-Request-Id`
//! when it is sane, a fresh UUID v7 otherwise), logs under a span that
//! carries it, and answers with it. A submitted run stores it, so the
//! worker that executes the run — on this host or another — logs it too.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header read from requests and set on responses.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-chosen id accepted; a longer one is replaced.
pub const MAX_LEN: usize = 128;

tokio::task_local! {
    /// The id of the request this task is serving, for handlers that
    /// record it (a submitted run) without threading it through extractors.
    static CURRENT: String;
}

/// The middleware: layer it outermost (last) so that every other layer and
/// handler logs inside its span.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane(v))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    // Handlers that read the header see the id in force, not a rejected one.
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(HEADER, value);
    }
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let mut response = CURRENT
        .scope(id.clone(), next.run(request))
        .instrument(span)
        .await;
    // Always a valid header value: it is either sane client input (visible
    // ASCII) or a UUID.
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

/// The id of the request being served, inside [`request_id`]'s scope.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// 1 to [`MAX_LEN`] visible ASCII characters: safe in a header, a log line
/// and a database column, and not a vector for log injection.
pub fn is_sane(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;

    /// Serves a handler that answers the task's [`current`] id, behind the
    /// middleware, and calls it once with `header`: (echoed header, body).
    async fn call(header: Option<&str>) -> (String, String) {
        let app = Router::new()
            .route("/", get(|| async { current().unwrap_or_default() }))
            .layer(axum::middleware::from_fn(request_id));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let mut request = reqwest::Client::new().get(format!("http://{addr}/"));
        if let Some(h) = header {
            request = request.header("x-request-id", h);
        }
        let response = request.send().await.unwrap();
        let echoed = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = response.text().await.unwrap();
        server.abort();
        (echoed, body)
    }

    #[tokio::test]
    async fn a_sane_client_id_is_kept_and_seen_by_the_handler() {
        let (echoed, seen) = call(Some("client-42")).await;
        assert_eq!(echoed, "client-42");
        assert_eq!(seen, "client-42");
    }

    #[tokio::test]
    async fn a_missing_or_insane_id_is_replaced_by_a_uuid() {
        for header in [None, Some("has space"), Some(&*"x".repeat(MAX_LEN + 1))] {
            let (echoed, seen) = call(header).await;
            let parsed = uuid::Uuid::parse_str(&echoed).expect("a UUID");
            assert_eq!(parsed.get_version_num(), 7);
            assert_eq!(seen, echoed);
        }
    }

    #[test]
    fn sanity() {
        assert!(is_sane("abc-123_XYZ.:/"));
        assert!(is_sane(&"a".repeat(MAX_LEN)));
        assert!(!is_sane(""));
        assert!(!is_sane("tab\there"));
        assert!(!is_sane("naïve"));
        assert!(!is_sane("line\nbreak"));
    }
}
