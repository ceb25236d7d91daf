//! nova's HTML loader: the page's main text, one chunk per heading section.
//!
//! Extraction and splitting live in [`extract`], which knows nothing of the
//! component bindings and is unit-tested natively.

pub mod extract;

use nova_plugin::{Chunk, Error, Loader};

// Natively (unit tests, `just fuzz`) the export is compiled out.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Html;

impl Loader for Html {
    const EXTENSIONS: &'static [&'static str] = &["html", "htm"];
    const MEDIA_TYPES: &'static [&'static str] = &["text/html", "application/xhtml+xml"];

    fn load(source: &str, bytes: &[u8]) -> Result<Vec<Chunk>, Error> {
        let html = extract::decode(bytes);
        let chunk = |s: extract::Section| Chunk {
            text: s.text,
            metadata: s.metadata,
        };
        Ok(extract::split(source, &html)
            .into_iter()
            .map(chunk)
            .collect())
    }
}

nova_plugin::export_loader!(Html);
