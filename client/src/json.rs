//! JSON kept as text: run inputs, step configs and outputs, documents.
//!
//! What nova stores it reads back and serves as the same text, never
//! parsed into a `serde_json::Value` (which costs tens of times the text's
//! size: 4 MB of `[0,0,…]` is 2 million values of 32 bytes each, and
//! more). Text is checked once, where it enters, for what the stores
//! cannot keep.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A JSON value as its text. Equal when the texts are equal.
#[derive(Clone)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// Checks that `text` is one JSON value whose every number a JSON
    /// reader can hold (a double): what comes in from a caller or a
    /// plugin.
    pub fn parse(text: impl Into<String>) -> Result<Self, serde_json::Error> {
        let raw = Self::stored(text)?;
        raw.check_numbers()?;
        Ok(raw)
    }

    /// Checks that `text` is one JSON value, its syntax only: text the
    /// host wrote itself and reads back.
    pub fn stored(text: impl Into<String>) -> Result<Self, serde_json::Error> {
        RawValue::from_string(text.into()).map(RawJson)
    }

    /// Fails on a number beyond a double's range (`1e400`): JSON's grammar
    /// allows it and syntax checking lets it through, but serde_json,
    /// JavaScript and Python readers refuse it or read infinity. One pass
    /// over the (valid) text, strings skipped, nothing kept.
    pub fn check_numbers(&self) -> Result<(), serde_json::Error> {
        let bytes = self.get().as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => {
                    // To the closing quote; a backslash escapes the next byte.
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
                b'-' | b'0'..=b'9' => {
                    let start = i;
                    while i < bytes.len()
                        && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                    {
                        i += 1;
                    }
                    let number = &self.get()[start..i];
                    if !number.parse::<f64>().is_ok_and(f64::is_finite) {
                        return Err(serde::de::Error::custom(format_args!(
                            "number out of range: {:.40}",
                            number
                        )));
                    }
                }
                _ => i += 1,
            }
        }
        Ok(())
    }

    /// `null`.
    pub fn null() -> Self {
        Self::literal("null")
    }

    /// `{}`.
    pub fn empty_object() -> Self {
        Self::literal("{}")
    }

    fn literal(text: &'static str) -> Self {
        // A literal that is JSON: cannot fail.
        RawJson(RawValue::from_string(text.to_owned()).unwrap_or_else(|_| unreachable!()))
    }

    /// From a value (tests and small, host-made values).
    pub fn from_value(value: &serde_json::Value) -> Self {
        // A `Value` always serialises.
        RawJson(serde_json::value::to_raw_value(value).unwrap_or_else(|_| unreachable!()))
    }

    /// The text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The text, without a copy.
    pub fn into_string(self) -> String {
        Box::<str>::from(self.0).into_string()
    }

    pub fn len(&self) -> usize {
        self.get().len()
    }

    pub fn is_empty(&self) -> bool {
        self.get().is_empty()
    }

    pub fn is_null(&self) -> bool {
        self.get() == "null"
    }

    /// Whether the value is an object (its text starts with `{`).
    pub fn is_object(&self) -> bool {
        self.get().starts_with('{')
    }

    /// Parses it (tests, and small values the host reads).
    pub fn to_value(&self) -> serde_json::Value {
        // It is JSON: cannot fail.
        serde_json::from_str(self.get()).unwrap_or(serde_json::Value::Null)
    }

    /// Why the stores cannot keep it as it is, if they cannot: a NUL
    /// character (`\u0000`, which Postgres' JSONB refuses) or a lone
    /// UTF-16 surrogate (`\ud800`, which is no character at all).
    pub fn problem(&self) -> Option<&'static str> {
        scan(self.get()).map(|(_, problem)| problem)
    }

    /// The same value with every NUL and lone surrogate replaced by
    /// U+FFFD: for what a plugin produced, which is kept rather than
    /// refused.
    pub fn cleaned(self) -> Self {
        match clean(self.get()) {
            Cow::Borrowed(_) => self,
            // Replacing one escape by another keeps it JSON.
            Cow::Owned(text) => RawJson::parse(text).unwrap_or_else(|_| RawJson::null()),
        }
    }
}

/// `null`.
impl Default for RawJson {
    fn default() -> Self {
        Self::null()
    }
}

impl From<&serde_json::Value> for RawJson {
    fn from(value: &serde_json::Value) -> Self {
        Self::from_value(value)
    }
}

impl From<serde_json::Value> for RawJson {
    fn from(value: serde_json::Value) -> Self {
        Self::from_value(&value)
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for RawJson {}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl fmt::Display for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(d).map(RawJson)
    }
}

impl From<Box<RawValue>> for RawJson {
    fn from(raw: Box<RawValue>) -> Self {
        RawJson(raw)
    }
}

/// What kind of escape sits at a backslash.
enum Escape {
    /// `\u0000`.
    Nul,
    /// A surrogate with its pair: both escapes, 12 bytes.
    Pair,
    /// A surrogate without its pair: 6 bytes.
    Lone,
    /// Anything else: `len` bytes.
    Other(usize),
}

fn hex4(bytes: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(bytes.get(..4)?).ok()?;
    u16::from_str_radix(text, 16).ok()
}

