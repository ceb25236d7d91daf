//! Human output of the CLI verbs: a run's header and its steps, and the
//! listing of runs, as aligned plain-text tables.

use std::fmt::Write;

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

/// A JSON field as a cell: strings bare, numbers as written, null as `-`.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            // Durations are fractional milliseconds: one decimal is enough.
            Some(f) if !n.is_i64() && !n.is_u64() => format!("{f:.1}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// JSON on one line, cut to `max` characters.
fn compact(v: &Value, max: usize) -> String {
    let text = v.to_string();
    if text.chars().count() <= max {
        text
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// A run as `nova runs show` prints it.
pub fn run(run: &Value) -> String {
    let mut out = String::new();
    let fields = [
        ("id", cell(&run["id"])),
        ("status", cell(&run["status"])),
        ("created", cell(&run["created_at"])),
        ("started", cell(&run["started_at"])),
        ("finished", cell(&run["finished_at"])),
        ("error", cell(&run["error"])),
    ];
    for (name, value) in fields {
        let _ = writeln!(out, "{name:<9} {value}");
    }
    if !run["output"].is_null() {
        let _ = writeln!(out, "{:<9} {}", "output", compact(&run["output"], 200));
    }
    let steps = run["steps"].as_array().map_or(&[][..], Vec::as_slice);
    if !steps.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let index = if s["index"].is_null() {
                    i.to_string()
                } else {
                    cell(&s["index"])
                };
                vec![
                    index,
                    cell(&s["plugin"]),
                    cell(&s["plugin_version"]),
                    cell(&s["status"]),
                    cell(&s["attempts"]),
                    cell(&s["duration_ms"]),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                ("STEP", Align::Right),
                ("PLUGIN", Align::Left),
                ("VERSION", Align::Left),
                ("STATUS", Align::Left),
                ("ATTEMPTS", Align::Right),
                ("DURATION_MS", Align::Right),
            ],
            &rows,
        ));
        for (i, s) in steps.iter().enumerate() {
            if let Some(error) = s["error"].as_str() {
                let _ = writeln!(out, "step {i} error: {error}");
            }
        }
    }
    out
}

/// A page of runs as `nova runs list` prints it.
pub fn list(page: &Value) -> String {
    let runs = page["runs"].as_array().map_or(&[][..], Vec::as_slice);
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                cell(&r["id"]),
                cell(&r["status"]),
                r["steps"]
                    .as_array()
                    .map_or_else(|| "-".to_owned(), |s| s.len().to_string()),
                cell(&r["created_at"]),
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
    if let Some(cursor) = page["next_cursor"].as_str() {
        let _ = writeln!(out, "next cursor: {cursor}");
    }
    out
}

/// `nova query`: each hit with its score, source and a short excerpt.
pub fn hits(answer: &Value) -> String {
    let results = answer["results"].as_array().cloned().unwrap_or_default();
    if results.is_empty() {
        return "no results\n".to_owned();
    }
    let mut out = String::new();
    for (i, hit) in results.iter().enumerate() {
        let heading = hit["metadata"]["heading_path"]
            .as_str()
            .or_else(|| hit["metadata"]["title"].as_str())
            .map(|h| format!(" — {h}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "{}. {:.3}  {}{heading}\n",
            i + 1,
            hit["score"].as_f64().unwrap_or(0.0),
            hit["source"].as_str().unwrap_or("?"),
        ));
        let text: String = hit["text"]
            .as_str()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let excerpt: String = text.chars().take(240).collect();
        let more = if text.chars().count() > 240 {
            "…"
        } else {
            ""
        };
        out.push_str(&format!("   {excerpt}{more}\n"));
    }
    out.push_str(&format!(
        "({} results in {} ms{})\n",
        results.len(),
        answer["took_ms"],
        if answer["cached"] == Value::Bool(true) {
            ", cached"
        } else {
            ""
        }
    ));
    out
}

/// `nova ingest`: the counts of a finished ingest and its failures.
pub fn ingest(report: &Value) -> String {
    let n = |k: &str| report[k].as_u64().unwrap_or(0);
    let mut out = format!(
        "collection {}: {} added, {} updated, {} removed, {} unchanged, {} failed; {} chunks embedded in {} ms\n",
        report["collection"].as_str().unwrap_or("?"),
        n("added"),
        n("updated"),
        n("removed"),
        n("unchanged"),
        n("failed"),
        n("chunks_embedded"),
        n("duration_ms"),
    );
    for failure in report["failures"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  skipped {}: {}\n",
            failure["source"].as_str().unwrap_or("?"),
            failure["error"].as_str().unwrap_or("?")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let r = json!({
            "id": "r1", "status": "failed", "created_at": "2025-01-01T00:00:00.000Z",
            "started_at": null, "finished_at": null, "error": "boom", "output": null,
            "steps": [{"index": 0, "plugin": "template", "plugin_version": "0.1.0",
                       "status": "failed", "attempts": 2, "duration_ms": 1.25, "error": "bad"}]
        });
        let text = run(&r);
        assert!(text.contains("status    failed"), "{text}");
        assert!(text.contains("error     boom"), "{text}");
        assert!(text.contains("template"), "{text}");
        assert!(text.contains("1.2") || text.contains("1.3"), "{text}");
        assert!(text.contains("step 0 error: bad"), "{text}");

        let page = json!({"runs": [r], "next_cursor": "r1"});
        let text = list(&page);
        assert!(
            text.starts_with("ID  STATUS  STEPS  CREATED\nr1  failed      1  2025"),
            "{text}"
        );
        assert!(text.ends_with("next cursor: r1\n"), "{text}");
        assert_eq!(list(&json!({"runs": [], "next_cursor": null})), "no runs\n");
    }
}
