//! Workflows: runs of step plugins, submitted over HTTP, moved by the
//! queue, executed by workers, recorded step by step in the store.
//!
//! The store is the truth: the queue only says "this run may need a
//! worker". A run is executed by whoever holds its lease in the store, so
//! a duplicate or lost queue entry costs at most a wasted claim or a short
//! delay until the sweeper re-enqueues it.

mod backoff;
mod expr;
mod plan;
mod sweeper;
mod triggers;
mod waiters;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use nova_client::types as wire;
use serde_json::Value;

use crate::plugins::{PluginKind, Registry};
use crate::queue::Queue;
use crate::store::{
    DefinitionRow, ListRuns, NewRun, Page, RawJson, Run, RunId, RunStatus, StepSpec, Store,
};
use plan::{Flow, Plan, StepFlow};

pub use sweeper::spawn_sweeper;
pub use triggers::{SIGNATURE_WINDOW_S, spawn_scheduler, verify_signature};
pub use waiters::Waiters;
pub use worker::{Drain, Drained, drain, spawn_workers};

/// Longest a workflow may be.
pub const MAX_STEPS: usize = plan::MAX_STEPS;
/// Largest definition, as JSON.
pub const MAX_DEFINITION_BYTES: usize = 1 << 20;

/// A workflow as the wire gives it (a submission or a saved definition),
/// checked and split into what the store keeps of each step and the run's
/// plan (none for a plain list of steps).
pub fn compose(
    steps: Vec<wire::Step>,
    output: Option<Value>,
    max_parallel: Option<u32>,
    timeout: Option<String>,
) -> Result<(Vec<StepSpec>, Option<RawJson>), WorkflowError> {
    let mut flow = Flow {
        steps: Vec::with_capacity(steps.len()),
        output,
        max_parallel,
        timeout,
    };
    let mut specs = Vec::with_capacity(steps.len());
    for (i, s) in steps.into_iter().enumerate() {
        let sleeps = s.sleep.is_some() || s.sleep_until.is_some();
        if sleeps
            && (!s.plugin.is_empty()
                || s.config.is_some()
                || s.timeout_ms.is_some()
                || s.retries.is_some())
        {
            return Err(WorkflowError::Invalid(format!(
                "steps[{i}]: a sleep step has no plugin, config, timeout_ms or retries"
            )));
        }
        if !sleeps && s.plugin.is_empty() {
            return Err(WorkflowError::Invalid(format!(
                "steps[{i}].plugin: missing: name the step's plugin (or make it a sleep or \
                 sleep_until step)"
            )));
        }
        // `retry.max` is the step's `retries`, kept with the step; the
        // rest of the policy goes with the plan.
        let (retries, retry) = match s.retry {
            Some(_) if s.retries.is_some() => {
                return Err(WorkflowError::Invalid(format!(
                    "steps[{i}].retry: give retries or retry.max, not both"
                )));
            }
            Some(mut retry) => (retry.max.take(), Some(retry)),
            None => (s.retries, None),
        };
        flow.steps.push(StepFlow {
            id: s.id.clone(),
            needs: s.needs,
            input: s.input,
            when: s.when,
            for_each: s.for_each,
            concurrency: s.concurrency,
            retry: retry.filter(|r| *r != wire::StepRetry::default()),
            sleep: s.sleep,
            sleep_until: s.sleep_until,
        });
        specs.push(StepSpec {
            id: s.id,
            plugin: s.plugin,
            config: s.config.unwrap_or_else(RawJson::empty_object),
            timeout_ms: s.timeout_ms,
            retries,
        });
    }
    Plan::check(&flow).map_err(|e| WorkflowError::Invalid(e.to_string()))?;
    let plan = if flow.is_linear() {
        None
    } else {
        let value = serde_json::to_value(&flow)
            .map_err(|e| WorkflowError::Invalid(format!("the workflow: {e}")))?;
        Some(RawJson::from_value(&value))
    };
    Ok((specs, plan))
}

