//! {{name}}: a nova workflow step.
//!
//! Given the input `{"name": "Ada"}` and the config `{"greeting": "Hi"}`
//! it returns `{"message": "Hi, Ada!", "calls": 1}`, counting its calls in
//! the host's key-value store.
//!
//! `nova plugin build` builds it; `nova plugin test build/{{name}}.wasm
//! --input '{"name": "Ada"}'` runs it in nova's sandbox; `cargo test` runs
//! the tests below natively, against an in-memory host.

use nova_plugin::{Error, Step, Value, json};
use serde::Deserialize;

/// The step's input. Missing fields take their defaults; a field of the
/// wrong type fails the call as `invalid-input`, naming the field. A step
/// invoked without input gets `null` (the `Option` below: `None`).
#[derive(Deserialize)]
#[serde(default)]
pub struct Input {
    pub name: String,
}

impl Default for Input {
    fn default() -> Self {
        Self {
            name: "world".into(),
        }
    }
}

/// The step's configuration (`config` in a workflow). Unknown keys are
/// refused, so a typo is an error rather than ignored. `config.schema.json`
/// says the same to the host, which then refuses a bad config before the
/// call (a workflow at submission) and shows the schema in its listing.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub greeting: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            greeting: "Hello".into(),
        }
    }
}

pub struct Greet;

impl Step for Greet {
    type Input = Option<Input>;
    type Config = Config;
    type Output = Value;
    const DESCRIPTION: &'static str = "Greets input.name with config.greeting";
    const CONFIG_SCHEMA: &'static str = include_str!("../config.schema.json");

    fn run(input: Option<Input>, config: Config) -> Result<Value, Error> {
        let input = input.unwrap_or_default();
        if input.name.trim().is_empty() {
            // The caller's mistake: `invalid-input`, not retried.
            return Err(Error::invalid_input("input.name is empty"));
        }
        // A host call that fails becomes `failed` (retried by workflows).
        let calls = nova_plugin::kv::get_json::<u64>("calls")?.unwrap_or(0) + 1;
        nova_plugin::kv::set_json("calls", &calls, None)?;
        nova_plugin::info!("greeting {} (call {calls})", input.name);
        Ok(json!({
            "message": format!("{}, {}!", config.greeting, input.name),
            "calls": calls,
        }))
    }
}

nova_plugin::export_step!(Greet);

#[cfg(test)]
mod tests {
    use super::*;
    use nova_plugin::testing;

    #[test]
    fn greets_and_counts() {
        testing::reset();
        let out = testing::run::<Greet>(json!({"name": "Ada"}), json!({"greeting": "Hi"}));
        assert_eq!(out, Ok(json!({"message": "Hi, Ada!", "calls": 1})));
        let out = testing::run::<Greet>(json!(null), json!({})).unwrap();
        assert_eq!(out["message"], "Hello, world!");
        assert_eq!(out["calls"], 2);
        assert_eq!(testing::logs()[1].message, "greeting world (call 2)");
    }

    #[test]
    fn refuses_bad_input_and_config() {
        testing::reset();
        let e = testing::run::<Greet>(json!({"name": 1}), json!({})).unwrap_err();
        assert!(e.message().starts_with("input.name: invalid type"), "{e}");
        let e = testing::run::<Greet>(json!({}), json!({"greting": "Hi"})).unwrap_err();
        assert!(e.message().contains("unknown field `greting`"), "{e}");
    }

    #[test]
    fn a_host_failure_fails_the_call() {
        testing::reset();
        testing::set_unavailable(Some("kv is down"));
        let e = testing::run::<Greet>(json!({"name": "Ada"}), json!({})).unwrap_err();
        assert_eq!(e, Error::failed("kv is down"));
    }
}
