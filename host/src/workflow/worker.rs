//! Workers: take runs from the queue, lease them in the store, and execute
//! their steps as their plan orders them (in order for a plain list; each
//! step once the steps it needs are done, several at once, for a DAG),
//! checkpointing each finished step.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nova_client::types::ItemRun;
use serde_json::{Map, Value};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use super::expr::{OverBudget, truthy};
use super::plan::{Plan, Sleep, timestamp};
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

/// Why the steps in flight of a run must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Halt {
    No,
    /// Another worker holds the run now (this one was too slow to renew
    /// its lease), or the store is unreachable: stop touching the run.
    Lost,
    /// The run was cancelled.
    Cancelled,
    /// A sibling step failed: the run fails, the others stop.
    Failed,
    /// The run passed its timeout: it fails, its steps stop.
    TimedOut,
}

/// How a step ended, for the run.
enum StepEnd {
    Succeeded(RawJson),
    /// The run's last step succeeded, and the run was recorded finished
    /// with it.
    Completed,
    Failed(String),
    /// Stopped (the run cancelled, or a sibling failed) and recorded so.
    Cancelled,
    /// The lease is lost or the store unreachable: stop touching the run.
    Abandoned,
}

/// A run being executed: what its steps in flight share.
struct Exec {
    wf: Workflows,
    worker: Arc<str>,
    run: Run,
    plan: Plan,
    halt: Arc<watch::Sender<Halt>>,
    /// The bytes the run keeps so far, held to the run limit.
    stored: AtomicU64,
}

impl Exec {
    /// Resolves when the steps in flight must stop, with why.
    async fn stopped(&self) -> Halt {
        let mut halt = self.halt.subscribe();
        let why = halt.wait_for(|h| *h != Halt::No).await.map(|why| *why);
        match why {
            Ok(why) => why,
            // The sender lives as long as the run's execution.
            Err(_) => std::future::pending().await,
        }
    }

    fn halt(&self, why: Halt) {
        halt_once(&self.halt, why);
    }

    /// Counts `bytes` more that the run keeps, for `what` (`its output`) of
    /// `size` bytes; the error when that would pass the run limit.
    fn keep(&self, bytes: u64, what: &str, size: usize) -> Result<(), String> {
        let limit = self.wf.config.limits.run_bytes;
        self.stored
            .try_update(Ordering::AcqRel, Ordering::Acquire, |stored| {
                let total = stored.saturating_add(bytes);
                (total <= limit).then_some(total)
            })
            .map(|_| ())
            .map_err(|stored| {
                format!(
                    "{what} of {size} bytes would bring what the run keeps to {} bytes, \
                     over the limit of {limit} (limits.run_bytes)",
                    stored.saturating_add(bytes)
                )
            })
    }

    fn step(&self, index: usize) -> &Step {
        &self.run.steps[index]
    }

    /// The bytes the run may still keep: what an expression may build.
    fn budget(&self) -> u64 {
        self.wf
            .config
            .limits
            .run_bytes
            .saturating_sub(self.stored.load(Ordering::Acquire))
    }

    /// Why an expression's value was refused.
    fn over_budget(&self, what: &str) -> String {
        format!(
            "{what} would bring what the run keeps over the limit of {} bytes \
             (limits.run_bytes)",
            self.wf.config.limits.run_bytes
        )
    }
}

/// Halts the run's steps for `why`, unless they were halted already (the
/// first reason stands).
fn halt_once(halt: &watch::Sender<Halt>, why: Halt) {
    halt.send_if_modified(|h| {
        let first = *h == Halt::No;
        if first {
            *h = why;
        }
        first
    });
}

/// How long until `at` (unix ms); zero once it has passed.
fn until(at: i64) -> Duration {
    Duration::from_millis(u64::try_from(at.saturating_sub(crate::store::now_ms())).unwrap_or(0))
}

/// Renews the run's lease (and the queue entry's) while it executes, and
/// watches for its cancellation; halts the run's steps when the lease is
/// lost or the run cancelled.
struct Heartbeat {
    renew: JoinHandle<()>,
    cancel: JoinHandle<()>,
}

