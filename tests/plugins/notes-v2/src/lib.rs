//! `notes` loader version 2.0.0: the same loader as notes-v1, with another version.

const VERSION: &str = "2.0.0";

include!("../../notes-v1/src/common.rs");
