//! A step built against the first contract, `nova:plugin@0.1.0`, frozen in
//! `wit/` beside it: hosts that serve a later `0.1.x` must keep loading and
//! running it (its imports and export are matched across patch versions).
//! `run` stores its input under "last", lists it back, and returns
//! `{"listed": <documents under "last">, "input": <input>}`.

wit_bindgen::generate!({ path: "wit", world: "step" });

use exports::nova::plugin::workflow_step::{Guest, Info, PluginError};
use nova::plugin::store;

struct Component;

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: "contract-v0-1-0".to_owned(),
            version: "1.0.0".to_owned(),
            description: "Built against nova:plugin@0.1.0.".to_owned(),
        }
    }

    fn run(input: String, _config: String) -> Result<String, PluginError> {
        store::put("last", &input, None).map_err(|e| PluginError::Failed(format!("{e:?}")))?;
        let listed = store::list_by_prefix("last", 10)
            .map_err(|e| PluginError::Failed(format!("{e:?}")))?
            .len();
        Ok(format!("{{\"listed\": {listed}, \"input\": {input}}}"))
    }
}

export!(Component);