impl Heartbeat {
    fn start(
        wf: &Workflows,
        worker: &Arc<str>,
        run: &Run,
        delivery: &Delivery,
        halt: &Arc<watch::Sender<Halt>>,
    ) -> Self {
        let (wf2, worker, id, delivery, lost) = (
            wf.clone(),
            worker.clone(),
            run.id,
            delivery.clone(),
            halt.clone(),
        );
        let renew = tokio::spawn(async move {
            let wf = wf2;
            let every = wf.config.lease / 3;
            loop {
                tokio::time::sleep(every).await;
                match wf.store.renew_lease(id, &worker, wf.config.lease).await {
                    Ok(true) => {}
                    Ok(false) => {
                        lost.send_replace(Halt::Lost);
                        return;
                    }
                    Err(e) => tracing::warn!(run = %id, error = %e, "cannot renew lease"),
                }
                if let Err(e) = wf.queue.extend(&delivery).await {
                    tracing::debug!(run = %id, error = %e, "cannot extend queue entry");
                }
            }
        });
        let (wf, cancelled) = (wf.clone(), halt.clone());
        let cancel = tokio::spawn(async move {
            loop {
                tokio::time::sleep(CANCEL_POLL).await;
                if wf.store.cancel_requested(id).await.unwrap_or(false) {
                    halt_once(&cancelled, Halt::Cancelled);
                    return;
                }
            }
        });
        Heartbeat { renew, cancel }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.renew.abort();
        self.cancel.abort();
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

/// Where a step of the run stands, for the engine.
#[derive(Debug, Clone, PartialEq)]
enum State {
    /// Not done: pending, or running when the run was claimed.
    Open,
    InFlight,
    /// A sleep step waiting until `wake_at` (unix ms), then passing
    /// `output` (its input) on.
    Sleeping {
        wake_at: i64,
        output: RawJson,
    },
    Done(RawJson),
    Skipped,
}

/// A sleep due within this is waited for in the process; a longer one
/// parks the run, holding no worker.
const SLEEP_IN_PROCESS: Duration = Duration::from_secs(1);

async fn execute_steps(
    wf: &Workflows,
    worker: &Arc<str>,
    run: Run,
    mut started: Option<Started>,
    delivery: &Delivery,
    drain: &Drain,
) {
    let plan = match super::plan_of(&run) {
        Ok(plan) => plan,
        Err(e) => {
            let error = format!("the run's plan cannot be read: {e}");
            finish(wf, worker, &run, RunStatus::Failed, None, Some(error)).await;
            return;
        }
    };
    // Resuming a run claimed again after a crash: finished steps are
    // checkpointed, and a step that failed or was cancelled ends the run.
    let mut state = Vec::with_capacity(run.steps.len());
    for step in &run.steps {
        state.push(match step.status {
            StepStatus::Succeeded => Done(step.output.clone().unwrap_or_else(RawJson::null)),
            StepStatus::Skipped => State::Skipped,
            StepStatus::Failed => {
                let error = step_error(step, step.error.as_deref().unwrap_or_default());
                finish(wf, worker, &run, RunStatus::Failed, None, Some(error)).await;
                return;
            }
            StepStatus::Cancelled => {
                finish(wf, worker, &run, RunStatus::Cancelled, None, None).await;
                return;
            }
            StepStatus::Running if step.wake_at.is_some() => State::Sleeping {
                wake_at: step.wake_at.unwrap_or_default(),
                output: step.input.clone().unwrap_or_else(RawJson::null),
            },
            StepStatus::Pending | StepStatus::Running => State::Open,
        });
    }
    if run.cancel_requested {
        // Cancelled while parked (sleeping) or queued again.
        finish(wf, worker, &run, RunStatus::Cancelled, None, None).await;
        return;
    }
    use State::Done;
    let halt = Arc::new(watch::channel(Halt::No).0);
    let heartbeat = Heartbeat::start(wf, worker, &run, delivery, &halt);
    let exec = Arc::new(Exec {
        wf: wf.clone(),
        worker: worker.clone(),
        stored: AtomicU64::new(run.stored_bytes()),
        run,
        plan,
        halt,
    });
    // The run's timeout counts from its first start: a resumed run keeps
    // its deadline (unix ms).
    let deadline = exec.plan.timeout.map(|timeout| {
        let started = exec.run.started_at.unwrap_or_else(crate::store::now_ms);
        started.saturating_add(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX))
    });
    let _timer = deadline.and_then(|deadline| {
        let left = until(deadline);
        if left.is_zero() {
            exec.halt(Halt::TimedOut);
            return None;
        }
        let halt = exec.halt.clone();
        Some(AbortOnDrop(tokio::spawn(async move {
            tokio::time::sleep(left).await;
            halt_once(&halt, Halt::TimedOut);
        })))
    });
    let max_parallel = exec.plan.max_parallel as usize;
    let mut flight: JoinSet<(usize, StepEnd)> = JoinSet::new();
    let mut failure: Option<String> = None;
    let mut cancelled = false;
    let mut handing_back = false;
    loop {
        // Start every step whose needs are done, up to max_parallel; a
        // skipped or finished sleep step may make others ready, so look
        // again until none.
        let mut progressed = true;
        while progressed && failure.is_none() && !cancelled && *exec.halt.borrow() == Halt::No {
            progressed = false;
            let now = crate::store::now_ms();
            let due: Vec<(usize, RawJson)> = state
                .iter()
                .enumerate()
                .filter_map(|(i, s)| match s {
                    State::Sleeping { wake_at, output } if *wake_at <= now => {
                        Some((i, output.clone()))
                    }
                    _ => None,
                })
                .collect();
            for (i, output) in due {
                if let Err(error) = exec.keep(output.len() as u64, "its output", output.len()) {
                    failure = Some(step_error(exec.step(i), &error));
                    break;
                }
                match succeed(&exec, exec.step(i), output, 0.0).await {
                    StepEnd::Succeeded(output) => {
                        tracing::debug!(step = i, "sleep step woke");
                        state[i] = Done(output);
                        progressed = true;
                    }
                    _ => return,
                }
            }
            for i in 0..state.len() {
                if flight.len() >= max_parallel {
                    break;
                }
                let ready = state[i] == State::Open
                    && exec.plan.steps[i]
                        .needs
                        .iter()
                        .all(|&n| matches!(state[n], Done(_) | State::Skipped));
                if !ready {
                    continue;
                }
                // The step the claim started runs even when stopping: its
                // attempt is counted, and the drain waits for it like any
                // step in flight.
                let begun = started.take_if(|s| s.index as usize == i);
                if drain.stopping() && begun.is_none() {
                    handing_back = true;
                    continue;
                }
                match prepare(&exec, i, &state) {
                    Prepared::Skip => {
                        match exec
                            .wf
                            .store
                            .finish_step(exec.run.id, i as u32, StepOutcome::Skipped, 0.0, worker)
                            .await
                        {
                            Ok(_) => {
                                tracing::debug!(step = i, "step skipped: its if was false");
                                state[i] = State::Skipped;
                                progressed = true;
                            }
                            Err(e) => {
                                abandon(exec.run.id, e);
                                return;
                            }
                        }
                    }
                    Prepared::Run { input, record } => {
                        // The last step in order, ending the run with its
                        // output: its checkpoint and the run's end are one
                        // write.
                        let last = i + 1 == state.len()
                            && exec.plan.output.is_none()
                            && state[..i]
                                .iter()
                                .all(|s| matches!(s, Done(_) | State::Skipped));
                        state[i] = State::InFlight;
                        let exec = exec.clone();
                        let span =
                            tracing::info_span!("step", index = i, plugin = %exec.step(i).plugin);
                        flight.spawn(
                            async move {
                                let end = run_step(&exec, i, begun, input, record, last).await;
                                (i, end)
                            }
                            .instrument(span),
                        );
                    }
                    Prepared::ForEach { inputs, record } => {
                        state[i] = State::InFlight;
                        let exec = exec.clone();
                        let span =
                            tracing::info_span!("step", index = i, plugin = %exec.step(i).plugin);
                        flight.spawn(
                            async move {
                                let end = run_for_each(&exec, i, begun, inputs, record).await;
                                (i, end)
                            }
                            .instrument(span),
                        );
                    }
                    Prepared::Sleep { input, wake_at } => {
                        match exec
                            .wf
                            .store
                            .start_sleep(exec.run.id, i as u32, wake_at, &input, worker)
                            .await
                        {
                            Ok(wake_at) => {
                                tracing::debug!(step = i, wake_at, "sleep step started");
                                state[i] = State::Sleeping {
                                    wake_at,
                                    output: input,
                                };
                                progressed = true;
                            }
                            Err(e) => {
                                abandon(exec.run.id, e);
                                return;
                            }
                        }
                    }
                    Prepared::Invalid(error) => {
                        let step = exec.step(i);
                        match fail(&exec, step, 0.0, &error).await {
                            StepEnd::Failed(error) => {
                                failure = Some(step_error(step, &error));
                                exec.halt(Halt::Failed);
                            }
                            _ => return,
                        }
                        break;
                    }
                }
            }
        }
        let next_wake = state
            .iter()
            .filter_map(|s| match s {
                State::Sleeping { wake_at, .. } => Some(*wake_at),
                _ => None,
            })
            .min();
        let ending = failure.is_some() || cancelled || *exec.halt.borrow() != Halt::No;
        if flight.is_empty() {
            // Handing back (stopping with steps ready): another worker
            // takes the run now, and parks it itself if only sleepers remain.
            let Some(wake_at) = next_wake.filter(|_| !ending && !handing_back) else {
                break;
            };
            let wait = until(wake_at);
            if wait <= SLEEP_IN_PROCESS && !drain.stopping() {
                tokio::time::sleep(wait).await;
                continue;
            }
            // Only sleepers left: park the run until the first wakes (or
            // its deadline), holding no worker; the sweeper queues it then.
            let parked_until = deadline.map_or(wake_at, |d| wake_at.min(d));
            drop(heartbeat);
            match wf.store.park_run(exec.run.id, worker, parked_until).await {
                Ok(true) => {
                    tracing::info!(run = %exec.run.id, until = parked_until, "run parked while its steps sleep")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(run = %exec.run.id, error = %e, "cannot park the run; its lease expires by itself")
                }
            }
            return;
        }
        let joined = match next_wake.filter(|_| !ending) {
            Some(wake_at) => {
                tokio::select! {
                    joined = flight.join_next() => joined,
                    () = tokio::time::sleep(until(wake_at)) => continue,
                }
            }
            None => flight.join_next().await,
        };
        let Some(joined) = joined else {
            break;
        };
        let (i, end) = match joined {
            Ok(done) => done,
            Err(e) => {
                // A step task panicked: leave the run for the lease to
                // expire and another worker to resume.
                tracing::error!(run = %exec.run.id, error = %e, "a step task ended abnormally");
                exec.halt(Halt::Lost);
                flight.abort_all();
                return;
            }
        };
        match end {
            StepEnd::Succeeded(output) => state[i] = Done(output),
            StepEnd::Completed => {
                // Only the last step completes the run, and only with
                // nothing else in flight.
                return;
            }
            StepEnd::Failed(error) => {
                if failure.is_none() {
                    failure = Some(step_error(exec.step(i), &error));
                }
                exec.halt(Halt::Failed);
            }
            StepEnd::Cancelled => {
                if failure.is_none() {
                    cancelled = true;
                }
            }
            StepEnd::Abandoned => {
                tracing::info!(run = %exec.run.id, step = i, "run abandoned: lease lost");
                exec.halt(Halt::Lost);
                flight.abort_all();
                return;
            }
        }
    }
    drop(heartbeat);
    let run = &exec.run;
    let halt = *exec.halt.borrow();
    let all_done = state.iter().all(|s| matches!(s, Done(_) | State::Skipped));
    if !all_done && (failure.is_some() || cancelled || halt != Halt::No) {
        // Sleepers of a run that ends otherwise are cancelled with it.
        for (i, s) in state.iter().enumerate() {
            if matches!(s, State::Sleeping { .. }) {
                cancel(&exec, exec.step(i), 0.0).await;
            }
        }
    }
    if let Some(error) = failure {
        finish(wf, worker, run, RunStatus::Failed, None, Some(error)).await;
    } else if halt == Halt::TimedOut && !all_done {
        let timeout = exec.plan.timeout.unwrap_or_default();
        let error = format!(
            "the run did not finish within its timeout of {}",
            humantime::format_duration(timeout)
        );
        finish(wf, worker, run, RunStatus::Failed, None, Some(error)).await;
    } else if cancelled || (halt == Halt::Cancelled && !all_done) {
        finish(wf, worker, run, RunStatus::Cancelled, None, None).await;
    } else if all_done {
        let kept = run_output(&exec, &state).and_then(|output| {
            exec.keep(output.len() as u64, "the run's output", output.len())
                .map(|()| output)
        });
        match kept {
            Ok(output) => finish(wf, worker, run, RunStatus::Succeeded, Some(output), None).await,
            Err(error) => finish(wf, worker, run, RunStatus::Failed, None, Some(error)).await,
        }
    } else {
        // Stopping (or, should nothing be ready with nothing in flight,
        // leaving it to the next claim).
        if !handing_back {
            tracing::warn!(run = %run.id, "no step ready and none in flight; handing the run back");
        }
        let next = state.iter().position(|s| *s == State::Open).unwrap_or(0);
        hand_back(wf, worker, run, next as u32).await;
    }
}

/// A task aborted when this is dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a ready step is to do.
enum Prepared {
    /// Its `if` was false.
    Skip,
    /// One call, on `input`; `record`: the input to record, when its
    /// expressions made it.
    Run {
        input: RawJson,
        record: Option<RawJson>,
    },
    /// One call per element, on these inputs; `record`: the elements.
    ForEach {
        inputs: Vec<RawJson>,
        record: RawJson,
    },
    /// A sleep step: waits until `wake_at` (unix ms), then passes `input`
    /// on.
    Sleep { input: RawJson, wake_at: i64 },
    /// Its expressions gave what it cannot take.
    Invalid(String),
}

/// Most elements one `for_each` may run over.
const MAX_ITEMS: usize = 10_000;

/// Evaluates a ready step's `if`, `for_each` and `input`.
fn prepare(exec: &Exec, i: usize, state: &[State]) -> Prepared {
    let planned = &exec.plan.steps[i];
    let scope = (!planned.reads.is_empty()
        || planned.when.is_some()
        || planned.for_each.is_some()
        || planned.input.is_some()
        || planned.sleep.is_some())
    .then(|| scope(exec, &planned.reads, state));
    if let (Some(when), Some(scope)) = (&planned.when, &scope)
        && !truthy(&when.eval(scope))
    {
        return Prepared::Skip;
    }
    if let (Some(for_each), Some(scope)) = (&planned.for_each, &scope) {
        let items = match for_each.eval(scope) {
            Value::Array(items) => items,
            other => {
                return Prepared::Invalid(format!(
                    "for_each {} gave {}, not an array",
                    for_each.text(),
                    kind(&other)
                ));
            }
        };
        if items.len() > MAX_ITEMS {
            return Prepared::Invalid(format!(
                "for_each {} gave {} elements; a step runs over at most {MAX_ITEMS}",
                for_each.text(),
                items.len()
            ));
        }
        let record = RawJson::from_value(&Value::Array(items.clone()));
        let Some(template) = &planned.input else {
            let inputs = items.iter().map(RawJson::from_value).collect();
            return Prepared::ForEach { inputs, record };
        };
        // The elements' inputs together may be no larger than what the run
        // may still keep: an input that repeats a large value per element
        // is refused before it is built.
        let mut budget = exec.budget();
        let mut element = scope.clone();
        let mut inputs = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            if let Value::Object(fields) = &mut element {
                fields.insert("item".into(), item);
                fields.insert("index".into(), Value::from(index));
            }
            match template.eval_within(&element, &mut budget) {
                Ok(input) => inputs.push(RawJson::from_value(&input)),
                Err(OverBudget) => {
                    return Prepared::Invalid(exec.over_budget("the inputs of its elements"));
                }
            }
        }
        return Prepared::ForEach { inputs, record };
    }
    let input_of = |template: &super::expr::Template, scope: &Value| {
        template
            .eval_within(scope, &mut exec.budget())
            .map(|input| RawJson::from_value(&input))
            .map_err(|OverBudget| exec.over_budget("its input"))
    };
    if let (Some(sleep), Some(scope)) = (&planned.sleep, &scope) {
        let input = match &planned.input {
            Some(template) => match input_of(template, scope) {
                Ok(input) => input,
                Err(error) => return Prepared::Invalid(error),
            },
            None => default_input(exec, i, state),
        };
        let wake_at = match sleep {
            Sleep::For(wait) => crate::store::now_ms()
                .saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)),
            Sleep::Until(at) => at.as_millisecond(),
            Sleep::UntilFound(query) => match query.eval(scope) {
                Value::String(text) => match timestamp(&text, query.text()) {
                    Ok(at) => at.as_millisecond(),
                    Err(e) => return Prepared::Invalid(format!("sleep_until: {e}")),
                },
                other => {
                    return Prepared::Invalid(format!(
                        "sleep_until {} gave {}, not an RFC 3339 time",
                        query.text(),
                        kind(&other)
                    ));
                }
            },
        };
        return Prepared::Sleep { input, wake_at };
    }
    if let (Some(template), Some(scope)) = (&planned.input, &scope) {
        return match input_of(template, scope) {
            Ok(input) => Prepared::Run {
                record: Some(input.clone()),
                input,
            },
            Err(error) => Prepared::Invalid(error),
        };
    }
    Prepared::Run {
        input: default_input(exec, i, state),
        record: None,
    }
}

