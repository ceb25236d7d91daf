//! A plugin's log lines, for others than the host's log:
//!
//! - [`capture`]: one call's lines for its caller (`POST
//!   /admin/plugins/{name}/invoke` answers with what the plugin logged). It
//!   runs a future with a sink in a task-local; the `log` import writes each
//!   line to the host's log as always, and also to the sink when there is
//!   one. A sink is bounded: lines past [`MAX_LINES`] or [`MAX_BYTES`] are
//!   counted, not kept.
//! - [`tap`]: every plugin's lines as they are logged, for followers
//!   (`GET /admin/plugins/{name}/logs`, `nova plugin dev`). A follower that
//!   falls [`TAP_LINES`] behind loses lines, and is told how many; with no
//!   follower, lines cost nothing more.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::broadcast;

/// Lines a follower of [`tap`] may fall behind before it loses some.
pub const TAP_LINES: usize = 256;

/// One line as [`tap`] gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tapped {
    pub plugin: Arc<str>,
    pub line: LogLine,
}

fn tap_sender() -> &'static broadcast::Sender<Tapped> {
    static TAP: OnceLock<broadcast::Sender<Tapped>> = OnceLock::new();
    TAP.get_or_init(|| broadcast::channel(TAP_LINES).0)
}

/// Every line any plugin logs from now on.
pub fn tap() -> broadcast::Receiver<Tapped> {
    tap_sender().subscribe()
}

/// Sends a line to [`tap`]'s followers, if there are any.
pub(crate) fn publish(plugin: &Arc<str>, level: &'static str, message: &str) {
    let sender = tap_sender();
    if sender.receiver_count() > 0 {
        let _ = sender.send(Tapped {
            plugin: plugin.clone(),
            line: LogLine {
                level,
                message: message.to_owned(),
            },
        });
    }
}

/// Most lines one capture keeps.
pub const MAX_LINES: usize = 200;
/// Most bytes of messages one capture keeps.
pub const MAX_BYTES: usize = 64 << 10;

/// One line a plugin logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    pub message: String,
}

/// What a call logged: the lines kept, and how many were not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    pub lines: Vec<LogLine>,
    pub dropped: u32,
    bytes: usize,
}

tokio::task_local! {
    static SINK: Arc<Mutex<Captured>>;
}

/// Runs `fut`, keeping the log lines of the plugin calls it makes.
pub async fn capture<F: Future>(fut: F) -> (F::Output, Captured) {
    let sink = Arc::new(Mutex::new(Captured::default()));
    let output = SINK.scope(sink.clone(), fut).await;
    let captured = std::mem::take(&mut *sink.lock().unwrap_or_else(|p| p.into_inner()));
    (output, captured)
}

/// Keeps `message` if a capture is running and has room.
pub(crate) fn record(level: &'static str, message: &str) {
    let _ = SINK.try_with(|sink| {
        let mut captured = sink.lock().unwrap_or_else(|p| p.into_inner());
        if captured.lines.len() >= MAX_LINES || captured.bytes + message.len() > MAX_BYTES {
            captured.dropped = captured.dropped.saturating_add(1);
            return;
        }
        captured.bytes += message.len();
        captured.lines.push(LogLine {
            level,
            message: message.to_owned(),
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_kept_only_inside_a_capture_and_bounded() {
        record("info", "outside: not kept anywhere");
        let ((), captured) = capture(async {
            for i in 0..MAX_LINES + 5 {
                record("info", &format!("line {i}"));
            }
        })
        .await;
        assert_eq!(captured.lines.len(), MAX_LINES);
        assert_eq!(captured.lines[0].message, "line 0");
        assert_eq!(captured.dropped, 5);
        let ((), big) = capture(async {
            record("warn", &"x".repeat(MAX_BYTES));
            record("warn", "one more");
        })
        .await;
        assert_eq!((big.lines.len(), big.dropped), (1, 1));
    }

    #[tokio::test]
    async fn the_tap_gives_followers_every_line() {
        let plugin: Arc<str> = "tapped-test".into();
        publish(&plugin, "info", "before anyone follows");
        let mut follower = tap();
        publish(&plugin, "warn", "seen");
        let got = loop {
            let t = follower.recv().await.unwrap();
            if t.plugin == plugin {
                break t;
            }
        };
        assert_eq!(got.line.message, "seen");
        assert_eq!(got.line.level, "warn");
    }
}
