//! plugin-template: a nova workflow step (started from plugins/template-plugin).
//!
//! It greets: given the input `{"name": "Ada"}` and the config
//! `{"greeting": "Hi"}` it returns
//! `{"input": {"name": "Ada"}, "message": "Hi, Ada!"}`.
//!
//! The plugin contract is the WIT package in `wit/v0.1/plugin.wit` at the
//! root of the repository. This file is the thin layer between it and the
//! plugin's logic in `greet.rs`.

mod greet;

// Generates Rust bindings for the `step` world: the `Guest` trait to
// implement (the exports) and the functions the host provides (the imports,
// under `nova::plugin::*`). A loader uses `world: "loader"` and implements
// `exports::nova::plugin::document_loader::Guest` instead (`describe` and
// `load(source, bytes) -> result<list<chunk>, plugin-error>`).
wit_bindgen::generate!({ path: "../../wit/v0.1", world: "step" });

use exports::nova::plugin::workflow_step::{Guest, Info, PluginError};
// Host imports of the step world: `log::log` writes to the host's log,
// tagged with this plugin's name; `kv` is a small key-value store private
// to this plugin (`kv::get`, `kv::set`, `kv::delete`); `knowledge::search`
// queries the knowledge base.
use nova::plugin::log::{Level, log};

struct Component;

impl Guest for Component {
    /// Tells the host who this plugin is. The version follows Cargo.toml.
    fn describe() -> Info {
        Info {
            name: "plugin-template".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "Greets the input's name with config.greeting".to_string(),
        }
    }

    /// `input` is the previous step's output (or the run's input) as JSON
    /// text, `config` this step's configuration as JSON text (`{}` when
    /// none). Returns JSON text.
    fn run(input: String, config: String) -> Result<String, PluginError> {
        log(
            Level::Debug,
            &format!("run with {} bytes of input", input.len()),
        );
        // Malformed input or config is `invalid-input`; well-formed input
        // this plugin does not handle is `unsupported`; `failed` is for when
        // the plugin tried and could not. A panic traps the plugin and the
        // host reports it: return an error wherever the caller can act on it.
        greet::run(&input, &config).map_err(|e| match e {
            greet::Error::InvalidInput(m) => PluginError::InvalidInput(m),
        })
    }
}

// Exports `Component` as this plugin's implementation of the world.
export!(Component);
