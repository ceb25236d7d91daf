//! Compiling components in a child process (`nova compile-plugin`).
//!
//! Cranelift's working memory while it compiles a large component is
//! hundreds of MB (about 200 MB for the 1.5 MB PDF loader). In a child it
//! goes back to the system when the child exits, instead of staying in the
//! host's heap for the rest of its life; and a component that crashes or
//! exhausts the compiler takes down only the child. The host then loads
//! the artifact the child wrote, as it loads any cached one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::engine;

/// The hidden subcommand of the `nova` binary that compiles one component.
pub const SUBCOMMAND: &str = "compile-plugin";

/// How to run the child: the `nova` binary, and the engine settings the
/// host built its engine with (the artifact must match them).
#[derive(Clone, Debug)]
pub struct Compiler {
    exe: PathBuf,
    concurrency: u32,
    max_memory_bytes: u64,
}

/// Why the child did not produce an artifact.
#[derive(Debug)]
pub enum ChildError {
    /// The child could not be started: compile in this process instead.
    Spawn(std::io::Error),
    /// The component did not compile, or the child died: the reason.
    Failed(String),
}

impl Compiler {
    pub fn new(exe: PathBuf, concurrency: u32, max_memory_bytes: u64) -> Self {
        Compiler {
            exe,
            concurrency,
            max_memory_bytes,
        }
    }

    /// Compiles the component in `wasm` into the artifact `out`.
    pub fn compile(&self, wasm: &Path, out: &Path) -> Result<(), ChildError> {
        let output = Command::new(&self.exe)
            .arg(SUBCOMMAND)
            .arg("--concurrency")
            .arg(self.concurrency.to_string())
            .arg("--max-memory-bytes")
            .arg(self.max_memory_bytes.to_string())
            .arg(wasm)
            .arg(out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(ChildError::Spawn)?;
        if output.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        Err(ChildError::Failed(if said.is_empty() {
            format!("the compiler process ended with {}", output.status)
        } else {
            said
        }))
    }
}

/// The child's side: compiles `wasm` with an engine built as the host's,
/// and writes the artifact to `out`.
pub fn compile_file(
    concurrency: u32,
    max_memory_bytes: u64,
    wasm: &Path,
    out: &Path,
) -> Result<(), String> {
    let engine = engine::build(concurrency, max_memory_bytes).map_err(|e| format!("{e:#}"))?;
    let bytes = std::fs::read(wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
    let artifact = engine
        .precompile_component(&bytes)
        .map_err(|e| format!("{e:#}"))?;
    std::fs::write(out, artifact).map_err(|e| format!("{}: {e}", out.display()))
}
