//! `GET /metrics`: the host's counters in Prometheus text format.

use axum::http::header;

use super::auth::{Need, scope};
use super::error::ErrorBody;
use axum::response::IntoResponse;

/// Prometheus' text exposition format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Request, plugin, queue, ingest, embedding and cache figures.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "health",
    security(("bearer" = ["metrics:read"])),
    responses(
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `metrics:read` scope", body = ErrorBody),
        (status = OK, description = "Prometheus text exposition format 0.0.4", body = String,
         content_type = "text/plain; version=0.0.4; charset=utf-8"),
    )
)]
pub async fn metrics(_: Need<scope::MetricsRead>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        crate::metrics::render(),
    )
}

/// `/metrics` on the metrics address (`--metrics-bind`): the same figures,
/// without credentials. That address serves nothing else.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics_scrape",
    tag = "health",
    responses(
        (status = OK, description = "Prometheus text exposition format 0.0.4", body = String,
         content_type = "text/plain; version=0.0.4; charset=utf-8"),
    )
)]
pub async fn scrape() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        crate::metrics::render(),
    )
}
