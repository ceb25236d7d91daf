//! Human output of the CLI verbs: aligned plain-text tables and short
//! summaries of the host's answers.

use std::fmt::Write;

use nova_client::types::{
    CollectionInfo, DefinitionInfo, DefinitionList, DocumentInfo, DocumentPage, DocumentSaved,
};
use nova_client::{
    Health, IngestReport, Invocation, KeyInfo, Plugin, PluginKind, PluginsReloaded, QueryAnswer,
    Run, RunPage, SecretInfo,
};
use serde_json::Value;

/// Column alignment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// An aligned table: a header row, then one row per entry; columns are
/// separated by two spaces and trailing blanks are trimmed.
pub fn table(headers: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|(h, _)| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(widths.len()) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|(h, _)| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (_, align)) in headers.iter().enumerate() {
            let cell = row.get(i).map_or("", String::as_str);
            let pad = widths[i].saturating_sub(cell.chars().count());
            if i > 0 {
                line.push_str("  ");
            }
            match align {
                Align::Left => {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
                Align::Right => {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// An optional field as a cell: `-` when absent.
fn opt(v: Option<&str>) -> String {
    v.unwrap_or("-").to_owned()
}

/// A duration in ms as a cell: one decimal is enough.
fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |f| format!("{f:.1}"))
}

/// JSON on one line, cut to `max` characters.
fn compact(v: &Value, max: usize) -> String {
    cut(&v.to_string(), max)
}

/// Text cut to `max` characters, with `…` when something was left out.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let kept: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

/// Whitespace runs as single spaces, for one-line excerpts.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Name/value lines with the values aligned.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (name, value) in pairs {
        let _ = writeln!(out, "{name:<width$}  {value}");
    }
    out
}

/// A run as `nova runs show` prints it.
pub fn run(run: &Run) -> String {
    let mut out = String::new();
    let pairs = [
        ("id", run.id.clone()),
        ("status", run.status.to_string()),
        ("created", opt(run.created_at.as_deref())),
        ("started", opt(run.started_at.as_deref())),
        ("finished", opt(run.finished_at.as_deref())),
        ("error", opt(run.error.as_deref())),
    ];
    for (name, value) in pairs {
        let _ = writeln!(out, "{name:<9} {value}");
    }
    if let Some(definition) = &run.definition {
        let version = run
            .definition_version
            .map(|v| format!(" v{v}"))
            .unwrap_or_default();
        let _ = writeln!(out, "{:<9} {definition}{version}", "workflow");
    }
    if !run.output.is_null() {
        let _ = writeln!(
            out,
            "{:<9} {}",
            "output",
            compact(&run.output.to_value(), 200)
        );
    }
    if !run.steps.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = run
            .steps
            .iter()
            .map(|s| {
                let status = match &s.items {
                    Some(items) => {
                        let done = items
                            .iter()
                            .filter(|i| i.status == nova_client::types::StepStatus::Succeeded)
                            .count();
                        format!("{} ({done}/{} items)", s.status, items.len())
                    }
                    None => s.status.to_string(),
                };
                vec![
                    s.index.to_string(),
                    s.id.clone(),
                    s.plugin.clone(),
                    opt(s.plugin_version.as_deref()),
                    status,
                    s.attempts.to_string(),
                    ms(s.duration_ms),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                ("STEP", Align::Right),
                ("ID", Align::Left),
                ("PLUGIN", Align::Left),
                ("VERSION", Align::Left),
                ("STATUS", Align::Left),
                ("ATTEMPTS", Align::Right),
                ("DURATION_MS", Align::Right),
            ],
            &rows,
        ));
        for s in &run.steps {
            if let Some(error) = &s.error {
                let _ = writeln!(out, "step {} error: {error}", s.index);
            }
        }
    }
    out
}

