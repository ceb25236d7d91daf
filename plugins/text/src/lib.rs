//! nova's plain-text loader: paragraphs, merged into chunks of a useful size.
//!
//! The splitting itself lives in [`split`], which knows nothing of the
//! component bindings and is unit-tested natively.

pub mod split;

use nova_plugin::{Chunk, Error, Loader};

// Natively (unit tests, `just fuzz`) the export is compiled out.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Text;

impl Loader for Text {
    const EXTENSIONS: &'static [&'static str] = &["txt", "text", "log"];
    const MEDIA_TYPES: &'static [&'static str] = &["text/plain"];

    fn load(source: &str, bytes: &[u8]) -> Result<Vec<Chunk>, Error> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Error::invalid_input(format!("{source} is not valid UTF-8: {e}")))?;
        let chunk = |p: split::Piece| Chunk {
            text: p.text,
            metadata: p.metadata,
        };
        Ok(split::split(source, text).into_iter().map(chunk).collect())
    }
}

nova_plugin::export_loader!(Text);