/// The escape starting at `bytes[0]` (a backslash) of valid JSON text.
fn escape_at(bytes: &[u8]) -> Escape {
    if bytes.get(1) != Some(&b'u') {
        return Escape::Other(2);
    }
    let Some(unit) = hex4(&bytes[2..]) else {
        return Escape::Other(2);
    };
    match unit {
        0 => Escape::Nul,
        0xD800..=0xDBFF => {
            let low = (bytes.get(6..8) == Some(b"\\u"))
                .then(|| hex4(&bytes[8..]))
                .flatten();
            if low.is_some_and(|l| (0xDC00..=0xDFFF).contains(&l)) {
                Escape::Pair
            } else {
                Escape::Lone
            }
        }
        0xDC00..=0xDFFF => Escape::Lone,
        _ => Escape::Other(6),
    }
}

/// The first escape the stores cannot keep: its offset and what it is. In
/// valid JSON a backslash only ever starts an escape, so no string
/// tracking is needed.
fn scan(text: &str) -> Option<(usize, &'static str)> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = bytes[i..].iter().position(|&b| b == b'\\') {
        let at = i + at;
        match escape_at(&bytes[at..]) {
            Escape::Nul => return Some((at, "a NUL character (\\u0000)")),
            Escape::Lone => return Some((at, "a lone UTF-16 surrogate (\\ud800 to \\udfff)")),
            Escape::Pair => i = at + 12,
            Escape::Other(len) => i = at + len,
        }
    }
    None
}

fn clean(text: &str) -> Cow<'_, str> {
    let Some((first, _)) = scan(text) else {
        return Cow::Borrowed(text);
    };
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..first]);
    let mut i = first;
    while i < bytes.len() {
        let Some(at) = bytes[i..].iter().position(|&b| b == b'\\') else {
            out.push_str(&text[i..]);
            break;
        };
        let at = i + at;
        out.push_str(&text[i..at]);
        let (len, bad) = match escape_at(&bytes[at..]) {
            Escape::Nul | Escape::Lone => (6, true),
            Escape::Pair => (12, false),
            Escape::Other(len) => (len, false),
        };
        out.push_str(if bad { "\\ufffd" } else { &text[at..at + len] });
        i = at + len;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawJson {
        RawJson::parse(text).unwrap()
    }

    #[test]
    fn finds_what_the_stores_cannot_keep() {
        assert_eq!(
            raw(r#"{"a": "x\u0000"}"#).problem(),
            Some("a NUL character (\\u0000)")
        );
        assert!(
            raw(r#"["\ud800"]"#)
                .problem()
                .unwrap()
                .contains("surrogate")
        );
        assert!(raw(r#"["\udc00x"]"#).problem().is_some());
        // An escaped backslash before "u0000" is text, not an escape.
        assert_eq!(raw(r#"["\\u0000"]"#).problem(), None);
        assert_eq!(raw(r#"["\ud83d\ude00", "\n", "\u00e9"]"#).problem(), None);
        assert_eq!(raw("[0, 1, {\"k\": null}]").problem(), None);
    }

    #[test]
    fn cleaning_replaces_only_the_bad_escapes() {
        let cleaned = raw(r#"{"a\u0000": ["\ud800", "\\u0000", "\ud83d\ude00", "\t"]}"#).cleaned();
        assert_eq!(
            cleaned.get(),
            r#"{"a\ufffd": ["\ufffd", "\\u0000", "\ud83d\ude00", "\t"]}"#
        );
        assert_eq!(cleaned.problem(), None);
        let fine = raw(r#"{"a": 1}"#);
        assert_eq!(fine.clone().cleaned(), fine);
    }

    #[test]
    fn text_round_trips_unparsed() {
        let text = r#"{"b":[0,0,0],  "a": 1}"#;
        let value = raw(text);
        assert_eq!(value.get(), text);
        assert_eq!(serde_json::to_string(&value).unwrap(), text);
        assert!(value.is_object());
        assert!(RawJson::null().is_null());
        assert!(RawJson::parse("{").is_err());
        let nested: Vec<RawJson> = serde_json::from_str("[1, {\"x\": [2]}]").unwrap();
        assert_eq!(nested[1].get(), "{\"x\": [2]}");
    }

    #[test]
    fn numbers_no_reader_can_hold_are_refused() {
        // Found by `just fuzz plugin_output`: valid by JSON's grammar,
        // refused by every reader of a run.
        for text in [
            "1e400",
            "[1E07777777777777777777777]",
            r#"{"a": {"b": [0, -1e309]}}"#,
            &format!("[{}]", "9".repeat(400)),
        ] {
            let err = RawJson::parse(text).unwrap_err();
            assert!(
                err.to_string().contains("number out of range"),
                "{text}: {err}"
            );
            // What the host wrote itself is read back as it is.
            assert!(RawJson::stored(text).is_ok());
        }
        for text in [
            "[1e308, -1e-400, 0.5, 18446744073709551616, -9223372036854775809]",
            r#"{"e": "1e400", "E": [true, null, "\u00e9"]}"#,
            &format!("[{}]", "9".repeat(300)),
        ] {
            assert!(RawJson::parse(text).is_ok(), "{text}");
            let read = serde_json::from_str::<serde_json::Value>(text);
            assert!(read.is_ok(), "{text}: {read:?}");
        }
    }
}
