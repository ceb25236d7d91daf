//! nova's knowledge-search step: semantic search over the host's knowledge
//! base through the `knowledge` import.
//!
//! Parsing and output live in [`search`], which knows nothing of the
//! component bindings and is unit-tested natively; its module docs give the
//! input and config.

mod search;

wit_bindgen::generate!({ path: "../../wit/v0.1", world: "step" });

use exports::nova::plugin::workflow_step::{Guest, Info, PluginError};
use nova::plugin::knowledge;
use nova::plugin::log::{Level, log};

struct Component;

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: env!("CARGO_PKG_NAME").to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "Searches the knowledge base for the input query (a string, or \
                          {\"query\", \"top_k\", \"filter\"}); returns {\"query\", \"results\": \
                          [{\"source\", \"text\", \"score\", \"metadata\"}]}."
                .to_string(),
        }
    }

    fn run(input: String, config: String) -> Result<String, PluginError> {
        let request = search::parse(&input, &config).map_err(|e| match e {
            search::Error::InvalidInput(m) => PluginError::InvalidInput(m),
        })?;
        log(
            Level::Debug,
            &format!(
                "knowledge search: top_k {}, filter {:?}, query {:?}",
                request.top_k, request.filter, request.query
            ),
        );
        let hits = knowledge::search(&request.query, request.top_k, &request.filter)
            .map_err(PluginError::Failed)?;
        log(
            Level::Debug,
            &format!("knowledge search: {} results", hits.len()),
        );
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

export!(Component);
