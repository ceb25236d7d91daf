//! The PDF loader on any document: pieces of text, or a clear error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nova_pdf::extract;

fuzz_target!(|data: &[u8]| {
    match extract::extract("doc.pdf", data) {
        Ok((pieces, _warnings)) => {
            for piece in pieces {
                assert!(!piece.text.is_empty());
            }
        }
        Err(extract::Error::InvalidInput(m) | extract::Error::Unsupported(m)) => {
            assert!(!m.is_empty());
        }
    }
});
