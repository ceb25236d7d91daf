//! nova's json-transform step: selects, renames and computes JSON fields
//! with a small expression language.
//!
//! The language lives in [`expr`] and the step's config in [`transform`];
//! neither knows the component bindings, so both are unit-tested natively.
//! Reference: `knowledge/integrations/json-transform.md`.

pub mod expr;
pub mod transform;

use nova_plugin::{Error, RawStep};

// Natively (unit tests, `just fuzz`) the export is compiled out.
struct JsonTransform;

impl RawStep for JsonTransform {
    const DESCRIPTION: &'static str = "Builds JSON from the input with expressions over paths: \
                                       config {\"fields\": {\"name\": EXPR, ...}, \"keep\", \
                                       \"drop\", \"select\": EXPR, \"each\": EXPR}, e.g. \
                                       {\"fields\": {\"total\": \"sum(map($.items, $.price * \
                                       $.qty))\"}}.";

    fn run(input: &str, config: &str) -> Result<String, Error> {
        let config = transform::parse_config(config)?;
        nova_plugin::debug!(
            "json-transform: {} field(s), keep {}, select {}, each {}",
            config.fields.as_ref().map_or(0, Vec::len),
            config.keep,
            config.select.as_ref().map_or("-", |c| c.source.as_str()),
            config.each.as_ref().map_or("-", |c| c.source.as_str()),
        );
        Ok(transform::run(input, &config)?)
    }
}

impl From<transform::Error> for Error {
    fn from(e: transform::Error) -> Self {
        match e {
            transform::Error::InvalidInput(m) => Error::InvalidInput(m),
        }
    }
}

nova_plugin::export_raw_step!(JsonTransform);
