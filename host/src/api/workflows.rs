//! `/workflows`: submit, follow, list and cancel runs.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::{AppState, json_response, parse_json, rfc3339};
use crate::store::{ListRuns, NewRun, Run, RunId, RunStatus, StepSpec};
use crate::workflow::{MAX_WAIT, WorkflowError, Workflows};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitRequest {
    steps: Vec<StepRequest>,
    #[serde(default)]
    input: Value,
    idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepRequest {
    plugin: String,
    #[serde(default)]
    config: Value,
    timeout_ms: Option<u64>,
    retries: Option<u32>,
}

fn workflows(state: &AppState) -> Result<&Workflows, ApiError> {
    state.workflows.as_ref().ok_or_else(|| {
        ApiError::not_found(
            "not_found",
            "this host does not serve workflows (it runs with --role worker)",
        )
    })
}

pub async fn submit(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let wf = workflows(&state)?;
    let request: SubmitRequest = parse_json(&body?)?;
    let new = NewRun {
        steps: request
            .steps
            .into_iter()
            .map(|s| StepSpec {
                plugin: s.plugin,
                config: s.config,
                timeout_ms: s.timeout_ms,
                retries: s.retries,
            })
            .collect(),
        input: request.input,
        idempotency_key: request.idempotency_key,
        request_id: crate::request_id::current(),
    };
    let submitted = wf.submit(new).await?;
    let status = if submitted.created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(json_response(
        status,
        &json!({"id": submitted.run.id, "status": submitted.run.status}),
    ))
}

#[derive(Debug, Deserialize)]
pub struct WaitParams {
    /// Seconds to hold the request until the run finishes (at most 60).
    wait: Option<f64>,
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<WaitParams>,
) -> Result<Response, ApiError> {
    let wf = workflows(&state)?;
    let id = run_id(&id)?;
    let run = match params.wait {
        Some(secs) if !(0.0..=MAX_WAIT.as_secs_f64()).contains(&secs) => {
            return Err(ApiError::bad_request(
                "invalid_wait",
                format!("wait must be between 0 and {} seconds", MAX_WAIT.as_secs()),
            ));
        }
        Some(secs) => wf.wait(id, Duration::from_secs_f64(secs)).await?,
        None => wf.get(id).await?,
    };
    let run = run.ok_or_else(|| unknown(id))?;
    Ok(json_response(StatusCode::OK, &run_json(&run)))
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    status: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let wf = workflows(&state)?;
    let status = match params.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse::<RunStatus>().map_err(|_| {
            ApiError::bad_request(
                "invalid_status",
                format!(
                    "status must be one of queued, running, succeeded, failed, cancelled; not {s:?}"
                ),
            )
        })?),
    };
    let limit = params.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            "limit must be between 1 and 100",
        ));
    }
    let cursor = params.cursor.as_deref().map(run_id).transpose()?;
    let page = wf
        .list(ListRuns {
            status,
            limit,
            cursor,
        })
        .await?;
    let runs: Vec<Value> = page.runs.iter().map(run_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"runs": runs, "next_cursor": page.next_cursor}),
    ))
}

pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let wf = workflows(&state)?;
    let id = run_id(&id)?;
    let run = wf.cancel(id).await?.ok_or_else(|| unknown(id))?;
    if run.status.is_terminal() && run.status != RunStatus::Cancelled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "run_finished",
            format!("run {id} already {}", run.status.as_str()),
        ));
    }
    Ok(json_response(StatusCode::OK, &run_json(&run)))
}

fn run_id(text: &str) -> Result<RunId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{text:?} is not a run id")))
}

fn unknown(id: RunId) -> ApiError {
    ApiError::not_found("run_not_found", format!("no run {id}"))
}

fn time(ms: Option<i64>) -> Value {
    ms.and_then(|ms| u64::try_from(ms).ok())
        .map(|ms| json!(rfc3339(std::time::UNIX_EPOCH + Duration::from_millis(ms))))
        .unwrap_or(Value::Null)
}

/// A run as the API shows it: timestamps in RFC 3339.
fn run_json(run: &Run) -> Value {
    let steps: Vec<Value> = run
        .steps
        .iter()
        .map(|s| {
            json!({
                "index": s.index,
                "plugin": s.plugin,
                "plugin_version": s.plugin_version,
                "config": s.config,
                "timeout_ms": s.timeout_ms,
                "retries": s.retries,
                "status": s.status,
                "attempts": s.attempts,
                "output": s.output,
                "error": s.error,
                "started_at": time(s.started_at),
                "finished_at": time(s.finished_at),
                "duration_ms": s.duration_ms,
            })
        })
        .collect();
    json!({
        "id": run.id,
        "status": run.status,
        "input": run.input,
        "output": run.output,
        "error": run.error,
        "idempotency_key": run.idempotency_key,
        "cancel_requested": run.cancel_requested,
        "created_at": time(Some(run.created_at)),
        "started_at": time(run.started_at),
        "finished_at": time(run.finished_at),
        "steps": steps,
    })
}

impl From<WorkflowError> for ApiError {
    fn from(e: WorkflowError) -> Self {
        match e {
            WorkflowError::Invalid(message) => ApiError::bad_request("invalid_workflow", message),
            // Input the store cannot hold (a NUL character, say) is the
            // caller's to fix, not an outage.
            WorkflowError::Store(crate::store::StoreError::Invalid(message)) => {
                ApiError::bad_request("invalid_workflow", message)
            }
            WorkflowError::Store(e) => {
                tracing::error!(error = %e, "store error");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    e.to_string(),
                )
            }
            WorkflowError::Queue(e) => {
                tracing::error!(error = %e, "queue error");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "queue_unavailable",
                    e.to_string(),
                )
            }
        }
    }
}
