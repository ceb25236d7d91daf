//! The HTML loader on any document, in any encoding.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use nova_html::extract;

fuzz_target!(|data: &[u8]| {
    let html = extract::decode(data);
    let sections = extract::split("doc.html", &html);
    common::assert_sections_bounded(
        data.len(),
        sections
            .iter()
            .map(|s| (s.text.as_str(), s.metadata.as_slice())),
    );
});
