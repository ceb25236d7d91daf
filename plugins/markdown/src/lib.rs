//! nova's Markdown loader: one chunk per heading section.
//!
//! The splitting itself lives in [`split`], which knows nothing of the
//! component bindings and is unit-tested natively.

pub mod split;

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
            extensions: vec!["md".to_string(), "markdown".to_string()],
            media_types: vec!["text/markdown".to_string()],
        }
    }

    fn load(source: String, bytes: Vec<u8>) -> Result<Vec<Chunk>, PluginError> {
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| PluginError::InvalidInput(format!("{source} is not valid UTF-8: {e}")))?;
        Ok(split::split(&source, text)
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
