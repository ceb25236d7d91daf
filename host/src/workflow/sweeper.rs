//! Finds runs the queue lost and enqueues them again.
//!
//! A run can be in the store but not in the queue: Redis restarted without
//! persistence, the enqueue after the insert failed, or the worker holding
//! it died. Enqueueing a run twice is harmless (only the lease holder
//! executes it), so the sweeper errs on the side of enqueueing.

use std::time::Duration;

use tokio::task::JoinHandle;

use super::Workflows;

/// How long a queued run may wait while the queue has a backlog before it
/// is assumed lost; with an empty queue, any queued run older than a
/// couple of seconds was lost.
const BACKLOG_GRACE: Duration = Duration::from_secs(60);
const IDLE_GRACE: Duration = Duration::from_secs(2);
/// How often the sweeper deletes expired runs and forgets the queue
/// consumers of processes that ended, and how long such a consumer must
/// have been idle: far longer than any live worker's gap between reads (a
/// second).
const PRUNE_EVERY: Duration = Duration::from_secs(60);
const CONSUMER_IDLE: Duration = Duration::from_secs(3600);

pub fn spawn_sweeper(wf: Workflows) -> JoinHandle<()> {
    tokio::spawn(async move {
        // The in-process queue starts empty: everything unfinished in the
        // store is work left by the previous process.
        if wf.queue.backend() == "in-process" {
            match wf.store.unfinished_runs().await {
                Ok(ids) => {
                    if !ids.is_empty() {
                        tracing::info!(runs = ids.len(), "recovering unfinished runs");
                    }
                    for id in ids {
                        let _ = wf.queue.enqueue(id).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot recover unfinished runs"),
            }
        }
        let mut next_prune = tokio::time::Instant::now() + PRUNE_EVERY;
        loop {
            tokio::time::sleep(wf.config.sweep_every).await;
            if let Err(e) = sweep(&wf).await {
                tracing::warn!(error = %e, "sweep failed");
            }
            if tokio::time::Instant::now() >= next_prune {
                next_prune += PRUNE_EVERY;
                if let Err(e) = wf.queue.prune_consumers(CONSUMER_IDLE).await {
                    tracing::warn!(error = %e, "cannot prune the queue's consumers");
                }
                if let Some(retention) = wf.config.retention {
                    expire_runs(&wf, retention).await;
                }
            }
        }
    })
}

/// Runs deleted per statement, so that a large first clean-up does not
/// hold long locks.
const EXPIRE_BATCH: u32 = 1_000;

/// Deletes the runs that finished more than `retention` ago.
async fn expire_runs(wf: &Workflows, retention: Duration) {
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    let cutoff = crate::store::now_ms().saturating_sub(retention_ms);
    let mut deleted = 0;
    loop {
        match wf.store.delete_finished(cutoff, EXPIRE_BATCH).await {
            Ok(n) => {
                deleted += n;
                if n < u64::from(EXPIRE_BATCH) {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot delete expired runs");
                break;
            }
        }
    }
    if deleted > 0 {
        tracing::info!(runs = deleted, retention = ?retention, "deleted expired runs");
    }
}

async fn sweep(wf: &Workflows) -> Result<(), super::WorkflowError> {
    let grace = if wf.queue.depth().await? == 0 {
        IDLE_GRACE
    } else {
        BACKLOG_GRACE
    };
    let stale = wf.store.stale_runs(grace, 500).await?;
    if !stale.is_empty() {
        tracing::info!(runs = stale.len(), "re-enqueueing runs the queue lost");
    }
    for id in stale {
        wf.queue.enqueue(id).await?;
    }
    Ok(())
}