/// A step's input without expressions: the output of what it needs, as
/// is (the run's input when it needs nothing, an object of outputs by id
/// when it needs several).
fn default_input(exec: &Exec, i: usize, state: &[State]) -> RawJson {
    let planned = &exec.plan.steps[i];
    let output = |n: usize| match &state[n] {
        State::Done(output) => output.clone(),
        _ => RawJson::null(),
    };
    match planned.needs.as_slice() {
        [] => exec.run.input.clone(),
        [one] => output(*one),
        several => {
            let mut text = String::from("{");
            for (k, &n) in several.iter().enumerate() {
                if k > 0 {
                    text.push(',');
                }
                text.push_str(&Value::from(exec.plan.id(n)).to_string());
                text.push(':');
                text.push_str(output(n).get());
            }
            text.push('}');
            RawJson::stored(text).unwrap_or_else(|_| RawJson::null())
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What a step's expressions see: `{"input": …, "steps": {ID: {"output":
/// …}}}`, with the steps it `reads` only.
fn scope(exec: &Exec, reads: &[usize], state: &[State]) -> Value {
    let mut steps = Map::new();
    for &n in reads {
        let output = match &state[n] {
            State::Done(output) => output.to_value(),
            _ => Value::Null,
        };
        let mut entry = Map::new();
        entry.insert("output".into(), output);
        steps.insert(exec.plan.id(n).to_owned(), Value::Object(entry));
    }
    let mut scope = Map::new();
    scope.insert("input".into(), exec.run.input.to_value());
    scope.insert("steps".into(), Value::Object(steps));
    Value::Object(scope)
}

/// The run's output: its `output` expressions (refused when they would
/// pass what the run may keep), or the last step's output.
fn run_output(exec: &Exec, state: &[State]) -> Result<RawJson, String> {
    if let Some(template) = &exec.plan.output {
        let scope = scope(exec, &exec.plan.output_reads, state);
        return template
            .eval_within(&scope, &mut exec.budget())
            .map(|output| RawJson::from_value(&output))
            .map_err(|OverBudget| exec.over_budget("the run's output"));
    }
    Ok(match state.last() {
        Some(State::Done(output)) => output.clone(),
        _ => RawJson::null(),
    })
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

/// How a call (with its retries) ended.
enum Called {
    Succeeded { output: RawJson, ms: f64 },
    Failed { error: String, ms: f64 },
    Halted { why: Halt, ms: f64 },
    Abandoned,
}

/// Who counts a call's attempts: the store (a step's), or the caller (an
/// element of a `for_each`, whose step was started once).
enum Attempts<'a> {
    Store { record: Option<&'a RawJson> },
    Local(&'a mut u32),
}

/// Calls the step's plugin on `input` until it succeeds or may not try
/// again: tries the host was too busy for again without end (as the same
/// attempt), failures up to the step's `retries`, with backoff; stops when
/// the run halts. `begun`: the first attempt, when the claim started it.
async fn call(
    exec: &Exec,
    step: &Step,
    input: &str,
    mut begun: Option<Started>,
    mut attempts: Attempts<'_>,
) -> Called {
    let wf = &exec.wf;
    let id = exec.run.id;
    let config = if step.config.is_null() {
        "{}"
    } else {
        step.config.get()
    };
    let retries = step.retries.unwrap_or(0);
    // The step's own time limit, and a code step's time and memory
    // limits from its config.
    let within = crate::plugins::CallLimits {
        timeout: step.timeout_ms.map(Duration::from_millis),
        memory_bytes: None,
    }
    .and(crate::code::call_limits(&step.plugin, config));
    let backoff = &exec.plan.steps[step.index as usize].backoff;
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
                        return Called::Failed {
                            error: "the plugin is no longer a step".into(),
                            ms: 0.0,
                        };
                    }
                    None => {
                        return Called::Failed {
                            error: "the plugin is not loaded".into(),
                            ms: 0.0,
                        };
                    }
                };
                let attempt = match &mut attempts {
                    Attempts::Store { record } => match wf
                        .store
                        .start_step(id, step.index, &plugin.info.version, &exec.worker, *record)
                        .await
                    {
                        Ok(attempt) => attempt,
                        Err(e) => {
                            abandon(id, e);
                            return Called::Abandoned;
                        }
                    },
                    Attempts::Local(count) => {
                        **count += 1;
                        **count
                    }
                };
                (plugin, attempt)
            }
        };
        let start = Instant::now();
        let outcome = tokio::select! {
            result = wf.registry.runtime().run_step_within(&plugin, input, config, within) => Ok(result),
            why = exec.stopped() => Err(why),
        };
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let error = match outcome {
            // Dropping the call's future dropped its store: the instance
            // is gone, the step interrupted.
            Err(why) => return Called::Halted { why, ms },
            Ok(Ok(output)) => {
                metrics::step_outcome(Counted::Succeeded);
                tracing::debug!(attempt, ms, "call succeeded");
                return Called::Succeeded { output, ms };
            }
            Ok(Err(e)) => e,
        };
        let delay = if error.is_busy() {
            busy += 1;
            metrics::step_outcome(Counted::Busy);
            let delay = backoff::delay(busy, wf.config.backoff_base, wf.config.backoff_max);
            tracing::info!(run = %id, step = step.index, attempt, ?delay, error = %error, "no free plugin instance; trying again");
            begun = Some(Started {
                index: step.index,
                attempt,
                plugin,
            });
            if let Attempts::Local(count) = &mut attempts {
                // The same attempt, tried again.
                **count -= 1;
                begun = None;
            }
            delay
        } else if retryable(&error, &backoff.non_retryable) && attempt <= retries {
            metrics::step_outcome(Counted::Retried);
            let delay = backoff::delay_with(
                attempt,
                backoff.initial.unwrap_or(wf.config.backoff_base),
                backoff.max.unwrap_or(wf.config.backoff_max),
                backoff.multiplier,
            );
            tracing::info!(run = %id, step = step.index, attempt, ?delay, error = %error, "step failed; retrying");
            delay
        } else {
            return Called::Failed {
                error: error.to_string(),
                ms,
            };
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            why = exec.stopped() => return Called::Halted { why, ms },
        }
    }
}

