//! `POST /hooks/{name}`: a signed delivery starts a run of a definition
//! that has a `webhook`. No API key: the signature is the credential.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::workflows::{submitted_answer, workflows};
use crate::store::RawJson;
use crate::workflow::{SIGNATURE_WINDOW_S, WorkflowError, verify_signature};
use nova_client::types as wire;

/// Longest `X-Nova-Delivery` id.
const MAX_DELIVERY_ID: usize = 200;

/// Starts a run of a definition with a webhook, on a delivery signed with
/// its secret.
#[utoipa::path(
    post,
    path = "/hooks/{name}",
    operation_id = "deliver_webhook",
    tag = "workflows",
    params(
        ("name" = String, Path, description = "The definition's name"),
        ("X-Nova-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\" under the secret>`, within 5 minutes of the host's clock"),
        ("X-Nova-Delivery" = Option<String>, Header, description = "The delivery's id: a redelivery with the same id returns the same run"),
    ),
    request_body(content = Object, description = "The run's input, as JSON (empty: null)"),
    responses(
        (status = ACCEPTED, description = "Run created and queued", body = wire::Submitted),
        (status = OK, description = "A redelivery (same X-Nova-Delivery): that run", body = wire::Submitted),
        (status = BAD_REQUEST, description = "The body is not JSON (`invalid_json`), the delivery id is too long, or the definition no longer validates", body = ErrorBody),
        (status = UNAUTHORIZED, description = "Missing, malformed, stale or wrong signature (`invalid_signature`)", body = ErrorBody),
        (status = NOT_FOUND, description = "No definition by that name with a webhook (`hook_not_found`)", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "Body over the JSON body limit", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Store or queue unreachable", body = ErrorBody),
    )
)]
pub async fn deliver(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<wire::Submitted>), ApiError> {
    let wf = workflows(&state)?;
    let not_found = || ApiError::not_found("hook_not_found", format!("no webhook {name:?}"));
    let (row, definition) = match wf.definition(&name, None).await {
        Ok(found) => found,
        Err(WorkflowError::NoDefinition(_)) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    let Some(secret_name) = definition.webhook.as_ref().map(|hook| hook.secret.clone()) else {
        return Err(not_found());
    };
    let secret = state
        .secrets
        .reveal(std::slice::from_ref(&secret_name))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot read a webhook's secret");
            ApiError::store_unavailable(e)
        })?;
    let Some((_, secret)) = secret.into_iter().next() else {
        tracing::warn!(definition = %name, secret = %secret_name, "a webhook's secret is not set: every delivery is refused");
        return Err(unauthorized(
            "the webhook's secret is not set on this host".into(),
        ));
    };
    let signature = headers
        .get("x-nova-signature")
        .and_then(|v| v.to_str().ok());
    let now = crate::store::now_ms() / 1000;
    verify_signature(secret.as_bytes(), signature, &body, now).map_err(|e| {
        tracing::info!(definition = %name, reason = %e, "webhook delivery refused");
        unauthorized(e.to_string())
    })?;
    let input = if body.iter().all(u8::is_ascii_whitespace) {
        RawJson::null()
    } else {
        let text = String::from_utf8(body.to_vec())
            .map_err(|_| ApiError::bad_request("invalid_json", "the body is not UTF-8 JSON"))?;
        RawJson::parse(text)
            .map_err(|e| ApiError::bad_request("invalid_json", format!("request body: {e}")))?
    };
    let delivery = match headers.get("x-nova-delivery") {
        None => None,
        Some(value) => {
            let id = value.to_str().ok().filter(|id| {
                !id.is_empty()
                    && id.len() <= MAX_DELIVERY_ID
                    && id.chars().all(|c| c.is_ascii_graphic())
            });
            let id = id.ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_request",
                    format!(
                        "X-Nova-Delivery must be 1 to {MAX_DELIVERY_ID} printable ASCII characters"
                    ),
                )
            })?;
            Some(format!("hook:{name}:{id}"))
        }
    };
    let submitted = wf
        .start_saved(
            row,
            definition,
            input,
            delivery,
            crate::request_id::current(),
            None,
        )
        .await?;
    Ok(submitted_answer(submitted))
}

fn unauthorized(reason: String) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_signature",
        format!(
            "{reason} (the signature is X-Nova-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">, within {SIGNATURE_WINDOW_S} s)"
        ),
    )
}
