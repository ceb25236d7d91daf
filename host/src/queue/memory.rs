//! The in-process queue: a FIFO in this process's memory.
//!
//! Nothing here survives the process, and nothing needs to: the run store
//! recovers unfinished runs at start. Deliveries are tracked only so that
//! [`MemoryQueue::depth`] counts runs in flight the way Redis does.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use super::{Delivery, QueueError, RunId, Token};

#[derive(Clone, Default)]
pub struct MemoryQueue {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    /// Wakes one waiting consumer per enqueued run.
    ready: Notify,
}

#[derive(Default)]
struct State {
    last_seq: u64,
    waiting: VecDeque<(u64, RunId)>,
    in_flight: HashSet<u64>,
}

impl MemoryQueue {
    pub(super) fn enqueue(&self, run: RunId) {
        {
            let mut state = self.lock();
            state.last_seq += 1;
            let seq = state.last_seq;
            state.waiting.push_back((seq, run));
        }
        self.inner.ready.notify_one();
    }

    pub(super) async fn next(&self, wait: Duration) -> Option<Delivery> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before looking, so an enqueue between the look and
            // the wait still wakes this consumer.
            let ready = self.inner.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            if let Some(delivery) = self.pop() {
                return Some(delivery);
            }
            if tokio::time::timeout_at(deadline, ready).await.is_err() {
                // A wake-up may have raced the timeout; one last look.
                return self.pop();
            }
        }
    }

    fn pop(&self) -> Option<Delivery> {
        let mut state = self.lock();
        let (seq, run_id) = state.waiting.pop_front()?;
        state.in_flight.insert(seq);
        let more = !state.waiting.is_empty();
        drop(state);
        if more {
            // A consumer woken for an entry another one took would otherwise
            // leave the rest waiting with nobody awake.
            self.inner.ready.notify_one();
        }
        Some(Delivery {
            run_id,
            token: Token::Seq(seq),
            deliveries: 1,
        })
    }

    pub(super) fn check(&self, d: &Delivery) -> Result<(), QueueError> {
        match d.token {
            Token::Seq(_) => Ok(()),
            Token::Entry(_) => Err(QueueError::ForeignDelivery),
        }
    }

    pub(super) fn ack(&self, d: &Delivery) -> Result<(), QueueError> {
        let Token::Seq(seq) = d.token else {
            return Err(QueueError::ForeignDelivery);
        };
        self.lock().in_flight.remove(&seq);
        Ok(())
    }

    pub(super) fn depth(&self) -> u64 {
        let state = self.lock();
        (state.waiting.len() + state.in_flight.len()) as u64
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent, so a poisoned
        // lock is still usable.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
