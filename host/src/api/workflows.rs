//! `/workflows`: submit, follow, list and cancel runs.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::auth::{Need, scope};
use super::body::{HELD_COPIES, held_bytes};
use super::error::{ApiError, ErrorBody};
use super::{AppState, JsonBody};
use crate::store::{ListRuns, NewRun, RawJson, Run, RunId, RunStatus, RunSummary, Step};
use crate::time::rfc3339_ms;
use crate::workflow::{MAX_WAIT, WorkflowError, Workflows, compose};
use nova_client::types as wire;
use tokio::sync::OwnedSemaphorePermit;

pub(super) fn workflows(state: &AppState) -> Result<&Workflows, ApiError> {
    state.workflows.as_ref().ok_or_else(|| {
        ApiError::not_found(
            "not_found",
            "this host does not serve workflows (it runs with --role worker)",
        )
    })
}

/// Submits a workflow run.
#[utoipa::path(
    post,
    path = "/workflows",
    operation_id = "submit_run",
    tag = "workflows",
    security(("bearer" = ["runs:write"])),
    request_body = wire::Workflow,
    responses(
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `runs:write` scope", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "The body is not `application/json`", body = ErrorBody),
        (status = ACCEPTED, description = "Run created and queued", body = wire::Submitted),
        (status = OK, description = "A run with this idempotency key exists: that run", body = wire::Submitted),
        (status = BAD_REQUEST, description = "Body is not JSON or not a valid workflow (`invalid_json`, `invalid_request`, `invalid_workflow`)", body = ErrorBody),
        (status = NOT_FOUND, description = "This host does not serve workflows (`--role worker`)", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "Body over the JSON body limit", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Store or queue unreachable (`store_unavailable`, `queue_unavailable`)", body = ErrorBody),
    )
)]
pub async fn submit(
    _: Need<scope::RunsWrite>,
    State(state): State<AppState>,
    JsonBody(request): JsonBody<wire::Workflow>,
) -> Result<(StatusCode, Json<wire::Submitted>), ApiError> {
    let wf = workflows(&state)?;
    let (steps, plan) = compose(
        request.steps,
        request.output,
        request.max_parallel,
        request.timeout,
    )?;
    let new = NewRun {
        steps,
        input: request.input.unwrap_or_else(RawJson::null),
        idempotency_key: request.idempotency_key,
        request_id: crate::request_id::current(),
        definition: None,
        plan,
        scheduled_for: None,
    };
    let submitted = wf.submit(new).await?;
    Ok(submitted_answer(submitted))
}

pub(super) fn submitted_answer(
    submitted: crate::workflow::Submitted,
) -> (StatusCode, Json<wire::Submitted>) {
    let status = if submitted.created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    (
        status,
        Json(wire::Submitted {
            id: submitted.run.id.to_string(),
            status: submitted.run.status,
            created: submitted.created,
        }),
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitParams {
    /// Seconds to hold the request until the run finishes (at most 60).
    #[param(minimum = 0, maximum = 60)]
    wait: Option<f64>,
}

/// A run and its steps; with `wait`, once it finishes or the wait is over.
#[utoipa::path(
    get,
    path = "/workflows/{id}",
    operation_id = "get_run",
    tag = "workflows",
    security(("bearer" = ["runs:read"])),
    params(("id" = String, Path, format = "uuid", description = "The run's id"), WaitParams),
    responses(
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `runs:read` scope", body = ErrorBody),
        (status = OK, description = "The run", body = wire::Run),
        (status = BAD_REQUEST, description = "Not a run id (`invalid_id`), or `wait` out of range (`invalid_wait`)", body = ErrorBody),
        (status = NOT_FOUND, description = "No such run (`run_not_found`), or this host does not serve workflows", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Store unreachable", body = ErrorBody),
    )
)]
pub async fn get(
    _: Need<scope::RunsRead>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<WaitParams>,
) -> Result<Response, ApiError> {
    let wf = workflows(&state)?;
    let id = run_id(&id)?;
    let handed = match params.wait {
        Some(secs) if !(0.0..=MAX_WAIT.as_secs_f64()).contains(&secs) => {
            return Err(ApiError::bad_request(
                "invalid_wait",
                format!("wait must be between 0 and {} seconds", MAX_WAIT.as_secs()),
            ));
        }
        Some(secs) => wf.wait(id, Duration::from_secs_f64(secs)).await?,
        None => None,
    };
    read_run(&state, wf, id, handed).await
}

/// The run as an answer, holding what it costs in the memory budget while
/// it is read and written out: the run (`handed` over by a worker, or read
/// from the store), the rows it was read from and its JSON text.
async fn read_run(
    state: &AppState,
    wf: &Workflows,
    id: RunId,
    handed: Option<Run>,
) -> Result<Response, ApiError> {
    let (run, held) = match handed {
        Some(run) => {
            let held = state
                .budget
                .hold(HELD_COPIES * run.stored_bytes() as usize)
                .await?;
            (run, held)
        }
        None => {
            let size = wf.size(id).await?.ok_or_else(|| unknown(id))?;
            let held = state.budget.hold(HELD_COPIES * size as usize).await?;
            let run = wf.get(id).await?.ok_or_else(|| unknown(id))?;
            (run, held)
        }
    };
    let size = run.stored_bytes() as usize;
    json_answer(StatusCode::OK, &run_view(run), size, held)
}

/// `value` written out as the answer's body, which keeps `held` until it is
/// sent; `size` is about as long as it will be, so the buffer is not grown
/// by copies.
fn json_answer(
    status: StatusCode,
    value: &impl Serialize,
    size: usize,
    held: OwnedSemaphorePermit,
) -> Result<Response, ApiError> {
    let mut body = Vec::with_capacity(size + 4096);
    serde_json::to_writer(&mut body, value).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("cannot write the answer: {e}"),
        )
    })?;
    Ok((
        status,
        [(header::CONTENT_TYPE, "application/json")],
        held_bytes(body, held),
    )
        .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only runs in this state: queued, running, succeeded, failed or
    /// cancelled.
    #[param(pattern = r"^(queued|running|succeeded|failed|cancelled)?$")]
    status: Option<String>,
    /// Only runs of this saved definition.
    definition: Option<String>,
    /// Runs per page, 1 to 100 (20 when absent).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// A previous page's `next_cursor`.
    #[param(format = "uuid")]
    cursor: Option<String>,
    /// `input`, `output`, or `input,output`: include each run's input or
    /// output. A page then ends early, with a `next_cursor`, before the run
    /// that would take it past `limits.page_bytes` (8 MiB by default).
    #[param(pattern = r"^\s*(input|output)?\s*(,\s*(input|output)?\s*)*$")]
    include: Option<String>,
}