/// A page of runs as `nova runs list` prints it.
pub fn list(page: &RunPage) -> String {
    let rows: Vec<Vec<String>> = page
        .runs
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.status.to_string(),
                r.step_count.to_string(),
                opt(r.created_at.as_deref()),
            ]
        })
        .collect();
    let mut out = if rows.is_empty() {
        "no runs\n".to_owned()
    } else {
        table(
            &[
                ("ID", Align::Left),
                ("STATUS", Align::Left),
                ("STEPS", Align::Right),
                ("CREATED", Align::Left),
            ],
            &rows,
        )
    };
    if let Some(cursor) = &page.next_cursor {
        let _ = writeln!(out, "next cursor: {cursor}");
    }
    out
}

/// `nova query`: each hit with its score, source and a short excerpt.
pub fn hits(answer: &QueryAnswer) -> String {
    if answer.results.is_empty() {
        return "no results\n".to_owned();
    }
    let mut out = String::new();
    for (i, hit) in answer.results.iter().enumerate() {
        let heading = hit
            .metadata
            .get("heading_path")
            .or_else(|| hit.metadata.get("title"))
            .map(|h| match h {
                Value::String(s) => format!(" — {s}"),
                other => format!(" — {other}"),
            })
            .unwrap_or_default();
        let _ = writeln!(out, "{}. {:.3}  {}{heading}", i + 1, hit.score, hit.source);
        let _ = writeln!(out, "   {}", cut(&one_line(&hit.text), 241));
    }
    let _ = writeln!(
        out,
        "({} results in {} ms, {}{})",
        answer.results.len(),
        answer.took_ms,
        answer.mode.as_str(),
        if answer.cached { ", cached" } else { "" }
    );
    out
}

/// `nova collections list`: one row per collection.
pub fn collections(list: &[CollectionInfo]) -> String {
    if list.is_empty() {
        return "no collections\n".to_owned();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.documents.to_string(),
                c.chunks.to_string(),
                opt(c.dir.as_deref()),
                opt(c.settings.description.as_deref()),
            ]
        })
        .collect();
    table(
        &[
            ("NAME", Align::Left),
            ("DOCUMENTS", Align::Right),
            ("CHUNKS", Align::Right),
            ("DIRECTORY", Align::Left),
            ("DESCRIPTION", Align::Left),
        ],
        &rows,
    )
}

/// `nova collections show` (and create).
pub fn collection(c: &CollectionInfo) -> String {
    let number = |n: Option<u32>| n.map_or_else(|| "host default".to_owned(), |n| n.to_string());
    fields(&[
        ("name", c.name.clone()),
        ("documents", c.documents.to_string()),
        ("chunks", c.chunks.to_string()),
        ("directory", opt(c.dir.as_deref())),
        ("description", opt(c.settings.description.as_deref())),
        ("chunk tokens", number(c.settings.chunk_tokens)),
        ("chunk overlap", number(c.settings.chunk_overlap)),
    ])
}

/// `nova docs put`: what the host did with the document.
pub fn document_saved(d: &DocumentSaved) -> String {
    let what = if d.embedded == 0 {
        "unchanged"
    } else if d.created {
        "added"
    } else {
        "replaced"
    };
    format!(
        "{what} {}/{}: {} chunks ({} embedded), loader {} {}\n",
        d.collection, d.id, d.chunks, d.embedded, d.loader, d.loader_version
    )
}

/// `nova docs list`: one row per document.
pub fn documents(page: &DocumentPage) -> String {
    let mut out = if page.documents.is_empty() {
        "no documents\n".to_owned()
    } else {
        let rows: Vec<Vec<String>> = page
            .documents
            .iter()
            .map(|d| {
                vec![
                    d.id.clone(),
                    d.chunks.to_string(),
                    d.size.to_string(),
                    format!("{} {}", d.loader, d.loader_version),
                    if d.uploaded { "upload" } else { "directory" }.to_owned(),
                    cut(&d.content_hash, 12),
                ]
            })
            .collect();
        table(
            &[
                ("ID", Align::Left),
                ("CHUNKS", Align::Right),
                ("BYTES", Align::Right),
                ("LOADER", Align::Left),
                ("FROM", Align::Left),
                ("SHA256", Align::Left),
            ],
            &rows,
        )
    };
    if let Some(next) = &page.next {
        let _ = writeln!(out, "more after: {next}  (pass it as --after)");
    }
    out
}

