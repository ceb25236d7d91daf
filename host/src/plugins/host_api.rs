//! The host side of the interfaces plugins import: `log`, `kv`, `store`
//! and `knowledge`, for every contract version the host serves.

use std::time::Duration;

use super::bindings::v0_1::{knowledge, kv, log, store, types};
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
        // Escaped: a plugin cannot end the line and write one of its own.
        let message = super::text::clean(&message, MAX_LOG_MESSAGE);
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
        kv.set(&self.plugin, &key, value, ttl, self.kv_quota)
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
                metadata: h.metadata.into_iter().collect(),
            })
            .collect())
    }
}

/// Longest document key, and largest document, a plugin may store.
const MAX_DOC_KEY: usize = 512;
const MAX_DOC_BYTES: usize = 1 << 20;

impl store::Host for HostState {
    async fn get(&mut self, key: String) -> Result<Option<store::Doc>, store::StoreError> {
        check_doc_key(&key)?;
        let docs = self.services.store.clone();
        let doc = docs.doc_get(&self.plugin, &key).await.map_err(doc_error)?;
        Ok(doc.map(to_doc))
    }

    async fn put(
        &mut self,
        key: String,
        value: String,
        expected_version: Option<u64>,
    ) -> Result<u64, store::StoreError> {
        check_doc_key(&key)?;
        if value.len() > MAX_DOC_BYTES {
            return Err(store::StoreError::Invalid(format!(
                "value of {} bytes is over the {MAX_DOC_BYTES}-byte limit",
                value.len()
            )));
        }
        let value = crate::store::RawJson::parse(value)
            .map_err(|e| store::StoreError::Invalid(format!("value is not JSON: {e}")))?;
        let docs = self.services.store.clone();
        docs.doc_put(
            &self.plugin,
            &key,
            &value,
            expected_version,
            self.store_quota,
        )
        .await
        .map_err(doc_error)
    }

    async fn delete(&mut self, key: String) -> Result<bool, store::StoreError> {
        check_doc_key(&key)?;
        let docs = self.services.store.clone();
        docs.doc_delete(&self.plugin, &key).await.map_err(doc_error)
    }

    async fn list_by_prefix(
        &mut self,
        prefix: String,
        limit: u32,
    ) -> Result<Vec<store::Doc>, store::StoreError> {
        if !(1..=1000).contains(&limit) {
            return Err(store::StoreError::Invalid(
                "limit must be between 1 and 1000".into(),
            ));
        }
        let docs = self.services.store.clone();
        let page = docs
            .doc_page(&self.plugin, &prefix, None, limit, self.list_bytes)
            .await
            .map_err(doc_error)?;
        Ok(page.docs.into_iter().map(to_doc).collect())
    }

    async fn list_page(
        &mut self,
        prefix: String,
        after: Option<String>,
        limit: u32,
        max_bytes: u32,
    ) -> Result<store::Page, store::StoreError> {
        if !(1..=1000).contains(&limit) {
            return Err(store::StoreError::Invalid(
                "limit must be between 1 and 1000".into(),
            ));
        }
        let docs = self.services.store.clone();
        let page = docs
            .doc_page(
                &self.plugin,
                &prefix,
                after.as_deref(),
                limit,
                u64::from(max_bytes).min(self.list_bytes),
            )
            .await
            .map_err(doc_error)?;
        Ok(store::Page {
            docs: page.docs.into_iter().map(to_doc).collect(),
            next: page.next,
        })
    }
}

fn check_doc_key(key: &str) -> Result<(), store::StoreError> {
    if key.is_empty() || key.len() > MAX_DOC_KEY {
        return Err(store::StoreError::Invalid(format!(
            "key must be 1 to {MAX_DOC_KEY} bytes"
        )));
    }
    Ok(())
}

fn to_doc(doc: crate::store::Doc) -> store::Doc {
    store::Doc {
        key: doc.key,
        value: doc.value.into_string(),
        version: doc.version,
    }
}

fn doc_error(e: crate::store::StoreError) -> store::StoreError {
    match e {
        crate::store::StoreError::Conflict { actual, .. } => store::StoreError::Conflict(actual),
        crate::store::StoreError::Invalid(message) | crate::store::StoreError::Quota(message) => {
            store::StoreError::Invalid(message)
        }
        other => {
            tracing::warn!(error = %other, "plugin store call failed");
            store::StoreError::Unavailable(other.to_string())
        }
    }
}
