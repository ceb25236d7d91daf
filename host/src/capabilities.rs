//! The host's services, lent to plugins: each implements a capability
//! trait of the plugin host over the backend this process was built with.
//!
//! [`lend`] is the one place that decides what plugins can reach; a new
//! capability is one adapter here and one line there.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::knowledge::Knowledge;
use crate::kv::{Kv, KvError, KvQuota};
use crate::plugins::Quota;
use crate::plugins::capability::{self, Capabilities, CapabilityError, Doc, DocPage, Hit};
use crate::store::{DocQuota, Store, StoreError};

/// What plugins of this host can reach through their imports.
pub fn lend(kv: Kv, store: Store, knowledge: Knowledge) -> Capabilities {
    Capabilities::new()
        .with::<dyn capability::Kv>(Arc::new(kv))
        .with::<dyn capability::Docs>(Arc::new(StoreDocs(store)))
        .with::<dyn capability::KnowledgeSearch>(Arc::new(knowledge))
}

#[async_trait]
impl capability::Kv for Kv {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, CapabilityError> {
        Kv::get(self, namespace, key).await.map_err(kv_error)
    }

    async fn set(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
        quota: Quota,
    ) -> Result<(), CapabilityError> {
        Kv::set(self, namespace, key, value, ttl, kv_quota(quota))
            .await
            .map_err(kv_error)
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<bool, CapabilityError> {
        Kv::delete(self, namespace, key).await.map_err(kv_error)
    }

    async fn list(
        &self,
        namespace: &str,
        cursor: Option<u64>,
        limit: u32,
    ) -> Result<(Vec<String>, Option<u64>), CapabilityError> {
        Kv::list(self, namespace, cursor, limit)
            .await
            .map_err(kv_error)
    }

    async fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: u64,
        quota: Quota,
    ) -> Result<u64, CapabilityError> {
        Kv::increment(self, namespace, key, delta, kv_quota(quota))
            .await
            .map_err(kv_error)
    }
}

/// A plugin's quota, in kv's terms.
fn kv_quota(quota: Quota) -> KvQuota {
    KvQuota {
        keys: quota.items,
        bytes: quota.bytes,
    }
}

fn kv_error(e: KvError) -> CapabilityError {
    match e {
        KvError::Redis(_) => CapabilityError::Unavailable(e.to_string()),
        _ => CapabilityError::Invalid(e.to_string()),
    }
}

/// The store's plugin documents.
struct StoreDocs(Store);

#[async_trait]
impl capability::Docs for StoreDocs {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Doc>, CapabilityError> {
        let doc = self.0.doc_get(namespace, key).await.map_err(doc_error)?;
        Ok(doc.map(to_doc))
    }

    async fn put(
        &self,
        namespace: &str,
        key: &str,
        value: String,
        expected_version: Option<u64>,
        quota: Quota,
    ) -> Result<u64, CapabilityError> {
        let quota = DocQuota {
            docs: quota.items,
            bytes: quota.bytes,
        };
        self.0
            .doc_put_text(namespace, key, value, expected_version, quota)
            .await
            .map_err(doc_error)
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<bool, CapabilityError> {
        self.0.doc_delete(namespace, key).await.map_err(doc_error)
    }

    async fn page(
        &self,
        namespace: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
        max_bytes: u64,
    ) -> Result<DocPage, CapabilityError> {
        let page = self
            .0
            .doc_page(namespace, prefix, after, limit, max_bytes)
            .await
            .map_err(doc_error)?;
        Ok(DocPage {
            docs: page.docs.into_iter().map(to_doc).collect(),
            next: page.next,
        })
    }
}

fn to_doc(doc: crate::store::Doc) -> Doc {
    Doc {
        key: doc.key,
        value: doc.value.into_string(),
        version: doc.version,
    }
}

fn doc_error(e: StoreError) -> CapabilityError {
    match e {
        StoreError::Conflict { actual, .. } => CapabilityError::Conflict(actual),
        StoreError::Invalid(message) | StoreError::Quota(message) => {
            CapabilityError::Invalid(message)
        }
        other => {
            tracing::warn!(error = %other, "plugin store call failed");
            CapabilityError::Unavailable(other.to_string())
        }
    }
}

#[async_trait]
impl capability::KnowledgeSearch for Knowledge {
    async fn search(
        &self,
        query: &str,
        top_k: u32,
        filter: &[(String, String)],
        granted: &[String],
    ) -> Result<Vec<Hit>, CapabilityError> {
        use crate::knowledge::KnowledgeError as E;
        Knowledge::search(self, query, top_k, filter, granted)
            .await
            .map_err(|e| match e {
                E::EmptyQuery
                | E::QueryTooLong { .. }
                | E::BadTopK
                | E::BadFilter(_)
                | E::BadCollection(_)
                | E::UnknownCollection(_) => CapabilityError::Invalid(e.to_string()),
                _ => CapabilityError::Unavailable(e.to_string()),
            })
    }
}
