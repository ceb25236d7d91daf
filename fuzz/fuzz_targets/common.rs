//! What the targets share: splitting one input into two texts.

/// `data` as two texts, split at the first NUL byte (a seed is written as
/// `FIRST\0SECOND`); none when either is not UTF-8.
pub fn two_texts(data: &[u8]) -> Option<(&str, &str)> {
    let at = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let first = std::str::from_utf8(&data[..at]).ok()?;
    let second = std::str::from_utf8(data.get(at + 1..).unwrap_or_default()).ok()?;
    Some((first, second))
}
