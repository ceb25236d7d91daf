//! Workers: take runs from the queue, lease them in the store, and execute
//! their steps in order, checkpointing each finished step.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tracing::Instrument;

use super::{Workflows, backoff};
use crate::metrics::{self, StepOutcome as Counted};
use crate::plugins::{CallError, Plugin, PluginKind};
use crate::queue::Delivery;
use crate::store::{Claim, RawJson, Run, RunStatus, Step, StepOutcome, StepStatus, StoreError};

/// How often a running step checks whether its run was cancelled.
const CANCEL_POLL: Duration = Duration::from_millis(250);

/// Tells the workers to stop, and waits until they have.
///
/// On stop, a worker takes no new run; a run it executes finishes the step
/// in flight, is checkpointed, and is handed back (its lease released, the
/// run queued again) so another worker resumes it at once, at its next
/// step, instead of after the lease.
#[derive(Clone)]
pub struct Drain {
    stop: tokio::sync::watch::Receiver<bool>,
    /// Each worker loop holds a clone; `Drained` sees them all dropped.
    _alive: tokio::sync::mpsc::Sender<()>,
}

/// The other end of a [`Drain`]: stops the workers and waits for them.
pub struct Drained {
    stop: Arc<tokio::sync::watch::Sender<bool>>,
    alive: tokio::sync::mpsc::Receiver<()>,
}

/// A drain for the workers of this process, and its handle.
pub fn drain() -> (Drain, Drained) {
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let (alive_tx, alive) = tokio::sync::mpsc::channel(1);
    (
        Drain {
            stop,
            _alive: alive_tx,
        },
        Drained {
            stop: Arc::new(stop_tx),
            alive,
        },
    )
}

impl Drain {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }
}

impl Drained {
    /// What asks the workers to stop taking runs, for the shutdown signal.
    pub fn stopper(&self) -> impl Fn() + Send + Sync + 'static {
        let stop = self.stop.clone();
        move || {
            let _ = stop.send(true);
        }
    }

    /// Stops the workers and waits for every worker loop to end, at most
    /// `within`; true if they all did.
    pub async fn wait(mut self, within: Duration) -> bool {
        let _ = self.stop.send(true);
        tokio::time::timeout(within, self.alive.recv())
            .await
            .is_ok()
    }
}

/// Starts `concurrency` worker loops for this process, `worker/0`,
/// `worker/1`, ….
///
/// Each loop holds leases under its own name. A lease's holder may claim
/// its run again (to resume what it abandoned), so loops sharing one name
/// would both claim a run the queue delivered twice (a hand-back and the
/// sweeper, say) and run its step twice at once.
pub fn spawn_workers(workflows: Workflows, worker: String, drain: Drain) -> Vec<JoinHandle<()>> {
    (0..workflows.config.concurrency.max(1))
        .map(|i| {
            let name: Arc<str> = format!("{worker}/{i}").into();
            tokio::spawn(work_loop(workflows.clone(), name, drain.clone()))
        })
        .collect()
}

