//! The in-process queue: a FIFO in this process's memory.
//!
//! Nothing here survives the process, and nothing needs to: the run store
//! recovers unfinished runs at start. Deliveries are tracked only so that
//! [`Queue::depth`](super::Queue::depth) counts runs in flight the way Redis does.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{Backend, Delivery, QueueError, RunId, Token};

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

#[async_trait]
impl Backend for MemoryQueue {
    fn name(&self) -> &'static str {
        "in-process"
    }

    async fn ping(&self) -> Result<(), QueueError> {
        Ok(())
    }

    async fn enqueue(&self, run: RunId) -> Result<(), QueueError> {
        {
            let mut state = self.lock();
            state.last_seq += 1;
            let seq = state.last_seq;
            state.waiting.push_back((seq, run));
        }
        self.inner.ready.notify_one();
        Ok(())
    }

    async fn next(&self, wait: Duration) -> Result<Option<Delivery>, QueueError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before looking, so an enqueue between the look and
            // the wait still wakes this consumer.
            let ready = self.inner.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            if let Some(delivery) = self.pop() {
                return Ok(Some(delivery));
            }
            if tokio::time::timeout_at(deadline, ready).await.is_err() {
                // A wake-up may have raced the timeout; one last look.
                return Ok(self.pop());
            }
        }
    }

    /// The in-process queue never takes a delivery back.
    async fn extend(&self, d: &Delivery) -> Result<bool, QueueError> {
        match d.token {
            Token::Seq(_) => Ok(true),
            Token::Entry(_) => Err(QueueError::ForeignDelivery),
        }
    }

    async fn ack(&self, d: &Delivery) -> Result<(), QueueError> {
        let Token::Seq(seq) = d.token else {
            return Err(QueueError::ForeignDelivery);
        };
        self.lock().in_flight.remove(&seq);
        Ok(())
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        let state = self.lock();
        Ok((state.waiting.len() + state.in_flight.len()) as u64)
    }

    /// The in-process queue has no consumers to forget.
    async fn prune_consumers(&self, _idle_over: Duration) -> Result<u32, QueueError> {
        Ok(0)
    }

    async fn close(&self) {}
}

impl MemoryQueue {
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

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent, so a poisoned
        // lock is still usable.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