/// Runs one step to its end and records it. `begun`: the first attempt,
/// when the claim started it; `last`: the run ends with its success, in
/// the same write.
async fn run_step(
    exec: &Exec,
    i: usize,
    begun: Option<Started>,
    input: RawJson,
    record: Option<RawJson>,
    last: bool,
) -> StepEnd {
    let step = exec.step(i);
    if let Some(record) = &record
        && let Err(error) = exec.keep(record.len() as u64, "its input", record.len())
    {
        return fail(exec, step, 0.0, &error).await;
    }
    let attempts = Attempts::Store {
        record: record.as_ref(),
    };
    match call(exec, step, input.get(), begun, attempts).await {
        Called::Succeeded { output, ms } => {
            // The last step's output is kept twice: as its own and the
            // run's.
            let keeps = output.len() as u64 * if last { 2 } else { 1 };
            if let Err(error) = exec.keep(keeps, "its output", output.len()) {
                return fail(exec, step, ms, &error).await;
            }
            if last {
                return complete(exec, step, output, ms).await;
            }
            succeed(exec, step, output, ms).await
        }
        Called::Failed { error, ms } => fail(exec, step, ms, &error).await,
        Called::Halted { why, ms } => stop(exec, step, why, ms).await,
        Called::Abandoned => StepEnd::Abandoned,
    }
}

