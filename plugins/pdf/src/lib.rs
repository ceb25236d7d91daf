//! nova's PDF loader: the text of each page, in chunks of a useful size.
//!
//! The extraction itself lives in [`extract`] (the document), [`page`] (a
//! page's content stream to text) and [`chunk`] (normalising and cutting),
//! which know nothing of the component bindings and are unit-tested
//! natively. Parsing is lopdf's, in pure Rust; nothing here spawns threads.

mod chunk;
mod extract;
mod page;

wit_bindgen::generate!({ path: "../../wit/v0.1", world: "loader" });

use exports::nova::plugin::document_loader::{Chunk, Guest, Info, PluginError};
use nova::plugin::log::{Level, log};

struct Component;

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: env!("CARGO_PKG_NAME").to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            extensions: vec!["pdf".to_string()],
            media_types: vec!["application/pdf".to_string()],
        }
    }

    fn load(source: String, bytes: Vec<u8>) -> Result<Vec<Chunk>, PluginError> {
        match extract::extract(&source, &bytes) {
            Ok((pieces, warnings)) => {
                for warning in &warnings {
                    log(Level::Warn, warning);
                }
                Ok(pieces
                    .into_iter()
                    .map(|p| Chunk {
                        text: p.text,
                        metadata: p.metadata,
                    })
                    .collect())
            }
            Err(extract::Error::InvalidInput(m)) => Err(PluginError::InvalidInput(m)),
            Err(extract::Error::Unsupported(m)) => Err(PluginError::Unsupported(m)),
        }
    }
}

export!(Component);
