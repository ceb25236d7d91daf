//! `/admin/plugins`: list, reload, upload, remove and try plugins.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::auth::{Need, scope};
use super::error::{ApiError, ErrorBody};
use crate::plugins::{Plugin, Slot, valid_name};
use crate::time::rfc3339;
use nova_client::types as wire;

/// The plugin name path parameter.
const NAME: &str = "The plugin's name: lowercase letters, digits, '-' and '_', at most 64";

fn entries(state: &AppState) -> Vec<wire::Plugin> {
    state
        .registry
        .list()
        .iter()
        .map(|(name, slot)| entry(name, slot))
        .collect()
}

/// Every plugin the host knows, serving or rejected.
#[utoipa::path(
    get,
    path = "/admin/plugins",
    operation_id = "list_plugins",
    tag = "plugins",
    security(("bearer" = ["admin"])),
    responses(
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `admin` scope", body = ErrorBody),
        (status = OK, description = "The plugins", body = wire::PluginList),
    )
)]
pub async fn list(_: Need<scope::Admin>, State(state): State<AppState>) -> Json<wire::PluginList> {
    Json(wire::PluginList {
        plugins: entries(&state),
    })
}

/// One plugin.
#[utoipa::path(
    get,
    path = "/admin/plugins/{name}",
    operation_id = "get_plugin",
    tag = "plugins",
    security(("bearer" = ["admin"])),
    params(("name" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$", description = NAME)),
    responses(
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `admin` scope", body = ErrorBody),
        (status = OK, description = "The plugin", body = wire::Plugin),
        (status = NOT_FOUND, description = "No such plugin (`plugin_not_found`)", body = ErrorBody),
    )
)]
pub async fn show(
    _: Need<scope::Admin>,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<wire::Plugin>, ApiError> {
    let slot = state
        .registry
        .list()
        .into_iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| unknown(&name))?;
    Ok(Json(entry(&name, &slot.1)))
}

/// Rescans the plugin directory now instead of waiting for the watcher.
#[utoipa::path(
    post,
    path = "/admin/plugins/reload",
    operation_id = "reload_plugins",
    tag = "plugins",
    security(("bearer" = ["admin"])),
    responses(
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `admin` scope", body = ErrorBody),
        (status = OK, description = "What the rescan did, and the plugins after it", body = wire::PluginsReloaded),
    )
)]
pub async fn reload(
    _: Need<scope::Admin>,
    State(state): State<AppState>,
) -> Json<wire::PluginsReloaded> {
    Json(wire::PluginsReloaded {
        outcomes: state.registry.rescan().await,
        plugins: entries(&state),
    })
}

/// Installs or replaces a plugin: the body is the component's `.wasm`
/// bytes, validated before it is written.
#[utoipa::path(
    put,
    path = "/admin/plugins/{name}",
    operation_id = "upload_plugin",
    tag = "plugins",
    security(("bearer" = ["admin"])),
    params(("name" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$", description = NAME)),
    request_body(
        description = "The WebAssembly component",
        content(("application/wasm"), ("application/octet-stream")),
    ),
    responses(
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `admin` scope", body = ErrorBody),
        (status = CREATED, description = "Installed", body = wire::Plugin),
        (status = OK, description = "Replaced an existing plugin", body = wire::Plugin),
        (status = BAD_REQUEST, description = "Bad name (`invalid_plugin_name`), empty body (`empty_body`), or a component that does not validate (`invalid_plugin`, `invalid_manifest`, `unknown_world`, `unsupported_contract_version`, `plugin_describe_failed`)", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "Over the plugin size limit (`payload_too_large`)", body = ErrorBody),
        (status = INTERNAL_SERVER_ERROR, description = "The plugin directory cannot be written (`io`)", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "No free instance to validate it (`plugin_busy`), or the shared plugin store is unreachable (`fleet_unavailable`); retry", body = ErrorBody),
    )
)]
pub async fn upload(
    _: Need<scope::Admin>,
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<wire::Plugin>), ApiError> {
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
    Ok((status, Json(entry(&name, &slot))))
}

