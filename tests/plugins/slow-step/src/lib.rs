//! A helper step that takes a while: used to check that calls in flight
//! finish on their old version during a hot reload. Guests get no clock, so
//! it counts instead of sleeping.

wit_bindgen::generate!({ path: "../../../wit/v0.1", world: "step" });

use exports::nova::plugin::workflow_step::{Guest, Info, PluginError};
use std::hint::black_box;

struct Component;

const VERSION: &str = "1.0.0";
const DEFAULT_ITERATIONS: u64 = 50_000_000;

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: "slow-step".to_owned(),
            version: VERSION.to_owned(),
            description: "Counts to config.iterations, then returns.".to_owned(),
        }
    }

    /// Loops `config.iterations` times (a non-negative integer; default
    /// 50,000,000), then returns `{"done": true, "version": "1.0.0"}`.
    /// Config that is not JSON, or an `iterations` that is not a
    /// non-negative integer, is `invalid-input`. The input is ignored.
    fn run(_input: String, config: String) -> Result<String, PluginError> {
        let config = minijson::parse(&config)
            .map_err(|e| PluginError::InvalidInput(format!("config is not JSON: {e}")))?;
        let iterations = match config.get("iterations") {
            None => DEFAULT_ITERATIONS,
            Some(v) => v.as_u64().ok_or_else(|| {
                PluginError::InvalidInput(
                    "config.iterations must be a non-negative integer".to_owned(),
                )
            })?,
        };
        let mut counter = 0u64;
        for _ in 0..iterations {
            counter = black_box(counter.wrapping_add(1));
        }
        black_box(counter);
        Ok(format!("{{\"done\": true, \"version\": \"{VERSION}\"}}"))
    }
}

export!(Component);
