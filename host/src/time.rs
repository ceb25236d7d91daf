//! Timestamps as nova shows them: RFC 3339 with milliseconds, in the
//! API's answers and the ingest report alike.

/// A timestamp as the API shows it: RFC 3339 with milliseconds.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// A stored timestamp (unix milliseconds) as the API shows it.
pub fn rfc3339_ms(ms: i64) -> String {
    let ms = u64::try_from(ms).unwrap_or(0);
    rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
}
