//! A step's config schema: the JSON Schema its author declares for the
//! `config` a workflow step (or an invoke) passes it, carried by the
//! component itself in a custom section named [`SECTION`].
//!
//! The section may sit at the top of the component (`nova plugin build`
//! appends it for Python and JavaScript projects) or in one of its core
//! modules (the Rust SDK's `CONFIG_SCHEMA` puts it there through
//! `#[link_section]`); there must be one. Plugins built before 0.1.2 have
//! none and take any config, as before.
//!
//! The schema comes from a plugin author, so it is compiled with limits: at
//! most [`MAX_BYTES`], no reference outside itself (nothing is fetched),
//! and `pattern`s run on a linear-time regex engine, never a backtracking
//! one.

use std::fmt::Write as _;

use serde_json::Value;
use wasmparser::{Parser, Payload};

/// The custom section's name.
pub const SECTION: &str = "nova-config-schema";

/// Longest schema a component may carry.
pub const MAX_BYTES: usize = 64 << 10;

/// How many faults one refusal lists.
const MAX_ERRORS: usize = 5;

/// A compiled schema, with the JSON it came from (for the listing).
pub struct ConfigSchema {
    value: Value,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for ConfigSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSchema")
            .field("value", &self.value)
            .finish_non_exhaustive()
    }
}

/// Why a component's schema cannot be used; the plugin is refused.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("its {SECTION} section is {0} bytes; the limit is {MAX_BYTES}")]
    TooLarge(usize),
    #[error("it carries more than one {SECTION} section")]
    Repeated,
    #[error("its config schema is not JSON: {0}")]
    NotJson(String),
    #[error("its config schema is not a valid JSON Schema: {0}")]
    Invalid(String),
    #[error("it is a loader, and only steps take a config schema")]
    NotAStep,
}

impl ConfigSchema {
    /// The schema `bytes` (a component) carries, compiled; none when it
    /// carries none. A component the parser cannot read yields none: the
    /// compiler says what is wrong with it.
    pub fn find(bytes: &[u8]) -> Result<Option<ConfigSchema>, SchemaError> {
        let mut found: Option<&[u8]> = None;
        for payload in Parser::new(0).parse_all(bytes) {
            let Ok(payload) = payload else {
                return Ok(None);
            };
            // The Rust SDK writes an empty section for a step without one.
            if let Payload::CustomSection(section) = payload
                && section.name() == SECTION
                && !section.data().trim_ascii().is_empty()
            {
                if found.is_some() {
                    return Err(SchemaError::Repeated);
                }
                found = Some(section.data());
            }
        }
        found.map(Self::compile).transpose()
    }

    /// Compiles schema text.
    pub fn compile(text: &[u8]) -> Result<ConfigSchema, SchemaError> {
        if text.len() > MAX_BYTES {
            return Err(SchemaError::TooLarge(text.len()));
        }
        let value: Value =
            serde_json::from_slice(text).map_err(|e| SchemaError::NotJson(e.to_string()))?;
        let validator = jsonschema::options()
            .with_pattern_options(jsonschema::PatternOptions::regex())
            .build(&value)
            .map_err(|e| SchemaError::Invalid(e.to_string()))?;
        Ok(ConfigSchema { value, validator })
    }

    /// The schema as the plugin declared it.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// Checks `config` (JSON text) against the schema; the refusal names
    /// each fault's place, e.g. `config.retries: "3" is not of type
    /// "integer"`. No config (empty, or `null`) is checked as `{}`, which
    /// is what the step is then given.
    pub fn check(&self, config: &str) -> Result<(), String> {
        let config: Value = if matches!(config.trim(), "" | "null") {
            Value::Object(Default::default())
        } else {
            serde_json::from_str(config).map_err(|e| format!("config: not JSON: {e}"))?
        };
        self.check_value(&config)
    }

    /// [`ConfigSchema::check`] on a parsed value.
    pub fn check_value(&self, config: &Value) -> Result<(), String> {
        let mut message = String::new();
        let mut count = 0usize;
        for error in self.validator.iter_errors(config) {
            count += 1;
            if count > MAX_ERRORS {
                continue;
            }
            if !message.is_empty() {
                message.push_str("; ");
            }
            let _ = write!(
                message,
                "{}: {error}",
                place(&error.instance_path().to_string())
            );
        }
        match count {
            0 => Ok(()),
            n if n > MAX_ERRORS => Err(format!("{message}; and {} more", n - MAX_ERRORS)),
            _ => Err(message),
        }
    }
}

/// `config.a.b[0]` for the JSON pointer `/a/b/0`.
fn place(pointer: &str) -> String {
    let mut out = String::from("config");
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            let _ = write!(out, "[{token}]");
        } else {
            let _ = write!(out, ".{token}");
        }
    }
    out
}