/// The checked plan of a stored run: its flow, or a plain list of steps.
fn plan_of(run: &Run) -> Result<Plan, String> {
    let flow = match &run.plan {
        Some(text) => serde_json::from_str::<Flow>(text.get()).map_err(|e| e.to_string())?,
        None => Flow::linear(run.steps.len()),
    };
    if flow.steps.len() != run.steps.len() {
        return Err(format!(
            "it has {} steps and the run {}",
            flow.steps.len(),
            run.steps.len()
        ));
    }
    Plan::check(&flow).map_err(|e| e.to_string())
}

/// A definition's name: what a URL path segment carries as is.
fn check_definition_name(name: &str) -> Result<(), WorkflowError> {
    let valid = (1..=128).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(())
    } else {
        Err(WorkflowError::Invalid(format!(
            "{name:?} is not a definition name: a letter or digit, then letters, digits, \
             '_', '-' and '.' (at most 128)"
        )))
    }
}

fn no_definition(name: &str, version: Option<u32>) -> WorkflowError {
    WorkflowError::NoDefinition(match version {
        Some(v) => format!("no definition {name:?} at version {v}"),
        None => format!("no definition {name:?}"),
    })
}

fn parse_saved(row: &DefinitionRow) -> Result<wire::Definition, WorkflowError> {
    serde_json::from_str(row.body.get()).map_err(|e| {
        WorkflowError::Store(crate::store::StoreError::Corrupt(format!(
            "definition {:?} version {}: {e}",
            row.name, row.version
        )))
    })
}
/// Most retries a step may ask for.
pub const MAX_RETRIES: u32 = 10;
/// Longest `?wait=` a request may hold.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// Bounds on what runs keep, and on what reading them costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// A run's input, as submitted.
    pub input_bytes: usize,
    /// Everything a run keeps: its input, its steps' configs, outputs and
    /// errors, and its output. A step whose output would pass it fails.
    pub run_bytes: u64,
    /// An error message kept for a step or a run; longer ones are cut.
    pub error_bytes: usize,
    /// The inputs and outputs one page of `GET /workflows` may hold.
    pub page_bytes: u64,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            input_bytes: 1 << 20,
            run_bytes: 16 << 20,
            error_bytes: 8 << 10,
            page_bytes: 8 << 20,
        }
    }
}

#[derive(Debug, Clone)]
pub struct WorkflowConfig {
    /// Runs one worker process executes at once.
    pub concurrency: usize,
    /// How long a claimed run stays leased without a renewal; a worker that
    /// dies loses its runs to another after this.
    pub lease: Duration,
    /// First retry delay; doubles per retry, with jitter, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How often the sweeper looks for runs the queue lost.
    pub sweep_every: Duration,
    /// How long finished runs are kept; none: forever.
    pub retention: Option<Duration>,
    pub limits: RunLimits,
}

