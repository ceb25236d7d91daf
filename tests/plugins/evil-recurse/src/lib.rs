//! A hostile step: `run` recurses without bound. Tests that stack
//! exhaustion is a trap the host reports, not a host crash.

wit_bindgen::generate!({ path: "../../../wit/v0.1", world: "step" });

use exports::nova::plugin::workflow_step::{Guest, Info, PluginError};
use std::hint::black_box;

struct Component;

/// Recurses until the stack runs out. `limit` comes through `black_box`, so
/// the compiler cannot see that it is never reached; the work after the call
/// (not associative) keeps the recursion from becoming a loop.
#[inline(never)]
fn recurse(depth: u64, limit: u64) -> u64 {
    if depth >= limit {
        return depth;
    }
    let below = recurse(depth + 1, limit);
    below.rotate_left((depth % 63) as u32 + 1) ^ depth.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: "evil-recurse".to_owned(),
            version: "1.0.0".to_owned(),
            description: "Recurses until the stack is exhausted.".to_owned(),
        }
    }

    /// Recurses without bound, whatever the input and config; never returns
    /// (the guest traps on stack exhaustion).
    fn run(_input: String, _config: String) -> Result<String, PluginError> {
        let result = recurse(0, black_box(u64::MAX));
        Ok(format!("{{\"unreachable\": {result}}}"))
    }
}

export!(Component);