/// `bytes` (a component) with `schema` appended as its [`SECTION`]
/// section: what `nova plugin build` does for a project that declares
/// one. A custom section is valid at the end of a component.
pub fn append_section(bytes: &mut Vec<u8>, schema: &[u8]) {
    let mut body = Vec::with_capacity(schema.len() + SECTION.len() + 5);
    leb128(&mut body, SECTION.len() as u64);
    body.extend_from_slice(SECTION.as_bytes());
    body.extend_from_slice(schema);
    bytes.push(0);
    leb128(bytes, body.len() as u64);
    bytes.extend_from_slice(&body);
}

fn leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{
        "type": "object",
        "properties": {
            "retries": {"type": "integer", "minimum": 0},
            "mode": {"enum": ["fast", "slow"]},
            "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}}
        },
        "required": ["retries"],
        "additionalProperties": false
    }"#;

    /// The smallest component: the preamble alone.
    fn empty_component() -> Vec<u8> {
        vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]
    }

    #[test]
    fn a_schema_is_found_and_checks_config() {
        let mut bytes = empty_component();
        assert!(ConfigSchema::find(&bytes).unwrap().is_none());
        append_section(&mut bytes, b"");
        assert!(ConfigSchema::find(&bytes).unwrap().is_none(), "empty: none");
        append_section(&mut bytes, SCHEMA.as_bytes());
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&bytes)
            .expect("a component with the section stays valid");
        let schema = ConfigSchema::find(&bytes).unwrap().expect("found");
        assert_eq!(schema.value()["required"][0], "retries");
        schema.check(r#"{"retries": 2, "tags": ["a"]}"#).unwrap();
        let e = schema.check(r#"{"retries": "3"}"#).unwrap_err();
        assert!(e.starts_with("config.retries: \"3\" is not of type"), "{e}");
        let e = schema
            .check(r#"{"retries": 1, "tags": ["ok", "NO"]}"#)
            .unwrap_err();
        assert!(e.starts_with("config.tags[1]: "), "{e}");
        let e = schema.check("").unwrap_err();
        assert!(e.contains("\"retries\" is a required property"), "{e}");
        let e = schema.check(r#"{"retries": 1, "mod": "x"}"#).unwrap_err();
        assert!(e.contains("mod"), "{e}");
        let e = schema.check("{").unwrap_err();
        assert!(e.starts_with("config: not JSON"), "{e}");
    }

    #[test]
    fn many_faults_are_counted_not_all_listed() {
        let schema = ConfigSchema::compile(
            br#"{"type": "object", "additionalProperties": {"type": "integer"}}"#,
        )
        .unwrap();
        let config: serde_json::Map<String, Value> = (0..9)
            .map(|i| (format!("k{i}"), Value::Bool(true)))
            .collect();
        let e = schema.check_value(&Value::Object(config)).unwrap_err();
        assert_eq!(e.matches("is not of type").count(), MAX_ERRORS, "{e}");
        assert!(e.ends_with("; and 4 more"), "{e}");
    }

    #[test]
    fn bad_schemas_are_refused_with_a_reason() {
        let mut twice = empty_component();
        append_section(&mut twice, b"{}");
        append_section(&mut twice, b"{}");
        assert!(matches!(
            ConfigSchema::find(&twice),
            Err(SchemaError::Repeated)
        ));
        assert!(matches!(
            ConfigSchema::compile(b"{not json"),
            Err(SchemaError::NotJson(_))
        ));
        assert!(matches!(
            ConfigSchema::compile(br#"{"type": "no-such-type"}"#),
            Err(SchemaError::Invalid(_))
        ));
        // Nothing is fetched: a reference out of the schema does not resolve.
        assert!(matches!(
            ConfigSchema::compile(br#"{"$ref": "https://example.com/s.json"}"#),
            Err(SchemaError::Invalid(_))
        ));
        assert!(matches!(
            ConfigSchema::compile(br#"{"$ref": "file:///etc/passwd"}"#),
            Err(SchemaError::Invalid(_))
        ));
        let big = format!(r#"{{"description": "{}"}}"#, "x".repeat(MAX_BYTES));
        assert!(matches!(
            ConfigSchema::compile(big.as_bytes()),
            Err(SchemaError::TooLarge(_))
        ));
    }

    #[test]
    fn hostile_schemas_stay_bounded() {
        // A pattern that backtracks for ever on a backtracking engine.
        let schema =
            ConfigSchema::compile(br#"{"properties": {"s": {"pattern": "^(a+)+$"}}}"#).unwrap();
        let config = format!(r#"{{"s": "{}!"}}"#, "a".repeat(5000));
        assert!(schema.check(&config).is_err());
        // A schema that refers to itself, around the same instance.
        for text in [
            r##"{"allOf": [{"$ref": "#"}]}"##,
            r##"{"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}"##,
        ] {
            if let Ok(schema) = ConfigSchema::compile(text.as_bytes()) {
                let _ = schema.check("{}");
            }
        }
    }

    #[test]
    fn places_read_like_paths() {
        assert_eq!(place(""), "config");
        assert_eq!(place("/a/0/b~1c"), "config.a[0].b/c");
    }
}
