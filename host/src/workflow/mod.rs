//! Workflows: runs of step plugins, submitted over HTTP, moved by the
//! queue, executed by workers, recorded step by step in the store.
//!
//! The store is the truth: the queue only says "this run may need a
//! worker". A run is executed by whoever holds its lease in the store, so
//! a duplicate or lost queue entry costs at most a wasted claim or a short
//! delay until the sweeper re-enqueues it.

mod backoff;
mod sweeper;
mod waiters;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use crate::plugins::{PluginKind, Registry};
use crate::queue::Queue;
use crate::store::{ListRuns, NewRun, Page, Run, RunId, RunStatus, Store};

pub use sweeper::spawn_sweeper;
pub use waiters::Waiters;
pub use worker::{Drain, Drained, drain, spawn_workers};

/// Longest a workflow may be.
pub const MAX_STEPS: usize = 64;
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
        let stored = new.input.len() + new.steps.iter().map(|s| s.config.len()).sum::<usize>();
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
        Ok(status)
    }
}
