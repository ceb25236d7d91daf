//! `/admin/keys`: make, list and revoke API keys (admin).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Need, scope};
use super::error::{ApiError, ErrorBody};
use super::{AppState, JsonBody};
use crate::auth::{KeyError, KeyInfo, Scope, Scopes};
use crate::time::rfc3339_ms;

/// A key to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    /// For people: who or what holds the key (1 to 64 characters, not
    /// only spaces, no control characters; outer spaces are trimmed).
    #[schema(
        example = "ci-deploy",
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// What the key may do: `runs:write`, `runs:read`, `rag:query`,
    /// `rag:write`, `plugins:invoke`, `metrics:read`, `admin`.
    #[schema(schema_with = scope_list)]
    pub scopes: Vec<String>,
}

/// `scopes` in the document: one or more of the scope names.
fn scope_list() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(crate::auth::Scope::ALL.map(|s| s.as_str()))),
        )
        .min_items(Some(1))
        .description(Some("What the key may do; `admin` holds every scope."))
        .examples([serde_json::json!(["runs:write", "runs:read"])])
        .build()
}

/// A key just made. `key` is shown this once: the host keeps only its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    #[schema(value_type = String, format = "uuid")]
    pub id: uuid::Uuid,
    pub name: String,
    /// Send it as `Authorization: Bearer <key>`.
    pub key: String,
    pub scopes: Vec<String>,
    pub created_at: String,
}

/// A key as listed: never the key itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    #[schema(value_type = String, format = "uuid")]
    pub id: uuid::Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    /// The key's first characters, to tell keys apart.
    #[schema(example = "nova_3f0c1a2b")]
    pub prefix: String,
    pub created_at: String,
    /// To the minute; null if never used.
    pub last_used_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    /// Oldest first.
    pub keys: Vec<KeyView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedKey {
    /// The revoked key's id.
    #[schema(value_type = String, format = "uuid")]
    pub revoked: uuid::Uuid,
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Invalid(_) | KeyError::Scope(_) => {
                ApiError::bad_request("invalid_request", e.to_string())
            }
            KeyError::Store(e) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                e.to_string(),
            ),
            KeyError::Random(m) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m),
        }
    }
}

fn names(scopes: Scopes) -> Vec<String> {
    scopes.iter().map(|s| s.as_str().to_owned()).collect()
}

fn view(key: KeyInfo) -> KeyView {
    KeyView {
        id: key.id,
        scopes: names(key.scopes),
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
    request_body = KeyRequest,
    security(("bearer" = ["admin"])),
    responses(
        (status = CREATED, description = "The key, shown once", body = CreatedKey),
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
    JsonBody(request): JsonBody<KeyRequest>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let scopes = request
        .scopes
        .iter()
        .map(|s| s.parse::<Scope>())
        .collect::<Result<Scopes, _>>()
        .map_err(KeyError::from)?;
    let issued = state.auth.keys.issue(&request.name, scopes).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            id: issued.info.id,
            name: issued.info.name,
            key: issued.key,
            scopes: names(issued.info.scopes),
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
        (status = OK, description = "The keys", body = KeyList),
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `admin` scope", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "The store is unreachable (`store_unavailable`)", body = ErrorBody),
    )
)]
pub async fn list(
    _: Need<scope::Admin>,
    State(state): State<AppState>,
) -> Result<Json<KeyList>, ApiError> {
    let keys = state.auth.keys.list().await?;
    Ok(Json(KeyList {
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
        (status = OK, description = "Revoked", body = RevokedKey),
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
) -> Result<Json<RevokedKey>, ApiError> {
    let id = uuid::Uuid::parse_str(&id)
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{id:?} is not a key id")))?;
    if !state.auth.keys.revoke(id).await? {
        return Err(ApiError::not_found(
            "key_not_found",
            format!("no API key {id}"),
        ));
    }
    Ok(Json(RevokedKey { revoked: id }))
}
