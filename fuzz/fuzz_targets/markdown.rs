//! The Markdown loader on any document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nova_markdown::split;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let sections = split::split("doc.md", text);
    let out: usize = sections
        .iter()
        .map(|s| {
            s.text.len()
                + s.metadata
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>()
        })
        .sum();
    // Heading paths repeat on every section: bounded, not quadratic.
    assert!(
        out <= 64 * data.len() + 4096,
        "{out} bytes from {}",
        data.len()
    );
});
