//! A step that fails on purpose a given number of times, then succeeds:
//! for retry tests. It counts its attempts in the host's kv store, so the
//! count survives the fresh instance every call gets.
//!
//! Config: `{"key": str, "fail_times": n}` (defaults "flaky", 1).
//! Attempts up to `fail_times` return `failed("attempt N fails on
//! purpose")`; the next returns `{"attempts": N, "input": <input>}`.

wit_bindgen::generate!({ path: "../../../wit/v0.1", world: "step" });

use exports::nova::plugin::workflow_step::{Guest, Info, PluginError};
use nova::plugin::kv;

struct Component;

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: "flaky".to_owned(),
            version: "1.0.0".to_owned(),
            description: "Fails a configured number of times, then succeeds.".to_owned(),
        }
    }

    fn run(input: String, config: String) -> Result<String, PluginError> {
        let config = minijson::parse(&config).map_err(PluginError::InvalidInput)?;
        let key = config
            .get("key")
            .and_then(minijson::Value::as_str)
            .unwrap_or("flaky")
            .to_owned();
        let fail_times = config
            .get("fail_times")
            .and_then(minijson::Value::as_u64)
            .unwrap_or(1);
        let before = kv::get(&key)
            .map_err(PluginError::Failed)?
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| text.parse::<u64>().ok())
            .unwrap_or(0);
        let attempt = before + 1;
        kv::set(&key, attempt.to_string().as_bytes(), Some(3600)).map_err(PluginError::Failed)?;
        if attempt <= fail_times {
            return Err(PluginError::Failed(format!(
                "attempt {attempt} fails on purpose"
            )));
        }
        let input = if input.trim().is_empty() {
            "null"
        } else {
            input.trim()
        };
        Ok(format!("{{\"attempts\": {attempt}, \"input\": {input}}}"))
    }
}

export!(Component);
