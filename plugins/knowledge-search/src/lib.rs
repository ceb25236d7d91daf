//! nova's knowledge-search step: semantic search over the host's knowledge
//! base through the `knowledge` import.
//!
//! Parsing and output live in [`search`], which knows nothing of the
//! component bindings and is unit-tested natively; its module docs give the
//! input and config.

mod search;

use nova_plugin::{Error, RawStep, debug, knowledge};

// Natively (unit tests) the export is compiled out.
struct KnowledgeSearch;

impl RawStep for KnowledgeSearch {
    const DESCRIPTION: &'static str = "Searches the knowledge base for the input query (a string, \
                                       or {\"query\", \"top_k\", \"filter\"}); returns {\"query\", \
                                       \"results\": [{\"source\", \"text\", \"score\", \
                                       \"metadata\"}]}.";

    fn run(input: &str, config: &str) -> Result<String, Error> {
        let request = search::parse(input, config).map_err(|e| match e {
            search::Error::InvalidInput(m) => Error::InvalidInput(m),
        })?;
        debug!(
            "knowledge search: top_k {}, filter {:?}, query {:?}",
            request.top_k, request.filter, request.query
        );
        let filter: Vec<(&str, &str)> = request
            .filter
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let hits = knowledge::search(&request.query, request.top_k, &filter)?;
        debug!("knowledge search: {} results", hits.len());
        let hits = hits
            .into_iter()
            .map(|h| search::Hit {
                source: h.source,
                text: h.text,
                score: h.score,
                metadata: h.metadata,
            })
            .collect();
        Ok(search::output(&request.query, hits))
    }
}

nova_plugin::export_raw_step!(KnowledgeSearch);

/// The step over the SDK's in-memory knowledge base.
#[cfg(test)]
mod tests {
    use nova_plugin::{Error, json, testing};

    use super::KnowledgeSearch;

    fn run(
        input: nova_plugin::Value,
        config: nova_plugin::Value,
    ) -> Result<nova_plugin::Value, Error> {
        testing::run_raw::<KnowledgeSearch>(&input.to_string(), &config.to_string())
            .map(|out| serde_json::from_str(&out).expect("JSON"))
    }

    #[test]
    fn searches_the_host() {
        testing::reset();
        testing::add_document("a.md", "Rust ownership", &[("lang", "en")]);
        testing::add_document("b.md", "Rust in German", &[("lang", "de")]);
        let input = json!({"query": " rust ", "filter": {"lang": "en"}});
        let out = run(input, json!({"top_k": 3}));
        let hit = json!({"source": "a.md", "text": "Rust ownership", "score": 1.0,
                         "metadata": {"lang": "en"}});
        assert_eq!(out, Ok(json!({"query": "rust", "results": [hit]})));
        testing::set_unavailable(Some("no index"));
        let out = run(json!("rust"), json!({}));
        assert_eq!(out, Err(Error::Failed("no index".into())));
    }
}
