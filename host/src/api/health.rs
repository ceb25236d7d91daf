//! `GET /health`: liveness, and readiness of each part of the host.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::{AppState, json_response};

/// Why a dependency is not ready: its error, or silence for a second.
async fn failure<E: std::fmt::Display>(
    ping: impl std::future::Future<Output = Result<(), E>>,
) -> Option<String> {
    match tokio::time::timeout(std::time::Duration::from_secs(1), ping).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("no answer within 1 s".to_owned()),
    }
}

pub async fn health(State(state): State<AppState>) -> Response {
    let plugins = state.registry.list();
    let active = plugins.iter().filter(|(_, s)| s.active.is_some()).count();
    let rejected = plugins.iter().filter(|(_, s)| s.rejected.is_some()).count();
    let plugins_ready = state.plugins_ready.load(Ordering::Acquire);
    let services = state.registry.runtime().services();
    let index_ping = async {
        match state.knowledge.inner() {
            Ok(k) => k.index.collections().await.map(|_| ()),
            Err(_) => Ok(()),
        }
    };
    let (store_error, queue_error, index_error) = tokio::join!(
        failure(state.health.store.ping()),
        failure(state.health.queue.ping()),
        failure(index_ping)
    );
    let knowledge_enabled = state.knowledge.inner().is_ok();
    let knowledge_ready =
        !knowledge_enabled || (state.knowledge.is_ready() && index_error.is_none());
    let ready = plugins_ready && knowledge_ready && store_error.is_none() && queue_error.is_none();
    let body = json!({
        "status": if ready {
            "ok"
        } else if !plugins_ready || (knowledge_enabled && !state.knowledge.is_ready()) {
            "starting"
        } else {
            "unavailable"
        },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": state.started.elapsed().as_secs_f64(),
        "checks": {
            "plugins": {
                "ready": plugins_ready,
                "active": active,
                "rejected": rejected,
                "dir": state.registry.dir().display().to_string(),
            },
            "store": {
                "ready": store_error.is_none(),
                "backend": state.health.store.backend(),
                "error": store_error,
            },
            "queue": {
                "ready": queue_error.is_none(),
                "backend": state.health.queue.backend(),
                "error": queue_error,
            },
            "kv": {"ready": true, "backend": services.kv.backend()},
            "knowledge": {
                "ready": knowledge_ready,
                "enabled": knowledge_enabled,
                "backend": state.knowledge.inner().ok().map(|k| k.index.backend()),
                "model": state.knowledge.model().map(|m| m.name.clone()),
                "error": state.knowledge.inner().err().map(|e| e.to_string()).or(index_error),
            },
        },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, &body)
}