/// `nova docs show`: the record, then the chunks if asked for.
pub fn document(d: &DocumentInfo) -> String {
    let mut out = fields(&[
        ("id", d.id.clone()),
        ("chunks", d.chunks.to_string()),
        ("bytes", d.size.to_string()),
        ("loader", format!("{} {}", d.loader, d.loader_version)),
        (
            "from",
            if d.uploaded { "upload" } else { "directory" }.to_owned(),
        ),
        ("sha256", d.content_hash.clone()),
        (
            "metadata",
            serde_json::to_string(&d.metadata).unwrap_or_default(),
        ),
    ]);
    for chunk in d.chunk_list.iter().flatten() {
        let _ = writeln!(
            out,
            "\n[{}] {}",
            chunk.index,
            cut(&one_line(&chunk.text), 400)
        );
    }
    out
}

/// `nova ingest`: the counts of a finished ingest and its failures.
pub fn ingest(report: &IngestReport) -> String {
    let mut out = format!(
        "collection {}: {} added, {} updated, {} removed, {} unchanged, {} failed; {} chunks embedded in {} ms\n",
        report.collection,
        report.added,
        report.updated,
        report.removed,
        report.unchanged,
        report.failed,
        report.chunks_embedded,
        report.duration_ms.unwrap_or(0),
    );
    for failure in &report.failures {
        let _ = writeln!(out, "  skipped {}: {}", failure.source, failure.error);
    }
    out
}

/// `nova plugins list`: one row per plugin, then why refused files were
/// refused.
pub fn plugins(plugins: &[Plugin]) -> String {
    if plugins.is_empty() {
        return "no plugins\n".to_owned();
    }
    let rows: Vec<Vec<String>> = plugins
        .iter()
        .map(|p| {
            let stats = p.stats.as_ref();
            vec![
                p.name.clone(),
                opt(p.kind.map(PluginKind::as_str)),
                opt(p.version.as_deref()),
                p.status.to_string(),
                stats.map_or_else(|| "-".to_owned(), |s| s.calls.to_string()),
                stats.map_or_else(|| "-".to_owned(), |s| s.failures.to_string()),
                ms(stats.and_then(|s| s.p50_ms)),
                p.sha256
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), |h| h.chars().take(12).collect()),
            ]
        })
        .collect();
    let mut out = table(
        &[
            ("NAME", Align::Left),
            ("KIND", Align::Left),
            ("VERSION", Align::Left),
            ("STATUS", Align::Left),
            ("CALLS", Align::Right),
            ("FAILURES", Align::Right),
            ("P50_MS", Align::Right),
            ("SHA256", Align::Left),
        ],
        &rows,
    );
    for p in plugins {
        if let Some(error) = &p.error {
            let _ = writeln!(out, "{}: {error}", p.name);
        }
    }
    out
}