/// Removes a plugin and its file.
#[utoipa::path(
    delete,
    path = "/admin/plugins/{name}",
    operation_id = "remove_plugin",
    tag = "plugins",
    security(("bearer" = ["admin"])),
    params(("name" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$", description = NAME)),
    responses(
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `admin` scope", body = ErrorBody),
        (status = OK, description = "Removed", body = wire::Removed),
        (status = NOT_FOUND, description = "No such plugin (`plugin_not_found`)", body = ErrorBody),
        (status = INTERNAL_SERVER_ERROR, description = "The plugin directory cannot be written (`io`)", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "The shared plugin store is unreachable (`fleet_unavailable`); retry", body = ErrorBody),
    )
)]
pub async fn remove(
    _: Need<scope::Admin>,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<wire::Removed>, ApiError> {
    state.registry.remove(&name).await?;
    Ok(Json(wire::Removed { removed: name }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvokeParams {
    /// Steps: the step's configuration, as JSON.
    config: Option<String>,
    /// Loaders: the document's name or path (its extension matters).
    source: Option<String>,
}

/// What one invocation gave: `output` for a step, `chunks` for a loader.
#[utoipa::path(
    post,
    path = "/admin/plugins/{name}/invoke",
    operation_id = "invoke_plugin",
    tag = "plugins",
    security(("bearer" = ["plugins:invoke"])),
    params(("name" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$", description = NAME), InvokeParams),
    request_body(
        description = "Steps: the input, any JSON (empty for null). Loaders: the document's bytes.",
        content(("application/json"), ("application/octet-stream")),
    ),
    responses(
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `plugins:invoke` scope", body = ErrorBody),
        (status = OK, description = "The plugin's answer", body = wire::Invocation),
        (status = BAD_REQUEST, description = "Body (`invalid_json`) or `config` (`invalid_config`) is not JSON", body = ErrorBody),
        (status = NOT_FOUND, description = "No such plugin (`plugin_not_found`)", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "Over the document size limit", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "The plugin answered with an error (`plugin_invalid_input`, `plugin_unsupported`, `plugin_failed`)", body = ErrorBody),
        (status = INTERNAL_SERVER_ERROR, description = "The sandbox could not be set up (`plugin_setup_failed`)", body = ErrorBody),
        (status = BAD_GATEWAY, description = "The sandbox stopped the plugin (`plugin_trap`, `plugin_out_of_memory`, `plugin_output_too_large`, `plugin_invalid_output`...)", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "No free instance (`plugin_busy`); retry", body = ErrorBody),
        (status = GATEWAY_TIMEOUT, description = "The call ran past its time limit (`plugin_timeout`)", body = ErrorBody),
    )
)]
pub async fn invoke(
    _: Need<scope::PluginsInvoke>,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<InvokeParams>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<wire::Invocation>, ApiError> {
    let body = body?;
    let plugin = state.registry.get(&name).ok_or_else(|| unknown(&name))?;
    let request = crate::invoke::Request {
        config: params.config,
        source: params.source,
    };
    let answer = crate::invoke::invoke(state.registry.runtime(), &plugin, &body, request).await?;
    Ok(Json(answer))
}

/// Followers of plugins' logs at once, over all plugins: each holds a
/// connection and a buffer of [`crate::plugins::logs::TAP_LINES`] lines.
const MAX_LOG_FOLLOWERS: usize = 16;

/// With no line for this long, a blank line: a follower that went away is
/// noticed, and proxies keep the stream open.
const LOG_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(15);

/// Follows a plugin's log lines as calls happen: one JSON object per line
/// (`{"level", "message"}`), blank lines as a heartbeat, and a line at level
/// `lost` when the follower fell behind.
#[utoipa::path(
    get,
    path = "/admin/plugins/{name}/logs",
    operation_id = "follow_plugin_logs",
    tag = "plugins",
    security(("bearer" = ["admin"])),
    params(("name" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$", description = NAME)),
    responses(
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `admin` scope", body = ErrorBody),
        (status = OK, description = "The plugin's log lines from now on, as newline-delimited JSON, until the host stops", content_type = "application/x-ndjson", body = wire::LogLine),
        (status = NOT_FOUND, description = "No such plugin (`plugin_not_found`)", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Too many followers at once (`too_many_log_followers`); retry later", body = ErrorBody),
    )
)]
pub async fn logs(
    _: Need<scope::Admin>,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    use std::sync::{Arc, LazyLock};

    use axum::body::Body;
    use tokio::sync::{Semaphore, broadcast::error::RecvError};

    static FOLLOWERS: LazyLock<Arc<Semaphore>> =
        LazyLock::new(|| Arc::new(Semaphore::new(MAX_LOG_FOLLOWERS)));

    if !state.registry.list().iter().any(|(n, _)| **n == *name) {
        return Err(unknown(&name));
    }
    let permit = FOLLOWERS.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_log_followers",
            format!("{MAX_LOG_FOLLOWERS} followers of plugin logs already; retry later"),
        )
    })?;
    let tap = crate::plugins::logs::tap();
    let line = |level: &str, message: String| {
        let mut text = serde_json::to_string(&wire::LogLine {
            level: level.to_owned(),
            message,
        })
        .unwrap_or_default();
        text.push('\n');
        Bytes::from(text)
    };
    let stream = futures_util::stream::unfold(
        (tap, permit, name),
        move |(mut tap, permit, name)| async move {
            let next = loop {
                match tokio::time::timeout(LOG_HEARTBEAT, tap.recv()).await {
                    Err(_) => break Bytes::from_static(b"\n"),
                    Ok(Ok(t)) if *t.plugin == *name => break line(t.line.level, t.line.message),
                    Ok(Ok(_)) => continue,
                    Ok(Err(RecvError::Lagged(n))) => {
                        break line(
                            "lost",
                            format!(
                                "{n} lines of plugins were not sent: this follower fell behind"
                            ),
                        );
                    }
                    Ok(Err(RecvError::Closed)) => return None,
                }
            };
            Some((Ok::<_, std::convert::Infallible>(next), (tap, permit, name)))
        },
    );
    axum::response::Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "application/x-ndjson")
        .header(axum::http::header::CACHE_CONTROL, "no-store")
        .body(Body::from_stream(stream))
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("cannot start the stream: {e}"),
            )
        })
}

