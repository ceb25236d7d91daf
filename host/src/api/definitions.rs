//! `/workflows/definitions`: saved, versioned workflows, and runs of them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::{Need, scope};
use super::error::{ApiError, ErrorBody};
use super::workflows::{submitted_answer, workflows};
use super::{AppState, MaybeJsonBody};
use crate::store::{DefinitionRow, RawJson};
use crate::time::rfc3339_ms;
use nova_client::types as wire;

/// A definition sent as JSON (`application/json`) or YAML
/// (`application/yaml`, `application/x-yaml`, `text/yaml`).
pub struct DefinitionBody(pub wire::Definition);

impl<S: Send + Sync> FromRequest<S> for DefinitionBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let media = super::body::media_type(request.headers());
        let bytes = Bytes::from_request(request, state).await?;
        match media.as_deref() {
            Some("application/json") => super::parse_json(&bytes).map(DefinitionBody),
            Some("application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml") => {
                parse_yaml(&bytes).map(DefinitionBody)
            }
            other => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "send the definition as Content-Type: application/json or application/yaml \
                     (got {:.64})",
                    other.unwrap_or("none")
                ),
            )),
        }
    }
}

/// A YAML definition, read as JSON would be (so the same fields, the same
/// messages): YAML to a JSON value, then the definition from its text.
fn parse_yaml(bytes: &[u8]) -> Result<wire::Definition, ApiError> {
    let value: serde_json::Value = serde_yaml_ng::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("invalid_yaml", format!("request body: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "request body: send a mapping (the definition's fields)",
        ));
    }
    super::parse_json(value.to_string().as_bytes())
}

/// Saves a definition as a new version.
#[utoipa::path(
    put,
    path = "/workflows/definitions/{name}",
    operation_id = "save_definition",
    tag = "workflows",
    security(("bearer" = ["runs:write"])),
    params(("name" = String, Path, description = "The definition's name: a letter or digit, then letters, digits, `_`, `-` and `.` (at most 128)")),
    request_body(content(
        (wire::Definition = "application/json"),
        (wire::Definition = "application/yaml"),
    )),
    responses(
        (status = CREATED, description = "Saved: the name and the new version", body = wire::DefinitionSaved),
        (status = BAD_REQUEST, description = "Not a valid definition (`invalid_json`, `invalid_yaml`, `invalid_request`, `invalid_workflow`: unknown step ids, cycles, bad expressions, unknown plugins, each with the place of the fault)", body = ErrorBody),
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `runs:write` scope", body = ErrorBody),
        (status = NOT_FOUND, description = "This host does not serve workflows (`--role worker`)", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "Body over the JSON body limit", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "The body is neither JSON nor YAML", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Store unreachable", body = ErrorBody),
    )
)]
pub async fn save(
    _: Need<scope::RunsWrite>,
    State(state): State<AppState>,
    Path(name): Path<String>,
    DefinitionBody(definition): DefinitionBody,
) -> Result<(StatusCode, Json<wire::DefinitionSaved>), ApiError> {
    let wf = workflows(&state)?;
    let version = wf.save_definition(&name, &definition).await?;
    tracing::info!(definition = %name, version, "definition saved");
    Ok((
        StatusCode::CREATED,
        Json(wire::DefinitionSaved { name, version }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionParams {
    /// The version to read; the latest when absent.
    #[param(minimum = 1)]
    version: Option<u32>,
}

/// A saved definition, at its latest version or the one asked for.
#[utoipa::path(
    get,
    path = "/workflows/definitions/{name}",
    operation_id = "get_definition",
    tag = "workflows",
    security(("bearer" = ["runs:read"])),
    params(("name" = String, Path, description = "The definition's name"), VersionParams),
    responses(
        (status = OK, description = "The definition", body = wire::DefinitionInfo),
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `runs:read` scope", body = ErrorBody),
        (status = NOT_FOUND, description = "No such definition or version (`definition_not_found`)", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Store unreachable", body = ErrorBody),
    )
)]
pub async fn get(
    _: Need<scope::RunsRead>,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<VersionParams>,
) -> Result<Json<wire::DefinitionInfo>, ApiError> {
    let wf = workflows(&state)?;
    let (row, definition) = wf.definition(&name, params.version).await?;
    Ok(Json(info(row, definition)))
}

/// Every saved definition at its latest version, by name.
#[utoipa::path(
    get,
    path = "/workflows/definitions",
    operation_id = "list_definitions",
    tag = "workflows",
    security(("bearer" = ["runs:read"])),
    responses(
        (status = OK, description = "The definitions", body = wire::DefinitionList),
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `runs:read` scope", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Store unreachable", body = ErrorBody),
    )
)]
pub async fn list(
    _: Need<scope::RunsRead>,
    State(state): State<AppState>,
) -> Result<Json<wire::DefinitionList>, ApiError> {
    let wf = workflows(&state)?;
    let definitions = wf
        .definitions()
        .await?
        .into_iter()
        .map(|(row, definition)| info(row, definition))
        .collect();
    Ok(Json(wire::DefinitionList { definitions }))
}

