//! The plugin's logic, kept apart from the generated bindings so that it
//! can be unit-tested natively:
//!
//!   cargo test --target x86_64-unknown-linux-gnu --target-dir ../target/plugins-native -p plugin-template

use serde_json::{Value, json};

/// Why a call was refused; `lib.rs` turns it into the WIT `plugin-error`.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// Malformed input or config: the caller's mistake.
    InvalidInput(String),
}

/// Greets `input.name` (default `world`) with `config.greeting` (default
/// `Hello`); returns `{"message": ..., "input": <the input>}` as JSON text.
pub fn run(input: &str, config: &str) -> Result<String, Error> {
    let input: Value = serde_json::from_str(input)
        .map_err(|e| Error::InvalidInput(format!("input is not valid JSON: {e}")))?;
    let config: Value = serde_json::from_str(config)
        .map_err(|e| Error::InvalidInput(format!("config is not valid JSON: {e}")))?;

    let greeting = match config.get("greeting") {
        None => "Hello",
        Some(Value::String(g)) => g.as_str(),
        Some(other) => {
            return Err(Error::InvalidInput(format!(
                "config.greeting must be a string, not {other}"
            )));
        }
    };
    let name = match input.get("name") {
        None => "world",
        Some(Value::String(n)) => n.as_str(),
        Some(other) => {
            return Err(Error::InvalidInput(format!(
                "input.name must be a string, not {other}"
            )));
        }
    };
    Ok(json!({
        "message": format!("{greeting}, {name}!"),
        "input": input,
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets() {
        let out = run(r#"{"name": "Ada"}"#, r#"{"greeting": "Hi"}"#).unwrap();
        assert_eq!(out, r#"{"input":{"name":"Ada"},"message":"Hi, Ada!"}"#);
    }

    #[test]
    fn defaults() {
        let out = run("{}", "{}").unwrap();
        assert_eq!(out, r#"{"input":{},"message":"Hello, world!"}"#);
    }

    #[test]
    fn refuses_bad_input() {
        assert!(matches!(run("not json", "{}"), Err(Error::InvalidInput(_))));
        assert!(matches!(
            run("{}", r#"{"greeting": 1}"#),
            Err(Error::InvalidInput(m)) if m.contains("config.greeting")
        ));
    }
}
