//! The json-transform step's config (expressions) and input, from a
//! caller: a clear error or an answer that is JSON, never a panic.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use nova_json_transform::{expr, transform};

fuzz_target!(|data: &[u8]| {
    let Some((config, input)) = common::two_texts(data) else {
        return;
    };
    // The expression language alone, on the whole first text.
    let _ = expr::parse(config);
    if let Ok(config) = transform::parse_config(config)
        && let Ok(output) = transform::run(input, &config)
    {
        serde_json::from_str::<serde_json::Value>(&output).expect("the output is JSON");
    }
});