/// Deletes a definition, every version: it no longer runs or lists; runs
/// of it keep their record, and saving the name again continues its
/// numbering.
#[utoipa::path(
    delete,
    path = "/workflows/definitions/{name}",
    operation_id = "delete_definition",
    tag = "workflows",
    security(("bearer" = ["runs:write"])),
    params(("name" = String, Path, description = "The definition's name")),
    responses(
        (status = NO_CONTENT, description = "Deleted"),
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `runs:write` scope", body = ErrorBody),
        (status = NOT_FOUND, description = "No such definition (`definition_not_found`)", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Store unreachable", body = ErrorBody),
    )
)]
pub async fn remove(
    _: Need<scope::RunsWrite>,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let wf = workflows(&state)?;
    if !wf.delete_definition(&name).await? {
        return Err(ApiError::not_found(
            "definition_not_found",
            format!("no definition {name:?}"),
        ));
    }
    tracing::info!(definition = %name, "definition deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Starts a run of a saved definition (its latest version, or `version`).
#[utoipa::path(
    post,
    path = "/workflows/definitions/{name}/runs",
    operation_id = "run_definition",
    tag = "workflows",
    security(("bearer" = ["runs:write"])),
    params(("name" = String, Path, description = "The definition's name")),
    request_body(content = Option<wire::StartRun>, description = "Optional: no body runs the latest version on a null input"),
    responses(
        (status = ACCEPTED, description = "Run created and queued", body = wire::Submitted),
        (status = OK, description = "A run with this idempotency key exists: that run", body = wire::Submitted),
        (status = BAD_REQUEST, description = "Not a valid request, or the saved workflow no longer validates (a plugin removed since, say: `invalid_workflow`)", body = ErrorBody),
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `runs:write` scope", body = ErrorBody),
        (status = NOT_FOUND, description = "No such definition or version (`definition_not_found`)", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "Body over the JSON body limit", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Store or queue unreachable", body = ErrorBody),
    )
)]
pub async fn run(
    _: Need<scope::RunsWrite>,
    State(state): State<AppState>,
    Path(name): Path<String>,
    MaybeJsonBody(request): MaybeJsonBody<wire::StartRun>,
) -> Result<(StatusCode, Json<wire::Submitted>), ApiError> {
    let wf = workflows(&state)?;
    let request = request.unwrap_or_default();
    let submitted = wf
        .run_definition(
            &name,
            request.version,
            request.input.unwrap_or_else(RawJson::null),
            request.idempotency_key,
            crate::request_id::current(),
        )
        .await?;
    Ok(submitted_answer(submitted))
}

fn info(row: DefinitionRow, definition: wire::Definition) -> wire::DefinitionInfo {
    wire::DefinitionInfo {
        name: row.name,
        version: row.version,
        created_at: Some(rfc3339_ms(row.created_at)),
        definition,
    }
}
