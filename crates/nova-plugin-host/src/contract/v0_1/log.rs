//! `log`: a plugin's log lines, into the host's, escaped and bounded.

use super::step::nova::plugin::log;
use crate::sandbox::{HostState, MAX_LOG_LINES, MAX_LOG_MESSAGE};

impl log::Host for HostState {
    async fn log(&mut self, level: log::Level, message: String) {
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES {
            if self.log_lines == MAX_LOG_LINES + 1 {
                tracing::warn!(plugin = %self.plugin, "plugin exceeded {MAX_LOG_LINES} log lines in one call; dropping the rest");
            }
            return;
        }
        // Escaped: a plugin cannot end the line and write one of its own.
        let message = crate::text::clean(&message, MAX_LOG_MESSAGE);
        let name = match level {
            log::Level::Debug => "debug",
            log::Level::Info => "info",
            log::Level::Warn => "warn",
            log::Level::Error => "error",
        };
        crate::logs::record(name, &message);
        crate::logs::publish(&self.plugin, name, &message);
        let plugin = &*self.plugin;
        match level {
            log::Level::Debug => tracing::debug!(target: "nova::plugin", plugin, "{message}"),
            log::Level::Info => tracing::info!(target: "nova::plugin", plugin, "{message}"),
            log::Level::Warn => tracing::warn!(target: "nova::plugin", plugin, "{message}"),
            log::Level::Error => tracing::error!(target: "nova::plugin", plugin, "{message}"),
        }
    }
}
