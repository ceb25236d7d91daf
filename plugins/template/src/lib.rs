//! nova's template step: renders a minijinja template from the input JSON.
//!
//! The rendering lives in [`render`], which knows nothing of the component
//! bindings and is unit-tested natively; its module docs give the config.

pub mod render;

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
            description: "Renders a minijinja template (config.template) with the input's fields \
                          as variables; returns {\"text\": ...}, or the rendered JSON with \
                          config.output = \"json\"."
                .to_string(),
        }
    }

    fn run(input: String, config: String) -> Result<String, PluginError> {
        let config = render::parse_config(&config).map_err(into_plugin_error)?;
        log(
            Level::Debug,
            &format!(
                "rendering a {}-byte template (output {}, strict {})",
                config.template.len(),
                match config.output {
                    render::Output::Text => "text",
                    render::Output::Json => "json",
                },
                config.strict
            ),
        );
        render::run(&input, &config).map_err(into_plugin_error)
    }
}

fn into_plugin_error(e: render::Error) -> PluginError {
    match e {
        render::Error::InvalidInput(m) => PluginError::InvalidInput(m),
    }
}

#[cfg(target_arch = "wasm32")]
export!(Component);
