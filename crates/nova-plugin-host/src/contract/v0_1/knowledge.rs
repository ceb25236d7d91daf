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
