//! nova: an automation host. One process owns the trusted, heavy parts and
//! lends them through WIT interfaces to sandboxed WebAssembly plugins.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod embed;
pub mod http;
pub mod knowledge;
pub mod kv;
pub mod metrics;
pub mod plugins;
pub mod queue;
pub mod ratelimit;
pub mod redis;
pub mod request_id;
pub mod server;
pub mod store;
pub mod vector;
pub mod workflow;
