//! nova's json-transform step: selects, renames and computes JSON fields
//! with a small expression language.
//!
//! The language lives in [`expr`] and the step's config in [`transform`];
//! neither knows the component bindings, so both are unit-tested natively.
//! Reference: `knowledge/integrations/json-transform.md`.

pub mod expr;
pub mod transform;

wit_bindgen::generate!({ path: "../../wit/v0.1", world: "step" });

use exports::nova::plugin::workflow_step::{Guest, Info, PluginError};
use nova::plugin::log::{Level, log};

// Natively (unit tests, `just fuzz`) this crate is a library of its
// modules; the component's exports exist in the WebAssembly build only.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: env!("CARGO_PKG_NAME").to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "Builds JSON from the input with expressions over paths: \
                          config {\"fields\": {\"name\": EXPR, ...}, \"keep\", \"drop\", \
                          \"select\": EXPR, \"each\": EXPR}, e.g. \
                          {\"fields\": {\"total\": \"sum(map($.items, $.price * $.qty))\"}}."
                .to_string(),
        }
    }

    fn run(input: String, config: String) -> Result<String, PluginError> {
        let config = transform::parse_config(&config).map_err(into_plugin_error)?;
        log(
            Level::Debug,
            &format!(
                "json-transform: {} field(s), keep {}, select {}, each {}",
                config.fields.as_ref().map_or(0, Vec::len),
                config.keep,
                config.select.as_ref().map_or("-", |c| c.source.as_str()),
                config.each.as_ref().map_or("-", |c| c.source.as_str()),
            ),
        );
        transform::run(&input, &config).map_err(into_plugin_error)
    }
}

fn into_plugin_error(e: transform::Error) -> PluginError {
    match e {
        transform::Error::InvalidInput(m) => PluginError::InvalidInput(m),
    }
}

#[cfg(target_arch = "wasm32")]
export!(Component);
