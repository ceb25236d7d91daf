//! `/admin/keys`: make, list and revoke API keys (admin).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::auth::{Need, scope};
use super::error::{ApiError, ErrorBody};
use super::{AppState, JsonBody};
use crate::auth::{KeyError, KeyInfo, Scope, Scopes};
use crate::time::rfc3339_ms;
use nova_client::types as wire;

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Invalid(_) | KeyError::Scope(_) => {
                ApiError::bad_request("invalid_request", e.to_string())
            }
            KeyError::Store(e) => ApiError::store_unavailable(e),
            KeyError::Random(m) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m),
        }
    }
}

fn names(scopes: Scopes) -> Vec<String> {
    scopes.iter().map(|s| s.as_str().to_owned()).collect()
}

fn view(key: KeyInfo) -> wire::KeyInfo {
    wire::KeyInfo {
        id: key.id.to_string(),
        scopes: names(key.scopes),
        collections: key.collections,
        name: key.name,
        prefix: key.prefix,
        created_at: rfc3339_ms(key.created_at),
        last_used_at: key.last_used_at.map(rfc3339_ms),
    }
}

/// Makes an API key. The answer holds the key; it is never shown again.
#[utoipa::path(
    post,
    path = "/admin/keys",
    operation_id = "create_key",
    tag = "keys",
    request_body = wire::NewKey,
    security(("bearer" = ["admin"])),
    responses(
        (status = CREATED, description = "The key, shown once", body = wire::CreatedKey),
        (status = BAD_REQUEST, description = "Not JSON (`invalid_json`), or a bad name or scope (`invalid_request`)", body = ErrorBody),
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `admin` scope", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "Body over the JSON body limit", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "The body is not `application/json`", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "The store is unreachable (`store_unavailable`)", body = ErrorBody),
    )
)]
pub async fn create(
    _: Need<scope::Admin>,
    State(state): State<AppState>,
    JsonBody(request): JsonBody<wire::NewKey>,
) -> Result<(StatusCode, Json<wire::CreatedKey>), ApiError> {
    let scopes = request
        .scopes
        .iter()
        .map(|s| s.parse::<Scope>())
        .collect::<Result<Scopes, _>>()
        .map_err(KeyError::from)?;
    let issued = state
        .auth
        .keys
        .issue(&request.name, scopes, request.collections)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(wire::CreatedKey {
            id: issued.info.id.to_string(),
            name: issued.info.name,
            key: issued.key,
            scopes: names(issued.info.scopes),
            collections: issued.info.collections,
            created_at: rfc3339_ms(issued.info.created_at),
        }),
    ))
}

/// Lists the API keys (never the keys themselves).
#[utoipa::path(
    get,
    path = "/admin/keys",
    operation_id = "list_keys",
    tag = "keys",
    security(("bearer" = ["admin"])),
    responses(
        (status = OK, description = "The keys", body = wire::KeyList),
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `admin` scope", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "The store is unreachable (`store_unavailable`)", body = ErrorBody),
    )
)]
pub async fn list(
    _: Need<scope::Admin>,
    State(state): State<AppState>,
) -> Result<Json<wire::KeyList>, ApiError> {
    let keys = state.auth.keys.list().await?;
    Ok(Json(wire::KeyList {
        keys: keys.into_iter().map(view).collect(),
    }))
}

/// Revokes an API key: every host refuses it within a second.
#[utoipa::path(
    delete,
    path = "/admin/keys/{id}",
    operation_id = "revoke_key",
    tag = "keys",
    params(("id" = String, Path, format = "uuid", description = "The key's id")),
    security(("bearer" = ["admin"])),
    responses(
        (status = OK, description = "Revoked", body = wire::RevokedKey),
        (status = BAD_REQUEST, description = "Not a key id (`invalid_id`)", body = ErrorBody),
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `admin` scope", body = ErrorBody),
        (status = NOT_FOUND, description = "No such key (`key_not_found`)", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "The store is unreachable (`store_unavailable`)", body = ErrorBody),
    )
)]
pub async fn revoke(
    _: Need<scope::Admin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<wire::RevokedKey>, ApiError> {
    let id = uuid::Uuid::parse_str(&id)
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{id:?} is not a key id")))?;
    if !state.auth.keys.revoke(id).await? {
        return Err(ApiError::not_found(
            "key_not_found",
            format!("no API key {id}"),
        ));
    }
    Ok(Json(wire::RevokedKey {
        revoked: id.to_string(),
    }))
}
