//! The template step's config and input, from a caller: a clear error or
//! an answer that is JSON, never a panic.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use nova_template::render;

fuzz_target!(|data: &[u8]| {
    let Some((template, input)) = common::two_texts(data) else {
        return;
    };
    // Nested loops take as long as they are told to: in the host the
    // sandbox's time limit stops them, here they would only stall the
    // fuzzer. Two levels, over the input, are enough to find bugs.
    if template.matches("for").count() > 2 || template.contains("range") {
        return;
    }
    for output in ["text", "json"] {
        let config = serde_json::json!({"template": template, "output": output}).to_string();
        let config = render::parse_config(&config).expect("a template and an output kind");
        if let Ok(answer) = render::run(input, &config) {
            serde_json::from_str::<serde_json::Value>(&answer).expect("the output is JSON");
        }
    }
});
