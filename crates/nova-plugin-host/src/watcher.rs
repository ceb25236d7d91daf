//! Hot reload: watches the plugin directory and syncs the registry with
//! every `.wasm` or manifest that appears, changes or disappears.
//!
//! Events are settled before acting: a file copied in place produces a
//! burst of writes, and loading it half-written would only produce a
//! rejection followed by a reload.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::registry::{Registry, plugin_name_of};

/// Quiet time after the last event for a burst to count as finished.
const SETTLE: Duration = Duration::from_millis(50);
/// Longest a burst may delay a reload: a file rewritten continuously is
/// still picked up.
const MAX_DELAY: Duration = Duration::from_millis(500);

enum Change {
    Name(String),
    /// The kernel dropped events: resync everything.
    Rescan,
}

/// Stops watching when dropped.
pub struct WatchHandle {
    _watcher: RecommendedWatcher,
    task: JoinHandle<()>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn spawn(registry: Arc<Registry>) -> notify::Result<WatchHandle> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<Event>| match event {
            Ok(event) => {
                if event.need_rescan() {
                    let _ = tx.send(Change::Rescan);
                }
                if !relevant(&event.kind) {
                    return;
                }
                for path in &event.paths {
                    if let Some(name) = plugin_name_of(path) {
                        let _ = tx.send(Change::Name(name));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "plugin directory watch error; rescanning");
                let _ = tx.send(Change::Rescan);
            }
        })?;
    watcher.watch(registry.dir(), RecursiveMode::NonRecursive)?;
    let task = tokio::spawn(run(registry, rx));
    Ok(WatchHandle {
        _watcher: watcher,
        task,
    })
}

/// Reads and the closing of a file opened for reading (the registry's own
/// reads among them) change nothing.
fn relevant(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

async fn run(registry: Arc<Registry>, mut rx: mpsc::UnboundedReceiver<Change>) {
    while let Some(first) = rx.recv().await {
        let mut names = BTreeSet::new();
        let mut rescan = false;
        let mut note = |change| match change {
            Change::Name(name) => {
                names.insert(name);
            }
            Change::Rescan => rescan = true,
        };
        note(first);
        let deadline = tokio::time::Instant::now() + MAX_DELAY;
        loop {
            let wait = SETTLE.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            match tokio::time::timeout(wait, rx.recv()).await {
                Ok(Some(change)) => note(change),
                Ok(None) | Err(_) => break,
            }
        }
        if rescan {
            registry.rescan().await;
        } else {
            for name in names {
                registry.sync_name(&name).await;
            }
        }
    }
}