async fn work_loop(wf: Workflows, worker: Arc<str>, drain: Drain) {
    // Checked between runs: `next` returns within a second.
    while !drain.stopping() {
        let delivery = match wf.queue.next(Duration::from_secs(1)).await {
            Ok(Some(delivery)) => delivery,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "queue unavailable; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        // The step plugins serving now: the claim starts the run's next
        // step at its plugin's version, and that very plugin runs it.
        let plugins = wf.registry.active_of_kind(PluginKind::Step);
        let versions: Vec<(&str, &str)> = plugins
            .iter()
            .map(|p| (&*p.name, p.info.version.as_str()))
            .collect();
        match wf
            .store
            .claim_and_start(delivery.run_id, &worker, wf.config.lease, &versions)
            .await
        {
            Ok(Some(claim)) => {
                let started = claim.started.and_then(|index| {
                    let step = claim.run.steps.iter().find(|s| s.index == index)?;
                    let plugin = plugins.iter().find(|p| *p.name == *step.plugin)?;
                    Some(Started {
                        index,
                        attempt: step.attempts,
                        plugin: plugin.clone(),
                    })
                });
                execute(&wf, &worker, claim, started, &delivery, &drain).await;
            }
            // Finished, cancelled, or leased by a live worker: nothing to do.
            Ok(None) => {}
            Err(e) => {
                // Not acked: the entry is delivered again after the lease,
                // and the sweeper re-enqueues from the store in any case.
                tracing::warn!(run = %delivery.run_id, error = %e, "cannot claim run");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        if let Err(e) = wf.queue.ack(&delivery).await {
            tracing::debug!(run = %delivery.run_id, error = %e, "ack failed; a redelivery will find the run finished");
        }
    }
}

/// The attempt a claim started: its step, number, and the plugin (at the
/// version recorded) that runs it.
struct Started {
    index: u32,
    attempt: u32,
    plugin: Arc<Plugin>,
}

/// How a step ended, for the run.
enum StepEnd {
    Succeeded(RawJson),
    /// The run's last step succeeded, and the run was recorded finished
    /// with it.
    Completed,
    Failed(String),
    Cancelled,
    /// Another worker holds the run now (this one was too slow to renew
    /// its lease), or the store is unreachable: stop touching the run.
    Abandoned,
}

/// Renews the run's lease (and the queue entry's) while it executes; flags
/// `lost` when the lease is gone.
struct Heartbeat {
    task: JoinHandle<()>,
    lost: Arc<AtomicBool>,
}

impl Heartbeat {
    fn start(wf: &Workflows, worker: &Arc<str>, run: &Run, delivery: &Delivery) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        let (wf, worker, id, delivery, flag) = (
            wf.clone(),
            worker.clone(),
            run.id,
            delivery.clone(),
            lost.clone(),
        );
        let task = tokio::spawn(async move {
            let every = wf.config.lease / 3;
            loop {
                tokio::time::sleep(every).await;
                match wf.store.renew_lease(id, &worker, wf.config.lease).await {
                    Ok(true) => {}
                    Ok(false) => {
                        flag.store(true, Ordering::Release);
                        return;
                    }
                    Err(e) => tracing::warn!(run = %id, error = %e, "cannot renew lease"),
                }
                if let Err(e) = wf.queue.extend(&delivery).await {
                    tracing::debug!(run = %id, error = %e, "cannot extend queue entry");
                }
            }
        });
        Heartbeat { task, lost }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Executes the run under a `run{run_id, request_id}` span, so every line
/// its steps log — here or on another host — names the submitting request.
async fn execute(
    wf: &Workflows,
    worker: &Arc<str>,
    claim: Claim,
    started: Option<Started>,
    delivery: &Delivery,
    drain: &Drain,
) {
    let span = tracing::info_span!(
        "run",
        run_id = %claim.run.id,
        request_id = claim.run.request_id.as_deref(),
    );
    execute_steps(wf, worker, claim.run, started, delivery, drain)
        .instrument(span)
        .await;
}

async fn execute_steps(
    wf: &Workflows,
    worker: &Arc<str>,
    run: Run,
    mut started: Option<Started>,
    delivery: &Delivery,
    drain: &Drain,
) {
    let heartbeat = Heartbeat::start(wf, worker, &run, delivery);
    let id = run.id;
    let mut carry = Carry {
        input: run.input.clone(),
        stored: run.stored_bytes(),
    };
    for step in &run.steps {
        // The step the claim started runs even when stopping: its attempt
        // is counted, and the drain waits for it like any step in flight.
        let begun = started.take_if(|s| s.index == step.index);
        if drain.stopping() && !step.status.is_terminal() && begun.is_none() {
            hand_back(wf, worker, &run, step.index).await;
            return;
        }
        // Resuming a run claimed again after a crash: finished steps are
        // checkpointed, so their output is the next step's input.
        match step.status {
            StepStatus::Succeeded => {
                carry.input = step.output.clone().unwrap_or_else(RawJson::null);
                continue;
            }
            StepStatus::Failed => {
                let error = step.error.clone().unwrap_or_default();
                finish(
                    wf,
                    worker,
                    &run,
                    RunStatus::Failed,
                    None,
                    Some(step_error(step, &error)),
                )
                .await;
                return;
            }
            StepStatus::Cancelled => {
                finish(wf, worker, &run, RunStatus::Cancelled, None, None).await;
                return;
            }
            StepStatus::Pending | StepStatus::Running => {}
        }
        let span = tracing::info_span!("step", index = step.index, plugin = %step.plugin);
        match run_step(wf, worker, &run, step, begun, &mut carry, &heartbeat.lost)
            .instrument(span)
            .await
        {
            StepEnd::Succeeded(output) => carry.input = output,
            StepEnd::Completed => return,
            StepEnd::Failed(error) => {
                finish(
                    wf,
                    worker,
                    &run,
                    RunStatus::Failed,
                    None,
                    Some(step_error(step, &error)),
                )
                .await;
                return;
            }
            StepEnd::Cancelled => {
                finish(wf, worker, &run, RunStatus::Cancelled, None, None).await;
                return;
            }
            StepEnd::Abandoned => {
                tracing::info!(run = %id, step = step.index, "run abandoned: lease lost");
                return;
            }
        }
    }
    finish(
        wf,
        worker,
        &run,
        RunStatus::Succeeded,
        Some(carry.input),
        None,
    )
    .await;
}

/// What a run carries from one step to the next.
struct Carry {
    /// The next step's input: the last output.
    input: RawJson,
    /// The bytes the run keeps so far, held to the run limit.
    stored: u64,
}

/// The process is stopping: let another worker resume the run at step
/// `next` now, rather than once the lease has expired.
async fn hand_back(wf: &Workflows, worker: &str, run: &Run, next: u32) {
    match wf.store.release_lease(run.id, worker).await {
        Ok(true) => {
            if let Err(e) = wf.queue.enqueue(run.id).await {
                // The sweeper finds it in the store.
                tracing::warn!(run = %run.id, error = %e, "cannot re-enqueue a handed-back run");
            }
            tracing::info!(run = %run.id, next_step = next, "stopping: run handed back");
        }
        // Taken over or finished meanwhile: nothing to hand back.
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(run = %run.id, error = %e, "cannot release the lease; it expires by itself")
        }
    }
}

fn step_error(step: &Step, error: &str) -> String {
    format!("step {} ({}) failed: {error}", step.index, step.plugin)
}

/// `text` cut to at most `max` bytes (on a character boundary), saying so.
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    const MARK: &str = " … (cut)";
    let mut end = max.saturating_sub(MARK.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &text[..end])
}

async fn finish(
    wf: &Workflows,
    worker: &str,
    run: &Run,
    status: RunStatus,
    output: Option<RawJson>,
    error: Option<String>,
) {
    let error = error.map(|e| cut(&e, wf.config.limits.error_bytes));
    match wf
        .store
        .finish_run(run.id, status, output, error, Some(worker))
        .await
    {
        Ok(true) => {
            tracing::debug!(run = %run.id, status = status.as_str(), "run finished");
            wf.waiters.announce(run.id);
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(run = %run.id, error = %e, "cannot record the end of the run; it will be resumed")
        }
    }
}

/// Records the last step's success and the run's end together.
async fn complete(
    wf: &Workflows,
    worker: &str,
    run: &Run,
    step: &Step,
    output: RawJson,
    ms: f64,
) -> StepEnd {
    match wf
        .store
        .complete_run(run.id, step.index, output, ms, worker)
        .await
    {
        Ok(Some(finished)) => {
            tracing::debug!(run = %run.id, "run succeeded");
            wf.waiters.announce_run(finished);
            StepEnd::Completed
        }
        // Ended meanwhile (cancelled, say): nothing more to record.
        Ok(None) => StepEnd::Completed,
        Err(e) => abandon(run.id, e),
    }
}

/// Runs one step to its end: attempts, retries with backoff, cancellation.
/// `begun`: the first attempt, when the claim started it. The `last`
/// step's success ends the run in the same write.
async fn run_step(
    wf: &Workflows,
    worker: &Arc<str>,
    run: &Run,
    step: &Step,
    mut begun: Option<Started>,
    carry: &mut Carry,
    lost: &AtomicBool,
) -> StepEnd {
    let id = run.id;
    let last = step.index as usize + 1 == run.steps.len();
    let config = if step.config.is_null() {
        "{}"
    } else {
        step.config.get()
    };
    let input = carry.input.get();
    let retries = step.retries.unwrap_or(0);
    let timeout = step.timeout_ms.map(Duration::from_millis);
    // Tries that never ran for lack of a free instance: the host was busy,
    // not the step failing, so they are tried again without end (until the
    // run is cancelled or its lease lost), as the same attempt: they count
    // against nothing and are not recorded as attempts.
    let mut busy = 0u32;
    loop {
        // The plugin is looked up at each attempt: a version installed
        // while the run waited is the one that runs, and is recorded.
        let (plugin, attempt) = match begun.take() {
            Some(started) => (started.plugin, started.attempt),
            None => {
                let plugin = match wf.registry.get(&step.plugin) {
                    Some(p) if p.kind == PluginKind::Step => p,
                    Some(_) => {
                        return fail(wf, worker, run, step, 0.0, "the plugin is no longer a step")
                            .await;
                    }
                    None => {
                        return fail(wf, worker, run, step, 0.0, "the plugin is not loaded").await;
                    }
                };
                match wf
                    .store
                    .start_step(id, step.index, &plugin.info.version, worker)
                    .await
                {
                    Ok(attempt) => (plugin, attempt),
                    Err(e) => return abandon(id, e),
                }
            }
        };
        let start = Instant::now();
        let outcome = tokio::select! {
            result = wf.registry.runtime().run_step_within(&plugin, input, config, timeout) => Some(result),
            () = stopped(wf, id, lost) => None,
        };
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let error = match outcome {
            None if lost.load(Ordering::Acquire) => return StepEnd::Abandoned,
            // Dropping the call's future dropped its store: the instance
            // is gone, the step interrupted.
            None => return cancel(wf, worker, run, step, ms).await,
            Some(Ok(output)) => {
                // The last step's output is kept twice: as its own and the
                // run's.
                let keeps = output.len() as u64 * if last { 2 } else { 1 };
                let limit = wf.config.limits.run_bytes;
                if carry.stored.saturating_add(keeps) > limit {
                    let error = format!(
                        "its output of {} bytes would bring what the run keeps to {} bytes, \
                         over the limit of {limit} (limits.run_bytes)",
                        output.len(),
                        carry.stored.saturating_add(keeps)
                    );
                    return fail(wf, worker, run, step, ms, &error).await;
                }
                carry.stored += keeps;
                metrics::step_outcome(Counted::Succeeded);
                tracing::debug!(attempt, ms, "step succeeded");
                if last {
                    return complete(wf, worker, run, step, output, ms).await;
                }
                let outcome = StepOutcome::Succeeded {
                    output: output.clone(),
                };
                return match wf
                    .store
                    .finish_step(id, step.index, outcome, ms, worker)
                    .await
                {
                    Ok(_) => StepEnd::Succeeded(output),
                    Err(e) => abandon(id, e),
                };
            }
            Some(Err(e)) => e,
        };
        if error.is_busy() {
            busy += 1;
            let delay = backoff::delay(busy, wf.config.backoff_base, wf.config.backoff_max);
            metrics::step_outcome(Counted::Busy);
            tracing::info!(run = %id, step = step.index, attempt, ?delay, error = %error, "no free plugin instance; trying again");
            begun = Some(Started {
                index: step.index,
                attempt,
                plugin,
            });
            tokio::select! {
                () = tokio::time::sleep(delay) => continue,
                () = stopped(wf, id, lost) => {
                    if lost.load(Ordering::Acquire) {
                        return StepEnd::Abandoned;
                    }
                    return cancel(wf, worker, run, step, ms).await;
                }
            }
        }
        if retryable(&error) && attempt <= retries {
            let delay = backoff::delay(attempt, wf.config.backoff_base, wf.config.backoff_max);
            metrics::step_outcome(Counted::Retried);
            tracing::info!(run = %id, step = step.index, attempt, ?delay, error = %error, "step failed; retrying");
            tokio::select! {
                () = tokio::time::sleep(delay) => continue,
                () = stopped(wf, id, lost) => {
                    if lost.load(Ordering::Acquire) {
                        return StepEnd::Abandoned;
                    }
                    return cancel(wf, worker, run, step, ms).await;
                }
            }
        }
        return fail(wf, worker, run, step, ms, &error.to_string()).await;
    }
}

/// A plugin that reported bad or unsupported input will say the same on a
/// retry; everything else (a crash, a timeout, a busy host, a failed
/// dependency) may pass next time.
fn retryable(error: &CallError) -> bool {
    !matches!(
        error,
        CallError::InvalidInput(_) | CallError::Unsupported(_)
    )
}

/// Resolves when the run is cancelled or its lease lost.
async fn stopped(wf: &Workflows, id: crate::store::RunId, lost: &AtomicBool) {
    loop {
        tokio::time::sleep(CANCEL_POLL).await;
        if lost.load(Ordering::Acquire) || wf.store.cancel_requested(id).await.unwrap_or(false) {
            return;
        }
    }
}

async fn fail(
    wf: &Workflows,
    worker: &str,
    run: &Run,
    step: &Step,
    ms: f64,
    error: &str,
) -> StepEnd {
    let error = cut(error, wf.config.limits.error_bytes);
    let outcome = StepOutcome::Failed {
        error: error.clone(),
    };
    metrics::step_outcome(Counted::Failed);
    match wf
        .store
        .finish_step(run.id, step.index, outcome, ms, worker)
        .await
    {
        Ok(_) => StepEnd::Failed(error),
        Err(e) => abandon(run.id, e),
    }
}

async fn cancel(wf: &Workflows, worker: &str, run: &Run, step: &Step, ms: f64) -> StepEnd {
    match wf
        .store
        .finish_step(run.id, step.index, StepOutcome::Cancelled, ms, worker)
        .await
    {
        Ok(_) => StepEnd::Cancelled,
        Err(e) => abandon(run.id, e),
    }
}

fn abandon(id: crate::store::RunId, e: StoreError) -> StepEnd {
    tracing::warn!(run = %id, error = %e, "stopping work on run");
    StepEnd::Abandoned
}
