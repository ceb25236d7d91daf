//! The Redis queue: one stream, one consumer group, one consumer per
//! worker process.
//!
//! - enqueue: `XADD {prefix}:runs MAXLEN ~ N * run <id>`
//! - next: `XAUTOCLAIM` entries idle for longer than the lease (their
//!   consumer died), else `XREADGROUP … BLOCK` for new ones
//! - extend: `XCLAIM … JUSTID` by the holder, which resets the idle time
//! - ack: `XACK` + `XDEL`
//!
//! Redis may restart without persistence, and the stream and the group
//! vanish with it. Clients reconnect by themselves (see [`crate::redis`]);
//! a NOGROUP answer recreates the group, from id 0 so that entries added
//! since the restart are delivered, and the call is tried again. Entries
//! lost with the restart are enqueued again by the run store's sweeper.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use fred::prelude::{ClientLike, Options, StreamsInterface, Value};
use fred::types::{ClusterHash, CustomCommand};
use tokio::time::Instant;

use super::{Backend, Delivery, QueueError, RunId, Token};
use crate::redis::{COMMAND_TIMEOUT, Connection, is_nogroup};

/// A bound on the stream's length, trimmed approximately (cheaply). Acked
/// entries are deleted, so only a backlog this large would lose entries,
/// and the sweeper would enqueue those runs again.
const MAX_LEN: i64 = 1_000_000;
/// How often one process looks for entries of dead consumers: a fraction of
/// the lease, so a dead consumer's runs wait at most about 1.25 leases.
const RECLAIM_MIN: Duration = Duration::from_millis(25);
const RECLAIM_MAX: Duration = Duration::from_secs(5);
/// Pauses between tries while Redis is unreachable.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Renews a delivery only while it is pending on this consumer: a plain
/// XCLAIM would take back an entry another consumer has reclaimed.
/// KEYS[1] stream, ARGV group, consumer, entry id.
const EXTEND_SCRIPT: &str = "\
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2]) == 0 then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1";
/// Acks and deletes in one step, so a crash between the two cannot leave an
/// acked entry counted by XLEN forever. KEYS[1] stream, ARGV group, id.
const ACK_SCRIPT: &str = "\
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return redis.call('XDEL', KEYS[1], ARGV[2])";

#[derive(Clone)]
pub struct RedisQueue {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    /// Non-blocking commands.
    conn: Connection,
    /// Idle connections for blocking reads: a blocked connection delays
    /// every command behind it, so each concurrent `next` reads on its own.
    readers: Mutex<Vec<Connection>>,
    stream: String,
    group: String,
    consumer: String,
    lease: Duration,
    reclaim_every: Duration,
    reclaim: Mutex<Reclaim>,
}

/// Where this process is in its scan of the group's pending entries.
struct Reclaim {
    due: Instant,
    /// XAUTOCLAIM's cursor: "0-0" starts a scan over.
    cursor: String,
    /// A `next` is scanning; others read new entries meanwhile.
    busy: bool,
}

/// One parsed stream entry.
struct Entry {
    id: String,
    run: Result<RunId, String>,
}

impl RedisQueue {
    pub(super) async fn connect(
        url: &str,
        prefix: &str,
        consumer: &str,
        lease: Duration,
    ) -> Result<RedisQueue, QueueError> {
        if prefix.is_empty() || consumer.is_empty() {
            return Err(QueueError::Config(
                "the key prefix and the consumer name must not be empty".into(),
            ));
        }
        if lease.is_zero() {
            return Err(QueueError::Config("the lease must be positive".into()));
        }
        let conn = Connection::open(url)
            .await
            .map_err(QueueError::redis("connect"))?;
        let queue = RedisQueue {
            inner: Arc::new(Inner {
                url: url.to_owned(),
                conn,
                readers: Mutex::new(Vec::new()),
                stream: format!("{prefix}:runs"),
                group: format!("{prefix}:workers"),
                consumer: consumer.to_owned(),
                lease,
                reclaim_every: (lease / 4).clamp(RECLAIM_MIN, RECLAIM_MAX),
                reclaim: Mutex::new(Reclaim {
                    due: Instant::now(),
                    cursor: "0-0".into(),
                    busy: false,
                }),
            }),
        };
        queue.ensure_group().await?;
        tracing::info!(
            stream = %queue.inner.stream,
            group = %queue.inner.group,
            consumer,
            lease = ?lease,
            "redis queue ready"
        );
        Ok(queue)
    }

