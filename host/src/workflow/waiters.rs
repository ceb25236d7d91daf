//! Who is waiting for which run to finish (`GET /workflows/{id}?wait=`),
//! and how they learn it has.
//!
//! A run finished by this process's workers wakes its waiters at once,
//! handing them the finished run when the worker has it (read in the same
//! statement that ended it), so they need not read it again. A run
//! finished on another host is found by one polling loop that asks
//! the store about every waited-for run in a single query: the cost of
//! polling stays one statement per interval however many requests wait,
//! and each finish wakes only the requests waiting for that run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;

use crate::store::{Run, RunId, Store};

/// How often the store is asked about runs finished elsewhere.
const POLL_EVERY: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct Waiters {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// One channel per run waited for; it turns finished when the run does.
    waiting: Mutex<HashMap<RunId, watch::Sender<State>>>,
    polling: AtomicBool,
}

/// What a run's watchers know of it.
#[derive(Clone, Default)]
enum State {
    #[default]
    Open,
    /// With the finished run when whoever announced it had it.
    Finished(Option<Arc<Run>>),
}

impl State {
    fn is_finished(&self) -> bool {
        matches!(self, State::Finished(_))
    }
}

/// One request's interest in one run; dropping it withdraws it.
pub struct Watch {
    id: RunId,
    done: Option<watch::Receiver<State>>,
    inner: Arc<Inner>,
}

impl Waiters {
    pub fn new(store: Store) -> Self {
        Waiters {
            inner: Arc::new(Inner {
                store,
                waiting: Mutex::new(HashMap::new()),
                polling: AtomicBool::new(false),
            }),
        }
    }

    /// The run finished: wake whoever waits for it.
    pub fn announce(&self, id: RunId) {
        self.inner.announce(id, None);
    }

    /// The run finished as `run` says: wake whoever waits for it, and
    /// hand them the run.
    pub fn announce_run(&self, run: Run) {
        let id = run.id;
        self.inner.announce(id, Some(run));
    }

    /// Starts waiting for `id`. Made before the run's status is first read,
    /// so a finish in between is not missed.
    pub fn watch(&self, id: RunId) -> Watch {
        if !self.inner.polling.swap(true, Ordering::AcqRel) {
            tokio::spawn(poll(Arc::downgrade(&self.inner)));
        }
        let done = self
            .inner
            .lock()
            .entry(id)
            .or_insert_with(|| watch::channel(State::Open).0)
            .subscribe();
        Watch {
            id,
            done: Some(done),
            inner: self.inner.clone(),
        }
    }

    /// Runs being waited for now.
    #[cfg(test)]
    fn waited(&self) -> usize {
        self.inner.lock().len()
    }
}

impl Watch {
    /// Resolves once the run has been announced finished; with the
    /// finished run if the announcement carried it.
    pub async fn finished(&mut self) -> Option<Arc<Run>> {
        let done = self.done.as_mut()?;
        // An error means the channel was dropped, which only happens once
        // it announced the finish.
        match done.wait_for(State::is_finished).await {
            Ok(state) => match &*state {
                State::Finished(run) => run.clone(),
                State::Open => None,
            },
            Err(_) => None,
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        drop(self.done.take());
        let mut waiting = self.inner.lock();
        if waiting
            .get(&self.id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            waiting.remove(&self.id);
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, watch::Sender<State>>> {
        // The map holds no invariant a panicking holder could break.
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn announce(&self, id: RunId, run: Option<Run>) {
        if let Some(sender) = self.lock().get(&id) {
            // A poll that finds the run finished never overwrites the run
            // a worker handed over.
            sender.send_if_modified(|state| match (&*state, run) {
                (State::Finished(Some(_)), _) => false,
                (_, run) => {
                    *state = State::Finished(run.map(Arc::new));
                    true
                }
            });
        }
    }

    /// The ids still waited for and not yet known to be finished.
    fn open(&self) -> Vec<RunId> {
        self.lock()
            .iter()
            .filter(|(_, sender)| !sender.borrow().is_finished())
            .map(|(id, _)| *id)
            .collect()
    }
}

/// Asks the store which waited-for runs have finished, until the waiters
/// are gone.
async fn poll(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        match inner.store.finished_among(&inner.open()).await {
            Ok(finished) => finished.into_iter().for_each(|id| inner.announce(id, None)),
            Err(e) => tracing::debug!(error = %e, "cannot poll for finished runs"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open_default(dir.path()).await.expect("store");
        (store, dir)
    }

    #[tokio::test]
    async fn an_announcement_wakes_only_the_watchers_of_that_run() {
        let (store, _dir) = store().await;
        let waiters = Waiters::new(store);
        let (a, b) = (RunId::now_v7(), RunId::now_v7());
        let mut first = waiters.watch(a);
        let mut second = waiters.watch(a);
        let mut other = waiters.watch(b);
        waiters.announce(a);
        tokio::time::timeout(Duration::from_secs(1), first.finished())
            .await
            .expect("the first watcher of a is woken");
        tokio::time::timeout(Duration::from_secs(1), second.finished())
            .await
            .expect("the second watcher of a is woken");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), other.finished())
                .await
                .is_err(),
            "b's watcher sleeps on"
        );
    }

    #[tokio::test]
    async fn an_announcement_before_the_wait_is_not_lost() {
        let (store, _dir) = store().await;
        let waiters = Waiters::new(store);
        let id = RunId::now_v7();
        let mut watch = waiters.watch(id);
        waiters.announce(id);
        tokio::time::timeout(Duration::from_secs(1), watch.finished())
            .await
            .expect("woken by the earlier announcement");
    }

    #[tokio::test]
    async fn a_finish_with_the_run_hands_it_over() {
        let (store, _dir) = store().await;
        let (run, _) = store
            .create_run(crate::store::NewRun {
                steps: Vec::new(),
                input: crate::store::RawJson::from_value(&serde_json::json!({"n": 1})),
                idempotency_key: None,
                request_id: None,
                definition: None,
                plan: None,
                scheduled_for: None,
            })
            .await
            .expect("run");
        let waiters = Waiters::new(store);
        let mut watch = waiters.watch(run.id);
        waiters.announce_run(run.clone());
        // A poll that finds it finished afterwards keeps what was handed.
        waiters.announce(run.id);
        let handed = tokio::time::timeout(Duration::from_secs(1), watch.finished())
            .await
            .expect("woken");
        assert_eq!(handed.as_deref(), Some(&run));

        // Announced without the run: woken, with nothing to hand over.
        let other = RunId::now_v7();
        let mut watch = waiters.watch(other);
        waiters.announce(other);
        let handed = tokio::time::timeout(Duration::from_secs(1), watch.finished())
            .await
            .expect("woken");
        assert!(handed.is_none());
    }

    #[tokio::test]
    async fn dropped_watches_leave_nothing_behind() {
        let (store, _dir) = store().await;
        let waiters = Waiters::new(store);
        let id = RunId::now_v7();
        let first = waiters.watch(id);
        let second = waiters.watch(id);
        drop(first);
        assert_eq!(waiters.waited(), 1, "still watched by the second");
        drop(second);
        assert_eq!(waiters.waited(), 0);
        // Announcing a run nobody waits for is a no-op.
        waiters.announce(id);
        assert_eq!(waiters.waited(), 0);
    }
}
