//! `store`, over the [`Docs`] capability, in the calling plugin's
//! namespace. The capability checks keys, values and listing limits.

use super::step::nova::plugin::store;
use crate::capability::{CapabilityError, Doc, Docs};
use crate::sandbox::HostState;

impl HostState {
    fn docs(&self) -> Result<std::sync::Arc<dyn Docs>, store::StoreError> {
        self.capabilities
            .require::<dyn Docs>("the document store")
            .map_err(doc_error)
    }
}

impl store::Host for HostState {
    async fn get(&mut self, key: String) -> Result<Option<store::Doc>, store::StoreError> {
        let doc = self
            .docs()?
            .get(&self.plugin, &key)
            .await
            .map_err(doc_error)?;
        Ok(doc.map(to_doc))
    }

    async fn put(
        &mut self,
        key: String,
        value: String,
        expected_version: Option<u64>,
    ) -> Result<u64, store::StoreError> {
        self.docs()?
            .put(
                &self.plugin,
                &key,
                value,
                expected_version,
                self.store_quota,
            )
            .await
            .map_err(doc_error)
    }

    async fn delete(&mut self, key: String) -> Result<bool, store::StoreError> {
        self.docs()?
            .delete(&self.plugin, &key)
            .await
            .map_err(doc_error)
    }

    async fn list_by_prefix(
        &mut self,
        prefix: String,
        limit: u32,
    ) -> Result<Vec<store::Doc>, store::StoreError> {
        let page = self
            .docs()?
            .page(&self.plugin, &prefix, None, limit, self.list_bytes)
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
        let page = self
            .docs()?
            .page(
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

fn to_doc(doc: Doc) -> store::Doc {
    store::Doc {
        key: doc.key,
        value: doc.value,
        version: doc.version,
    }
}

fn doc_error(e: CapabilityError) -> store::StoreError {
    match e {
        CapabilityError::Conflict(actual) => store::StoreError::Conflict(actual),
        CapabilityError::Invalid(message) => store::StoreError::Invalid(message),
        CapabilityError::Unavailable(message) => store::StoreError::Unavailable(message),
    }
}
