//! The Markdown loader on any document.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use nova_markdown::split;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let sections = split::split("doc.md", text);
    common::assert_sections_bounded(
        data.len(),
        sections
            .iter()
            .map(|s| (s.text.as_str(), s.metadata.as_slice())),
    );
});
