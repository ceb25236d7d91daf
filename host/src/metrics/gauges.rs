//! The queue-depth and runs-by-status gauges, polled from the store and
//! the queue.

use std::time::Duration;

use super::{set_queue_depth, set_runs};

/// How often [`spawn_gauges`] refreshes the queue and run gauges.
const GAUGE_INTERVAL: Duration = Duration::from_secs(2);

/// Runs the store may keep for every refresh of the finished counts: they
/// are recounted every `GAUGE_INTERVAL` up to this many, then less often
/// in proportion (every 20 s at a million), since counting them reads
/// every run the store keeps.
const RUNS_PER_FULL_COUNT: u64 = 100_000;

/// Refreshes the queue-depth and runs-by-status gauges: queued and running
/// runs every two seconds, finished ones as often as the store's size
/// allows (see [`RUNS_PER_FULL_COUNT`]).
///
/// A background task rather than a scrape-time query: [`super::render`] stays
/// synchronous and cheap, a slow store never stalls a scrape, and many
/// scrapers cost one query per interval, not one each. The figures are of
/// the shared store and queue, so every host of a fleet reports the same
/// values (aggregate them with `max`, not `sum`).
pub fn spawn_gauges(store: crate::store::Store, queue: crate::queue::Queue) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(GAUGE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_full = tokio::time::Instant::now();
        loop {
            tick.tick().await;
            match queue.depth().await {
                Ok(depth) => set_queue_depth(depth),
                Err(e) => tracing::debug!(error = %e, "queue depth for metrics"),
            }
            let now = tokio::time::Instant::now();
            let counts = if now >= next_full {
                let counts = store.count_by_status().await;
                if let Ok(counts) = &counts {
                    let runs: u64 = counts.values().sum();
                    let rounds = u32::try_from(runs / RUNS_PER_FULL_COUNT).unwrap_or(u32::MAX);
                    next_full = now + GAUGE_INTERVAL.saturating_mul(rounds);
                }
                counts
            } else {
                store.count_unfinished().await
            };
            match counts {
                Ok(counts) => {
                    for (status, count) in counts {
                        set_runs(status.as_str(), count);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "run counts for metrics"),
            }
        }
    });
}
