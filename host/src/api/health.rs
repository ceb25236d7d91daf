//! `GET /health`: liveness, and readiness of each part of the host.
//!
//! Open to anyone (load balancers, orchestrators): an anonymous caller is
//! told what is ready, a caller with a credential also why not (errors
//! name hosts and paths) and where the plugins live. The backends are
//! pinged at most once a second, whatever the rate of calls.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::AppState;

pub use nova_client::types::{
    BackendCheck, Checks, Health as HealthReport, HealthStatus, KnowledgeCheck, KvCheck,
    PluginsCheck,
};

/// What the pings of the store, the queue and the vector index found:
/// why each is not ready, if it is not.
#[derive(Clone, Default)]
pub struct Pings {
    store: Option<String>,
    queue: Option<String>,
    index: Option<String>,
}

/// How long the pings' findings are reused.
const PINGS_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// The backends' state: pinged now, or what a ping found in the last
/// second. Concurrent callers wait for one round of pings.
async fn pings(state: &AppState) -> Pings {
    let mut last = state.health.pings.lock().await;
    if let Some((at, pings)) = &*last
        && at.elapsed() < PINGS_FOR
    {
        return pings.clone();
    }
    let index_ping = async {
        match state.knowledge.inner() {
            Ok(k) => k.index.collections().await.map(|_| ()),
            Err(_) => Ok(()),
        }
    };
    let (store, queue, index) = tokio::join!(
        failure(state.health.store.ping()),
        failure(state.health.queue.ping()),
        failure(index_ping)
    );
    let pings = Pings {
        store,
        queue,
        index,
    };
    *last = Some((std::time::Instant::now(), pings.clone()));
    pings
}

/// Whether `headers` carry a valid credential (any scope): such a caller
/// is told the details an anonymous one is not.
async fn credentialed(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(token) = super::auth::bearer(headers) else {
        return false;
    };
    crate::auth::constant_time_eq(token.as_bytes(), state.auth.admin_token.as_bytes())
        || matches!(state.auth.keys.authenticate(token).await, Ok(Some(_)))
}

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

/// Liveness and readiness: 200 when every part is ready, 503 (same body)
/// otherwise.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "health",
    responses(
        (status = OK, description = "Every part is ready", body = HealthReport),
        (status = SERVICE_UNAVAILABLE, description = "Starting, or a dependency is down", body = HealthReport),
    )
)]
pub async fn health(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> (StatusCode, Json<HealthReport>) {
    let plugins = state.registry.list();
    let active = plugins.iter().filter(|(_, s)| s.active.is_some()).count();
    let rejected = plugins.iter().filter(|(_, s)| s.rejected.is_some()).count();
    let plugins_ready = state.plugins_ready.load(Ordering::Acquire);
    let Pings {
        store: store_error,
        queue: queue_error,
        index: index_error,
    } = pings(&state).await;
    // Errors name hosts, paths and users: only for those with a key.
    let detailed = credentialed(&state, &headers).await;
    let told = |error: &Option<String>| {
        error.as_ref().map(|e| {
            if detailed {
                e.clone()
            } else {
                "unavailable".to_owned()
            }
        })
    };
    let knowledge_enabled = state.knowledge.inner().is_ok();
    let knowledge_ready =
        !knowledge_enabled || (state.knowledge.is_ready() && index_error.is_none());
    let ready = plugins_ready && knowledge_ready && store_error.is_none() && queue_error.is_none();
    let report = HealthReport {
        status: if ready {
            HealthStatus::Ok
        } else if !plugins_ready || (knowledge_enabled && !state.knowledge.is_ready()) {
            HealthStatus::Starting
        } else {
            HealthStatus::Unavailable
        },
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_s: state.started.elapsed().as_secs_f64(),
        checks: Checks {
            plugins: PluginsCheck {
                ready: plugins_ready,
                active: active as u64,
                rejected: rejected as u64,
                dir: detailed.then(|| state.registry.dir().display().to_string()),
            },
            store: BackendCheck {
                ready: store_error.is_none(),
                backend: state.health.store.backend().to_owned(),
                error: told(&store_error),
            },
            queue: BackendCheck {
                ready: queue_error.is_none(),
                backend: state.health.queue.backend().to_owned(),
                error: told(&queue_error),
            },
            kv: KvCheck {
                ready: true,
                backend: state.health.kv.backend().to_owned(),
            },
            knowledge: KnowledgeCheck {
                ready: knowledge_ready,
                enabled: knowledge_enabled,
                backend: state
                    .knowledge
                    .inner()
                    .ok()
                    .map(|k| k.index.backend().to_owned()),
                model: state.knowledge.model().map(|m| m.name.clone()),
                error: told(
                    &state
                        .knowledge
                        .inner()
                        .err()
                        .map(|e| e.to_string())
                        .or(index_error),
                ),
            },
        },
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report))
}
