//! `knowledge`, over the [`KnowledgeSearch`] capability.

use super::step::nova::plugin::knowledge;
use crate::capability::KnowledgeSearch;
use crate::sandbox::HostState;

impl knowledge::Host for HostState {
    async fn search(
        &mut self,
        query: String,
        top_k: u32,
        filter: Vec<(String, String)>,
    ) -> Result<Vec<knowledge::Hit>, String> {
        let knowledge = self
            .capabilities
            .require::<dyn KnowledgeSearch>("the knowledge base")
            .map_err(|e| e.to_string())?;
        let hits = knowledge
            .search(&query, top_k, &filter, &self.knowledge)
            .await
            .map_err(|e| e.to_string())?;
        Ok(hits
            .into_iter()
            .map(|h| knowledge::Hit {
                source: h.source,
                text: h.text,
                score: h.score,
                // The interface's metadata is text: a value that is not a
                // string goes as its JSON.
                metadata: h
                    .metadata
                    .into_iter()
                    .map(|(k, v)| match v {
                        serde_json::Value::String(s) => (k, s),
                        other => (k, other.to_string()),
                    })
                    .collect(),
            })
            .collect())
    }
}