    /// Creates the group (and the stream) unless it exists.
    async fn ensure_group(&self) -> Result<(), QueueError> {
        let inner = &self.inner;
        let created: Result<Value, _> = inner
            .conn
            .client()
            .xgroup_create(inner.stream.as_str(), inner.group.as_str(), "0", true)
            .await;
        match created {
            Ok(_) => {
                tracing::info!(stream = %inner.stream, group = %inner.group, "created consumer group");
                Ok(())
            }
            Err(e) if e.details().starts_with("BUSYGROUP") => Ok(()),
            Err(e) => Err(QueueError::redis("create group")(e)),
        }
    }

    /// Reclaims or reads until a delivery or `deadline`.
    async fn next_until(&self, deadline: Instant) -> Result<Option<Delivery>, QueueError> {
        loop {
            if let Some(delivery) = self.reclaim_if_due().await? {
                return Ok(Some(delivery));
            }
            let now = Instant::now();
            let reclaim_due = {
                let reclaim = self.lock_reclaim();
                // Another `next` is scanning: look again soon, not at once.
                if reclaim.busy {
                    now + RECLAIM_MIN
                } else {
                    reclaim.due.max(now)
                }
            };
            let block = deadline.min(reclaim_due).saturating_duration_since(now);
            if let Some(delivery) = self.read_new(block).await? {
                return Ok(Some(delivery));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    /// One XAUTOCLAIM step, when one is due and no other `next` of this
    /// process is scanning.
    async fn reclaim_if_due(&self) -> Result<Option<Delivery>, QueueError> {
        let cursor = {
            let mut reclaim = self.lock_reclaim();
            if reclaim.busy || Instant::now() < reclaim.due {
                return Ok(None);
            }
            reclaim.busy = true;
            reclaim.cursor.clone()
        };
        // Clears `busy` even if this future is dropped mid-scan.
        let mut turn = ReclaimTurn {
            queue: self,
            next: None,
        };
        let (next_cursor, claimed) = self
            .with_group("reclaim", || self.autoclaim(&cursor))
            .await?;
        // A finished scan waits for the next period; an unfinished one goes
        // on at the next call.
        let due = if next_cursor == "0-0" {
            Instant::now() + self.inner.reclaim_every
        } else {
            Instant::now()
        };
        turn.next = Some((due, next_cursor));
        drop(turn);
        let Some(entry) = claimed else {
            return Ok(None);
        };
        let run_id = match entry.run {
            Ok(run_id) => run_id,
            Err(reason) => {
                self.discard(&entry.id, &reason).await;
                return Ok(None);
            }
        };
        let deliveries = self.delivery_count(&entry.id).await;
        tracing::info!(run = %run_id, entry = %entry.id, deliveries, "reclaimed a run from a consumer that stopped renewing it");
        Ok(Some(Delivery {
            run_id,
            token: Token::Entry(entry.id),
            deliveries,
        }))
    }

    /// XAUTOCLAIM COUNT 1 from `cursor`: the next cursor, and the entry
    /// claimed if any.
    async fn autoclaim(&self, cursor: &str) -> Result<(String, Option<Entry>), QueueError> {
        let inner = &self.inner;
        let min_idle = u64::try_from(inner.lease.as_millis()).unwrap_or(u64::MAX);
        let reply: Value = inner
            .conn
            .client()
            .xautoclaim(
                inner.stream.as_str(),
                inner.group.as_str(),
                inner.consumer.as_str(),
                min_idle,
                cursor,
                Some(1),
                false,
            )
            .await
            .map_err(QueueError::redis("reclaim"))?;
        let mut parts = array(reply).into_iter();
        let next_cursor = parts
            .next()
            .and_then(Value::into_string)
            .unwrap_or_else(|| "0-0".into());
        let mut claimed = None;
        for entry in parts.next().map(array).unwrap_or_default() {
            match parse_entry(entry) {
                // Redis 6.2 lists entries deleted from the stream with nil
                // fields and leaves them pending; 7 drops them itself.
                Some(e) if e.run.as_ref().is_err_and(|r| r == DELETED) => {
                    self.discard(&e.id, DELETED).await;
                }
                Some(e) => claimed = Some(e),
                None => {}
            }
        }
        Ok((next_cursor, claimed))
    }

    /// How many times the entry was handed out, from XPENDING; after a
    /// reclaim that is at least 2, which is assumed if Redis cannot say.
    async fn delivery_count(&self, id: &str) -> u32 {
        let inner = &self.inner;
        let reply: Result<Value, _> = inner
            .conn
            .client()
            .custom(
                command("XPENDING"),
                vec![inner.stream.as_str(), inner.group.as_str(), id, id, "1"],
            )
            .await;
        reply
            .ok()
            .and_then(|v| array(v).into_iter().next())
            .and_then(|e| array(e).into_iter().nth(3))
            .and_then(|n| n.as_u64())
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(2)
    }

    /// XREADGROUP for one new entry, blocking up to `block` (not at all if
    /// it is under a millisecond).
    async fn read_new(&self, block: Duration) -> Result<Option<Delivery>, QueueError> {
        let reader = self.take_reader().await?;
        let block_ms = u64::try_from(block.as_millis()).unwrap_or(u64::MAX);
        let result = self
            .with_group("read", || self.read_on(&reader, block_ms))
            .await;
        // A reader that failed may still be blocked server-side: drop it
        // rather than queue the next read behind it.
        if result.is_ok() {
            self.lock_readers().push(reader);
        }
        let Some(entry) = result? else {
            return Ok(None);
        };
        match entry.run {
            Ok(run_id) => Ok(Some(Delivery {
                run_id,
                token: Token::Entry(entry.id),
                deliveries: 1,
            })),
            Err(reason) => {
                self.discard(&entry.id, &reason).await;
                Ok(None)
            }
        }
    }

    async fn read_on(
        &self,
        reader: &Connection,
        block_ms: u64,
    ) -> Result<Option<Entry>, QueueError> {
        let inner = &self.inner;
        let block = (block_ms > 0).then_some(block_ms);
        // The server answers after at most `block`; the margin covers the
        // round trip and a reconnection.
        let options = Options {
            timeout: Some(Duration::from_millis(block_ms) + COMMAND_TIMEOUT),
            ..Options::default()
        };
        let reply: Value = reader
            .client()
            .with_options(&options)
            .xreadgroup(
                inner.group.as_str(),
                inner.consumer.as_str(),
                Some(1),
                block,
                false,
                inner.stream.as_str(),
                ">",
            )
            .await
            .map_err(QueueError::redis("read"))?;
        // [[stream, [[id, [field, value, …]]]]], or nil on timeout.
        Ok(array(reply)
            .into_iter()
            .next()
            .and_then(|s| array(s).into_iter().nth(1))
            .and_then(|entries| array(entries).into_iter().next())
            .and_then(parse_entry))
    }

    async fn take_reader(&self) -> Result<Connection, QueueError> {
        let idle = self.lock_readers().pop();
        match idle {
            Some(reader) => Ok(reader),
            None => Connection::open(&self.inner.url)
                .await
                .map_err(QueueError::redis("connect reader")),
        }
    }

    /// Runs `op`; if the group is missing (Redis restarted and lost it),
    /// recreates it and runs `op` once more.
    async fn with_group<T, F, Fut>(&self, what: &'static str, op: F) -> Result<T, QueueError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, QueueError>>,
    {
        match op().await {
            Err(QueueError::Redis { source, .. }) if is_nogroup(&source) => {
                tracing::warn!(
                    stream = %self.inner.stream,
                    group = %self.inner.group,
                    during = what,
                    "consumer group missing (Redis restarted?); recreating it"
                );
                self.ensure_group().await?;
                op().await
            }
            other => other,
        }
    }

    /// Removes an entry that holds no run id; nothing could ever run it.
    async fn discard(&self, id: &str, reason: &str) {
        tracing::warn!(entry = id, reason, "discarding a malformed queue entry");
        if let Err(e) = self.ack_entry(id).await {
            tracing::warn!(entry = id, error = %e, "cannot discard a malformed queue entry");
        }
    }

    async fn ack_entry(&self, id: &str) -> Result<(), QueueError> {
        let inner = &self.inner;
        // XACK of a missing group answers 0, not NOGROUP: nothing to retry.
        let _: Value = inner
            .conn
            .client()
            .custom(
                eval(),
                vec![
                    ACK_SCRIPT,
                    "1",
                    inner.stream.as_str(),
                    inner.group.as_str(),
                    id,
                ],
            )
            .await
            .map_err(QueueError::redis("ack"))?;
        Ok(())
    }

    fn lock_readers(&self) -> MutexGuard<'_, Vec<Connection>> {
        // Pushes and pops cannot leave the list half-changed.
        self.inner.readers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_reclaim(&self) -> MutexGuard<'_, Reclaim> {
        self.inner.reclaim.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Backend for RedisQueue {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), QueueError> {
        let _: Value = self
            .inner
            .conn
            .client()
            .ping(None)
            .await
            .map_err(QueueError::redis("ping"))?;
        Ok(())
    }

    async fn enqueue(&self, run: RunId) -> Result<(), QueueError> {
        let inner = &self.inner;
        let _: Value = inner
            .conn
            .client()
            .xadd(
                inner.stream.as_str(),
                false,
                ("MAXLEN", "~", MAX_LEN),
                "*",
                ("run", run.to_string()),
            )
            .await
            .map_err(QueueError::redis("enqueue"))?;
        Ok(())
    }

    async fn next(&self, wait: Duration) -> Result<Option<Delivery>, QueueError> {
        let deadline = Instant::now() + wait;
        let mut backoff = BACKOFF_MIN;
        loop {
            let error = match self.next_until(deadline).await {
                Ok(found) => return Ok(found),
                Err(e) => e,
            };
            let now = Instant::now();
            // Never hand an error back without a pause: a caller looping on
            // `next` while Redis is down must not spin.
            let pause = backoff.min(deadline.saturating_duration_since(now));
            tokio::time::sleep(pause.max(BACKOFF_MIN)).await;
            if Instant::now() >= deadline {
                return Err(error);
            }
            tracing::debug!(error = %error, "queue read failed; retrying");
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn extend(&self, d: &Delivery) -> Result<bool, QueueError> {
        let Token::Entry(id) = &d.token else {
            return Err(QueueError::ForeignDelivery);
        };
        let inner = &self.inner;
        let reply: Result<Value, _> = inner
            .conn
            .client()
            .custom(
                eval(),
                vec![
                    EXTEND_SCRIPT,
                    "1",
                    inner.stream.as_str(),
                    inner.group.as_str(),
                    inner.consumer.as_str(),
                    id.as_str(),
                ],
            )
            .await;
        let held = match reply {
            Ok(v) => v.as_u64() == Some(1),
            Err(e) if is_nogroup(&e) => {
                // Lost with a Redis restart; the group is recreated for the
                // next reads, and the sweeper re-enqueues the run.
                self.ensure_group().await?;
                false
            }
            Err(e) => return Err(QueueError::redis("extend")(e)),
        };
        if !held {
            tracing::debug!(run = %d.run_id, entry = %id, "queue entry no longer held by this consumer");
        }
        Ok(held)
    }

    async fn ack(&self, d: &Delivery) -> Result<(), QueueError> {
        let Token::Entry(id) = &d.token else {
            return Err(QueueError::ForeignDelivery);
        };
        self.ack_entry(id).await
    }

    /// Removes the group's consumers that hold no entry and have not read
    /// for `idle_over`: processes that ended (each process is a consumer of
    /// its own, named hostname-pid), which would otherwise stay listed in
    /// `XINFO CONSUMERS` forever. A live consumer reads every second, and
    /// one removed anyway is made again by its next read. Returns how many
    /// were removed.
    async fn prune_consumers(&self, idle_over: Duration) -> Result<u32, QueueError> {
        let inner = &self.inner;
        let client = inner.conn.client();
        let listing: Vec<Value> = client
            .xinfo_consumers(inner.stream.as_str(), inner.group.as_str())
            .await
            .map_err(QueueError::redis("list consumers"))?;
        let idle_over = i64::try_from(idle_over.as_millis()).unwrap_or(i64::MAX);
        let mut removed = 0;
        for consumer in listing {
            let Some((name, pending, idle)) = consumer_info(consumer) else {
                continue;
            };
            if name == inner.consumer || pending > 0 || idle < idle_over {
                continue;
            }
            let _: Value = client
                .xgroup_delconsumer(inner.stream.as_str(), inner.group.as_str(), name.as_str())
                .await
                .map_err(QueueError::redis("remove consumer"))?;
            tracing::info!(consumer = %name, idle_ms = idle, "removed a consumer that ended");
            removed += 1;
        }
        Ok(removed)
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        let inner = &self.inner;
        inner
            .conn
            .client()
            .xlen(inner.stream.as_str())
            .await
            .map_err(QueueError::redis("depth"))
    }

    async fn close(&self) {
        let readers = std::mem::take(&mut *self.lock_readers());
        for reader in readers.iter().chain([&self.inner.conn]) {
            let _ = reader.client().quit().await;
        }
    }
}

/// This process's turn at scanning; ends the turn when dropped, with the
/// scan's progress if it got that far.
struct ReclaimTurn<'a> {
    queue: &'a RedisQueue,
    next: Option<(Instant, String)>,
}

impl Drop for ReclaimTurn<'_> {
    fn drop(&mut self) {
        let mut reclaim = self.queue.lock_reclaim();
        reclaim.busy = false;
        match self.next.take() {
            Some((due, cursor)) => {
                reclaim.due = due;
                reclaim.cursor = cursor;
            }
            // Failed or cancelled: try again after a period, from where the
            // scan was.
            None => reclaim.due = Instant::now() + self.queue.inner.reclaim_every,
        }
    }
}

const DELETED: &str = "deleted from the stream";

fn command(name: &'static str) -> CustomCommand {
    CustomCommand::new_static(name, ClusterHash::FirstKey, false)
}

fn eval() -> CustomCommand {
    // The first key comes after the script and the key count.
    CustomCommand::new_static("EVAL", ClusterHash::Offset(2), false)
}

/// The elements of an array reply; none for nil.
fn array(value: Value) -> Vec<Value> {
    match value {
        Value::Null => Vec::new(),
        other => other.into_array(),
    }
}

/// `[id, [field, value, …]]`, the fields nil for an entry deleted from the
/// stream.
fn parse_entry(value: Value) -> Option<Entry> {
    let mut parts = array(value).into_iter();
    let id = parts.next()?.into_string()?;
    let run = match parts.next() {
        None | Some(Value::Null) => Err(DELETED.to_owned()),
        Some(fields) => {
            let mut run = Err("no run field".to_owned());
            let mut fields = array(fields).into_iter();
            while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
                if name.as_str().as_deref() == Some("run") {
                    run = value
                        .as_str()
                        .ok_or_else(|| "run field is not text".to_owned())
                        .and_then(|s| {
                            RunId::parse_str(&s).map_err(|e| format!("run field {s:?}: {e}"))
                        });
                }
            }
            run
        }
    };
    Some(Entry { id, run })
}

/// A consumer of `XINFO CONSUMERS`: its name, pending entries and idle ms.
fn consumer_info(consumer: Value) -> Option<(String, i64, i64)> {
    let fields: std::collections::HashMap<String, Value> = consumer.convert().ok()?;
    Some((
        fields.get("name")?.as_string()?,
        fields.get("pending")?.as_i64()?,
        fields.get("idle")?.as_i64()?,
    ))
}