/// `nova plugins show`: every field of one listing entry.
pub fn plugin(p: &Plugin) -> String {
    let mut pairs = vec![
        ("name", p.name.clone()),
        ("kind", opt(p.kind.map(PluginKind::as_str))),
        ("version", opt(p.version.as_deref())),
        ("status", p.status.to_string()),
        ("serving", p.serving.to_string()),
    ];
    if let Some(description) = p.description.as_deref().filter(|d| !d.is_empty()) {
        pairs.push(("description", description.to_owned()));
    }
    pairs.push(("contract", opt(p.contract.as_deref())));
    pairs.push(("sha256", opt(p.sha256.as_deref())));
    pairs.push((
        "size",
        p.size_bytes
            .map_or_else(|| "-".to_owned(), |b| format!("{b} bytes")),
    ));
    pairs.push(("path", opt(p.path.as_deref())));
    pairs.push(("loaded", opt(p.loaded_at.as_deref())));
    if let Some(l) = &p.limits {
        pairs.push((
            "limits",
            format!(
                "timeout {} ms, memory {} MiB, output {} bytes",
                l.timeout_ms, l.memory_mb, l.max_output_bytes
            ),
        ));
    }
    if let Some(grants) = p.grants.as_ref().and_then(|g| serde_json::to_value(g).ok()) {
        pairs.push(("grants", compact(&grants, 200)));
    }
    if let Some(extensions) = p.extensions.as_ref().filter(|e| !e.is_empty()) {
        pairs.push(("extensions", extensions.join(", ")));
    }
    if let Some(media_types) = p.media_types.as_ref().filter(|m| !m.is_empty()) {
        pairs.push(("media types", media_types.join(", ")));
    }
    if let Some(s) = &p.stats {
        pairs.push((
            "calls",
            format!(
                "{} ({} failed), p50 {} ms",
                s.calls,
                s.failures,
                ms(s.p50_ms)
            ),
        ));
    }
    if let Some(error) = &p.error {
        pairs.push(("error", error.clone()));
    }
    fields(&pairs)
}

/// `nova plugins reload`: the outcome per name.
pub fn reloaded(answer: &PluginsReloaded) -> String {
    if answer.outcomes.is_empty() {
        return "no plugins\n".to_owned();
    }
    let rows: Vec<Vec<String>> = answer
        .outcomes
        .iter()
        .map(|(name, outcome)| vec![name.clone(), outcome.to_string()])
        .collect();
    table(&[("NAME", Align::Left), ("OUTCOME", Align::Left)], &rows)
}

/// `nova plugins invoke`: a step's output as indented JSON; a loader's
/// chunks as a table with an excerpt of each.
pub fn invocation(inv: &Invocation) -> String {
    let mut out = String::new();
    if inv.kind == PluginKind::Loader {
        let chunks = inv.chunks.as_deref().unwrap_or_default();
        let rows: Vec<Vec<String>> = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                vec![
                    i.to_string(),
                    c.text.chars().count().to_string(),
                    c.metadata
                        .get("heading_path")
                        .map_or_else(|| "-".to_owned(), |h| cut(h, 40)),
                    cut(&one_line(&c.text), 60),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                ("CHUNK", Align::Right),
                ("CHARS", Align::Right),
                ("HEADING", Align::Left),
                ("TEXT", Align::Left),
            ],
            &rows,
        ));
        let _ = writeln!(
            out,
            "({} chunks from {} {} in {:.1} ms)",
            chunks.len(),
            inv.plugin,
            inv.version,
            inv.duration_ms
        );
    } else {
        let output = inv.output.as_ref().map_or(Value::Null, |o| o.to_value());
        let text = serde_json::to_string_pretty(&output).unwrap_or_else(|_| output.to_string());
        let _ = writeln!(out, "{text}");
        let _ = writeln!(
            out,
            "({} {} in {:.1} ms)",
            inv.plugin, inv.version, inv.duration_ms
        );
    }
    out
}

/// The lines a plugin logged during one invocation, for stderr: `LEVEL
/// message` each, then how many were not kept.
pub fn invocation_logs(inv: &Invocation) -> String {
    let mut out = String::new();
    for line in &inv.logs {
        let _ = writeln!(out, "{:<5} {}", line.level, line.message);
    }
    if inv.logs_dropped > 0 {
        let _ = writeln!(out, "({} more log lines not shown)", inv.logs_dropped);
    }
    out
}

