//! A hostile step: `run` returns 50 MiB of JSON. Tests the host's limit on
//! output size (and that it does not copy the output around carelessly).

wit_bindgen::generate!({ path: "../../../wit/v0.1", world: "step" });

use exports::nova::plugin::workflow_step::{Guest, Info, PluginError};

struct Component;

/// Number of `x` characters in the output string.
const LEN: usize = 50 * 1024 * 1024;

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: "evil-output".to_owned(),
            version: "1.0.0".to_owned(),
            description: "Returns a 50 MiB JSON string.".to_owned(),
        }
    }

    /// Returns `"xxx…x"`: a JSON string literal of 50 MiB of `x`
    /// (52,428,800 + 2 bytes), whatever the input and config.
    fn run(_input: String, _config: String) -> Result<String, PluginError> {
        // One allocation of the final size.
        let mut bytes = vec![b'x'; LEN + 2];
        bytes[0] = b'"';
        bytes[LEN + 1] = b'"';
        String::from_utf8(bytes).map_err(|e| PluginError::Failed(e.to_string()))
    }
}

export!(Component);
