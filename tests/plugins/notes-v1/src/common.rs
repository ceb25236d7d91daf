// A loader for `.note` files: paragraphs (split at blank lines), each a
// chunk with metadata `generation` = the loader's major version, so a test
// can see which version ingested a file.

wit_bindgen::generate!({ path: "../../../wit/v0.1", world: "loader" });

use exports::nova::plugin::document_loader::{Chunk, Guest, Info, PluginError};

struct Component;

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: "notes".to_string(),
            version: VERSION.to_string(),
            extensions: vec!["note".to_string()],
            media_types: vec![],
        }
    }

    fn load(source: String, bytes: Vec<u8>) -> Result<Vec<Chunk>, PluginError> {
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| PluginError::InvalidInput(format!("{source} is not UTF-8")))?;
        if text.contains("REJECT") {
            return Err(PluginError::Unsupported(format!("{source} asks to be rejected")));
        }
        let generation = VERSION.split('.').next().unwrap_or("0").to_string();
        Ok(text
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| Chunk {
                text: p.to_string(),
                metadata: vec![("generation".to_string(), generation.clone())],
            })
            .collect())
    }
}

export!(Component);
