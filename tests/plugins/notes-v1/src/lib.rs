//! `notes` loader version 1.0.0.

const VERSION: &str = "1.0.0";

include!("common.rs");
