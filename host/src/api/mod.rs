//! The HTTP surface: routes, shared state, authentication and errors.

mod admin;
mod auth;
pub mod error;
mod health;
mod rag;
mod workflows;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;

use crate::plugins::Registry;
use error::{ApiError, code_for};

/// Largest JSON body accepted by default.
pub const MAX_JSON_BODY: usize = 2 << 20;
/// Largest document a loader can be invoked on.
pub const MAX_DOCUMENT_BODY: usize = 32 << 20;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub admin_token: Arc<str>,
    pub started: Instant,
    /// Set once the plugin directory has been scanned at start.
    pub plugins_ready: Arc<AtomicBool>,
    pub max_plugin_bytes: usize,
    /// Absent on a host that only runs workers.
    pub workflows: Option<crate::workflow::Workflows>,
    pub health: Health,
    pub knowledge: crate::knowledge::Knowledge,
    /// Absent when the knowledge base is disabled.
    pub ingestor: Option<Arc<crate::knowledge::ingest::Ingestor>>,
    pub limiter: crate::ratelimit::RateLimiter,
}

/// The dependencies `/health` checks.
#[derive(Clone)]
pub struct Health {
    pub store: crate::store::Store,
    pub queue: crate::queue::Queue,
}

pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/admin/plugins", get(admin::list))
        .route("/admin/plugins/reload", post(admin::reload))
        .route(
            "/admin/plugins/{name}",
            get(admin::show)
                .put(admin::upload)
                .delete(admin::remove)
                .layer(DefaultBodyLimit::max(state.max_plugin_bytes)),
        )
        .route(
            "/admin/plugins/{name}/invoke",
            post(admin::invoke).layer(DefaultBodyLimit::max(MAX_DOCUMENT_BODY)),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ));

    let rag = Router::new()
        .route("/rag/query", post(rag::query))
        .route("/rag/stats", get(rag::stats))
        .route("/rag/ingests/{id}", get(rag::ingest_report))
        .merge(
            Router::new()
                .route("/rag/reload", post(rag::reload))
                .route_layer(middleware::from_fn_with_state(
                    state.clone(),
                    auth::require_admin,
                )),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            rag::rate_limit,
        ));

    Router::new()
        .route("/health", get(health::health))
        .route("/workflows", post(workflows::submit).get(workflows::list))
        .route("/workflows/{id}", get(workflows::get))
        .route("/workflows/{id}/cancel", post(workflows::cancel))
        .merge(admin)
        .merge(rag)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(middleware::from_fn(json_errors))
        // A bug in a handler answers 500 (made JSON by the layer above)
        // instead of dropping the connection.
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the host's log",
                )
                .into_response()
            },
        ))
        .with_state(state)
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(
        "not_found",
        format!("no route for {} {}", request.method(), request.uri().path()),
    )
}

/// Safety net: an error raised outside our handlers (a method the route
/// does not take, a query string that does not parse) arrives as plain
/// text; rewrap it so that every error a client sees is JSON.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let mut rewrapped = ApiError::new(status, code_for(status), message).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewrapped.headers_mut().insert(name, value.clone());
        }
    }
    rewrapped
}

/// A timestamp as the API shows it: RFC 3339 with milliseconds.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Parses a JSON request body, answering 400 with serde's reason.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let code = if e.is_data() {
            "invalid_request"
        } else {
            "invalid_json"
        };
        ApiError::bad_request(code, format!("request body: {e}"))
    })
}

/// Builds a response body from JSON; used where handlers return raw JSON.
pub fn json_response(status: axum::http::StatusCode, value: &serde_json::Value) -> Response {
    let mut response = Response::new(Body::from(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
