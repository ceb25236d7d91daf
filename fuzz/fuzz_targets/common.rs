//! What the targets share: splitting one input into two texts, and the
//! bound on what a loader gives for a document. Each target uses part of it.
#![allow(dead_code)]

/// `data` as two texts, split at the first NUL byte (a seed is written as
/// `FIRST\0SECOND`); none when either is not UTF-8.
pub fn two_texts(data: &[u8]) -> Option<(&str, &str)> {
    let at = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let first = std::str::from_utf8(&data[..at]).ok()?;
    let second = std::str::from_utf8(data.get(at + 1..).unwrap_or_default()).ok()?;
    Some((first, second))
}

/// Fails when a loader gave more than 64 bytes of text and metadata per
/// byte of its `input` (plus 4 KiB): heading paths repeat on every
/// section, and must stay bounded, not quadratic.
pub fn assert_sections_bounded<'a>(
    input: usize,
    sections: impl IntoIterator<Item = (&'a str, &'a [(String, String)])>,
) {
    let out: usize = sections
        .into_iter()
        .map(|(text, metadata)| {
            text.len()
                + metadata
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>()
        })
        .sum();
    assert!(out <= 64 * input + 4096, "{out} bytes from {input}");
}
