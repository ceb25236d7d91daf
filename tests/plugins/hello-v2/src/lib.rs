//! `hello` version 2.0.0: the same step as hello-v1, with another version.

const VERSION: &str = "2.0.0";

include!("../../hello-v1/src/common.rs");
