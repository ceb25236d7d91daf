//! A hostile loader: a tiny document that says `COUNT SIZE` becomes COUNT
//! chunks of SIZE bytes each (`2000000 0` is two million empty chunks, a
//! 10-byte file; `40000 1` keeps the embedder busy for half a minute).

wit_bindgen::generate!({ path: "../../../wit/v0.1", world: "loader" });

use exports::nova::plugin::document_loader::{Chunk, Guest, Info, PluginError};

struct Component;

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: "evil-chunks".to_owned(),
            version: "1.0.0".to_owned(),
            extensions: vec!["chunks".to_owned()],
            media_types: Vec::new(),
        }
    }

    fn load(_source: String, bytes: Vec<u8>) -> Result<Vec<Chunk>, PluginError> {
        let text = String::from_utf8_lossy(&bytes);
        let mut words = text.split_whitespace();
        let mut number = || -> Result<usize, PluginError> {
            words
                .next()
                .and_then(|w| w.parse().ok())
                .ok_or_else(|| PluginError::InvalidInput("write COUNT SIZE".to_owned()))
        };
        let (count, size) = (number()?, number()?);
        let text = "x".repeat(size);
        Ok((0..count)
            .map(|_| Chunk {
                text: text.clone(),
                metadata: Vec::new(),
            })
            .collect())
    }
}

export!(Component);
