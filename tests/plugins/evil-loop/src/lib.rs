//! A hostile step: `run` never returns. Tests the host's timeout (epoch or
//! fuel interruption).

wit_bindgen::generate!({ path: "../../../wit/v0.1", world: "step" });

use exports::nova::plugin::workflow_step::{Guest, Info, PluginError};
use std::hint::black_box;

struct Component;

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: "evil-loop".to_owned(),
            version: "1.0.0".to_owned(),
            description: "Loops forever.".to_owned(),
        }
    }

    /// Spins forever, whatever the input and config; never returns.
    fn run(_input: String, _config: String) -> Result<String, PluginError> {
        let mut counter = 0u64;
        loop {
            // black_box keeps the optimizer from proving the loop useless.
            counter = black_box(counter.wrapping_add(1));
        }
    }
}

export!(Component);
