//! nova's PDF loader: the text of each page, in chunks of a useful size.
//!
//! The extraction itself lives in [`extract`] (the document), [`page`] (a
//! page's content stream to text) and [`chunk`] (normalising and cutting),
//! which know nothing of the component bindings and are unit-tested
//! natively. Parsing is lopdf's, in pure Rust; nothing here spawns threads.

pub mod chunk;
pub mod extract;
pub mod page;

wit_bindgen::generate!({ path: "../../wit/v0.1", world: "loader" });

use exports::nova::plugin::document_loader::{Chunk, Guest, Info, PluginError};
use nova::plugin::log::{Level, log};

// Natively (unit tests, `just fuzz`) this crate is a library of its
// modules; the component's exports exist in the WebAssembly build only.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
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

#[cfg(target_arch = "wasm32")]
export!(Component);
