//! {{name}}: a nova document loader.
//!
//! Splits a UTF-8 text document into one chunk per paragraph (paragraphs
//! are separated by blank lines), each with the metadata `paragraph` (its
//! number, from 1).
//!
//! `nova plugin build` builds it; `nova plugin test build/{{name}}.wasm
//! --document notes.txt` runs it in nova's sandbox; `cargo test` runs the
//! tests below natively.

use nova_plugin::{Chunk, Error, Loader};

pub struct Paragraphs;

impl Loader for Paragraphs {
    const EXTENSIONS: &'static [&'static str] = &["txt", "text"];
    const MEDIA_TYPES: &'static [&'static str] = &["text/plain"];

    fn load(source: &str, bytes: &[u8]) -> Result<Vec<Chunk>, Error> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Error::invalid_input(format!("{source} is not UTF-8: {e}")))?;
        let chunks: Vec<Chunk> = text
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .enumerate()
            .map(|(i, p)| Chunk::new(p).with("paragraph", (i + 1).to_string()))
            .collect();
        nova_plugin::info!("{source}: {} paragraphs", chunks.len());
        Ok(chunks)
    }
}

nova_plugin::export_loader!(Paragraphs);

#[cfg(test)]
mod tests {
    use super::*;
    use nova_plugin::testing;

    #[test]
    fn one_chunk_per_paragraph() {
        let chunks = testing::load::<Paragraphs>("a.txt", b"One.\n\n\nTwo\nlines.\n").unwrap();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[1].text, "Two\nlines.");
        assert_eq!(chunks[1].meta("paragraph"), Some("2"));
    }

    #[test]
    fn refuses_binary() {
        let e = testing::load::<Paragraphs>("a.bin", &[0xff, 0xfe]).unwrap_err();
        assert!(matches!(e, Error::InvalidInput(m) if m.starts_with("a.bin is not UTF-8")));
    }
}
