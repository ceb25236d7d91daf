//! Compiled components cached on disk, so a restart does not recompile.
//!
//! An entry is keyed by the `.wasm`'s SHA-256 and by a hash of the engine's
//! compatibility settings (wasmtime version, target, configuration): a new
//! wasmtime or a changed engine configuration misses the cache instead of
//! loading an incompatible artifact.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use wasmtime::Engine;
use wasmtime::component::Component;

use super::compiler::{ChildError, Compiler};
use super::native_code::trusted;

/// Tells apart the temporary files of compilations running at once.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// How a component was obtained.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct CompileInfo {
    pub from_cache: bool,
    pub ms: f64,
}

#[derive(Clone)]
pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
    /// Compiles in a child process when set; in this one otherwise.
    compiler: Option<Compiler>,
}

impl CompileCache {
    /// Opens (creating) the cache in `dir`; refused unless [`trusted`].
    pub fn new(dir: PathBuf, engine: &Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        trusted(&dir)?;
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Ok(CompileCache {
            dir,
            engine_key: format!("{:016x}", h.finish()),
            compiler: None,
        })
    }

    /// Compiles with `compiler`, in a child process, from now on.
    pub fn compile_in_child(&mut self, compiler: Compiler) {
        self.compiler = Some(compiler);
    }

    fn entry(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// Loads the component for `bytes` from the cache, or compiles it and
    /// stores the result. Compilation is CPU-heavy: call from a blocking
    /// thread.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        sha256: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, CompileInfo)> {
        let start = Instant::now();
        let path = self.entry(sha256);
        if path.exists()
            && let Err(e) = trusted(&path)
        {
            tracing::warn!(path = %path.display(), error = %e, "discarding untrusted cache entry");
            let _ = std::fs::remove_file(&path);
        }
        if path.exists() {
            // SAFETY: the file is an artifact a host of this user
            // serialized into a directory only this user can write (both
            // checked by `trusted`), under a name that binds it to the
            // exact input and engine; wasmtime also checks the engine
            // settings recorded in it and refuses a mismatch.
            #[allow(unsafe_code)]
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => {
                    return Ok((
                        component,
                        CompileInfo {
                            from_cache: true,
                            ms: elapsed_ms(start),
                        },
                    ));
                }
                // Compiled fine, but over the pool's per-component caps:
                // compiling it again would change nothing.
                Err(e) if format!("{e:#}").contains("in the pooling allocator") => return Err(e),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unusable cache entry");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        if let Some(compiler) = &self.compiler {
            match self.compile_in(compiler, sha256, bytes, &path) {
                Ok(()) => {
                    // SAFETY: as above; the child wrote it with an engine
                    // built from the same settings, which wasmtime checks.
                    #[allow(unsafe_code)]
                    let component = unsafe { Component::deserialize_file(engine, &path) }?;
                    return Ok((
                        component,
                        CompileInfo {
                            from_cache: false,
                            ms: elapsed_ms(start),
                        },
                    ));
                }
                Err(ChildError::Failed(reason)) => return Err(wasmtime::Error::msg(reason)),
                Err(ChildError::Spawn(e)) => {
                    tracing::warn!(error = %e, "cannot start the compiler process; compiling in this one");
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        let info = CompileInfo {
            from_cache: false,
            ms: elapsed_ms(start),
        };
        if let Err(e) = self.store(&path, &component) {
            // The cache only saves time; a failure to write it is not fatal.
            tracing::warn!(path = %path.display(), error = %e, "could not write compile cache");
        }
        Ok((component, info))
    }

    /// Has the child compile `bytes` into the cache entry `path`: from a
    /// temporary copy of the input, through a temporary output renamed
    /// into place once complete.
    fn compile_in(
        &self,
        compiler: &Compiler,
        sha256: &str,
        bytes: &[u8],
        path: &Path,
    ) -> Result<(), ChildError> {
        let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}-{seq}", std::process::id());
        let input = self.dir.join(format!("{sha256}.wasm.tmp{tag}"));
        let output = path.with_extension(format!("tmp{tag}"));
        std::fs::write(&input, bytes).map_err(ChildError::Spawn)?;
        let compiled = compiler.compile(&input, &output).and_then(|()| {
            std::fs::rename(&output, path).map_err(|e| ChildError::Failed(e.to_string()))
        });
        let _ = std::fs::remove_file(&input);
        if compiled.is_err() {
            let _ = std::fs::remove_file(&output);
        }
        compiled
    }

    fn store(&self, path: &Path, component: &Component) -> Result<(), String> {
        let bytes = component.serialize().map_err(|e| e.to_string())?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &bytes).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, path).map_err(|e| e.to_string())
    }
}

pub fn elapsed_ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}
