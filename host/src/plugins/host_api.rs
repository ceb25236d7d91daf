//! The host side of the interfaces plugins import: `log`, `kv` and
//! `knowledge`, for every contract version the host serves.

use std::time::Duration;

use super::bindings::v0_1::{knowledge, kv, log, types};
use super::sandbox::{HostState, MAX_LOG_LINES, MAX_LOG_MESSAGE};

impl types::Host for HostState {}

impl log::Host for HostState {
    async fn log(&mut self, level: log::Level, message: String) {
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES {
            if self.log_lines == MAX_LOG_LINES + 1 {
                tracing::warn!(plugin = %self.plugin, "plugin exceeded {MAX_LOG_LINES} log lines in one call; dropping the rest");
            }
            return;
        }
        let message = truncate(&message, MAX_LOG_MESSAGE);
        let plugin = &*self.plugin;
        match level {
            log::Level::Debug => tracing::debug!(target: "nova::plugin", plugin, "{message}"),
            log::Level::Info => tracing::info!(target: "nova::plugin", plugin, "{message}"),
            log::Level::Warn => tracing::warn!(target: "nova::plugin", plugin, "{message}"),
            log::Level::Error => tracing::error!(target: "nova::plugin", plugin, "{message}"),
        }
    }
}

impl kv::Host for HostState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, String> {
        let kv = self.services.kv.clone();
        kv.get(&self.plugin, &key).await.map_err(|e| e.to_string())
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_seconds: Option<u32>,
    ) -> Result<(), String> {
        let kv = self.services.kv.clone();
        let ttl = ttl_seconds.map(|s| Duration::from_secs(s.into()));
        kv.set(&self.plugin, &key, value, ttl)
            .await
            .map_err(|e| e.to_string())
    }

    async fn delete(&mut self, key: String) -> Result<bool, String> {
        let kv = self.services.kv.clone();
        kv.delete(&self.plugin, &key)
            .await
            .map_err(|e| e.to_string())
    }
}

impl knowledge::Host for HostState {
    async fn search(
        &mut self,
        query: String,
        top_k: u32,
        filter: Vec<(String, String)>,
    ) -> Result<Vec<knowledge::Hit>, String> {
        let knowledge = self.services.knowledge.clone();
        let hits = knowledge
            .search(&query, top_k, &filter)
            .await
            .map_err(|e| e.to_string())?;
        Ok(hits
            .into_iter()
            .map(|h| knowledge::Hit {
                source: h.source,
                text: h.text,
                score: h.score,
                metadata: h.metadata,
            })
            .collect())
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
