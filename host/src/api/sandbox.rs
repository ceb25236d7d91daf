//! `POST /sandbox/run`: a Python or JavaScript snippet run once in the
//! plugin sandbox, for clients that are not workflows (the remote code
//! sandbox nova replaces).

use axum::Json;
use axum::extract::State;
use nova_client::types as wire;

use super::AppState;
use super::auth::{Need, scope};
use super::body::JsonBody;
use super::error::{ApiError, ErrorBody};

/// Runs a snippet once and answers what it did. An exception it raises,
/// or a limit it hits (time, memory, stack, output), is a 200 whose
/// `error` says so; the next run is unaffected.
#[utoipa::path(
    post,
    path = "/sandbox/run",
    operation_id = "run_code",
    tag = "sandbox",
    security(("bearer" = ["sandbox:run"])),
    request_body = wire::SandboxRun,
    responses(
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `sandbox:run` scope", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "The body is not `application/json`", body = ErrorBody),
        (status = OK, description = "What the snippet did: its result and output, or its `error`", body = wire::SandboxResult),
        (status = BAD_REQUEST, description = "Not JSON (`invalid_json`) or not a valid run (`invalid_request`)", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "Body over the JSON body limit", body = ErrorBody),
        (status = INTERNAL_SERVER_ERROR, description = "The sandbox could not be set up (`plugin_setup_failed`)", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "The language's code step is not installed (`language_unavailable`), or no instance is free (`plugin_busy`); retry", body = ErrorBody),
    )
)]
pub async fn run(
    _: Need<scope::SandboxRun>,
    State(state): State<AppState>,
    JsonBody(request): JsonBody<wire::SandboxRun>,
) -> Result<Json<wire::SandboxResult>, ApiError> {
    Ok(Json(crate::code::run(&state.registry, request).await?))
}
