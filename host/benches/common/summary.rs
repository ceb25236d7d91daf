//! Headline figures for `bench/RESULTS.md`.
//!
//! `just bench` (every benchmark) points `NOVA_BENCH_SUMMARY` at a file;
//! each benchmark appends one tab-separated line per headline figure
//! (benchmark, figure, value, conditions), and the recipe turns them into
//! the summary table. Without the variable nothing is written.

use std::io::Write;

pub fn headline(bench: &str, figure: &str, value: impl std::fmt::Display, conditions: &str) {
    let Some(path) = std::env::var_os("NOVA_BENCH_SUMMARY") else {
        return;
    };
    let clean = |s: &str| s.replace(['\t', '\n', '|'], " ");
    let line = format!(
        "{}\t{}\t{}\t{}\n",
        clean(bench),
        clean(figure),
        clean(&value.to_string()),
        clean(conditions)
    );
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!("cannot append to {}: {e}", path.to_string_lossy());
    }
}
