//! The work queue: which runs wait for a worker.
//!
//! The run store is the truth; the queue only hands run ids to workers. It
//! may hand out the same run twice (an entry reclaimed from a worker that
//! was only slow, a run the sweeper enqueued again), so a delivery means
//! "this run may need work", never exclusive ownership.
//!
//! Two backends: Redis Streams with a consumer group, shared by every
//! process of a deployment, and an in-process FIFO for a single process.

mod memory;
mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use memory::MemoryQueue;
use redis::RedisQueue;

pub type RunId = uuid::Uuid;

/// One run handed to this consumer. Pass it back to [`Queue::extend`] while
/// working on it and to [`Queue::ack`] when done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub run_id: RunId,
    token: Token,
    /// How many times the entry has been handed out, this time included
    /// (1 for a first delivery).
    pub deliveries: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A stream entry id.
    Entry(String),
    /// The in-process queue's sequence number.
    Seq(u64),
}

impl Delivery {
    /// The backend's name for this entry (stream entry id or sequence
    /// number), for logs.
    pub fn entry(&self) -> String {
        match &self.token {
            Token::Entry(id) => id.clone(),
            Token::Seq(seq) => seq.to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis {op}: {source}")]
    Redis {
        op: &'static str,
        #[source]
        source: fred::error::Error,
    },
    #[error("invalid queue configuration: {0}")]
    Config(String),
    #[error("this delivery came from another queue backend")]
    ForeignDelivery,
}

impl QueueError {
    fn redis(op: &'static str) -> impl FnOnce(fred::error::Error) -> QueueError {
        move |source| QueueError::Redis { op, source }
    }
}

/// A queue backend: Redis Streams ([`RedisQueue`]) or in-process
/// ([`MemoryQueue`]). [`Queue`] is the handle callers hold.
#[async_trait]
trait Backend: Send + Sync {
    /// "redis" or "in-process".
    fn name(&self) -> &'static str;
    async fn ping(&self) -> Result<(), QueueError>;
    async fn enqueue(&self, run: RunId) -> Result<(), QueueError>;
    async fn next(&self, wait: Duration) -> Result<Option<Delivery>, QueueError>;
    /// Keeps the delivery this consumer's; false once it is not.
    async fn extend(&self, d: &Delivery) -> Result<bool, QueueError>;
    async fn ack(&self, d: &Delivery) -> Result<(), QueueError>;
    async fn depth(&self) -> Result<u64, QueueError>;
    async fn prune_consumers(&self, idle_over: Duration) -> Result<u32, QueueError>;
    async fn close(&self);
}

/// A handle to the queue; clones share it.
#[derive(Clone)]
pub struct Queue {
    backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Queue").field(&self.backend()).finish()
    }
}

impl Queue {
    /// In-process: an unbounded FIFO with a Notify; ack is a no-op (a crash
    /// loses the process, and the run store recovers unfinished runs at
    /// start).
    pub fn memory() -> Queue {
        Queue {
            backend: Arc::new(MemoryQueue::default()),
        }
    }

    /// Redis Streams: stream `{prefix}:runs`, consumer group
    /// `{prefix}:workers`, consumer name `consumer` (unique per worker
    /// process). Creates the group with MKSTREAM if missing. Entries pending
    /// on another consumer for longer than `lease` are reclaimed.
    pub async fn redis(
        url: &str,
        prefix: &str,
        consumer: &str,
        lease: Duration,
    ) -> Result<Queue, QueueError> {
        let queue = RedisQueue::connect(url, prefix, consumer, lease).await?;
        Ok(Queue {
            backend: Arc::new(queue),
        })
    }

    /// "redis" or "in-process".
    pub fn backend(&self) -> &'static str {
        self.backend.name()
    }

    pub async fn ping(&self) -> Result<(), QueueError> {
        self.backend.ping().await
    }

    /// Adds a run at the tail.
    pub async fn enqueue(&self, run: RunId) -> Result<(), QueueError> {
        self.backend.enqueue(run).await
    }

    /// The next delivery, waiting at most `wait`; None when nothing arrived
    /// in time. With Redis, entries a dead consumer held for longer than the
    /// lease come first. While Redis is unreachable this retries with a
    /// short backoff until `wait` is spent and then returns the error, so a
    /// caller looping on it never spins.
    pub async fn next(&self, wait: Duration) -> Result<Option<Delivery>, QueueError> {
        self.backend.next(wait).await
    }

    /// Keeps a delivery this consumer is still working on from being
    /// reclaimed; call it periodically (well within the lease) during long
    /// runs. An entry that is no longer this consumer's (reclaimed by
    /// another, or lost with a Redis restart) is left alone.
    pub async fn extend(&self, d: &Delivery) -> Result<(), QueueError> {
        self.backend.extend(d).await.map(|_| ())
    }

    /// [`Queue::extend`] that also says whether the delivery is still this
    /// consumer's: false once another consumer reclaimed it or Redis lost
    /// it. The in-process queue never takes a delivery back.
    pub async fn renew(&self, d: &Delivery) -> Result<bool, QueueError> {
        self.backend.extend(d).await
    }

    /// Removes a finished delivery for good.
    pub async fn ack(&self, d: &Delivery) -> Result<(), QueueError> {
        self.backend.ack(d).await
    }

    /// Entries waiting or in flight (delivered, not yet acked).
    pub async fn depth(&self) -> Result<u64, QueueError> {
        self.backend.depth().await
    }

    /// Forgets the consumers of processes that ended: those holding no
    /// entry and idle for `idle_over`. The in-process queue has none.
    pub async fn prune_consumers(&self, idle_over: Duration) -> Result<u32, QueueError> {
        self.backend.prune_consumers(idle_over).await
    }

    /// Closes the queue's connections now rather than when the last handle
    /// is dropped.
    pub async fn close(&self) {
        self.backend.close().await
    }
}
