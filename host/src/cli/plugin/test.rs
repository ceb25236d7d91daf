//! `nova plugin test`: one call of a built component in the sandbox
//! `nova serve` uses, with the host's default limits, and nothing else
//! running: kv and store in memory, no knowledge base, no secrets.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::{Failure, Project, TestArgs};
use crate::cli::{output, print, read_input};
use crate::plugins::manifest::Rules;
use crate::plugins::{Manifest, Protected, Runtime, RuntimeConfig, sha256_hex};

pub async fn test(args: TestArgs) -> Result<(), Failure> {
    let (wasm, name) = component(&args.target)?;
    let bytes = std::fs::read(&wasm)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", wasm.display())))?;
    let config = RuntimeConfig::default();
    let rules = Rules::of(&config, Protected::default());
    let manifest_path = args
        .manifest
        .clone()
        .unwrap_or_else(|| wasm.with_extension("toml"));
    let manifest =
        Manifest::load(&manifest_path, &rules).map_err(|e| Failure::Usage(e.to_string()))?;

    let store = crate::store::Store::connect("sqlite::memory:")
        .await
        .map_err(|e| Failure::Reported(format!("cannot open an in-memory store: {e}")))?;
    let knowledge =
        crate::knowledge::Knowledge::disabled("there is no knowledge base in `nova plugin test`");
    let outbound = crate::outbound::Outbound::new(None)
        .map_err(|e| Failure::Reported(format!("cannot set up outbound HTTP: {e}")))?;
    let capabilities = crate::capabilities::lend(crate::kv::Kv::in_process(), store, knowledge)
        .with::<dyn crate::plugins::capability::OutboundHttp>(Arc::new(outbound));
    let runtime = Runtime::new(&compile_cache(), config, capabilities)
        .map_err(|e| Failure::Reported(e.to_string()))?;

    let start = Instant::now();
    let sha = sha256_hex(&bytes);
    let plugin = runtime
        .prepare(&name, &wasm, bytes, sha, manifest)
        .await
        .map_err(|e| Failure::Reported(format!("{} does not load: {e}", wasm.display())))?;
    let prepared = start.elapsed();

    let (body, source) = match &args.document {
        Some(doc) => (
            read_input(doc)?,
            args.source
                .clone()
                .or_else(|| (doc.as_os_str() != "-").then(|| doc.display().to_string())),
        ),
        None => (
            args.input.clone().unwrap_or_default().into_bytes(),
            args.source.clone(),
        ),
    };
    let request = crate::invoke::Request {
        config: args.config.clone(),
        source,
    };
    let answer = crate::invoke::invoke(&runtime, &plugin, &body, request).await;
    let answer = match answer {
        Ok(answer) => answer,
        // --input or --config that is not JSON: the caller's, as for
        // `nova plugins invoke`.
        Err(e @ crate::invoke::InvokeError::BadInput { .. }) => {
            return Err(Failure::Usage(e.to_string()));
        }
        Err(e) => {
            return Err(Failure::Reported(format!(
                "{name} {}: {e}",
                plugin.info.version
            )));
        }
    };
    if args.json {
        let text =
            serde_json::to_string_pretty(&answer).map_err(|e| Failure::Reported(e.to_string()))?;
        print(&format!("{text}\n"));
    } else {
        print(&output::invocation(&answer));
    }
    // On stderr, --json or not: stdout holds the answer alone.
    eprint!("{}", output::invocation_logs(&answer));
    eprintln!(
        "{} {} {}: loaded in {:.0} ms ({}), ran in {:.2} ms",
        plugin.kind.as_str(),
        name,
        plugin.info.version,
        prepared.as_secs_f64() * 1e3,
        if plugin.compile.from_cache {
            "compiled before".to_owned()
        } else {
            format!("compiled in {:.0} ms", plugin.compile.ms)
        },
        answer.duration_ms
    );
    Ok(())
}

/// The component and the plugin name: `FILE.wasm` as given, or a project
/// directory's `build/NAME.wasm`.
fn component(target: &Path) -> Result<(PathBuf, String), Failure> {
    if target.is_dir() {
        let project = Project::open(target)?;
        let wasm = project.wasm();
        if !wasm.exists() {
            return Err(Failure::Usage(format!(
                "{} is not built yet: run `nova plugin build {}`",
                wasm.display(),
                target.display()
            )));
        }
        return Ok((wasm, project.name));
    }
    let name = target
        .file_stem()
        .and_then(|s| s.to_str())
        .map(|s| s.replace('_', "-"))
        .unwrap_or_else(|| "plugin".into());
    Ok((target.to_owned(), name))
}

/// Compiled components are kept between runs under the user's own cache
/// directory (compiling an interpreter's component takes seconds; a
/// directory others can write would let them plant native code).
fn compile_cache() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|c| c.join("nova/plugin-test"))
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("nova-plugin-test-{}", std::process::id()))
        })
}
