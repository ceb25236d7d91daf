//! `/admin/secrets`: set, list and delete the secrets plugins read through
//! `wasi:config/store` (admin). A value goes in and never comes out: the
//! listing has names, times and readers; errors name the secret only.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::auth::{Need, scope};
use super::error::{ApiError, ErrorBody};
use super::{AppState, JsonBody};
use crate::secrets::SecretError;
use crate::time::rfc3339_ms;
use nova_client::types as wire;

impl From<SecretError> for ApiError {
    fn from(e: SecretError) -> Self {
        match e {
            SecretError::Invalid(m) => ApiError::bad_request("invalid_request", m),
            SecretError::Store(e) => ApiError::store_unavailable(e),
            e @ (SecretError::Undecryptable(_) | SecretError::Crypto(_)) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}

/// Creates or replaces a secret. Plugins whose manifest lists it
/// (`grants.secrets`) read the new value from their next call.
#[utoipa::path(
    put,
    path = "/admin/secrets/{name}",
    operation_id = "set_secret",
    tag = "secrets",
    params(("name" = String, Path, description = "1 to 128 letters, digits, `_`, `-` or `.`")),
    request_body = wire::SecretValue,
    security(("bearer" = ["admin"])),
    responses(
        (status = NO_CONTENT, description = "Set"),
        (status = BAD_REQUEST, description = "Not JSON (`invalid_json`), or a bad name or a value over 64 KiB (`invalid_request`)", body = ErrorBody),
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `admin` scope", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "Body over the JSON body limit", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "The body is not `application/json`", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "The store is unreachable (`store_unavailable`)", body = ErrorBody),
    )
)]
pub async fn set(
    _: Need<scope::Admin>,
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<wire::SecretValue>,
) -> Result<StatusCode, ApiError> {
    state.secrets.set(&name, &body.value).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists the secrets: names, when each was set, and the loaded plugins
/// whose manifests list it. Never a value.
#[utoipa::path(
    get,
    path = "/admin/secrets",
    operation_id = "list_secrets",
    tag = "secrets",
    security(("bearer" = ["admin"])),
    responses(
        (status = OK, description = "The secrets, by name", body = wire::SecretList),
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `admin` scope", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "The store is unreachable (`store_unavailable`)", body = ErrorBody),
    )
)]
pub async fn list(
    _: Need<scope::Admin>,
    State(state): State<AppState>,
) -> Result<Json<wire::SecretList>, ApiError> {
    let plugins = state.registry.list();
    let readers = |secret: &str| -> Vec<String> {
        plugins
            .iter()
            .filter(|(_, slot)| {
                slot.active
                    .as_ref()
                    .is_some_and(|p| p.manifest.grants.secrets.iter().any(|s| s == secret))
            })
            .map(|(name, _)| name.clone())
            .collect()
    };
    let secrets = state
        .secrets
        .list()
        .await?
        .into_iter()
        .map(|(name, updated_at)| wire::SecretInfo {
            readers: readers(&name),
            updated_at: rfc3339_ms(updated_at),
            name,
        })
        .collect();
    Ok(Json(wire::SecretList { secrets }))
}

/// Deletes a secret: plugins that list it find it missing from their next
/// call.
#[utoipa::path(
    delete,
    path = "/admin/secrets/{name}",
    operation_id = "delete_secret",
    tag = "secrets",
    params(("name" = String, Path, description = "The secret's name")),
    security(("bearer" = ["admin"])),
    responses(
        (status = NO_CONTENT, description = "Deleted"),
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `admin` scope", body = ErrorBody),
        (status = NOT_FOUND, description = "No such secret (`secret_not_found`)", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "The store is unreachable (`store_unavailable`)", body = ErrorBody),
    )
)]
pub async fn remove(
    _: Need<scope::Admin>,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.secrets.remove(&name).await? {
        return Err(ApiError::not_found(
            "secret_not_found",
            format!("no secret {name:?}"),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}
