//! nova's HTML loader: the page's main text, one chunk per heading section.
//!
//! Extraction and splitting live in [`extract`], which knows nothing of the
//! component bindings and is unit-tested natively.

pub mod extract;

wit_bindgen::generate!({ path: "../../wit/v0.1", world: "loader" });

use exports::nova::plugin::document_loader::{Chunk, Guest, Info, PluginError};

// Natively (unit tests, `just fuzz`) this crate is a library of its
// modules; the component's exports exist in the WebAssembly build only.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: env!("CARGO_PKG_NAME").to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            extensions: vec!["html".to_string(), "htm".to_string()],
            media_types: vec!["text/html".to_string(), "application/xhtml+xml".to_string()],
        }
    }

    fn load(source: String, bytes: Vec<u8>) -> Result<Vec<Chunk>, PluginError> {
        let html = extract::decode(&bytes);
        Ok(extract::split(&source, &html)
            .into_iter()
            .map(|c| Chunk {
                text: c.text,
                metadata: c.metadata,
            })
            .collect())
    }
}

#[cfg(target_arch = "wasm32")]
export!(Component);
