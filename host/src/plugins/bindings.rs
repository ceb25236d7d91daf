//! Host-side bindings for each version of the plugin contract.
//!
//! One module per contract version (`v0_1` for `nova:plugin@0.1.x`). When a
//! `0.2` contract arrives, `v0_2` is generated beside it from `wit/v0.2`
//! and the host serves both: a plugin is dispatched on the version in the
//! name of the interface it exports (see `component::classify`).

pub mod v0_1 {
    /// The `step` world: the binding for `log`, `kv`, `knowledge` and the
    /// shared `types` come from here.
    pub mod step {
        wasmtime::component::bindgen!({
            path: "../wit/v0.1",
            world: "step",
            imports: { default: async },
            exports: { default: async },
        });
    }

    /// The `loader` world reuses the step world's interface bindings, so
    /// one `HostState` implementation serves both.
    pub mod loader {
        wasmtime::component::bindgen!({
            path: "../wit/v0.1",
            world: "loader",
            imports: { default: async },
            exports: { default: async },
            with: {
                "nova:plugin/log": super::step::nova::plugin::log,
                "nova:plugin/types": super::step::nova::plugin::types,
            },
        });
    }

    pub use step::nova::plugin::{knowledge, kv, log, store, types};

    /// Export names that identify a 0.1.x plugin's kind, without the patch
    /// version.
    pub const LOADER_EXPORT: &str = "nova:plugin/document-loader@0.1";
    pub const STEP_EXPORT: &str = "nova:plugin/workflow-step@0.1";
}
