//! nova's Markdown loader: one chunk per heading section.
//!
//! The splitting itself lives in [`split`], which knows nothing of the
//! component bindings and is unit-tested natively.

pub mod split;

use nova_plugin::{Chunk, Error, Loader};

// Natively (unit tests, `just fuzz`) the export is compiled out.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Markdown;

impl Loader for Markdown {
    const EXTENSIONS: &'static [&'static str] = &["md", "markdown"];
    const MEDIA_TYPES: &'static [&'static str] = &["text/markdown"];

    fn load(source: &str, bytes: &[u8]) -> Result<Vec<Chunk>, Error> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Error::invalid_input(format!("{source} is not valid UTF-8: {e}")))?;
        let chunk = |s: split::Section| Chunk {
            text: s.text,
            metadata: s.metadata,
        };
        Ok(split::split(source, text).into_iter().map(chunk).collect())
    }
}

nova_plugin::export_loader!(Markdown);
