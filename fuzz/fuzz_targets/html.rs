//! The HTML loader on any document, in any encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nova_html::extract;

fuzz_target!(|data: &[u8]| {
    let html = extract::decode(data);
    let sections = extract::split("doc.html", &html);
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
    assert!(
        out <= 64 * data.len() + 4096,
        "{out} bytes from {}",
        data.len()
    );
});
