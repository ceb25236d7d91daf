//! A hostile step that asks the host for a lot, one way per config field:
//! outputs that cost the host far more than their size to parse, huge error
//! messages, log lines that forge others, store and kv writes past any
//! quota, store listings of big documents, and symlinks in a granted
//! directory. The break it stands for is named in each field.
//!
//! Config (one field per call):
//! - `{"zeros": N}`: returns `[0,0,…,0]` with N zeros (run reads parsed at
//!   70 times their size).
//! - `{"fail_bytes": N}`: fails with a message of N bytes.
//! - `{"raw": "text"}`: returns `text` as its output, unchecked (JSON
//!   whose numbers no reader can hold, `[1e400]`).
//! - `{"log": "text"}`: logs `text` at info, then returns `{"logged": true}`.
//! - `{"store_put": {"count": N, "bytes": B, "prefix": "p/"}}`: stores N
//!   documents of about B bytes each (a JSON string), keys `p/0000001`…;
//!   returns `{"stored": n, "error": <first error or null>}`.
//! - `{"store_list": {"prefix": "p/", "limit": L}}`: lists, returns
//!   `{"docs": n, "bytes": total value bytes}` or the error.
//! - `{"kv_put": {"count": N, "bytes": B}}`: sets N keys of B bytes;
//!   returns `{"stored": n, "error": <first error or null>}`.
//! - `{"symlink": {"link": "/data/x", "target": "…"}}`: creates a symlink
//!   (needs a writable directory grant), returns `{"linked": true}`.

wit_bindgen::generate!({ path: "../../../wit/v0.1", world: "step" });

use exports::nova::plugin::workflow_step::{Guest, Info, PluginError};
use minijson::Value;
use nova::plugin::{kv, log, store};

struct Component;

fn field<'a>(config: &'a Value, key: &str) -> Option<&'a Value> {
    config.get(key)
}

fn number(v: &Value, key: &str) -> Result<u64, PluginError> {
    v.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| PluginError::InvalidInput(format!("{key} must be a number")))
}

fn outcome(stored: u64, error: Option<String>) -> String {
    format!(
        "{{\"stored\": {stored}, \"error\": {}}}",
        minijson::quote_opt(error.as_deref())
    )
}

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: "evil-bulk".to_owned(),
            version: "1.0.0".to_owned(),
            description: "Asks the host for too much, one way per config field.".to_owned(),
        }
    }

    fn run(_input: String, config: String) -> Result<String, PluginError> {
        let config = minijson::parse(&config)
            .map_err(|e| PluginError::InvalidInput(format!("config is not JSON: {e}")))?;
        if let Some(text) = field(&config, "raw").and_then(Value::as_str) {
            return Ok(text.to_owned());
        }
        if let Some(n) = field(&config, "zeros").and_then(Value::as_u64) {
            let n = n.max(1) as usize;
            let mut out = String::with_capacity(2 * n + 1);
            out.push('[');
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                out.push('0');
            }
            out.push(']');
            return Ok(out);
        }
        if let Some(n) = field(&config, "fail_bytes").and_then(Value::as_u64) {
            return Err(PluginError::Failed("e".repeat(n as usize)));
        }
        if let Some(text) = field(&config, "log").and_then(Value::as_str) {
            log::log(log::Level::Info, text);
            return Ok("{\"logged\": true}".to_owned());
        }
        if let Some(put) = field(&config, "store_put") {
            let count = number(put, "count")?;
            let bytes = number(put, "bytes")? as usize;
            let prefix = put.get("prefix").and_then(Value::as_str).unwrap_or("d/");
            let value = format!("\"{}\"", "v".repeat(bytes.saturating_sub(2)));
            for i in 0..count {
                if let Err(e) = store::put(&format!("{prefix}{i:07}"), &value, None) {
                    return Ok(outcome(i, Some(format!("{e:?}"))));
                }
            }
            return Ok(outcome(count, None));
        }
        if let Some(list) = field(&config, "store_list") {
            let prefix = list.get("prefix").and_then(Value::as_str).unwrap_or("");
            let limit = number(list, "limit")? as u32;
            return Ok(match store::list_by_prefix(prefix, limit) {
                Ok(docs) => {
                    let bytes: usize = docs.iter().map(|d| d.value.len()).sum();
                    format!("{{\"docs\": {}, \"bytes\": {bytes}}}", docs.len())
                }
                Err(e) => format!("{{\"error\": {}}}", minijson::quote(&format!("{e:?}"))),
            });
        }
        if let Some(put) = field(&config, "kv_put") {
            let count = number(put, "count")?;
            let bytes = number(put, "bytes")? as usize;
            let value = vec![b'k'; bytes];
            for i in 0..count {
                if let Err(e) = kv::set(&format!("k{i:07}"), &value, None) {
                    return Ok(outcome(i, Some(e)));
                }
            }
            return Ok(outcome(count, None));
        }
        if let Some(link) = field(&config, "symlink") {
            let at = link.get("link").and_then(Value::as_str).unwrap_or_default();
            let target = link
                .get("target")
                .and_then(Value::as_str)
                .unwrap_or_default();
            symlink(at, target)
                .map_err(|e| PluginError::Failed(format!("symlink {at} -> {target}: {e}")))?;
            return Ok("{\"linked\": true}".to_owned());
        }
        Err(PluginError::InvalidInput(
            "config names none of zeros, fail_bytes, log, store_put, store_list, kv_put, symlink"
                .to_owned(),
        ))
    }
}

/// Creates the symlink `link` (an absolute guest path under a preopened
/// directory) pointing at `target`.
fn symlink(link: &str, target: &str) -> Result<(), String> {
    for (dir, guest) in wasip2::filesystem::preopens::get_directories() {
        let base = guest.trim_end_matches('/');
        if let Some(rest) = link.strip_prefix(base).and_then(|r| r.strip_prefix('/')) {
            return dir.symlink_at(target, rest).map_err(|e| format!("{e:?}"));
        }
    }
    Err(format!("{link} is under no granted directory"))
}

export!(Component);
