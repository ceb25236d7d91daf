// Shared by hello-v1 and hello-v2, which define `VERSION` and include this.
// A trivial, fast step for hot-reload tests and the per-call benchmark: no
// JSON parsing, the output is formatted around the input as given.

wit_bindgen::generate!({ path: "../../../wit/v0.1", world: "step" });

use exports::nova::plugin::workflow_step::{Guest, Info, PluginError};

struct Component;

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: "hello".to_owned(),
            version: VERSION.to_owned(),
            description: "Echoes its input, tagged with its version.".to_owned(),
        }
    }

    /// Returns `{"version": VERSION, "echo": <input>}`, with the input
    /// embedded verbatim (the host passes valid JSON); an empty input
    /// becomes `null`. `config` is ignored.
    fn run(input: String, _config: String) -> Result<String, PluginError> {
        let echo = match input.trim() {
            "" => "null",
            s => s,
        };
        Ok(format!("{{\"version\": \"{VERSION}\", \"echo\": {echo}}}"))
    }
}

export!(Component);
