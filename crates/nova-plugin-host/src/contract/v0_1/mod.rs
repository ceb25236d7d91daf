//! `nova:plugin@0.1.x`: the bindings, and the host side of each
//! interface in a file of its own.

mod knowledge;
mod kv;
mod log;
mod store;

/// The `step` world: the binding for `log`, `kv`, `knowledge` and the
/// shared `types` come from here.
pub mod step {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.1",
        world: "step",
        imports: { default: async },
        exports: { default: async },
    });
}

/// The `loader` world reuses the step world's interface bindings, so
/// one `HostState` implementation serves both.
pub mod loader {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.1",
        world: "loader",
        imports: { default: async },
        exports: { default: async },
        with: {
            "nova:plugin/log": super::step::nova::plugin::log,
            "nova:plugin/types": super::step::nova::plugin::types,
        },
    });
}

pub use step::nova::plugin::types;

impl types::Host for crate::sandbox::HostState {}

/// Export names that identify a 0.1.x plugin's kind, without the patch
/// version.
pub const LOADER_EXPORT: &str = "nova:plugin/document-loader@0.1";
pub const STEP_EXPORT: &str = "nova:plugin/workflow-step@0.1";
