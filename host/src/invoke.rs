//! Running a plugin once on a caller's input, with its log lines: what
//! `POST /admin/plugins/{name}/invoke` and `nova plugin test` both do.

use std::time::Instant;

use nova_client::types as wire;

use crate::plugins::{CallError, Plugin, PluginKind, Runtime, logs};
use crate::store::RawJson;

/// What the caller asks for beyond the body.
#[derive(Debug, Default, Clone)]
pub struct Request {
    /// Steps: the configuration, as JSON text (`{}` when none).
    pub config: Option<String>,
    /// Loaders: the document's name or path (its extension matters).
    pub source: Option<String>,
}

/// Why an invocation did not run or failed.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The caller's input is not what the plugin's kind takes: `code` is a
    /// stable label (`invalid_json`, `invalid_config`).
    #[error("{message}")]
    BadInput { code: &'static str, message: String },
    /// The plugin ran and failed, or could not run.
    #[error(transparent)]
    Call(#[from] CallError),
}

fn bad(code: &'static str, message: String) -> InvokeError {
    InvokeError::BadInput { code, message }
}

/// Runs `plugin` once on `body`: a step's JSON input (empty: `null`), or a
/// loader's document. The answer carries the output or chunks, the time
/// taken and the lines the plugin logged.
pub async fn invoke(
    runtime: &Runtime,
    plugin: &Plugin,
    body: &[u8],
    request: Request,
) -> Result<wire::Invocation, InvokeError> {
    let start = Instant::now();
    let mut result = wire::Invocation {
        plugin: plugin.name.to_string(),
        version: plugin.info.version.clone(),
        kind: plugin.kind,
        output: None,
        chunks: None,
        duration_ms: 0.0,
        logs: Vec::new(),
        logs_dropped: 0,
    };
    let (answer, captured) = logs::capture(run(runtime, plugin, body, request, &mut result)).await;
    answer?;
    result.logs = captured
        .lines
        .into_iter()
        .map(|l| wire::LogLine {
            level: l.level.to_owned(),
            message: l.message,
        })
        .collect();
    result.logs_dropped = captured.dropped;
    result.duration_ms = start.elapsed().as_secs_f64() * 1e3;
    Ok(result)
}

async fn run(
    runtime: &Runtime,
    plugin: &Plugin,
    body: &[u8],
    request: Request,
    result: &mut wire::Invocation,
) -> Result<(), InvokeError> {
    match plugin.kind {
        PluginKind::Step => {
            let input = if body.iter().all(u8::is_ascii_whitespace) {
                RawJson::null()
            } else {
                let text = std::str::from_utf8(body)
                    .map_err(|e| bad("invalid_json", format!("request body is not UTF-8: {e}")))?;
                RawJson::parse(text)
                    .map_err(|e| bad("invalid_json", format!("request body is not JSON: {e}")))?
            };
            let config = match request.config.as_deref() {
                None | Some("") => RawJson::empty_object(),
                Some(text) => RawJson::parse(text)
                    .map_err(|e| bad("invalid_config", format!("config is not JSON: {e}")))?,
            };
            // Refused here as the caller's fault (400), before any call.
            plugin.check_config(config.get()).map_err(|e| {
                bad(
                    "invalid_config",
                    format!("config does not match the plugin's schema: {e}"),
                )
            })?;
            // A code step's config may lower its limits, as in a workflow.
            let within = crate::code::call_limits(&plugin.name, config.get());
            let output = runtime
                .run_step_within(plugin, input.get(), config.get(), within)
                .await?;
            result.output = Some(output);
        }
        PluginKind::Loader => {
            let source = request.source.unwrap_or_else(|| "document".to_owned());
            let chunks = runtime.run_loader(plugin, &source, body).await?;
            result.chunks = Some(
                chunks
                    .into_iter()
                    .map(|c| wire::Chunk {
                        text: c.text,
                        metadata: c.metadata.into_iter().collect(),
                    })
                    .collect(),
            );
        }
    }
    Ok(())
}
