//! The text loader on any document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nova_text::split;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let pieces = split::split("doc.txt", text);
    let out: usize = pieces.iter().map(|p| p.text.len()).sum();
    assert!(
        out <= 2 * data.len() + 4096,
        "{out} bytes from {}",
        data.len()
    );
});