impl Default for WorkflowConfig {
    fn default() -> Self {
        WorkflowConfig {
            concurrency: 16,
            lease: Duration::from_secs(15),
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            sweep_every: Duration::from_secs(2),
            retention: None,
            limits: RunLimits::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("{0}")]
    Invalid(String),
    /// No saved definition by that name (and version).
    #[error("{0}")]
    NoDefinition(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
}

/// What the API needs: submit, read, list, cancel.
#[derive(Clone)]
pub struct Workflows {
    pub store: Store,
    pub queue: Queue,
    pub registry: Arc<Registry>,
    pub config: WorkflowConfig,
    /// Requests waiting for runs to finish (`?wait=`).
    pub waiters: Waiters,
}

/// The result of a submission: the run, and whether it is new (false when
/// an idempotency key matched an earlier run).
pub struct Submitted {
    pub run: Run,
    pub created: bool,
}

impl Workflows {
    /// Checks a submission against the plugins that serve now, stores it
    /// and enqueues it.
    pub async fn submit(&self, new: NewRun) -> Result<Submitted, WorkflowError> {
        if let Some(key) = &new.idempotency_key {
            if key.is_empty() || key.len() > 256 {
                return Err(WorkflowError::Invalid(
                    "idempotency_key must be 1 to 256 bytes".into(),
                ));
            }
            // A repeat returns the run it made, even if the workflow would
            // no longer validate (its plugin removed since, say).
            if let Some(run) = self.store.run_by_idempotency_key(key).await? {
                return Ok(Submitted {
                    run,
                    created: false,
                });
            }
        }
        self.validate(&new)?;
        let (run, created) = self.store.create_run(new).await?;
        if created {
            // If this fails the run stays queued in the store, and the
            // sweeper enqueues it; the submission itself succeeded.
            if let Err(e) = self.queue.enqueue(run.id).await {
                tracing::warn!(run = %run.id, error = %e, "enqueue failed; the sweeper will retry");
            }
        }
        Ok(Submitted { run, created })
    }

    fn validate(&self, new: &NewRun) -> Result<(), WorkflowError> {
        let limits = &self.config.limits;
        if new.input.len() > limits.input_bytes {
            return Err(WorkflowError::Invalid(format!(
                "the input is {} bytes; the limit is {} (limits.run_input_bytes)",
                new.input.len(),
                limits.input_bytes
            )));
        }
        let stored = new.input.len()
            + new.plan.as_ref().map_or(0, RawJson::len)
            + new.steps.iter().map(|s| s.config.len()).sum::<usize>();
        if stored as u64 > limits.run_bytes {
            return Err(WorkflowError::Invalid(format!(
                "the input and step configs are {stored} bytes; a run keeps at most {} \
                 (limits.run_bytes)",
                limits.run_bytes
            )));
        }
        new.input
            .check_numbers()
            .map_err(|e| WorkflowError::Invalid(format!("the input: {e}")))?;
        for (i, step) in new.steps.iter().enumerate() {
            step.config
                .check_numbers()
                .map_err(|e| WorkflowError::Invalid(format!("step {i}: config: {e}")))?;
        }
        let steps = &new.steps;
        if steps.is_empty() {
            return Err(WorkflowError::Invalid(
                "a workflow needs at least one step".into(),
            ));
        }
        if steps.len() > MAX_STEPS {
            return Err(WorkflowError::Invalid(format!(
                "a workflow has at most {MAX_STEPS} steps, this one has {}",
                steps.len()
            )));
        }
        for (i, step) in steps.iter().enumerate() {
            // A sleep step (compose let no other step go without a plugin).
            if step.plugin.is_empty() {
                continue;
            }
            let Some(plugin) = self.registry.get(&step.plugin) else {
                return Err(WorkflowError::Invalid(format!(
                    "step {i}: no plugin named {:?}",
                    step.plugin
                )));
            };
            if plugin.kind != PluginKind::Step {
                return Err(WorkflowError::Invalid(format!(
                    "step {i}: {:?} is a {}, not a step",
                    step.plugin,
                    plugin.kind.as_str()
                )));
            }
            if !(step.config.is_object() || step.config.is_null()) {
                return Err(WorkflowError::Invalid(format!(
                    "step {i}: config must be a JSON object"
                )));
            }
            plugin.check_config(step.config.get()).map_err(|e| {
                WorkflowError::Invalid(format!(
                    "step {i}: config does not match {:?}'s schema: {e}",
                    step.plugin
                ))
            })?;
            if step.retries.is_some_and(|r| r > MAX_RETRIES) {
                return Err(WorkflowError::Invalid(format!(
                    "step {i}: retries must be at most {MAX_RETRIES}"
                )));
            }
            if step
                .timeout_ms
                .is_some_and(|t| t == 0 || t > crate::plugins::MAX_TIMEOUT_MS)
            {
                return Err(WorkflowError::Invalid(format!(
                    "step {i}: timeout_ms must be between 1 and {}",
                    crate::plugins::MAX_TIMEOUT_MS
                )));
            }
        }
        Ok(())
    }

    /// Saves `definition` as the next version of `name`, once it checks
    /// out as a run would; the version.
    pub async fn save_definition(
        &self,
        name: &str,
        definition: &wire::Definition,
    ) -> Result<u32, WorkflowError> {
        check_definition_name(name)?;
        let body = serde_json::to_value(definition)
            .map(|v| RawJson::from_value(&v))
            .map_err(|e| WorkflowError::Invalid(format!("the definition: {e}")))?;
        if body.len() > MAX_DEFINITION_BYTES {
            return Err(WorkflowError::Invalid(format!(
                "the definition is {} bytes as JSON; the limit is {MAX_DEFINITION_BYTES}",
                body.len()
            )));
        }
        let (steps, plan) = compose(
            definition.steps.clone(),
            definition.output.clone(),
            definition.max_parallel,
            definition.timeout.clone(),
        )?;
        self.validate(&NewRun {
            steps,
            input: RawJson::null(),
            idempotency_key: None,
            request_id: None,
            definition: None,
            plan,
            scheduled_for: None,
        })?;
        let cadence = definition
            .schedule
            .as_ref()
            .map(triggers::Cadence::parse)
            .transpose()
            .map_err(WorkflowError::Invalid)?;
        if let Some(hook) = &definition.webhook {
            let known = self
                .store
                .secret_get_many(std::slice::from_ref(&hook.secret))
                .await?;
            if known.is_empty() {
                return Err(WorkflowError::Invalid(format!(
                    "webhook.secret: no secret named {:?}: set it first (PUT /admin/secrets/{{name}}, \
                     nova secrets set)",
                    hook.secret
                )));
            }
        }
        let version = self.store.definition_put(name, &body).await?;
        // The schedule follows the latest version: from the next tick on.
        match cadence.and_then(|c| c.next_after(crate::store::now_ms())) {
            Some(next) => self.store.schedule_set(name, next).await?,
            None => self.store.schedule_delete(name).await?,
        }
        Ok(version)
    }

    /// Version `version` (the latest when none) of definition `name`, with
    /// the definition read back.
    pub async fn definition(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<(DefinitionRow, wire::Definition), WorkflowError> {
        let row = self
            .store
            .definition_get(name, version)
            .await?
            .ok_or_else(|| no_definition(name, version))?;
        let definition = parse_saved(&row)?;
        Ok((row, definition))
    }

    /// The latest version of every saved definition.
    pub async fn definitions(
        &self,
    ) -> Result<Vec<(DefinitionRow, wire::Definition)>, WorkflowError> {
        let rows = self.store.definition_list().await?;
        rows.into_iter()
            .map(|row| {
                let definition = parse_saved(&row)?;
                Ok((row, definition))
            })
            .collect()
    }

    /// Deletes definition `name`; false if there was none.
    pub async fn delete_definition(&self, name: &str) -> Result<bool, WorkflowError> {
        Ok(self.store.definition_delete(name).await?)
    }

    /// Starts a run of definition `name` at `version` (the latest when
    /// none), recording the name and version.
    pub async fn run_definition(
        &self,
        name: &str,
        version: Option<u32>,
        input: RawJson,
        idempotency_key: Option<String>,
        request_id: Option<String>,
    ) -> Result<Submitted, WorkflowError> {
        let (row, definition) = match self.definition(name, version).await {
            Ok(found) => found,
            // A repeat returns the run it made, even once the definition
            // is gone.
            Err(WorkflowError::NoDefinition(missing)) => {
                if let Some(key) = &idempotency_key
                    && let Some(run) = self.store.run_by_idempotency_key(key).await?
                {
                    return Ok(Submitted {
                        run,
                        created: false,
                    });
                }
                return Err(WorkflowError::NoDefinition(missing));
            }
            Err(e) => return Err(e),
        };
        self.start_saved(row, definition, input, idempotency_key, request_id, None)
            .await
    }

    /// Starts a run of a definition already read (`row` and its
    /// `definition`), recording its name, version and the schedule tick
    /// that starts it, if one does. An idempotency key already used
    /// returns that run.
    pub async fn start_saved(
        &self,
        row: DefinitionRow,
        definition: wire::Definition,
        input: RawJson,
        idempotency_key: Option<String>,
        request_id: Option<String>,
        scheduled_for: Option<i64>,
    ) -> Result<Submitted, WorkflowError> {
        let (steps, plan) = compose(
            definition.steps,
            definition.output,
            definition.max_parallel,
            definition.timeout,
        )?;
        self.submit(NewRun {
            steps,
            input,
            idempotency_key,
            request_id,
            definition: Some((row.name, row.version)),
            plan,
            scheduled_for,
        })
        .await
    }

    /// Resumes a failed or cancelled run from its unfinished steps,
    /// keeping the outputs of finished ones. `Ok(None)`: no such run;
    /// `Ok(Some(status))` with the status it kept when it was neither
    /// failed nor cancelled.
    pub async fn retry(&self, id: RunId) -> Result<Option<RunStatus>, WorkflowError> {
        let Some(status) = self.store.status_of(id).await? else {
            return Ok(None);
        };
        if !matches!(status, RunStatus::Failed | RunStatus::Cancelled) {
            return Ok(Some(status));
        }
        if !self.store.retry_run(id).await? {
            // Retried (or gone) in between.
            return Ok(self.store.status_of(id).await?);
        }
        tracing::info!(run = %id, "run retried");
        if let Err(e) = self.queue.enqueue(id).await {
            tracing::warn!(run = %id, error = %e, "enqueue failed; the sweeper will retry");
        }
        Ok(Some(RunStatus::Queued))
    }

    /// Starts a new run with the same steps, plan, definition version and
    /// input as run `id`; none if there is no such run.
    pub async fn rerun(
        &self,
        id: RunId,
        request_id: Option<String>,
    ) -> Result<Option<Submitted>, WorkflowError> {
        let Some(run) = self.store.get_run(id).await? else {
            return Ok(None);
        };
        let definition = run.definition.zip(run.definition_version);
        let steps = run
            .steps
            .into_iter()
            .map(|s| StepSpec {
                id: s.id,
                plugin: s.plugin,
                config: s.config,
                timeout_ms: s.timeout_ms,
                retries: s.retries,
            })
            .collect();
        let new = NewRun {
            steps,
            input: run.input,
            idempotency_key: None,
            request_id,
            definition,
            plan: run.plan,
            scheduled_for: None,
        };
        self.submit(new).await.map(Some)
    }

    pub async fn get(&self, id: RunId) -> Result<Option<Run>, WorkflowError> {
        Ok(self.store.get_run(id).await?)
    }

    /// Waits until the run has finished, at most `wait`. The finished run
    /// when a worker of this host handed it over as it finished; otherwise
    /// none, and the caller reads it.
    pub async fn wait(&self, id: RunId, wait: Duration) -> Result<Option<Run>, WorkflowError> {
        let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
        // Watched before the status is read, so a finish in between is not
        // missed.
        let mut watch = self.waiters.watch(id);
        if let Some(status) = self.store.status_of(id).await?
            && !status.is_terminal()
            && let Ok(Some(run)) = tokio::time::timeout_at(deadline, watch.finished()).await
        {
            // Finished here, and handed over by the worker: no read needed.
            return Ok(Some(Arc::unwrap_or_clone(run)));
        }
        Ok(None)
    }

    /// A page of run summaries, without their JSON (see
    /// [`Workflows::fill_page`]).
    pub async fn list(&self, query: ListRuns) -> Result<Page, WorkflowError> {
        Ok(self.store.list_runs(query).await?)
    }

    /// Reads the inputs and outputs a page measured.
    pub async fn fill_page(
        &self,
        page: &mut Page,
        input: bool,
        output: bool,
    ) -> Result<(), WorkflowError> {
        Ok(self.store.fill_page(page, input, output).await?)
    }

    /// What reading run `id` costs, in bytes; none: no such run.
    pub async fn size(&self, id: RunId) -> Result<Option<u64>, WorkflowError> {
        Ok(self.store.run_size(id).await?)
    }

    /// Cancels run `id`; its status after that, none if unknown.
    pub async fn cancel(&self, id: RunId) -> Result<Option<RunStatus>, WorkflowError> {
        let status = self.store.request_cancel(id).await?;
        // A queued run is cancelled at once; a running one when its worker
        // sees the request (and announces it then).
        if status.is_some_and(RunStatus::is_terminal) {
            self.waiters.announce(id);
        }
        // A run parked while its steps sleep is due now: queue it, so a
        // worker ends it at once rather than at the next sweep. (A leased
        // run's worker sees the request itself; the extra delivery finds
        // it leased.)
        if status == Some(RunStatus::Running)
            && let Err(e) = self.queue.enqueue(id).await
        {
            tracing::debug!(run = %id, error = %e, "cannot queue a cancelled run; the sweeper will");
        }
        Ok(status)
    }
}
