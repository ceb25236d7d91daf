//! Why a plugin could not be loaded, and why a call to one failed.

use std::time::Duration;

use super::manifest::ManifestError;
use super::schema::SchemaError;

/// A `.wasm` (or its manifest) that cannot serve. The message is what an
/// operator sees in the admin listing, so it says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid plugin name {0:?}: use lowercase letters, digits, '-' and '_' (at most 64)")]
    BadName(String),
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("not a valid WebAssembly component: {0}")]
    Compile(String),
    #[error(
        "component implements no nova world: it must export nova:plugin/document-loader@0.1.x \
         (a loader) or nova:plugin/workflow-step@0.1.x (a step); it exports [{exports}]"
    )]
    UnknownWorld { exports: String },
    #[error(
        "component targets nova:plugin contract {found}, which this host does not serve \
         (it serves 0.1.x)"
    )]
    UnsupportedVersion { found: String },
    #[error(
        "component imports {imports}, which this host does not serve (found before \
         compiling); it serves {served}"
    )]
    Unserved { imports: String, served: String },
    #[error("component does not conform to the {world} world: {message}")]
    NonConforming {
        world: &'static str,
        message: String,
    },
    #[error("describe() failed: {0}")]
    Describe(Box<CallError>),
    #[error("component refused: {0}")]
    ConfigSchema(#[from] SchemaError),
}

impl LoadError {
    /// A refusal that says nothing of the file: the pool was busy. Loading
    /// the same file again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, LoadError::Describe(e) if e.is_busy())
    }
}

/// A failed call. Each variant fails only its own call; the host and the
/// plugin's next call are unaffected.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("plugin reported invalid input: {0}")]
    InvalidInput(String),
    #[error("plugin does not support this input: {0}")]
    Unsupported(String),
    #[error("plugin failed: {0}")]
    Failed(String),
    #[error("plugin exceeded its time limit of {} ms", .limit.as_millis())]
    Timeout { limit: Duration },
    #[error("plugin exceeded its memory limit of {limit_mb} MiB (asked for {asked_mb} MiB)")]
    OutOfMemory { limit_mb: u64, asked_mb: u64 },
    #[error("plugin overflowed its stack (unbounded recursion?)")]
    StackOverflow,
    #[error("plugin trapped: {message}{}", .detail.as_deref().map(|d| format!(" (plugin stderr: {d})")).unwrap_or_default())]
    Trap {
        message: String,
        detail: Option<String>,
    },
    #[error("plugin output of {size} bytes exceeds its limit of {limit} bytes")]
    OutputTooLarge { size: u64, limit: u64 },
    /// The plugin handed the host more than it copies out of a call (the
    /// output limit, and 2 MiB for the arguments of host calls): stopped
    /// before the copy, so the size is not known.
    #[error("plugin output exceeds its limit of {limit} bytes (the host stopped copying it)")]
    OutputOverLimit { limit: u64 },
    #[error("plugin output refused: {0}")]
    InvalidOutput(String),
    #[error(
        "all {concurrency} plugin instance slots stayed busy for {} ms; retry later",
        .waited.as_millis()
    )]
    Busy { waited: Duration, concurrency: u32 },
    #[error("the plugin instance pool is full ({0}); retry later")]
    PoolExhausted(String),
    #[error("plugin sandbox could not be set up: {0}")]
    Setup(String),
}

impl CallError {
    /// A stable, machine-readable code for API errors.
    pub fn code(&self) -> &'static str {
        match self {
            CallError::InvalidInput(_) => "plugin_invalid_input",
            CallError::Unsupported(_) => "plugin_unsupported",
            CallError::Failed(_) => "plugin_failed",
            CallError::Timeout { .. } => "plugin_timeout",
            CallError::OutOfMemory { .. } => "plugin_out_of_memory",
            CallError::StackOverflow => "plugin_stack_overflow",
            CallError::Trap { .. } => "plugin_trap",
            CallError::OutputTooLarge { .. } | CallError::OutputOverLimit { .. } => {
                "plugin_output_too_large"
            }
            CallError::InvalidOutput(_) => "plugin_invalid_output",
            CallError::Busy { .. } | CallError::PoolExhausted(_) => "plugin_busy",
            CallError::Setup(_) => "plugin_setup_failed",
        }
    }

    /// Whether the call never ran for lack of room: worth retrying, and
    /// not the plugin's failure.
    pub fn is_busy(&self) -> bool {
        matches!(self, CallError::Busy { .. } | CallError::PoolExhausted(_))
    }

    /// Whether the plugin itself answered with an error (as opposed to the
    /// sandbox stopping it).
    pub fn is_reported_by_plugin(&self) -> bool {
        matches!(
            self,
            CallError::InvalidInput(_) | CallError::Unsupported(_) | CallError::Failed(_)
        )
    }
}
