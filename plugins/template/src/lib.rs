//! nova's template step: renders a minijinja template from the input JSON.
//!
//! The rendering lives in [`render`], which knows nothing of the component
//! bindings and is unit-tested natively; its module docs give the config.

pub mod render;

use nova_plugin::{Error, RawStep};

// Natively (unit tests, `just fuzz`) the export is compiled out.
struct Template;

impl RawStep for Template {
    const DESCRIPTION: &'static str = "Renders a minijinja template (config.template) with the \
                                       input's fields as variables; returns {\"text\": ...}, or \
                                       the rendered JSON with config.output = \"json\".";
    // The host checks configs against it; `render::parse_config` still
    // checks them too, for hosts that do not read it and native callers.
    const CONFIG_SCHEMA: &'static str = include_str!("../config.schema.json");

    fn run(input: &str, config: &str) -> Result<String, Error> {
        let config = render::parse_config(config)?;
        nova_plugin::debug!(
            "rendering a {}-byte template (output {}, strict {})",
            config.template.len(),
            match config.output {
                render::Output::Text => "text",
                render::Output::Json => "json",
            },
            config.strict
        );
        Ok(render::run(input, &config)?)
    }
}

impl From<render::Error> for Error {
    fn from(e: render::Error) -> Self {
        match e {
            render::Error::InvalidInput(m) => Error::InvalidInput(m),
        }
    }
}

nova_plugin::export_raw_step!(Template);