fn unknown(name: &str) -> ApiError {
    ApiError::not_found("plugin_not_found", format!("no plugin named {name:?}"))
}

fn serving(name: &str, p: &Plugin) -> wire::Plugin {
    let limits = p.limits();
    let grants = &p.manifest.grants;
    let stats = p.stats.snapshot();
    wire::Plugin {
        name: name.to_owned(),
        kind: Some(p.kind),
        version: Some(p.info.version.clone()),
        description: Some(p.info.description.clone()),
        contract: Some(p.contract.to_owned()),
        sha256: Some(p.sha256.clone()),
        size_bytes: Some(p.size_bytes),
        loaded_at: Some(rfc3339(p.loaded_at)),
        path: Some(p.path.display().to_string()),
        limits: Some(wire::PluginLimits {
            timeout_ms: limits.timeout.as_millis() as u64,
            memory_mb: limits.memory_bytes >> 20,
            max_output_bytes: limits.max_output_bytes,
            store_docs: limits.store.items,
            store_bytes: limits.store.bytes,
            kv_keys: limits.kv.items,
            kv_bytes: limits.kv.bytes,
            http_connect_timeout_ms: limits.http.connect_timeout.as_millis() as u64,
            http_first_byte_timeout_ms: limits.http.first_byte_timeout.as_millis() as u64,
            http_between_bytes_timeout_ms: limits.http.between_bytes_timeout.as_millis() as u64,
            http_response_bytes: limits.http.response_bytes,
            http_concurrency: limits.http.concurrency,
        }),
        grants: Some(wire::PluginGrants {
            // Names only: values may be secrets.
            env: grants.env.iter().map(|(k, _)| k.clone()).collect(),
            clocks: grants.clocks,
            network: grants.network.iter().map(|a| a.to_string()).collect(),
            dirs: grants
                .dirs
                .iter()
                .map(|d| wire::DirGrant {
                    host: d.host.display().to_string(),
                    guest: d.guest.clone(),
                    writable: d.writable,
                })
                .collect(),
            allowed_outbound_hosts: grants
                .allowed_outbound_hosts
                .entries()
                .map(str::to_owned)
                .collect(),
            secrets: grants.secrets.clone(),
            config: grants.config.iter().map(|(k, _)| k.clone()).collect(),
            knowledge: grants.knowledge(),
        }),
        extensions: Some(p.info.extensions.clone()),
        media_types: Some(p.info.media_types.clone()),
        config_schema: p.config_schema.as_ref().map(|s| s.value().clone()),
        compile: Some(wire::CompileInfo {
            from_cache: p.compile.from_cache,
            ms: p.compile.ms,
        }),
        stats: Some(wire::PluginStats {
            calls: stats.calls,
            failures: stats.failures,
            p50_ms: stats.p50_ms,
        }),
        status: wire::PluginStatus::Active,
        serving: true,
        error: None,
        rejected: None,
    }
}

/// One plugin in the admin listing: the serving version's fields, and the
/// refused file's reason and details when the latest file was refused.
fn entry(name: &str, slot: &Slot) -> wire::Plugin {
    let rejection = slot.rejected.as_ref();
    let mut entry = match &slot.active {
        Some(p) => serving(name, p),
        None => wire::Plugin {
            name: name.to_owned(),
            kind: None,
            version: None,
            description: None,
            contract: None,
            sha256: rejection.and_then(|r| r.sha256.clone()),
            size_bytes: rejection.and_then(|r| r.size_bytes),
            loaded_at: None,
            path: rejection.map(|r| r.path.display().to_string()),
            limits: None,
            grants: None,
            extensions: None,
            media_types: None,
            config_schema: None,
            compile: None,
            stats: None,
            status: wire::PluginStatus::Active,
            serving: false,
            error: None,
            rejected: None,
        },
    };
    if let Some(r) = rejection {
        entry.status = wire::PluginStatus::Rejected;
        entry.error = Some(r.error.clone());
        entry.rejected = Some(wire::RejectedFile {
            sha256: r.sha256.clone(),
            size_bytes: r.size_bytes,
            path: r.path.display().to_string(),
            at: rfc3339(r.at),
        });
    }
    entry
}