/// Lists runs, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/workflows",
    operation_id = "list_runs",
    tag = "workflows",
    security(("bearer" = ["runs:read"])),
    params(ListParams),
    responses(
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `runs:read` scope", body = ErrorBody),
        (status = OK, description = "One page of runs", body = wire::RunPage),
        (status = BAD_REQUEST, description = "Bad `status` (`invalid_status`), `limit` (`invalid_limit`) or `cursor` (`invalid_id`)", body = ErrorBody),
        (status = NOT_FOUND, description = "This host does not serve workflows", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Store unreachable", body = ErrorBody),
    )
)]
pub async fn list(
    _: Need<scope::RunsRead>,
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
    let (mut input, mut output) = (false, false);
    for part in params.include.as_deref().unwrap_or("").split(',') {
        match part.trim() {
            "" => {}
            "input" => input = true,
            "output" => output = true,
            other => {
                return Err(ApiError::bad_request(
                    "invalid_include",
                    format!("include takes input and output, not {other:?}"),
                ));
            }
        }
    }
    let mut page = wf
        .list(ListRuns {
            status,
            definition: params.definition.filter(|d| !d.is_empty()),
            limit,
            cursor,
            input,
            output,
            max_bytes: wf.config.limits.page_bytes,
        })
        .await?;
    let size = page.json_bytes() as usize;
    let held = state.budget.hold(HELD_COPIES * size).await?;
    wf.fill_page(&mut page, input, output).await?;
    let view = wire::RunPage {
        runs: page
            .runs
            .into_iter()
            .map(|r| summary_view(r, input, output))
            .collect(),
        next_cursor: page.next_cursor.map(|id| id.to_string()),
    };
    json_answer(StatusCode::OK, &view, size, held)
}

/// Cancels a run: at once when queued, after its current step when running.
#[utoipa::path(
    post,
    path = "/workflows/{id}/cancel",
    operation_id = "cancel_run",
    tag = "workflows",
    security(("bearer" = ["runs:write"])),
    params(("id" = String, Path, format = "uuid", description = "The run's id")),
    responses(
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `runs:write` scope", body = ErrorBody),
        (status = OK, description = "The run, cancelled or with `cancel_requested` set", body = wire::Run),
        (status = BAD_REQUEST, description = "Not a run id (`invalid_id`)", body = ErrorBody),
        (status = NOT_FOUND, description = "No such run (`run_not_found`), or this host does not serve workflows", body = ErrorBody),
        (status = CONFLICT, description = "The run already succeeded or failed (`run_finished`)", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Store or queue unreachable", body = ErrorBody),
    )
)]
pub async fn cancel(
    _: Need<scope::RunsWrite>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let wf = workflows(&state)?;
    let id = run_id(&id)?;
    let status = wf.cancel(id).await?.ok_or_else(|| unknown(id))?;
    if status.is_terminal() && status != RunStatus::Cancelled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "run_finished",
            format!("run {id} already {}", status.as_str()),
        ));
    }
    read_run(&state, wf, id, None).await
}

