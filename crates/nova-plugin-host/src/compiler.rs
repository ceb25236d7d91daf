//! Compiling components in a child process (`nova compile-plugin`).
//!
//! Cranelift's working memory while it compiles a large component is
//! hundreds of MB (about 200 MB for the 1.5 MB PDF loader), and a hostile
//! component can make it take gigabytes and minutes. In a child, that
//! memory goes back to the system when the child exits, and the child is
//! bounded: it sets its own address-space limit before it starts, and the
//! host kills it once it has run longer than the time limit. A component
//! that crashes or exhausts the compiler takes down only the child, and is
//! refused with the reason. The host then loads the artifact the child
//! wrote, as it loads any cached one.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::CompileLimits;
use super::engine;

/// The hidden subcommand of the `nova` binary that compiles one component.
pub const SUBCOMMAND: &str = "compile-plugin";

/// How often the host looks whether the child is done.
const POLL: Duration = Duration::from_millis(20);
/// mimalloc's address-space reserve in the child, in KiB.
const ARENA_RESERVE_KIB: &str = "65536";

/// How to run the child: the `nova` binary, and its limits.
#[derive(Clone, Debug)]
pub struct Compiler {
    exe: PathBuf,
    limits: CompileLimits,
    /// The function cache's directory ([`crate::functions`]).
    functions: Option<PathBuf>,
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
    pub fn new(exe: PathBuf, limits: CompileLimits, functions: Option<PathBuf>) -> Self {
        Compiler {
            exe,
            limits,
            functions,
        }
    }

    /// Compiles the component in `wasm` into the artifact `out`, within
    /// the limits. Blocks: call from a blocking thread.
    pub fn compile(&self, wasm: &Path, out: &Path) -> Result<(), ChildError> {
        let mut command = Command::new(&self.exe);
        if let Some(dir) = &self.functions {
            command.arg(SUBCOMMAND).arg("--function-cache").arg(dir);
        } else {
            command.arg(SUBCOMMAND);
        }
        let mut child = command
            // Nothing of the host's settings (its admin token, connection
            // strings) reaches the process that reads untrusted bytes.
            .env_clear()
            // mimalloc reserves 1 GiB of address space up front by default;
            // a small reserve keeps the limit about memory actually used.
            .env("MIMALLOC_ARENA_RESERVE", ARENA_RESERVE_KIB)
            .arg("--memory-limit-bytes")
            .arg(self.limits.memory_bytes.to_string())
            .arg(wasm)
            .arg(out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(ChildError::Spawn)?;
        // Read stderr as it comes, so a chatty child never blocks on a
        // full pipe; keep its end, which says why it failed.
        let stderr = child.stderr.take();
        let reader = std::thread::spawn(move || {
            let mut said = Vec::new();
            if let Some(mut stderr) = stderr {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = stderr.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    said.extend_from_slice(&chunk[..n]);
                    if said.len() > 64 << 10 {
                        said.drain(..said.len() - (16 << 10));
                    }
                }
            }
            said
        });
        let deadline = Instant::now() + self.limits.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let _ = reader.join();
                    return Err(ChildError::Failed(format!(
                        "compiling it took longer than {} s (plugins.compile_timeout_ms); \
                         the compiler was stopped",
                        self.limits.timeout.as_secs_f64()
                    )));
                }
                Ok(None) => std::thread::sleep(POLL),
                Err(e) => {
                    let _ = child.kill();
                    return Err(ChildError::Failed(format!("the compiler process: {e}")));
                }
            }
        };
        let said = reader.join().unwrap_or_default();
        if status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&said).trim().to_owned();
        Err(ChildError::Failed(self.reason(status, said)))
    }

    /// Why the child failed, in words an operator can act on.
    fn reason(&self, status: std::process::ExitStatus, said: String) -> String {
        use std::os::unix::process::ExitStatusExt;
        let out_of_memory = said.contains("memory allocation of")
            || said.contains("out of memory")
            || said.contains("Cannot allocate memory")
            || said.contains("Resource temporarily unavailable");
        if out_of_memory || status.signal() == Some(6) {
            return format!(
                "compiling it needs more than the compiler's memory limit of {} MiB \
                 (plugins.compile_memory_mb)",
                self.limits.memory_bytes >> 20
            );
        }
        if said.is_empty() {
            format!("the compiler process ended with {status}")
        } else {
            said
        }
    }
}

/// The child's side: limits its own address space to `memory_limit`
/// bytes, compiles `wasm` with an engine of the host's settings, and
/// writes the artifact to `out`.
pub fn compile_file(
    memory_limit: u64,
    functions: Option<&Path>,
    wasm: &Path,
    out: &Path,
) -> Result<(), String> {
    rustix::process::setrlimit(
        rustix::process::Resource::As,
        rustix::process::Rlimit {
            current: Some(memory_limit),
            maximum: Some(memory_limit),
        },
    )
    .map_err(|e| format!("cannot limit the compiler's memory: {e}"))?;
    // A function cache that cannot be opened costs time, not the compile.
    let functions = functions.and_then(|dir| {
        crate::functions::FunctionCache::open(dir, crate::functions::MAX_BYTES).ok()
    });
    let engine = engine::build_for_compile(functions).map_err(|e| format!("{e:#}"))?;
    let bytes = std::fs::read(wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
    let artifact = engine
        .precompile_component(&bytes)
        .map_err(|e| format!("{e:#}"))?;
    std::fs::write(out, artifact).map_err(|e| format!("{}: {e}", out.display()))
}