/// `nova health`: the status, then one row per check.
/// `nova keys list`: one row per key.
pub fn keys(keys: &[KeyInfo]) -> String {
    if keys.is_empty() {
        return "no API keys\n".to_owned();
    }
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.id.clone(),
                k.name.clone(),
                k.prefix.clone(),
                k.scopes.join(" "),
                k.created_at.clone(),
                opt(k.last_used_at.as_deref()),
            ]
        })
        .collect();
    table(
        &[
            ("ID", Align::Left),
            ("NAME", Align::Left),
            ("PREFIX", Align::Left),
            ("SCOPES", Align::Left),
            ("CREATED", Align::Left),
            ("LAST USED", Align::Left),
        ],
        &rows,
    )
}

/// Saved definitions as `nova defs list` prints them.
pub fn definitions(list: &DefinitionList) -> String {
    if list.definitions.is_empty() {
        return "no definitions\n".to_owned();
    }
    let rows: Vec<Vec<String>> = list
        .definitions
        .iter()
        .map(|d| {
            vec![
                d.name.clone(),
                d.version.to_string(),
                d.definition.steps.len().to_string(),
                opt(d.created_at.as_deref()),
                one_line(d.definition.description.as_deref().unwrap_or("-")),
            ]
        })
        .collect();
    table(
        &[
            ("NAME", Align::Left),
            ("VERSION", Align::Right),
            ("STEPS", Align::Right),
            ("SAVED", Align::Left),
            ("DESCRIPTION", Align::Left),
        ],
        &rows,
    )
}

/// One definition as `nova defs show` prints it: its header, then the
/// definition as JSON.
pub fn definition(info: &DefinitionInfo) -> String {
    let mut out = fields(&[
        ("name", info.name.clone()),
        ("version", info.version.to_string()),
        ("saved", opt(info.created_at.as_deref())),
    ]);
    out.push('\n');
    out.push_str(&serde_json::to_string_pretty(&info.definition).unwrap_or_default());
    out.push('\n');
    out
}

pub fn secrets(secrets: &[SecretInfo]) -> String {
    if secrets.is_empty() {
        return "no secrets\n".to_owned();
    }
    let rows: Vec<Vec<String>> = secrets
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.updated_at.clone(),
                if s.readers.is_empty() {
                    "-".to_owned()
                } else {
                    s.readers.join(" ")
                },
            ]
        })
        .collect();
    table(
        &[
            ("NAME", Align::Left),
            ("UPDATED", Align::Left),
            ("READERS", Align::Left),
        ],
        &rows,
    )
}