/// Resumes a failed or cancelled run from its unfinished steps.
#[utoipa::path(
    post,
    path = "/workflows/{id}/retry",
    operation_id = "retry_run",
    tag = "workflows",
    security(("bearer" = ["runs:write"])),
    params(("id" = String, Path, format = "uuid", description = "The run's id")),
    responses(
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `runs:write` scope", body = ErrorBody),
        (status = OK, description = "The run, queued again: its failed, cancelled and unstarted steps pending (attempts from 0), its finished steps kept", body = wire::Run),
        (status = BAD_REQUEST, description = "Not a run id (`invalid_id`)", body = ErrorBody),
        (status = NOT_FOUND, description = "No such run (`run_not_found`), or this host does not serve workflows", body = ErrorBody),
        (status = CONFLICT, description = "The run is not failed or cancelled (`run_not_retryable`)", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Store or queue unreachable", body = ErrorBody),
    )
)]
pub async fn retry(
    _: Need<scope::RunsWrite>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let wf = workflows(&state)?;
    let id = run_id(&id)?;
    let status = wf.retry(id).await?.ok_or_else(|| unknown(id))?;
    if status != RunStatus::Queued {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "run_not_retryable",
            format!(
                "run {id} is {}: only a failed or cancelled run can be retried",
                status.as_str()
            ),
        ));
    }
    read_run(&state, wf, id, None).await
}

/// Starts a new run with the same steps, definition version and input.
#[utoipa::path(
    post,
    path = "/workflows/{id}/rerun",
    operation_id = "rerun",
    tag = "workflows",
    security(("bearer" = ["runs:write"])),
    params(("id" = String, Path, format = "uuid", description = "The run to repeat")),
    responses(
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `runs:write` scope", body = ErrorBody),
        (status = ACCEPTED, description = "The new run, queued", body = wire::Submitted),
        (status = BAD_REQUEST, description = "Not a run id (`invalid_id`), or the workflow no longer validates (a plugin removed since: `invalid_workflow`)", body = ErrorBody),
        (status = NOT_FOUND, description = "No such run (`run_not_found`), or this host does not serve workflows", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Store or queue unreachable", body = ErrorBody),
    )
)]
pub async fn rerun(
    _: Need<scope::RunsWrite>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<wire::Submitted>), ApiError> {
    let wf = workflows(&state)?;
    let id = run_id(&id)?;
    let submitted = wf
        .rerun(id, crate::request_id::current())
        .await?
        .ok_or_else(|| unknown(id))?;
    Ok(submitted_answer(submitted))
}

fn run_id(text: &str) -> Result<RunId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{text:?} is not a run id")))
}

fn unknown(id: RunId) -> ApiError {
    ApiError::not_found("run_not_found", format!("no run {id}"))
}

fn time(ms: Option<i64>) -> Option<String> {
    ms.map(rfc3339_ms)
}

fn step_view(s: Step) -> wire::StepRun {
    wire::StepRun {
        id: s.id.unwrap_or_else(|| format!("step{}", s.index)),
        input: s.input,
        items: s
            .items
            .and_then(|items| serde_json::from_str(items.get()).ok()),
        wake_at: time(s.wake_at),
        index: s.index,
        plugin: s.plugin,
        plugin_version: s.plugin_version,
        config: s.config,
        timeout_ms: s.timeout_ms,
        retries: s.retries,
        status: s.status,
        attempts: s.attempts,
        output: s.output.unwrap_or_default(),
        error: s.error,
        started_at: time(s.started_at),
        finished_at: time(s.finished_at),
        duration_ms: s.duration_ms,
    }
}

/// The API's view of a run; it takes the run, so its JSON is moved, not
/// copied.
fn run_view(run: Run) -> wire::Run {
    wire::Run {
        id: run.id.to_string(),
        status: run.status,
        input: run.input,
        output: run.output.unwrap_or_default(),
        error: run.error,
        idempotency_key: run.idempotency_key,
        cancel_requested: run.cancel_requested,
        created_at: time(Some(run.created_at)),
        started_at: time(run.started_at),
        finished_at: time(run.finished_at),
        definition: run.definition,
        definition_version: run.definition_version,
        scheduled_for: time(run.scheduled_for),
        steps: run.steps.into_iter().map(step_view).collect(),
    }
}

fn summary_view(run: RunSummary, input: bool, output: bool) -> wire::RunSummary {
    wire::RunSummary {
        id: run.id.to_string(),
        status: run.status,
        error: run.error,
        idempotency_key: run.idempotency_key,
        cancel_requested: run.cancel_requested,
        created_at: time(Some(run.created_at)),
        started_at: time(run.started_at),
        finished_at: time(run.finished_at),
        definition: run.definition,
        definition_version: run.definition_version,
        step_count: run.step_count,
        input: if input { run.input } else { None },
        output: output.then(|| run.output.unwrap_or_default()),
    }
}

impl From<WorkflowError> for ApiError {
    fn from(e: WorkflowError) -> Self {
        match e {
            WorkflowError::Invalid(message) => ApiError::bad_request("invalid_workflow", message),
            WorkflowError::NoDefinition(message) => {
                ApiError::not_found("definition_not_found", message)
            }
            // Input the store cannot hold (a NUL character, say) is the
            // caller's to fix, not an outage.
            WorkflowError::Store(crate::store::StoreError::Invalid(message)) => {
                ApiError::bad_request("invalid_workflow", message)
            }
            WorkflowError::Store(e) => {
                tracing::error!(error = %e, "store error");
                ApiError::store_unavailable(e)
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
