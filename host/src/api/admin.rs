//! `/admin/plugins`: list, reload, upload, remove and try plugins.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::{AppState, json_response, rfc3339};
use crate::plugins::{PluginKind, Slot, valid_name};

pub async fn list(State(state): State<AppState>) -> Response {
    let plugins: Vec<Value> = state
        .registry
        .list()
        .iter()
        .map(|(name, slot)| entry(name, slot))
        .collect();
    json_response(StatusCode::OK, &json!({ "plugins": plugins }))
}

pub async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let slot = state
        .registry
        .list()
        .into_iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| unknown(&name))?;
    Ok(json_response(StatusCode::OK, &entry(&name, &slot.1)))
}

pub async fn reload(State(state): State<AppState>) -> Response {
    let outcomes = state.registry.rescan().await;
    let plugins: Vec<Value> = state
        .registry
        .list()
        .iter()
        .map(|(name, slot)| entry(name, slot))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({ "outcomes": outcomes, "plugins": plugins }),
    )
}

pub async fn upload(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    if !valid_name(&name) {
        return Err(ApiError::bad_request(
            "invalid_plugin_name",
            format!(
                "invalid plugin name {name:?}: use lowercase letters, digits, '-' and '_' (at most 64)"
            ),
        ));
    }
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "empty_body",
            "send the component's .wasm bytes as the request body",
        ));
    }
    let existed = state.registry.get(&name).is_some();
    state.registry.upload(&name, body.to_vec()).await?;
    let slot = state
        .registry
        .list()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| s)
        .unwrap_or_default();
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(json_response(status, &entry(&name, &slot)))
}

pub async fn remove(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state.registry.remove(&name).await?;
    Ok(json_response(StatusCode::OK, &json!({ "removed": name })))
}

#[derive(Debug, Deserialize)]
pub struct InvokeParams {
    /// Steps: the step's configuration, as JSON.
    config: Option<String>,
    /// Loaders: the document's name or path (its extension matters).
    source: Option<String>,
}

/// Runs a plugin once: a step on the JSON body as input, a loader on the
/// body as a document.
pub async fn invoke(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<InvokeParams>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let plugin = state.registry.get(&name).ok_or_else(|| unknown(&name))?;
    let runtime = state.registry.runtime();
    let start = Instant::now();
    let mut result = json!({
        "plugin": &*plugin.name,
        "version": plugin.info.version,
        "kind": plugin.kind,
    });
    match plugin.kind {
        PluginKind::Step => {
            let input = if body.iter().all(u8::is_ascii_whitespace) {
                "null".to_owned()
            } else {
                let value: Value = serde_json::from_slice(&body).map_err(|e| {
                    ApiError::bad_request("invalid_json", format!("request body is not JSON: {e}"))
                })?;
                value.to_string()
            };
            let config = match params.config.as_deref() {
                None | Some("") => "{}".to_owned(),
                Some(text) => {
                    let value: Value = serde_json::from_str(text).map_err(|e| {
                        ApiError::bad_request("invalid_config", format!("config is not JSON: {e}"))
                    })?;
                    value.to_string()
                }
            };
            let output = runtime.run_step(&plugin, &input, &config).await?;
            let output: Value = serde_json::from_str(&output).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "plugin_invalid_output",
                    e.to_string(),
                )
            })?;
            result["output"] = output;
        }
        PluginKind::Loader => {
            let source = params.source.unwrap_or_else(|| "document".to_owned());
            let chunks = runtime.run_loader(&plugin, &source, &body).await?;
            result["chunks"] = chunks
                .into_iter()
                .map(|c| {
                    let metadata: BTreeMap<String, String> = c.metadata.into_iter().collect();
                    json!({"text": c.text, "metadata": metadata})
                })
                .collect();
        }
    }
    result["duration_ms"] = json!(start.elapsed().as_secs_f64() * 1e3);
    Ok(json_response(StatusCode::OK, &result))
}

fn unknown(name: &str) -> ApiError {
    ApiError::not_found("plugin_not_found", format!("no plugin named {name:?}"))
}

/// One plugin in the admin listing. The top-level fields describe the
/// version that serves; `status` is `rejected` when the latest file was
/// refused, with the reason in `error` (and the serving version, if any,
/// still serving).
fn entry(name: &str, slot: &Slot) -> Value {
    let status = if slot.rejected.is_some() {
        "rejected"
    } else {
        "active"
    };
    let error = slot.rejected.as_ref().map(|r| r.error.clone());
    let rejected = slot.rejected.as_ref().map(|r| {
        json!({
            "sha256": r.sha256,
            "size_bytes": r.size_bytes,
            "path": r.path.display().to_string(),
            "at": rfc3339(r.at),
        })
    });
    match &slot.active {
        Some(p) => json!({
            "name": name,
            "kind": p.kind,
            "version": p.info.version,
            "description": p.info.description,
            "contract": p.contract,
            "sha256": p.sha256,
            "size_bytes": p.size_bytes,
            "loaded_at": rfc3339(p.loaded_at),
            "path": p.path.display().to_string(),
            "limits": p.limits(),
            "grants": p.manifest.grants,
            "extensions": p.info.extensions,
            "media_types": p.info.media_types,
            "compile": p.compile,
            "stats": p.stats.snapshot(),
            "status": status,
            "serving": true,
            "error": error,
            "rejected": rejected,
        }),
        None => {
            let r = slot.rejected.as_ref();
            json!({
                "name": name,
                "kind": null,
                "version": null,
                "sha256": r.and_then(|r| r.sha256.clone()),
                "size_bytes": r.and_then(|r| r.size_bytes),
                "loaded_at": null,
                "path": r.map(|r| r.path.display().to_string()),
                "limits": null,
                "stats": null,
                "status": status,
                "serving": false,
                "error": error,
                "rejected": rejected,
            })
        }
    }
}
