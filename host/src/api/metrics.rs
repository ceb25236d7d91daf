//! `GET /metrics`: the host's counters in Prometheus text format.

use axum::http::header;
use axum::response::IntoResponse;

/// Prometheus' text exposition format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Request, plugin, queue, ingest, embedding and cache figures.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "health",
    responses(
        (status = OK, description = "Prometheus text exposition format 0.0.4", body = String,
         content_type = "text/plain; version=0.0.4; charset=utf-8"),
    )
)]
pub async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        crate::metrics::render(),
    )
}
