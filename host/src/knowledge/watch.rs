//! Re-ingests when the knowledge changes: a file under a source directory
//! is added, changed or removed, or a loader plugin is loaded, replaced or
//! removed (its version may differ).
//!
//! Bursts are settled first: an editor saving, or a `git pull`, writes
//! many files; one incremental ingest covers them all.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::ingest::Ingestor;

/// Quiet time after the last change before ingesting.
const SETTLE: Duration = Duration::from_millis(300);
/// Longest a stream of changes may delay an ingest.
const MAX_DELAY: Duration = Duration::from_secs(3);

/// Stops watching when dropped.
pub struct WatchHandle {
    _watchers: Vec<RecommendedWatcher>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Watches every source directory that exists and the loader plugins.
pub fn spawn(
    ingestor: Arc<Ingestor>,
    registry_loaders: tokio::sync::watch::Receiver<u64>,
) -> WatchHandle {
    let (tx, rx) = mpsc::unbounded_channel::<usize>();
    let mut watchers = Vec::new();
    for (i, source) in ingestor.sources().iter().enumerate() {
        let tx = tx.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            let relevant = match &event {
                Ok(event) => match event.kind {
                    EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
                    EventKind::Access(_) => false,
                    _ => true,
                },
                Err(_) => true,
            };
            if relevant {
                let _ = tx.send(i);
            }
        })
        .and_then(|mut w| w.watch(&source.dir, RecursiveMode::Recursive).map(|()| w));
        match watcher {
            Ok(w) => watchers.push(w),
            Err(e) => tracing::warn!(
                dir = %source.dir.display(),
                error = %e,
                "cannot watch a knowledge directory; changes need POST /rag/reload"
            ),
        }
    }
    let all = ingestor.sources().len();
    let mut loaders = registry_loaders;
    let loader_tx = tx.clone();
    let loader_task = tokio::spawn(async move {
        loaders.borrow_and_update();
        while loaders.changed().await.is_ok() {
            for i in 0..all {
                if loader_tx.send(i).is_err() {
                    return;
                }
            }
        }
    });
    let task = tokio::spawn(run(ingestor, rx));
    WatchHandle {
        _watchers: watchers,
        tasks: vec![task, loader_task],
    }
}

async fn run(ingestor: Arc<Ingestor>, mut rx: mpsc::UnboundedReceiver<usize>) {
    while let Some(first) = rx.recv().await {
        let mut changed = BTreeSet::from([first]);
        let deadline = tokio::time::Instant::now() + MAX_DELAY;
        loop {
            let wait = SETTLE.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            match tokio::time::timeout(wait, rx.recv()).await {
                Ok(Some(i)) => {
                    changed.insert(i);
                }
                Ok(None) | Err(_) => break,
            }
        }
        for i in changed {
            if let Some(source) = ingestor.sources().get(i).cloned() {
                tracing::debug!(collection = %source.collection, dir = %source.dir.display(), "knowledge changed; ingesting");
                ingestor.ingest(uuid::Uuid::now_v7(), source).await;
            }
        }
    }
}
