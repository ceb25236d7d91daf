//! A hostile step whose `describe()` returns a 100 MiB description: the
//! host would keep it for the plugin's life and send it in every listing.

wit_bindgen::generate!({ path: "../../../wit/v0.1", world: "step" });

use exports::nova::plugin::workflow_step::{Guest, Info, PluginError};

struct Component;

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: "evil-describe".to_owned(),
            version: "1.0.0".to_owned(),
            description: "d".repeat(100 << 20),
        }
    }

    fn run(input: String, _config: String) -> Result<String, PluginError> {
        Ok(input)
    }
}

export!(Component);
