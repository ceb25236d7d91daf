//! Code steps: Python and JavaScript snippets that arrive with a run, run
//! in the plugin sandbox by the shipped step plugins `python` and
//! `javascript` (interpreters built into components by componentize-py
//! and componentize-js, from `plugins/python` and `plugins/javascript`).
//!
//! The interpreters are plugins like any other: compiled once and cached,
//! a fresh instance per call, the manifest's limits and grants. This
//! module adds what is particular to code:
//!
//! - a code step's config may lower its time and memory limits for one
//!   call (`timeout_ms`, `memory_mb`), which the host applies;
//! - [`run`] runs a snippet once (`POST /sandbox/run`, `nova run-code`)
//!   and answers what it did, its errors and the sandbox's limits included,
//!   as a [`wire::SandboxResult`].

use std::time::{Duration, Instant};

use nova_client::types::{self as wire, CodeLanguage};
use serde::Deserialize;

use crate::plugins::{CallError, CallLimits, PluginKind, Registry};
use crate::store::RawJson;

/// The limits a step's config asks for, when the plugin is a code step
/// (none for any other plugin: its config is its own).
pub fn call_limits(plugin: &str, config: &str) -> CallLimits {
    if CodeLanguage::of_plugin(plugin).is_none() {
        return CallLimits::default();
    }
    /// Other keys are the interpreter's; a bad value is refused by the
    /// step's config schema before the call.
    #[derive(Deserialize)]
    struct Asked {
        timeout_ms: Option<u64>,
        memory_mb: Option<u64>,
    }
    match serde_json::from_str::<Asked>(config) {
        Ok(asked) => limits(asked.timeout_ms, asked.memory_mb),
        Err(_) => CallLimits::default(),
    }
}

fn limits(timeout_ms: Option<u64>, memory_mb: Option<u64>) -> CallLimits {
    CallLimits {
        timeout: timeout_ms.map(Duration::from_millis),
        memory_bytes: memory_mb.map(|mb| mb.saturating_mul(1 << 20)),
    }
}

/// Why a snippet could not be run at all (what it did wrong is a
/// [`wire::SandboxResult`] with an `error`, not one of these).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "no {0} code step is loaded: install the shipped {0}.wasm (`just interpreters` builds it) \
         in the plugin directory"
    )]
    Unavailable(CodeLanguage),
    #[error("{0}")]
    Invalid(String),
    /// The call could not run (busy, setup).
    #[error(transparent)]
    Call(CallError),
}

/// What the interpreters answer (with `on_error: "return"`).
#[derive(Deserialize)]
struct Answer {
    result: RawJson,
    stdout: String,
    stderr: String,
    #[serde(default)]
    error: Option<wire::SandboxError>,
}

/// Runs `request`'s snippet once.
pub async fn run(
    registry: &Registry,
    request: wire::SandboxRun,
) -> Result<wire::SandboxResult, RunError> {
    let language = request.language;
    let plugin = registry
        .get(language.as_str())
        .filter(|p| p.kind == PluginKind::Step)
        .ok_or(RunError::Unavailable(language))?;
    if request.timeout_ms == Some(0) || request.memory_mb == Some(0) {
        return Err(RunError::Invalid(
            "timeout_ms and memory_mb must be at least 1".into(),
        ));
    }
    let mut config = serde_json::json!({ "code": request.code, "on_error": "return" });
    if let Some(bytes) = request.capture_bytes {
        config["capture_bytes"] = bytes.into();
    }
    let config = config.to_string();
    let input = request.input.unwrap_or_else(RawJson::null);
    let call = limits(request.timeout_ms, request.memory_mb);
    let start = Instant::now();
    let outcome = registry
        .runtime()
        .run_step_within(&plugin, input.get(), &config, call)
        .await;
    let duration_ms = start.elapsed().as_secs_f64() * 1e3;
    let stopped = |kind: &str, e: CallError| wire::SandboxResult {
        result: RawJson::null(),
        stdout: String::new(),
        stderr: String::new(),
        error: Some(wire::SandboxError {
            kind: kind.to_owned(),
            message: e.to_string(),
            line: None,
        }),
        duration_ms,
    };
    match outcome {
        Ok(output) => match serde_json::from_str::<Answer>(output.get()) {
            Ok(answer) => Ok(wire::SandboxResult {
                result: answer.result,
                stdout: answer.stdout,
                stderr: answer.stderr,
                error: answer.error,
                duration_ms,
            }),
            // A snippet that rewrote the interpreter's own JSON encoder
            // (or a plugin of that name that is not nova's code step).
            Err(e) => Ok(stopped(
                "Crash",
                CallError::InvalidOutput(format!("not a code step's answer: {e}")),
            )),
        },
        // What the sandbox stopped: the snippet's doing, answered as such.
        Err(e @ CallError::Timeout { .. }) => Ok(stopped("TimeLimit", e)),
        Err(e @ CallError::OutOfMemory { .. }) => Ok(stopped("MemoryLimit", e)),
        Err(e @ CallError::StackOverflow) => Ok(stopped("StackOverflow", e)),
        Err(e @ (CallError::OutputTooLarge { .. } | CallError::OutputOverLimit { .. })) => {
            Ok(stopped("OutputLimit", e))
        }
        Err(e @ (CallError::Trap { .. } | CallError::InvalidOutput(_))) => Ok(stopped("Crash", e)),
        // The interpreter refused its config: only ours is `capture_bytes`.
        Err(CallError::InvalidInput(message)) => Err(RunError::Invalid(message)),
        Err(e) => Err(RunError::Call(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_code_steps_take_limits_from_their_config() {
        let config = r#"{"code": "x", "timeout_ms": 250, "memory_mb": 64}"#;
        let asked = call_limits("python", config);
        assert_eq!(asked.timeout, Some(Duration::from_millis(250)));
        assert_eq!(asked.memory_bytes, Some(64 << 20));
        assert_eq!(
            call_limits("javascript", r#"{"timeout_ms": 5}"#).timeout,
            Some(Duration::from_millis(5))
        );
        // Another plugin's config is its own.
        assert_eq!(call_limits("template", config), CallLimits::default());
        // A bad value is left to the config schema.
        assert_eq!(
            call_limits("python", r#"{"timeout_ms": "soon"}"#),
            CallLimits::default()
        );
    }
}
