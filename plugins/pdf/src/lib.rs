//! nova's PDF loader: the text of each page, in chunks of a useful size.
//!
//! The extraction itself lives in [`extract`] (the document), [`page`] (a
//! page's content stream to text) and [`chunk`] (normalising and cutting),
//! which know nothing of the component bindings and are unit-tested
//! natively. Parsing is lopdf's, in pure Rust; nothing here spawns threads.

pub mod chunk;
pub mod extract;
pub mod page;

use nova_plugin::{Chunk, Error, Loader};

// Natively (unit tests, `just fuzz`) the export is compiled out.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Pdf;

impl Loader for Pdf {
    const EXTENSIONS: &'static [&'static str] = &["pdf"];
    const MEDIA_TYPES: &'static [&'static str] = &["application/pdf"];

    fn load(source: &str, bytes: &[u8]) -> Result<Vec<Chunk>, Error> {
        let (pieces, warnings) = extract::extract(source, bytes).map_err(|e| match e {
            extract::Error::InvalidInput(m) => Error::InvalidInput(m),
            extract::Error::Unsupported(m) => Error::Unsupported(m),
        })?;
        for warning in &warnings {
            nova_plugin::warn!("{warning}");
        }
        let chunk = |p: extract::Piece| Chunk {
            text: p.text,
            metadata: p.metadata,
        };
        Ok(pieces.into_iter().map(chunk).collect())
    }
}

nova_plugin::export_loader!(Pdf);
