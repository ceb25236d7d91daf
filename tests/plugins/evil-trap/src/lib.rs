//! A hostile step: `run` traps. Tests that a guest trap becomes an error
//! for that call and that the host (and the next call) is unharmed.

wit_bindgen::generate!({ path: "../../../wit/v0.1", world: "step" });

use exports::nova::plugin::workflow_step::{Guest, Info, PluginError};

struct Component;

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: "evil-trap".to_owned(),
            version: "1.0.0".to_owned(),
            description: "Panics, or executes `unreachable`.".to_owned(),
        }
    }

    /// With input `"unreachable"` (the JSON string), executes the wasm
    /// `unreachable` instruction directly (no message). Otherwise panics with
    /// "evil-trap: deliberate panic" (printed to stderr, then a trap).
    fn run(input: String, _config: String) -> Result<String, PluginError> {
        if input.trim() == "\"unreachable\"" {
            core::arch::wasm32::unreachable();
        }
        panic!("evil-trap: deliberate panic");
    }
}

export!(Component);