pub fn health(h: &Health) -> String {
    let mut out = format!("status   {}\nversion  {}\n", h.status, h.version);
    let _ = writeln!(out, "uptime   {:.0} s\n", h.uptime_s);
    let c = &h.checks;
    let checks: [(&str, bool, Option<&str>, Option<&str>); 5] = [
        ("plugins", c.plugins.ready, None, None),
        (
            "store",
            c.store.ready,
            Some(c.store.backend.as_str()),
            c.store.error.as_deref(),
        ),
        (
            "queue",
            c.queue.ready,
            Some(c.queue.backend.as_str()),
            c.queue.error.as_deref(),
        ),
        ("kv", c.kv.ready, Some(c.kv.backend.as_str()), None),
        (
            "knowledge",
            c.knowledge.ready,
            c.knowledge.backend.as_deref(),
            c.knowledge.error.as_deref(),
        ),
    ];
    let mut checks = checks.to_vec();
    // By name, as before.
    checks.sort_by_key(|(name, ..)| *name);
    let rows: Vec<Vec<String>> = checks
        .into_iter()
        .map(|(name, ready, backend, error)| {
            vec![
                name.to_owned(),
                if ready { "yes" } else { "no" }.to_owned(),
                opt(backend),
                opt(error),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            ("CHECK", Align::Left),
            ("READY", Align::Left),
            ("BACKEND", Align::Left),
            ("ERROR", Align::Left),
        ],
        &rows,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nova_client::RunSummary;
    use serde_json::json;

    #[test]
    fn tables_align() {
        let t = table(
            &[("A", Align::Left), ("NUM", Align::Right)],
            &[
                vec!["long-cell".into(), "1".into()],
                vec!["x".into(), "12345".into()],
            ],
        );
        assert_eq!(t, "A            NUM\nlong-cell      1\nx          12345\n");
    }

    #[test]
    fn runs_render() {
        let r: Run = serde_json::from_value(json!({
            "id": "r1", "status": "failed", "created_at": "2025-01-01T00:00:00.000Z",
            "started_at": null, "finished_at": null, "error": "boom", "output": null,
            "steps": [{"index": 0, "plugin": "template", "plugin_version": "0.1.0",
                       "status": "failed", "attempts": 2, "duration_ms": 1.25, "error": "bad"}]
        }))
        .expect("run");
        let text = run(&r);
        assert!(text.contains("status    failed"), "{text}");
        assert!(text.contains("error     boom"), "{text}");
        assert!(text.contains("template"), "{text}");
        assert!(text.contains("1.2") || text.contains("1.3"), "{text}");
        assert!(text.contains("step 0 error: bad"), "{text}");

        let summary: RunSummary = serde_json::from_value(json!({
            "id": "r1", "status": "failed", "created_at": "2025-01-01T00:00:00.000Z",
            "step_count": 1
        }))
        .expect("summary");
        let page = RunPage {
            runs: vec![summary],
            next_cursor: Some("r1".into()),
        };
        let text = list(&page);
        assert!(
            text.starts_with("ID  STATUS  STEPS  CREATED\nr1  failed      1  2025"),
            "{text}"
        );
        assert!(text.ends_with("next cursor: r1\n"), "{text}");
        assert_eq!(list(&RunPage::default()), "no runs\n");
    }

    #[test]
    fn plugins_render() {
        let listing: Vec<Plugin> = serde_json::from_value(json!([
            {"name": "template", "kind": "step", "version": "0.1.0", "status": "active",
             "serving": true, "sha256": "0123456789abcdef0123", "error": null,
             "stats": {"calls": 3, "failures": 1, "p50_ms": 0.42}},
            {"name": "broken", "kind": null, "version": null, "status": "rejected",
             "serving": false, "stats": null, "error": "not a component"}
        ]))
        .expect("listing");
        let text = plugins(&listing);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "NAME      KIND  VERSION  STATUS    CALLS  FAILURES  P50_MS  SHA256"
        );
        assert_eq!(
            lines[1],
            "template  step  0.1.0    active        3         1     0.4  0123456789ab"
        );
        assert!(lines[2].starts_with("broken    -     -        rejected      -"));
        assert_eq!(lines[3], "broken: not a component");
        let shown = plugin(&listing[0]);
        assert!(
            shown.contains("\ncalls     3 (1 failed), p50 0.4 ms\n"),
            "{shown}"
        );
        assert!(shown.contains("\nkind      step\n"), "{shown}");
    }

    #[test]
    fn invocations_render() {
        let step: Invocation = serde_json::from_value(json!({
            "plugin": "template", "version": "0.1.0", "kind": "step",
            "output": {"text": "Hello"}, "duration_ms": 0.5
        }))
        .expect("step");
        assert_eq!(
            invocation(&step),
            "{\n  \"text\": \"Hello\"\n}\n(template 0.1.0 in 0.5 ms)\n"
        );
        let loader: Invocation = serde_json::from_value(json!({
            "plugin": "markdown", "version": "0.1.0", "kind": "loader", "duration_ms": 1.0,
            "chunks": [{"text": "# A\n\nbody", "metadata": {"heading_path": "A"}}]
        }))
        .expect("loader");
        let text = invocation(&loader);
        assert!(
            text.starts_with("CHUNK  CHARS  HEADING  TEXT\n    0      9  A        # A body\n"),
            "{text}"
        );
    }
}
