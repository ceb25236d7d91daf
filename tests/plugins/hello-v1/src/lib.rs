//! `hello` version 1.0.0; see `common.rs`.

const VERSION: &str = "1.0.0";

include!("common.rs");