/// Runs a `for_each` step: one call per input, `concurrency` at once,
/// each with the step's retries; the output is the array of the results,
/// in order. A failed element fails the step and stops the others.
async fn run_for_each(
    exec: &Arc<Exec>,
    i: usize,
    begun: Option<Started>,
    inputs: Vec<RawJson>,
    record: RawJson,
) -> StepEnd {
    let step = exec.step(i);
    let wf = &exec.wf;
    let id = exec.run.id;
    if let Err(error) = exec.keep(record.len() as u64, "its elements", record.len()) {
        return fail(exec, step, 0.0, &error).await;
    }
    // The step's own attempt: its plugin version and start recorded once.
    if begun.is_none() {
        let Some(plugin) = wf.registry.get(&step.plugin) else {
            return fail(exec, step, 0.0, "the plugin is not loaded").await;
        };
        if let Err(e) = wf
            .store
            .start_step(
                id,
                step.index,
                &plugin.info.version,
                &exec.worker,
                Some(&record),
            )
            .await
        {
            return abandon(id, e);
        }
    }
    let start = Instant::now();
    let count = inputs.len();
    let mut items = vec![
        ItemRun {
            status: StepStatus::Pending,
            attempts: 0,
            error: None,
        };
        count
    ];
    let mut results: Vec<Option<RawJson>> = vec![None; count];
    let mut inputs = inputs.into_iter().enumerate();
    let concurrency = exec.plan.steps[i].concurrency as usize;
    let mut running: JoinSet<(usize, Called, u32)> = JoinSet::new();
    // Progress, for the run's view, at most a few times a second (the
    // first as soon as elements run).
    let mut recorded: Option<Instant> = None;
    let mut failed: Option<String> = None;
    loop {
        while failed.is_none() && running.len() < concurrency {
            let Some((k, input)) = inputs.next() else {
                break;
            };
            items[k].status = StepStatus::Running;
            let exec = exec.clone();
            running.spawn(async move {
                let mut tries = 0;
                let step = exec.step(i);
                let called =
                    call(&exec, step, input.get(), None, Attempts::Local(&mut tries)).await;
                (k, called, tries)
            });
        }
        if recorded.is_none_or(|at| at.elapsed() >= ITEMS_EVERY) {
            recorded = Some(Instant::now());
            record_items(exec, step, &items).await;
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let Ok((k, called, tries)) = joined else {
            // Aborted (a sibling failed), or panicked: counted as failed.
            continue;
        };
        items[k].attempts = tries;
        match called {
            Called::Succeeded { output, .. } => {
                if let Err(error) = exec.keep(output.len() as u64, "its output", output.len()) {
                    items[k].status = StepStatus::Failed;
                    items[k].error = Some(cut(&error, 1024));
                    failed = Some(format!("element {k}: {error}"));
                    running.abort_all();
                } else {
                    items[k].status = StepStatus::Succeeded;
                    results[k] = Some(output);
                }
            }
            Called::Failed { error, .. } => {
                items[k].status = StepStatus::Failed;
                items[k].error = Some(cut(&error, 1024));
                if failed.is_none() {
                    failed = Some(format!("element {k}: {error}"));
                }
                running.abort_all();
            }
            Called::Halted { why, .. } => {
                running.abort_all();
                let ms = start.elapsed().as_secs_f64() * 1e3;
                record_items(exec, step, &items).await;
                return stop(exec, step, why, ms).await;
            }
            Called::Abandoned => {
                running.abort_all();
                return StepEnd::Abandoned;
            }
        }
    }
    for item in &mut items {
        if matches!(item.status, StepStatus::Pending | StepStatus::Running) {
            item.status = StepStatus::Cancelled;
        }
    }
    record_items(exec, step, &items).await;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    if let Some(error) = failed {
        return fail(exec, step, ms, &error).await;
    }
    let mut text = String::with_capacity(
        results.iter().flatten().map(RawJson::len).sum::<usize>() + count + 2,
    );
    text.push('[');
    for (k, result) in results.iter().enumerate() {
        if k > 0 {
            text.push(',');
        }
        text.push_str(result.as_ref().map_or("null", RawJson::get));
    }
    text.push(']');
    let output = RawJson::stored(text).unwrap_or_else(|_| RawJson::null());
    succeed(exec, step, output, ms).await
}

/// How often a `for_each` records its elements' progress.
const ITEMS_EVERY: Duration = Duration::from_millis(250);

async fn record_items(exec: &Exec, step: &Step, items: &[ItemRun]) {
    let Ok(text) = serde_json::to_string(items) else {
        return;
    };
    let Ok(items) = RawJson::stored(text) else {
        return;
    };
    if let Err(e) = exec
        .wf
        .store
        .record_items(exec.run.id, step.index, &items, &exec.worker)
        .await
    {
        tracing::debug!(run = %exec.run.id, step = step.index, error = %e, "cannot record a for_each's progress");
    }
}

async fn succeed(exec: &Exec, step: &Step, output: RawJson, ms: f64) -> StepEnd {
    let outcome = StepOutcome::Succeeded {
        output: output.clone(),
    };
    match exec
        .wf
        .store
        .finish_step(exec.run.id, step.index, outcome, ms, &exec.worker)
        .await
    {
        Ok(_) => StepEnd::Succeeded(output),
        Err(e) => abandon(exec.run.id, e),
    }
}

/// Records the last step's success and the run's end together.
async fn complete(exec: &Exec, step: &Step, output: RawJson, ms: f64) -> StepEnd {
    let run = &exec.run;
    match exec
        .wf
        .store
        .complete_run(run.id, step.index, output, ms, &exec.worker)
        .await
    {
        Ok(Some(finished)) => {
            tracing::debug!(run = %run.id, "run succeeded");
            exec.wf.waiters.announce_run(finished);
            StepEnd::Completed
        }
        // Ended meanwhile (cancelled, say): nothing more to record.
        Ok(None) => StepEnd::Completed,
        Err(e) => abandon(run.id, e),
    }
}

/// A step stopped because the run halted: recorded cancelled, unless the
/// lease is lost (then nothing is touched).
async fn stop(exec: &Exec, step: &Step, why: Halt, ms: f64) -> StepEnd {
    match why {
        Halt::Lost | Halt::No => StepEnd::Abandoned,
        Halt::Cancelled | Halt::Failed | Halt::TimedOut => cancel(exec, step, ms).await,
    }
}

/// Whether a failed attempt is tried again: unless its kind of error is
/// among the step's `non_retryable` (by default bad or unsupported input,
/// which a retry would only see again; a crash, a timeout or a failed
/// dependency may pass next time).
fn retryable(error: &CallError, non_retryable: &[String]) -> bool {
    let code = error.code();
    let kind = code
        .strip_prefix("plugin_")
        .unwrap_or(code)
        .replace('_', "-");
    !non_retryable.contains(&kind)
}

async fn fail(exec: &Exec, step: &Step, ms: f64, error: &str) -> StepEnd {
    metrics::step_outcome(Counted::Failed);
    let error = cut(error, exec.wf.config.limits.error_bytes);
    let outcome = StepOutcome::Failed {
        error: error.clone(),
    };
    match exec
        .wf
        .store
        .finish_step(exec.run.id, step.index, outcome, ms, &exec.worker)
        .await
    {
        Ok(_) => StepEnd::Failed(error),
        Err(e) => abandon(exec.run.id, e),
    }
}

async fn cancel(exec: &Exec, step: &Step, ms: f64) -> StepEnd {
    match exec
        .wf
        .store
        .finish_step(
            exec.run.id,
            step.index,
            StepOutcome::Cancelled,
            ms,
            &exec.worker,
        )
        .await
    {
        Ok(_) => StepEnd::Cancelled,
        Err(e) => abandon(exec.run.id, e),
    }
}

fn abandon(id: crate::store::RunId, e: StoreError) -> StepEnd {
    tracing::warn!(run = %id, error = %e, "stopping work on run");
    StepEnd::Abandoned
}
