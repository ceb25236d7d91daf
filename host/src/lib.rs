//! nova: an automation host. One process owns the trusted, heavy parts and
//! lends them through WIT interfaces to sandboxed WebAssembly plugins.
//!
//! This crate is the composition root: it builds every backend once
//! ([`server`]), lends them to plugins ([`capabilities`]), and serves the
//! API, the knowledge base and the workflows. The parts below it are
//! crates of their own, re-exported here under the names the code uses:
//! [`plugins`] (`nova-plugin-host`), [`store`] (`nova-store`), [`vector`]
//! (`nova-vector`) and [`embed`] (`nova-embed`).

pub use nova_embed as embed;
pub use nova_plugin_host as plugins;
pub use nova_store as store;
pub use nova_vector as vector;

pub mod api;
pub mod auth;
pub mod capabilities;
pub mod cli;
pub mod code;
pub mod config;
pub mod fleet;
pub mod http;
pub mod invoke;
pub mod knowledge;
pub mod kv;
pub mod metrics;
pub mod outbound;
pub mod queue;
pub mod ratelimit;
pub mod redis;
pub mod request_id;
pub mod secrets;
pub mod server;
pub mod time;
pub mod workflow;
