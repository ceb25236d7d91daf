//! `just bench rag`: the knowledge base on a large real corpus, over real
//! `nova serve` processes and in-process. Prints figures, asserts nothing
//! about speed.
//!
//! - Corpus: the Rust books installed with a toolchain's documentation
//!   (`share/doc/rust/html`, found through rustup, or `NOVA_BENCH_CORPUS`),
//!   whole books, sorted and hard-linked into `TARGET/bench-rag/corpus`:
//!   over 10,000 chunks.
//! - Ingest: a fresh host ingests the corpus at start; files/s and chunks/s
//!   from its ingest report, and its peak RSS during the ingest and, apart,
//!   during start-up (plugin compilation). The index is kept and reused
//!   by later runs while the corpus is unchanged (`NOVA_BENCH_FRESH=1`
//!   forces a fresh ingest); a reused figure is labelled as such. Every
//!   host of a run runs one copy of the `nova` binary, taken at the start.
//! - Restart to ready, three times, on the same data directory: from spawn
//!   to the first `/health` 200, and that nothing was embedded again.
//! - Query latency over HTTP, top_k 5, cache off: distinct questions, one
//!   client in sequence and 8 concurrent clients; cached-hit latency once
//!   with the cache on.
//! - Query latency during an ingest: one client's questions to a small
//!   collection, idle and then while the whole corpus is ingested into a
//!   second collection (fresh data directory, removed after); the ratio.
//! - Retrieval quality of each search mode (dense, keyword, hybrid) on a
//!   question set written over the corpus (`bench/rag-questions.json`:
//!   prose questions, and questions about an exact rare token, each with
//!   the page that answers it): hit@1, hit@5 and MRR@5, and each mode's
//!   latency over the same questions (hybrid's cost against dense).
//! - Ingest through the document API (`PUT /rag/collections/{c}/
//!   documents/{id}`, 4 uploads at a time) against ingest of the same
//!   pages from a directory, on fresh data directories.
//! - Embedding throughput in-process (`nova::embed`) on chunk texts read
//!   back from the index, batch 1 and batch 32; then sentence-transformers
//!   on the same texts (`scripts/st_bench.py`) when a Python with it is
//!   available (`NOVA_BENCH_PYTHON`, default `/tmp/st-venv/bin/python`).
//!
//! Bounded in count and time: `NOVA_BENCH_QUERIES` (default 300) questions
//! and `NOVA_BENCH_SECS` (default 60 s) per query measurement
//! (`NOVA_BENCH_INGEST_QUERIES`, default 150, beside an ingest),
//! `NOVA_BENCH_TEXTS` (default 2,000) texts, `NOVA_BENCH_INGEST_SECS`
//! (default 3,600 s) for the ingest. Loopback only. Needs `just plugins`
//! and `just model`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

mod common;

use common::summary::headline;
use common::{
    ADMIN_TOKEN, build_dir, env_or, listening_url, loadavg, nova_bin, percentile, repo_root,
};
use nova::embed::{BatchConfig, Embedder, Kernel};
use nova::knowledge::ingest::{CONTEXT_KEYS, embedded_text};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

// The same allocator as the `nova` binary: the in-process embedding figures
// are then those the host would see (it is about 1.4x faster on batches).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The books the corpus is made of, whole, so the set does not depend on
/// where a file count happens to cut (about 1,140 pages, 11,000+ chunks
/// with the default chunk budget).
const BOOKS: [&str; 9] = [
    "book",
    "cargo",
    "edition-guide",
    "embedded-book",
    "nomicon",
    "reference",
    "rustc",
    "rustdoc",
    "style-guide",
];
/// `print.html` repeats a whole book on one page and `toc.html` is the
/// book's navigation: neither is content of its own.
const SKIPPED_PAGES: [&str; 2] = ["print.html", "toc.html"];
/// The size of corpus this benchmark is about.
const MIN_CHUNKS: u64 = 10_000;
/// The loaders a host gets, as the tests give them.
const LOADERS: [&str; 4] = ["markdown", "text", "html", "pdf"];
const TOP_K: u32 = 5;
const CONCURRENT_CLIENTS: usize = 8;
const RESTARTS: usize = 3;
/// Texts embedded one at a time (a query's shape).
const BATCH1_TEXTS: usize = 200;
const BATCH: usize = 32;
/// Questions asked twice with the cache on: a miss, then a hit.
const CACHED_QUESTIONS: usize = 50;

/// Questions a reader of the corpus might ask; phrased in several ways to
/// make distinct query strings (the answer cache keys on the exact text).
const QUESTIONS: [&str; 60] = [
    "What is ownership and why does Rust need it?",
    "How do references and borrowing work?",
    "What is the difference between a String and a &str?",
    "How do I define a struct with methods?",
    "How do enums and pattern matching work together?",
    "When should I use Option instead of null?",
    "How do I propagate errors with the question mark operator?",
    "When is it appropriate to call panic!?",
    "How do generic functions work?",
    "How do I define and implement a trait?",
    "What do lifetime annotations mean in function signatures?",
    "How do closures capture their environment?",
    "How do iterators and iterator adaptors work?",
    "What is Box<T> used for?",
    "How does Rc<T> allow multiple ownership?",
    "What is interior mutability with RefCell?",
    "How do I share state between threads with Mutex and Arc?",
    "How do channels send data between threads?",
    "What are the Send and Sync traits?",
    "How do trait objects enable dynamic dispatch?",
    "How do I write a declarative macro with macro_rules!?",
    "How are modules and paths organized in a crate?",
    "How do I write tests and run them with cargo test?",
    "What is the difference between a library and a binary crate?",
    "How do I add a dependency to Cargo.toml?",
    "How do Cargo workspaces share a lockfile?",
    "How do Cargo features enable optional dependencies?",
    "How do I publish a crate to crates.io?",
    "What does a build script build.rs do?",
    "How do I configure release profiles and optimization levels?",
    "How does Cargo resolve semver-compatible versions?",
    "How do I override a dependency with a patch section?",
    "What does the Cargo.lock file record?",
    "What are the rustc codegen options like opt-level?",
    "How do I enable or deny lints with attributes?",
    "What are the platform support tiers of rustc targets?",
    "How do I cross-compile for another target?",
    "What does unsafe code allow you to do?",
    "How do I dereference a raw pointer safely?",
    "How do I call C functions through FFI?",
    "What is PhantomData for?",
    "What is variance and subtyping of lifetimes?",
    "How does the drop checker treat generic types?",
    "What happens on panic unwinding and how is it made exception safe?",
    "How are uninitialized memory and MaybeUninit handled?",
    "What is the memory layout of a repr(C) struct?",
    "Which patterns are refutable and irrefutable?",
    "How are expressions evaluated in constant contexts?",
    "What attributes can be applied to functions?",
    "How do trait bounds and where clauses work?",
    "What changed in the 2021 edition?",
    "How do I migrate a crate to a new edition with cargo fix?",
    "What is a no_std program on a microcontroller?",
    "How do I access memory-mapped peripheral registers?",
    "How are interrupts handled in embedded Rust?",
    "How do I write documentation tests with rustdoc?",
    "How do intra-doc links work in rustdoc?",
    "How should I format long function signatures in the style guide?",
    "How does type inference work for let statements?",
    "What is the difference between Copy and Clone?",
];
/// Ways of asking each question; 60 questions × 10 phrasings = 600
/// distinct strings.
const PHRASINGS: [&str; 10] = [
    "",
    "In Rust, ",
    "Rust question: ",
    "Please explain: ",
    "Quick one: ",
    "Could you tell me: ",
    "From the docs: ",
    "Beginner here: ",
    "Short answer please: ",
    "I need to know: ",
];

fn model_dir() -> PathBuf {
    let dir = std::env::var_os("NOVA_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("models/all-MiniLM-L6-v2"));
    assert!(
        dir.join("model.safetensors").is_file(),
        "no embedding model at {}: run `just model`",
        dir.display()
    );
    dir
}

/// `TARGET/bench-rag` (`NOVA_BENCH_DIR` overrides): kept between runs, so
/// the long ingest is done once per corpus.
fn bench_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("NOVA_BENCH_DIR") {
        return PathBuf::from(dir);
    }
    // The bench binary is TARGET/release/deps/rag-HASH.
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .expect("the bench runs from TARGET/release/deps")
        .join("bench-rag")
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    percentile(&sorted, 0.5)
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "?".into(), |k| format!("{:.0} MiB", k as f64 / 1024.0))
}

// ---------------------------------------------------------------- corpus

/// The Rust documentation to take the corpus from: `NOVA_BENCH_CORPUS`, or
/// the first rustup toolchain that has its HTML docs installed (the pinned
/// toolchain may have been installed without them). With the toolchain's
/// version, for the record.
fn docs_root() -> (PathBuf, String) {
    if let Some(dir) = std::env::var_os("NOVA_BENCH_CORPUS") {
        return (PathBuf::from(dir), "NOVA_BENCH_CORPUS".into());
    }
    let list = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .expect("rustup lists the toolchains (or set NOVA_BENCH_CORPUS=DIR)");
    for line in String::from_utf8_lossy(&list.stdout).lines() {
        let Some(toolchain) = line.split_whitespace().next() else {
            continue;
        };
        let rustc = |arg: &str| {
            Command::new("rustc")
                .args([&format!("+{toolchain}"), arg])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        let Some(sysroot) = rustc("--print=sysroot") else {
            continue;
        };
        let html = Path::new(&sysroot).join("share/doc/rust/html");
        if html.join("book").is_dir() {
            let version = rustc("--version").unwrap_or_else(|| toolchain.to_owned());
            return (html, version);
        }
    }
    panic!(
        "no rustup toolchain has the Rust documentation installed \
         (`rustup component add rust-docs --toolchain stable`), or set NOVA_BENCH_CORPUS=DIR"
    );
}

/// Every `.html` page under `dir` (relative to `root`, `/`-separated),
/// the skipped pages left out.
fn html_pages(root: &Path, dir: &Path, out: &mut Vec<(String, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            html_pages(root, &path, out);
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".html") || SKIPPED_PAGES.contains(&name.as_str()) {
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .expect("walked under root")
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        out.push((relative, meta.len()));
    }
}

/// The corpus as a sorted file list: the books that `root` has, or every
/// page under it when it has none of them; at most `NOVA_BENCH_FILES`.
fn corpus_files(root: &Path) -> Vec<(String, u64)> {
    let mut files = Vec::new();
    for book in BOOKS {
        html_pages(root, &root.join(book), &mut files);
    }
    if files.is_empty() {
        html_pages(root, root, &mut files);
    }
    files.sort();
    files.truncate(env_or("NOVA_BENCH_FILES", 5_000usize));
    assert!(!files.is_empty(), "no HTML pages under {}", root.display());
    files
}

struct Corpus {
    dir: PathBuf,
    files: usize,
    bytes: u64,
    /// Of the file list (paths and sizes): what an index was built from.
    digest: String,
}

/// Links (or copies) the corpus's files into `BENCH/corpus`, unless the
/// same list is already there.
fn prepare_corpus(bench: &Path, root: &Path) -> Corpus {
    let files = corpus_files(root);
    let listing: String = files
        .iter()
        .map(|(path, size)| format!("{path}\t{size}\n"))
        .collect();
    let digest = hex::encode(Sha256::digest(listing.as_bytes()));
    let dir = bench.join("corpus");
    let list_file = bench.join("corpus.list");
    let same = dir.is_dir() && std::fs::read_to_string(&list_file).ok().as_ref() == Some(&listing);
    if !same {
        let _ = std::fs::remove_dir_all(&dir);
        for (path, _) in &files {
            let to = dir.join(path);
            std::fs::create_dir_all(to.parent().expect("a file has a parent"))
                .expect("create corpus dir");
            // Same filesystem: a hard link costs nothing; else a copy.
            if std::fs::hard_link(root.join(path), &to).is_err() {
                std::fs::copy(root.join(path), &to)
                    .unwrap_or_else(|e| panic!("copy {path} into the corpus: {e}"));
            }
        }
        std::fs::write(&list_file, &listing).expect("write corpus.list");
    }
    Corpus {
        dir,
        files: files.len(),
        bytes: files.iter().map(|(_, size)| size).sum(),
        digest,
    }
}

// ---------------------------------------------------------------- hosts

/// What every host of this benchmark shares.
struct Setup {
    /// This run's copy of the `nova` binary.
    nova: PathBuf,
    corpus: PathBuf,
    data: PathBuf,
    plugins: PathBuf,
    cache: PathBuf,
    model: PathBuf,
}

impl Setup {
    fn new(bench: &Path, corpus: &Corpus) -> Setup {
        let plugins = bench.join("plugins");
        std::fs::create_dir_all(&plugins).expect("plugins dir");
        for name in LOADERS {
            let wasm = build_dir().join(format!("plugins/{name}.wasm"));
            std::fs::copy(&wasm, plugins.join(format!("{name}.wasm"))).unwrap_or_else(|e| {
                panic!("{}: {e}; build it with `just plugins`", wasm.display())
            });
        }
        Setup {
            nova: snapshot_nova(bench),
            corpus: corpus.dir.clone(),
            data: bench.join("data"),
            plugins,
            // Outside the data directory: a fresh ingest then does not
            // recompile the loaders.
            cache: bench.join("cache"),
            model: model_dir(),
        }
    }
}

/// Copies the `nova` binary into `BENCH/bin`: the shared target directory
/// may be rebuilt by other work during the run's minutes, and the ingest
/// and the restarts must run one build (another build may chunk
/// differently and re-embed the whole index at its first start).
fn snapshot_nova(bench: &Path) -> PathBuf {
    let source = nova_bin();
    let dir = bench.join("bin");
    std::fs::create_dir_all(&dir).expect("bin dir");
    let copy = dir.join("nova");
    // A fresh file: never rewrite a binary a straggler may still run.
    let _ = std::fs::remove_file(&copy);
    std::fs::copy(&source, &copy)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", source.display(), copy.display()));
    copy
}

/// When `path` was last written, for the record.
fn built_at(path: &Path) -> String {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_or_else(
            |_| "?".into(),
            |t| humantime::format_rfc3339_seconds(t).to_string(),
        )
}

/// A `nova serve` process, killed on drop.
struct Host {
    child: Child,
    url: String,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Host {
    /// Peak resident memory so far (VmHWM), in KiB.
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Waits until `/rag/stats` shows an ingest running (or none left to
    /// run), then resets the peak RSS (`clear_refs` 5); the peak before
    /// the reset, in KiB.
    async fn ingest_started(&mut self, http: &reqwest::Client) -> Option<u64> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            let stats = self.stats(http).await;
            if !stats["ingest"]["running"].is_null() || !stats["ingest"]["last"].is_null() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let peak = self.peak_rss_kib();
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5");
        peak
    }

    /// SIGTERM, as a service manager stops it, so the index is closed
    /// cleanly; waits up to a minute, then kills (on drop).
    async fn stop(mut self) {
        let start = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        while start.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        eprintln!("nova did not stop within 60 s of SIGTERM; killing it");
    }

    async fn stats(&self, http: &reqwest::Client) -> Value {
        http.get(format!("{}/rag/stats", self.url))
            .send()
            .await
            .expect("GET /rag/stats")
            .json()
            .await
            .expect("stats are JSON")
    }
}

/// Spawns `nova serve` on `setup` and reads its address; not ready yet.
async fn spawn(setup: &Setup, cache_ttl_s: u64) -> Host {
    spawn_on(setup, cache_ttl_s, &setup.data, &setup.corpus, None).await
}

/// Spawns `nova serve` on another data directory and knowledge directory,
/// with more collections (`NAME=DIR,...`) when given.
async fn spawn_on(
    setup: &Setup,
    cache_ttl_s: u64,
    data: &Path,
    knowledge: &Path,
    collections: Option<&str>,
) -> Host {
    let mut command = Command::new(&setup.nova);
    command.env_remove("NOVA_COLLECTIONS");
    if let Some(collections) = collections {
        command.env("NOVA_COLLECTIONS", collections);
    }
    let mut child = command
        .arg("serve")
        .env("NOVA_BIND", "127.0.0.1:0")
        .env("NOVA_DATA_DIR", data)
        .env("NOVA_PLUGINS_DIR", &setup.plugins)
        .env("NOVA_CACHE_DIR", &setup.cache)
        .env("NOVA_KNOWLEDGE_DIR", knowledge)
        .env("NOVA_MODEL_DIR", &setup.model)
        .env("NOVA_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("NOVA_RAG_RATE_LIMIT", "0")
        .env("NOVA_RAG_CACHE_TTL_S", cache_ttl_s.to_string())
        .env("NOVA_LOG", "warn")
        .env_remove("NOVA_CONFIG")
        .env_remove("QDRANT_URL")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .current_dir(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", setup.nova.display()));
    let url = listening_url(&mut child).await;
    let mut host = Host {
        child,
        url: String::new(),
    };
    match url {
        Some(url) => host.url = url,
        None => panic!("nova exited before listening: {:?}", host.child.try_wait()),
    }
    host
}

/// Polls `/health` every `poll` until 200: the first ingest is over, which
/// takes minutes when the host embeds the corpus (bounded by
/// `NOVA_BENCH_INGEST_SECS`). Reports the running ingest on stderr every
/// 30 s.
async fn wait_ready(host: &mut Host, http: &reqwest::Client, poll: Duration) {
    let within = Duration::from_secs(env_or("NOVA_BENCH_INGEST_SECS", 3_600));
    let start = Instant::now();
    let mut reported = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{}/health", host.url)).send().await
            && r.status() == 200
        {
            return;
        }
        if let Ok(Some(status)) = host.child.try_wait() {
            panic!("nova exited before it was ready: {status}");
        }
        assert!(
            start.elapsed() < within,
            "nova was not ready within {} s",
            within.as_secs()
        );
        if reported.elapsed() >= Duration::from_secs(30) {
            reported = Instant::now();
            let running = &host.stats(http).await["ingest"]["running"];
            eprintln!(
                "  ingesting: {}/{} files, {} chunks embedded, {:.0} s",
                running["files_done"],
                running["files_total"],
                running["chunks_embedded"],
                start.elapsed().as_secs_f64()
            );
        }
        tokio::time::sleep(poll).await;
    }
}

// ---------------------------------------------------------------- ingest

/// A fresh ingest's figures, kept in `BENCH/ingest.json` beside the index
/// it built, so later runs can show them.
#[derive(Serialize, Deserialize)]
struct IngestFigures {
    at: String,
    corpus_digest: String,
    files_total: u64,
    added: u64,
    #[serde(default)]
    updated: u64,
    failed: u64,
    chunks_embedded: u64,
    duration_ms: u64,
    chunks_indexed: u64,
    /// From spawn to `/health` 200: start-up (plugins compiled or loaded,
    /// model loaded) and the ingest.
    ready_s: f64,
    /// VmHWM from the moment the ingest was seen running to its end.
    peak_rss_kib: Option<u64>,
    /// VmHWM before that: start-up, with the plugins' compilation.
    #[serde(default)]
    startup_peak_rss_kib: Option<u64>,
    load_before: String,
    load_after: String,
}

impl IngestFigures {
    fn print(&self, origin: &str) {
        let secs = self.duration_ms as f64 / 1e3;
        headline(
            "rag",
            "ingest throughput",
            format!("{:.1} chunks/s", self.chunks_embedded as f64 / secs),
            &format!(
                "{} chunks of {} pages of Rust docs HTML, {origin}",
                self.chunks_embedded, self.files_total
            ),
        );
        headline(
            "rag",
            "peak RSS during the ingest",
            mib(self.peak_rss_kib),
            &format!(
                "{} chunks in the index; start-up before it (plugins compiled or read from NOVA_CACHE_DIR, \
                 model loaded): {}",
                self.chunks_indexed,
                mib(self.startup_peak_rss_kib)
            ),
        );
        println!("Ingest ({origin}):");
        println!(
            "- {} files ({} added, {} updated, {} failed), {} chunks embedded in {secs:.1} s: \
             **{:.1} chunks/s**, {:.2} files/s; {} chunks in the index",
            self.files_total,
            self.added,
            self.updated,
            self.failed,
            self.chunks_embedded,
            self.chunks_embedded as f64 / secs,
            self.files_total as f64 / secs,
            self.chunks_indexed,
        );
        println!(
            "- spawn to ready (start-up + ingest): {:.1} s; peak RSS during the ingest: {}, \
             during start-up (plugins compiled or read from NOVA_CACHE_DIR, model loaded): {}; \
             load average {} before, {} after; measured {}",
            self.ready_s,
            mib(self.peak_rss_kib),
            mib(self.startup_peak_rss_kib),
            self.load_before,
            self.load_after,
            self.at
        );
    }
}

/// The stored figures, when the index under `data` was built from this
/// corpus and `NOVA_BENCH_FRESH` is not set.
fn stored_figures(bench: &Path, setup: &Setup, corpus: &Corpus) -> Option<IngestFigures> {
    if std::env::var("NOVA_BENCH_FRESH").is_ok_and(|v| v == "1") || !setup.data.is_dir() {
        return None;
    }
    let text = std::fs::read_to_string(bench.join("ingest.json")).ok()?;
    let figures: IngestFigures = serde_json::from_str(&text).ok()?;
    (figures.corpus_digest == corpus.digest).then_some(figures)
}

fn save_figures(bench: &Path, figures: &IngestFigures) {
    std::fs::write(
        bench.join("ingest.json"),
        serde_json::to_string_pretty(figures).expect("figures serialize"),
    )
    .expect("write ingest.json");
}

/// Starts a host on the data directory and waits for its first ingest
/// (minutes when it embeds the corpus); stops it again.
async fn ingest_once(setup: &Setup, corpus: &Corpus, http: &reqwest::Client) -> IngestFigures {
    std::fs::create_dir_all(&setup.data).expect("data dir");
    let load_before = loadavg();
    let spawned = Instant::now();
    let mut host = spawn(setup, 0).await;
    // Start-up (plugins compiled or read from the cache, the model loaded) and the
    // ingest are measured apart: once the ingest runs, the peak is reset.
    let startup_peak_rss_kib = host.ingest_started(http).await;
    wait_ready(&mut host, http, Duration::from_millis(250)).await;
    let ready_s = spawned.elapsed().as_secs_f64();
    let peak_rss_kib = host.peak_rss_kib();
    let stats = host.stats(http).await;
    let last = &stats["ingest"]["last"];
    assert!(
        last["error"].is_null(),
        "the ingest failed: {}",
        last["error"]
    );
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    if n(&last["failed"]) > 0 {
        eprintln!("  pages skipped by the loader: {}", last["failures"]);
    }
    let figures = IngestFigures {
        at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        corpus_digest: corpus.digest.clone(),
        files_total: n(&last["files_total"]),
        added: n(&last["added"]),
        updated: n(&last["updated"]),
        failed: n(&last["failed"]),
        chunks_embedded: n(&last["chunks_embedded"]),
        duration_ms: n(&last["duration_ms"]),
        chunks_indexed: n(&stats["chunks"]),
        ready_s,
        peak_rss_kib,
        startup_peak_rss_kib,
        load_before,
        load_after: loadavg(),
    };
    host.stop().await;
    figures
}

/// The ingest figures and where they come from: a fresh ingest, or the
/// stored figures when the kept index is still current. A host is started
/// on the kept index first either way: a nova build or loader that chunks
/// differently re-embeds it, and that ingest is then this run's figure.
async fn ingest(
    bench: &Path,
    setup: &Setup,
    corpus: &Corpus,
    http: &reqwest::Client,
) -> (IngestFigures, &'static str) {
    if let Some(stored) = stored_figures(bench, setup, corpus) {
        let check = ingest_once(setup, corpus, http).await;
        if check.chunks_embedded == 0 {
            return (
                stored,
                "REUSED: the figures of an earlier run that built the kept index; \
                 NOVA_BENCH_FRESH=1 redoes it",
            );
        }
        save_figures(bench, &check);
        return (
            check,
            "this run, re-embedding the kept index: another nova build or loader; \
             NOVA_BENCH_FRESH=1 for a fresh one",
        );
    }
    eprintln!(
        "fresh ingest of {} pages (minutes on 2 cores)...",
        corpus.files
    );
    let _ = std::fs::remove_file(bench.join("ingest.json"));
    let _ = std::fs::remove_dir_all(&setup.data);
    let figures = ingest_once(setup, corpus, http).await;
    save_figures(bench, &figures);
    (figures, "this run, fresh data directory")
}

// ---------------------------------------------------------------- queries

/// `count` distinct questions, starting at phrasing `first_phrasing`.
fn questions(first_phrasing: usize, count: usize) -> Vec<String> {
    PHRASINGS
        .iter()
        .cycle()
        .skip(first_phrasing)
        .flat_map(|prefix| QUESTIONS.iter().map(move |q| format!("{prefix}{q}")))
        .take(count.min(QUESTIONS.len() * PHRASINGS.len()))
        .collect()
}

struct Answer {
    ms: f64,
    /// The host's own `took_ms`: embedding and search, no HTTP.
    took_ms: f64,
    cached: bool,
}

/// POSTs `request` to `/rag/query`: the answer (a 200) and the round
/// trip's ms.
async fn post_query(http: &reqwest::Client, url: &str, request: Value) -> (Value, f64) {
    let start = Instant::now();
    let response = http
        .post(format!("{url}/rag/query"))
        .json(&request)
        .send()
        .await
        .expect("POST /rag/query");
    let status = response.status();
    let body: Value = response.json().await.expect("query answers JSON");
    let ms = start.elapsed().as_secs_f64() * 1e3;
    assert_eq!(status, 200, "{body}");
    (body, ms)
}

async fn ask(http: &reqwest::Client, url: &str, query: &str) -> Answer {
    let (body, ms) = post_query(http, url, json!({"query": query, "top_k": TOP_K})).await;
    assert_eq!(
        body["results"].as_array().map(Vec::len),
        Some(TOP_K as usize),
        "{body}"
    );
    Answer {
        ms,
        took_ms: body["took_ms"].as_f64().unwrap_or(f64::NAN),
        cached: body["cached"] == true,
    }
}

struct Latencies {
    queries: usize,
    per_s: f64,
    mean_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
    host_p50_ms: f64,
}

impl Latencies {
    fn of(mut ms: Vec<f64>, mut took: Vec<f64>, elapsed: Duration) -> Latencies {
        ms.sort_by(f64::total_cmp);
        took.sort_by(f64::total_cmp);
        Latencies {
            queries: ms.len(),
            per_s: ms.len() as f64 / elapsed.as_secs_f64(),
            mean_ms: mean(&ms),
            p50_ms: percentile(&ms, 0.5),
            p99_ms: percentile(&ms, 0.99),
            host_p50_ms: percentile(&took, 0.5),
        }
    }

    fn line(&self, what: &str) -> String {
        format!(
            "- {what}: {} queries, {:.1} q/s; p50 **{:.1} ms**, p99 {:.1} ms, mean {:.1} ms \
             (host took_ms p50 {:.1} ms)",
            self.queries, self.per_s, self.p50_ms, self.p99_ms, self.mean_ms, self.host_p50_ms
        )
    }
}

/// `clients` tasks asking `queries` in turn until all are asked or
/// `max_time` has passed.
async fn ask_all(
    http: &reqwest::Client,
    url: &str,
    queries: Vec<String>,
    clients: usize,
    max_time: Duration,
) -> Latencies {
    let queries = Arc::new(queries);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + max_time;
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (http, url, queries, next) =
            (http.clone(), url.to_owned(), queries.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            while Instant::now() < deadline {
                let Some(query) = queries.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                answers.push(ask(&http, &url, query).await);
            }
            answers
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.extend(task.await.expect("client"));
    }
    let elapsed = start.elapsed();
    assert!(
        answers.iter().all(|a| !a.cached),
        "an answer came from the cache"
    );
    Latencies::of(
        answers.iter().map(|a| a.ms).collect(),
        answers.iter().map(|a| a.took_ms).collect(),
        elapsed,
    )
}

/// With the cache on: each question once (a miss), then again (a hit).
async fn cached_latency(http: &reqwest::Client, url: &str) -> String {
    let questions: Vec<String> = QUESTIONS
        .iter()
        .take(CACHED_QUESTIONS)
        .map(|q| format!("Cache check: {q}"))
        .collect();
    let (mut miss, mut hit) = (Vec::new(), Vec::new());
    for q in &questions {
        let first = ask(http, url, q).await;
        let second = ask(http, url, q).await;
        assert!(
            !first.cached && second.cached,
            "expected a miss then a hit for {q:?}"
        );
        miss.push(first.ms);
        hit.push(second.ms);
    }
    miss.sort_by(f64::total_cmp);
    hit.sort_by(f64::total_cmp);
    headline(
        "rag",
        "/rag/query cache hit, p50",
        format!("{:.2} ms", percentile(&hit, 0.5)),
        &format!("{} questions asked twice, 1 client", questions.len()),
    );
    format!(
        "- cache on (NOVA_RAG_CACHE_TTL_S=300), {} questions asked twice, 1 client: \
         miss p50 {:.1} ms, **hit p50 {:.2} ms**, hit p99 {:.2} ms",
        questions.len(),
        percentile(&miss, 0.5),
        percentile(&hit, 0.5),
        percentile(&hit, 0.99)
    )
}

/// The query measurements on a ready host with the cache off.
async fn query_figures(http: &reqwest::Client, url: &str) -> Vec<String> {
    let count: usize = env_or("NOVA_BENCH_QUERIES", 300);
    let max_time = Duration::from_secs_f64(env_or("NOVA_BENCH_SECS", 60.0));
    // Warm up: connections pooled, the model's first passes done.
    let warm_up = QUESTIONS.iter().take(20).map(|q| format!("Warm-up: {q}"));
    ask_all(http, url, warm_up.collect(), 1, max_time).await;
    let sequential = ask_all(http, url, questions(0, count), 1, max_time).await;
    // Other phrasings than the sequential run's: every string is new.
    let concurrent = ask_all(http, url, questions(5, count), CONCURRENT_CLIENTS, max_time).await;
    headline(
        "rag",
        "/rag/query p50 / p99",
        format!("{:.1} ms / {:.1} ms", sequential.p50_ms, sequential.p99_ms),
        &format!(
            "top_k {TOP_K}, warm, cache off, 1 client, {} distinct queries over HTTP",
            sequential.queries
        ),
    );
    headline(
        "rag",
        "/rag/query throughput",
        format!("{:.0} q/s", concurrent.per_s),
        &format!(
            "{CONCURRENT_CLIENTS} concurrent clients, cache off; p50 {:.1} ms",
            concurrent.p50_ms
        ),
    );
    vec![
        sequential.line("1 client, sequential"),
        concurrent.line(&format!("{CONCURRENT_CLIENTS} concurrent clients")),
    ]
}

// ---------------------------------------------------------------- quality

/// One question of `bench/rag-questions.json`.
#[derive(Deserialize)]
struct Question {
    q: String,
    /// The pages that answer it.
    pages: Vec<String>,
    /// `prose` or `exact` (an exact rare token).
    kind: String,
}

fn question_set() -> Vec<Question> {
    let path = common::repo_root().join("bench/rag-questions.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const MODES: [&str; 3] = ["dense", "keyword", "hybrid"];

/// A mode's figures over a set of questions.
#[derive(Default, Clone)]
struct Quality {
    questions: usize,
    hit1: usize,
    hit5: usize,
    /// Sum of 1/rank of the first right page within the top 5.
    rr: f64,
}

impl Quality {
    fn add(&mut self, rank: Option<usize>) {
        self.questions += 1;
        if let Some(r) = rank {
            self.hit1 += usize::from(r == 1);
            self.hit5 += usize::from(r <= 5);
            self.rr += 1.0 / r as f64;
        }
    }

    fn cells(&self) -> String {
        let n = self.questions.max(1) as f64;
        format!(
            "{:.2} | {:.2} | {:.3}",
            self.hit1 as f64 / n,
            self.hit5 as f64 / n,
            self.rr / n
        )
    }

    fn mrr(&self) -> f64 {
        self.rr / self.questions.max(1) as f64
    }
}

/// Asks `query` in `mode` (top 5, cache off); the sources in rank order
/// and the round trip's ms.
async fn ask_mode(
    http: &reqwest::Client,
    url: &str,
    query: &str,
    mode: &str,
) -> (Vec<String>, f64) {
    let (body, ms) = post_query(
        http,
        url,
        json!({"query": query, "top_k": TOP_K, "mode": mode}),
    )
    .await;
    assert!(body["cached"] == false, "a cached answer: {body}");
    let sources = body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["source"].as_str().expect("source").to_owned())
        .collect();
    (sources, ms)
}

/// Each mode on every question, in turn (the modes interleaved, so a
/// noisy moment hits all three alike): the quality table and the latency
/// lines.
async fn quality_figures(http: &reqwest::Client, url: &str) -> Vec<String> {
    let questions = question_set();
    // Warm up every mode.
    for mode in MODES {
        for q in questions.iter().take(5) {
            ask_mode(http, url, &format!("Warm-up: {}", q.q), mode).await;
        }
    }
    let mut by: std::collections::BTreeMap<(&str, &str), Quality> = Default::default();
    let mut ms: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    let mut misses: Vec<String> = Vec::new();
    for q in &questions {
        for mode in MODES {
            let (sources, took) = ask_mode(http, url, &q.q, mode).await;
            ms.entry(mode).or_default().push(took);
            // Chunks of one page count once: the rank of the right page
            // among distinct pages.
            let mut pages: Vec<&String> = Vec::new();
            for s in &sources {
                if !pages.contains(&s) {
                    pages.push(s);
                }
            }
            let rank = pages
                .iter()
                .position(|p| q.pages.iter().any(|e| e == *p))
                .map(|i| i + 1);
            for kind in [q.kind.as_str(), "all"] {
                by.entry((mode, kind)).or_default().add(rank);
            }
            if rank.is_none() && mode == "hybrid" && misses.len() < 8 {
                misses.push(format!("{:?} ({}) → {:?}", q.q, q.pages[0], pages.first()));
            }
        }
    }
    let count = |kind: &str| {
        questions
            .iter()
            .filter(|q| kind == "all" || q.kind == kind)
            .count()
    };
    let mut lines = vec![
        format!(
            "{} questions ({} prose, {} about an exact rare token), each with its expected page; top_k {TOP_K}, a page's chunks counted once:",
            questions.len(),
            count("prose"),
            count("exact")
        ),
        String::new(),
        "| mode | all: hit@1 | hit@5 | MRR@5 | prose: hit@1 | hit@5 | MRR@5 | exact: hit@1 | hit@5 | MRR@5 | p50 ms | p99 ms |".to_owned(),
        "|---|---|---|---|---|---|---|---|---|---|---|---|".to_owned(),
    ];
    let mut p50 = std::collections::BTreeMap::new();
    for mode in MODES {
        let mut times = ms.remove(mode).unwrap_or_default();
        times.sort_by(f64::total_cmp);
        p50.insert(mode, percentile(&times, 0.5));
        lines.push(format!(
            "| {mode} | {} | {} | {} | {:.1} | {:.1} |",
            by.get(&(mode, "all")).cloned().unwrap_or_default().cells(),
            by.get(&(mode, "prose"))
                .cloned()
                .unwrap_or_default()
                .cells(),
            by.get(&(mode, "exact"))
                .cloned()
                .unwrap_or_default()
                .cells(),
            percentile(&times, 0.5),
            percentile(&times, 0.99),
        ));
    }
    let best = MODES
        .iter()
        .max_by(|a, b| {
            let m = |mode: &&str| by.get(&(*mode, "all")).map_or(0.0, Quality::mrr);
            m(a).total_cmp(&m(b))
        })
        .copied()
        .unwrap_or("hybrid");
    lines.push(String::new());
    lines.push(format!(
        "- best MRR@5 over all questions: **{best}**; hybrid's latency against dense: p50 **{:.2}x** ({:.1} ms against {:.1} ms, 1 client, over HTTP)",
        p50["hybrid"] / p50["dense"],
        p50["hybrid"],
        p50["dense"]
    ));
    if !misses.is_empty() {
        lines.push(format!("- some hybrid misses: {}", misses.join("; ")));
    }
    for mode in MODES {
        headline(
            "rag",
            &format!("retrieval {mode}: hit@1 / hit@5 / MRR@5"),
            by.get(&(mode, "all"))
                .cloned()
                .unwrap_or_default()
                .cells()
                .replace(" | ", " / "),
            &format!("{} questions with their expected page", questions.len()),
        );
    }
    headline(
        "rag",
        "hybrid query latency against dense, p50",
        format!("{:.2}x", p50["hybrid"] / p50["dense"]),
        "the quality questions, 1 client, cache off",
    );
    lines
}

// ---------------------------------------------------------------- document API

/// The book ingested both ways.
const UPLOAD_BOOK: &str = "book";
/// Uploads in flight at once.
const UPLOADS: usize = 4;

/// The same pages ingested from a directory and uploaded through the
/// document API, each into a fresh data directory.
async fn upload_figures(setup: &Setup, http: &reqwest::Client) -> Vec<String> {
    let book = setup.corpus.join(UPLOAD_BOOK);
    if !book.is_dir() {
        return vec![format!("- skipped: no {} in the corpus", book.display())];
    }
    let mut files = Vec::new();
    html_pages(&book, &book, &mut files);
    files.sort();
    let bytes: u64 = files.iter().map(|(_, size)| size).sum();

    // From the directory: the ingest at start's own report.
    let data = tempfile::tempdir().expect("data dir");
    let mut host = spawn_on(setup, 0, data.path(), &book, None).await;
    wait_ready(&mut host, http, Duration::from_millis(20)).await;
    let stats = host.stats(http).await;
    let last = &stats["ingest"]["last"];
    let dir_ms = last["duration_ms"].as_f64().unwrap_or(f64::NAN);
    let dir_chunks = last["chunks_embedded"].as_u64().unwrap_or(0);
    host.stop().await;

    // Through the API: an empty knowledge directory, one collection.
    let data = tempfile::tempdir().expect("data dir");
    let empty = tempfile::tempdir().expect("empty dir");
    let mut host = spawn_on(setup, 0, data.path(), empty.path(), None).await;
    wait_ready(&mut host, http, Duration::from_millis(20)).await;
    let created = http
        .put(format!("{}/rag/collections/api", host.url))
        .json(&json!({}))
        .send()
        .await
        .expect("create");
    assert!(created.status().is_success(), "{:?}", created.text().await);
    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let files = Arc::new(files);
    let mut tasks = Vec::new();
    for _ in 0..UPLOADS {
        let (http, url, files, next, book) = (
            http.clone(),
            host.url.clone(),
            files.clone(),
            next.clone(),
            book.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut chunks = 0u64;
            while let Some((page, _)) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                let body = std::fs::read(book.join(page)).expect("read page");
                let id: String = page
                    .bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                            (b as char).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect();
                let response = http
                    .put(format!("{url}/rag/collections/api/documents/{id}"))
                    .header("content-type", "text/html")
                    .body(body)
                    .send()
                    .await
                    .expect("PUT document");
                let status = response.status();
                let saved: Value = response.json().await.expect("JSON");
                assert!(status.is_success(), "{page}: {saved}");
                chunks += saved["embedded"].as_u64().unwrap_or(0);
            }
            chunks
        }));
    }
    let mut api_chunks = 0;
    for task in tasks {
        api_chunks += task.await.expect("uploader");
    }
    let api_ms = start.elapsed().as_secs_f64() * 1e3;
    host.stop().await;
    headline(
        "rag",
        "ingest through the document API / from a directory",
        format!("{:.2}x the time", api_ms / dir_ms),
        &format!(
            "`{UPLOAD_BOOK}`: {} pages; API {:.1} s ({UPLOADS} uploads at a time), directory {:.1} s",
            files.len(),
            api_ms / 1e3,
            dir_ms / 1e3
        ),
    );
    vec![
        format!(
            "- from the directory (ingest at start): {} pages, {:.1} MB, {dir_chunks} chunks in **{:.1} s** ({:.1} pages/s, {:.0} chunks/s)",
            files.len(),
            bytes as f64 / 1e6,
            dir_ms / 1e3,
            files.len() as f64 / (dir_ms / 1e3),
            dir_chunks as f64 / (dir_ms / 1e3)
        ),
        format!(
            "- through PUT /rag/collections/api/documents/{{id}}, {UPLOADS} at a time over HTTP: {api_chunks} chunks in **{:.1} s** ({:.1} pages/s, {:.0} chunks/s): **{:.2}x** the directory's time",
            api_ms / 1e3,
            files.len() as f64 / (api_ms / 1e3),
            api_chunks as f64 / (api_ms / 1e3),
            api_ms / dir_ms
        ),
    ]
}

// ---------------------------------------------------------------- restarts

struct Restarts {
    ready_s: Vec<f64>,
    lines: Vec<String>,
    queries: Vec<String>,
    quality: Vec<String>,
    cached: String,
    peak_rss_kib: Option<u64>,
}

/// Restarts the host on the ingested data directory `RESTARTS` times. The
/// first runs with the cache on for the cached-hit figure; the last with
/// it off answers the query measurements.
async fn restarts(setup: &Setup, http: &reqwest::Client) -> Restarts {
    let mut out = Restarts {
        ready_s: Vec::new(),
        lines: Vec::new(),
        queries: Vec::new(),
        quality: Vec::new(),
        cached: String::new(),
        peak_rss_kib: None,
    };
    for i in 0..RESTARTS {
        let cache_ttl_s = if i == 0 { 300 } else { 0 };
        let spawned = Instant::now();
        let mut host = spawn(setup, cache_ttl_s).await;
        // A fine poll: this start is quick, and its time is the figure.
        wait_ready(&mut host, http, Duration::from_millis(5)).await;
        let ready = spawned.elapsed().as_secs_f64();
        let stats = host.stats(http).await;
        let last = &stats["ingest"]["last"];
        out.ready_s.push(ready);
        out.lines.push(format!(
            "- restart {}: ready in **{ready:.2} s**; ingest at start: {} unchanged, \
             chunks_embedded = {} ({}), {} ms; {} chunks in the index",
            i + 1,
            last["unchanged"],
            last["chunks_embedded"],
            if last["chunks_embedded"] == 0 {
                "no re-embedding"
            } else {
                "RE-EMBEDDED"
            },
            last["duration_ms"],
            stats["chunks"],
        ));
        eprintln!("{}", out.lines.last().expect("just pushed"));
        if i == 0 {
            out.cached = cached_latency(http, &host.url).await;
        }
        if i + 1 == RESTARTS {
            out.queries = query_figures(http, &host.url).await;
            out.peak_rss_kib = host.peak_rss_kib();
            out.quality = quality_figures(http, &host.url).await;
        }
        host.stop().await;
    }
    out
}

// ---------------------------------------------------------------- during an ingest

/// The book a small collection is made of, for the figures beside an ingest.
const SMALL_BOOK: &str = "style-guide";

/// Query latency while the host embeds a large ingest: on a fresh data
/// directory, a host with one small collection answers one client's
/// questions idle; restarted with a second collection (the whole corpus,
/// so an ingest of minutes) it answers the same number of new questions
/// while that ingest runs. Queries go before the ingest's batches in the
/// embedder's queue: the ratio says what is left of the wait.
async fn during_ingest(setup: &Setup, http: &reqwest::Client) -> Vec<String> {
    let count: usize = env_or("NOVA_BENCH_INGEST_QUERIES", 150);
    let max_time = Duration::from_secs_f64(env_or("NOVA_BENCH_SECS", 60.0));
    let small = setup.corpus.join(SMALL_BOOK);
    if !small.is_dir() {
        return vec![format!("- skipped: no {} in the corpus", small.display())];
    }
    let data = tempfile::tempdir().expect("a data directory for the figures during an ingest");

    let mut host = spawn_on(setup, 0, data.path(), &small, None).await;
    wait_ready(&mut host, http, Duration::from_millis(50)).await;
    let warm_up = QUESTIONS.iter().take(20).map(|q| format!("Warm-up: {q}"));
    ask_all(http, &host.url, warm_up.collect(), 1, max_time).await;
    let idle = ask_all(http, &host.url, questions(2, count), 1, max_time).await;
    host.stop().await;

    let collections = format!("during={}", setup.corpus.display());
    let host = spawn_on(setup, 0, data.path(), &small, Some(&collections)).await;
    // Until the big collection's chunks are being embedded.
    let deadline = Instant::now() + Duration::from_secs(120);
    let embedded_at_start = loop {
        let running = host.stats(http).await["ingest"]["running"].clone();
        if let Some(n) = running["chunks_embedded"].as_u64()
            && n > 0
        {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "the ingest did not start embedding within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let warm_up = QUESTIONS
        .iter()
        .take(20)
        .map(|q| format!("Warm-up again: {q}"));
    ask_all(http, &host.url, warm_up.collect(), 1, max_time).await;
    let during = ask_all(http, &host.url, questions(7, count), 1, max_time).await;
    let running = host.stats(http).await["ingest"]["running"].clone();
    host.stop().await;
    let still = running["chunks_embedded"].as_u64();
    let note = match still {
        Some(n) => format!(
            "the ingest embedded {} chunks while the queries ran and was still running",
            n.saturating_sub(embedded_at_start)
        ),
        None => "NOTE: the ingest ended before the queries did".to_owned(),
    };
    headline(
        "rag",
        "/rag/query p50 during an ingest / idle",
        format!("{:.2}x", during.p50_ms / idle.p50_ms),
        &format!(
            "1 client, {} queries each; p50 {:.1} ms during, {:.1} ms idle; p99 {:.1} ms during, \
             {:.1} ms idle; {note}",
            during.queries, during.p50_ms, idle.p50_ms, during.p99_ms, idle.p99_ms
        ),
    );
    vec![
        idle.line(&format!("idle, collection `{SMALL_BOOK}`, 1 client")),
        during.line(&format!(
            "while the whole corpus is ingested into a second collection, 1 client ({note})"
        )),
    ]
}

// ---------------------------------------------------------------- embedding

/// The texts the ingest embedded for the first `n` chunks by point id (ids
/// are hashes, so this is a spread over the corpus): each chunk's `text`
/// after its heading path, read from the index with no host running.
fn chunk_texts(data: &Path, n: usize) -> Vec<String> {
    use qdrant_edge::{EdgeShard, ScrollRequest, WithPayloadInterface};
    let path = data.join("index/default");
    let shard = EdgeShard::load(&path, None)
        .unwrap_or_else(|e| panic!("open the index at {}: {e}", path.display()));
    let mut points = Vec::with_capacity(n);
    let mut offset = None;
    while points.len() < n {
        let request = ScrollRequest {
            offset,
            limit: Some((n - points.len()).min(1024)),
            with_payload: Some(WithPayloadInterface::Bool(true)),
            ..ScrollRequest::new()
        };
        let (records, next) = shard.scroll(request).expect("scroll the index");
        for record in records {
            let payload = record.payload.as_ref().map(|p| &p.0);
            let text = payload
                .and_then(|p| p.get("text"))
                .and_then(|t| t.as_str())
                .expect("every chunk has a text");
            // What the ingest embedded, built by the ingest's own rule.
            let meta = payload.and_then(|p| p.get("meta"));
            let context = CONTEXT_KEYS
                .iter()
                .find_map(|k| meta.and_then(|m| m.get(*k)))
                .and_then(|c| c.as_str());
            points.push((record.id, embedded_text(text, context)));
        }
        match next {
            Some(next) => offset = Some(next),
            None => break,
        }
    }
    points.sort_by_key(|p| p.0);
    points.truncate(n);
    points.into_iter().map(|(_, text)| text).collect()
}

fn write_jsonl(path: &Path, texts: &[String]) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create texts"));
    for text in texts {
        serde_json::to_writer(&mut file, text).expect("write texts");
        file.write_all(b"\n").expect("write texts");
    }
    file.flush().expect("write texts");
}

struct Throughput {
    texts: usize,
    seconds: f64,
}

impl Throughput {
    fn per_s(&self) -> f64 {
        self.texts as f64 / self.seconds
    }
}

/// Embeds `texts` in calls of `batch` texts, in turn, until done or
/// `max_time` has passed.
async fn embed_throughput(
    embedder: &Embedder,
    texts: &[String],
    batch: usize,
    max_time: Duration,
) -> Throughput {
    embed_throughput_as(embedder, texts, batch, max_time, false).await
}

/// [`embed_throughput`], as bulk work (`embed_bulk`, as an ingest) when
/// `bulk`.
async fn embed_throughput_as(
    embedder: &Embedder,
    texts: &[String],
    batch: usize,
    max_time: Duration,
    bulk: bool,
) -> Throughput {
    let start = Instant::now();
    let mut done = 0;
    // Batches are sent two at a time, as ingestion keeps several in
    // flight, so every replica has work; single texts one at a time.
    let in_flight = if batch == 1 { 1 } else { 2 };
    let mut calls = tokio::task::JoinSet::new();
    for group in texts.chunks(batch) {
        if start.elapsed() > max_time {
            break;
        }
        while calls.len() >= in_flight {
            done += calls.join_next().await.expect("a call").expect("join");
        }
        let (embedder, group) = (embedder.clone(), group.to_vec());
        calls.spawn(async move {
            let vectors = if bulk {
                embedder.embed_bulk(group.clone()).await
            } else {
                embedder.embed(group.clone()).await
            }
            .expect("embed");
            assert_eq!(vectors.len(), group.len());
            group.len()
        });
    }
    while let Some(n) = calls.join_next().await {
        done += n.expect("join");
    }
    Throughput {
        texts: done,
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// One batch before measuring: the first passes allocate the buffers.
async fn warm_up(embedder: &Embedder, texts: &[String]) {
    embed_throughput(
        embedder,
        &texts[..BATCH.min(texts.len())],
        BATCH,
        Duration::MAX,
    )
    .await;
}

/// Mean tokens per text (with [CLS] and [SEP], before truncation) and how
/// many texts the model truncates.
fn token_counts(embedder: &Embedder, texts: &[String]) -> (f64, usize) {
    let max = embedder.info().max_tokens;
    let counts: Vec<f64> = texts
        .iter()
        .map(|t| {
            embedder
                .tokenizer()
                .encode(t.as_str(), true)
                .map_or(0, |e| e.len()) as f64
        })
        .collect();
    let truncated = counts.iter().filter(|&&c| c > max as f64).count();
    (mean(&counts), truncated)
}

struct StRun {
    texts: usize,
    per_s: f64,
}

/// Reads a child's pipe to the end on a thread of its own.
fn read_all(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = pipe.read_to_string(&mut out);
        out
    })
}

/// How OpenMP threads wait in sentence-transformers' torch:
/// `OMP_WAIT_POLICY` if set, else PASSIVE. On a shared machine the default
/// spinning costs torch several times its speed at batch 1 (3.5 against
/// 16 texts/s measured at load 6 on 2 cores); PASSIVE keeps the comparison
/// fair to it.
fn omp_wait_policy() -> String {
    std::env::var("OMP_WAIT_POLICY").unwrap_or_else(|_| "PASSIVE".into())
}

/// `scripts/st_bench.py` on the first `limit` texts of `texts`, or why it
/// did not run. Its stderr (model loading, progress bars) is shown only
/// when it fails.
fn st_bench(
    python: &Path,
    model: &Path,
    texts: &Path,
    batch: usize,
    limit: usize,
) -> Result<StRun, String> {
    let script = repo_root().join("scripts/st_bench.py");
    let mut child = Command::new(python)
        .arg(&script)
        .arg(model)
        .arg(texts)
        .args(["--batch", &batch.to_string(), "--threads", "2"])
        .args(["--limit", &limit.to_string()])
        .env("OMP_WAIT_POLICY", omp_wait_policy())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    let stdout = read_all(child.stdout.take().expect("stdout"));
    let stderr = read_all(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + Duration::from_secs(900);
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("st_bench.py ran over 900 s; killed".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = stdout.join().expect("stdout reader");
    let err = stderr.join().expect("stderr reader");
    if !status.success() {
        return Err(format!("st_bench.py failed ({status}): {err}"));
    }
    let line: Value = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("st_bench.py printed no JSON: {out}{err}"))?;
    Ok(StRun {
        texts: line["texts"].as_u64().unwrap_or(0) as usize,
        per_s: line["texts_per_s"].as_f64().unwrap_or(f64::NAN),
    })
}

/// `NOVA_BENCH_PYTHON`, or the default venv when present.
fn st_python() -> Option<PathBuf> {
    if let Some(python) = std::env::var_os("NOVA_BENCH_PYTHON") {
        return Some(PathBuf::from(python));
    }
    let default = PathBuf::from("/tmp/st-venv/bin/python");
    default.exists().then_some(default)
}

/// In-process throughput on chunk texts of the index, then
/// sentence-transformers on the same texts right after.
async fn embedding_figures(bench: &Path, setup: &Setup) -> Vec<String> {
    let n: usize = env_or("NOVA_BENCH_TEXTS", 2_000);
    let texts = chunk_texts(&setup.data, n);
    let texts_file = bench.join("texts.jsonl");
    write_jsonl(&texts_file, &texts);
    let config = BatchConfig {
        replicas: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ..BatchConfig::default()
    };
    let embedder = Embedder::load(&setup.model, config).expect("load the embedding model");
    let (mean_tokens, truncated) = token_counts(&embedder, &texts);
    let mut lines = vec![format!(
        "- texts: the texts the ingest embedded for the first {} chunks by point id ({}), mean {mean_tokens:.0} \
         tokens with [CLS]/[SEP]; {truncated} over the model's {} (truncated)",
        texts.len(),
        texts_file.display(),
        embedder.info().max_tokens
    )];
    warm_up(&embedder, &texts).await;
    let max_time = Duration::from_secs(600);
    let load = loadavg();
    let one = embed_throughput(
        &embedder,
        &texts[..BATCH1_TEXTS.min(texts.len())],
        1,
        max_time,
    )
    .await;
    let batched = embed_throughput(&embedder, &texts, BATCH, max_time).await;
    headline(
        "rag",
        "embedding, batch 1 / batch 32",
        format!("{:.1} / {:.1} texts/s", one.per_s(), batched.per_s()),
        "all-MiniLM-L6-v2, nova's encoder, CPU, one replica per core",
    );
    lines.push(format!(
        "- nova (its own encoder, in-process, one single-threaded replica per core, batches of at most {} \
         tokens; load average {load}): batch 1 (embed_one): {} texts in {:.1} s, \
         **{:.1} texts/s**; batch {BATCH} (embed): {} texts in {:.1} s, **{:.1} texts/s**",
        BatchConfig::default().token_budget,
        one.texts,
        one.seconds,
        one.per_s(),
        batched.texts,
        batched.seconds,
        batched.per_s()
    ));
    // As an ingest sends them: bulk work, in smaller batches.
    let bulk = embed_throughput_as(&embedder, &texts, BATCH, max_time, true).await;
    headline(
        "rag",
        "embedding as bulk work (ingest) / as queries, batch 32",
        format!("{:.2}x", bulk.per_s() / batched.per_s()),
        &format!(
            "{:.1} / {:.1} texts/s; bulk batches of at most {} tokens, query batches {}",
            bulk.per_s(),
            batched.per_s(),
            BatchConfig::default().bulk_token_budget,
            BatchConfig::default().token_budget
        ),
    );
    lines.push(format!(
        "- the same texts as bulk work (embed_bulk, as an ingest sends them; batches of at most \
         {} tokens, queries served between them): {} texts in {:.1} s, **{:.1} texts/s**, \
         {:.2}x the batch {BATCH} figure",
        BatchConfig::default().bulk_token_budget,
        bulk.texts,
        bulk.seconds,
        bulk.per_s(),
        bulk.per_s() / batched.per_s()
    ));
    lines.extend(portable_figures(setup, &texts, config, batched.per_s()).await);
    let Some(python) = st_python() else {
        lines.push("- sentence-transformers not available; set NOVA_BENCH_PYTHON".into());
        return lines;
    };
    let load = loadavg();
    let st_batched = st_bench(&python, &setup.model, &texts_file, BATCH, batched.texts);
    let st_one = st_bench(&python, &setup.model, &texts_file, 1, one.texts);
    match (st_batched, st_one) {
        (Ok(b), Ok(o)) => {
            headline(
                "rag",
                "embedding vs sentence-transformers, batch 1 / batch 32",
                format!(
                    "{:.2}x / {:.2}x",
                    one.per_s() / o.per_s,
                    batched.per_s() / b.per_s
                ),
                "same texts, side by side in one run; above 1 is nova faster",
            );
            lines.push(format!(
                "- sentence-transformers ({}, torch 2 threads, OMP_WAIT_POLICY={}, same texts, \
             right after; load average {load}): batch 1: {} texts, **{:.1} texts/s**; \
             batch {BATCH}: {} texts, **{:.1} texts/s**. nova / sentence-transformers: \
             batch 1 **{:.2}x**, batch {BATCH} **{:.2}x**",
                python.display(),
                omp_wait_policy(),
                o.texts,
                o.per_s,
                b.texts,
                b.per_s,
                one.per_s() / o.per_s,
                batched.per_s() / b.per_s
            ))
        }
        (b, o) => lines.push(format!(
            "- sentence-transformers did not run: {}",
            [b.err(), o.err()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ")
        )),
    }
    lines.extend(alternating_rounds(&embedder, &python, setup, &texts).await);
    lines
}

/// The first 1,000 of the same texts in batches on the `gemm` kernel,
/// which CPUs without AVX-512 run, against `fastest` texts/s on the
/// AVX-512 one.
async fn portable_figures(
    setup: &Setup,
    texts: &[String],
    config: BatchConfig,
    fastest: f64,
) -> Vec<String> {
    if !Kernel::Fastest.wide() {
        return vec!["- this CPU has no AVX-512: the figures above are the gemm kernel's".into()];
    }
    let config = BatchConfig {
        kernel: Kernel::Portable,
        ..config
    };
    let embedder = Embedder::load(&setup.model, config).expect("load the embedding model");
    let texts = &texts[..1_000.min(texts.len())];
    warm_up(&embedder, texts).await;
    let portable = embed_throughput(&embedder, texts, BATCH, Duration::from_secs(600)).await;
    headline(
        "rag",
        "embedding, batch 32: AVX-512 kernel / gemm kernel",
        format!("{:.2}x", fastest / portable.per_s()),
        &format!(
            "the first {} of the same texts, one replica per core; gemm is what CPUs without \
             AVX-512 run",
            portable.texts
        ),
    );
    vec![format!(
        "- the gemm kernel (Kernel::Portable, what CPUs without AVX-512 run) on the first {} of \
         the same texts, batch {BATCH}: **{:.1} texts/s**; the AVX-512 kernel runs **{:.2}x** as \
         fast",
        portable.texts,
        portable.per_s(),
        fastest / portable.per_s()
    )]
}

/// nova and sentence-transformers in turn, `ROUNDS` times, on the same
/// `ROUND_TEXTS` texts at batch 32: on a shared machine a neighbour's load
/// then weighs on both sides alike, and the median ratio is the figure.
async fn alternating_rounds(
    embedder: &Embedder,
    python: &Path,
    setup: &Setup,
    texts: &[String],
) -> Vec<String> {
    const ROUNDS: usize = 3;
    const ROUND_TEXTS: usize = 1_000;
    let texts = &texts[..ROUND_TEXTS.min(texts.len())];
    let file = setup.data.with_file_name("round-texts.jsonl");
    write_jsonl(&file, texts);
    let mut ratios = Vec::new();
    let mut lines = Vec::new();
    for round in 1..=ROUNDS {
        let nova = embed_throughput(embedder, texts, BATCH, Duration::from_secs(600)).await;
        let st = match st_bench(python, &setup.model, &file, BATCH, texts.len()) {
            Ok(st) => st,
            Err(e) => {
                lines.push(format!(
                    "- round {round}: sentence-transformers failed: {e}"
                ));
                return lines;
            }
        };
        let ratio = nova.per_s() / st.per_s;
        ratios.push(ratio);
        lines.push(format!(
            "- round {round} of {ROUNDS} ({} texts, batch {BATCH}, load average {}): nova {:.1} \
             texts/s, sentence-transformers {:.1} texts/s: **{ratio:.2}x**",
            texts.len(),
            loadavg(),
            nova.per_s(),
            st.per_s
        ));
    }
    let median = median(&ratios);
    headline(
        "rag",
        "embedding vs sentence-transformers, batch 32, median of alternating rounds",
        format!("{median:.2}x"),
        &format!(
            "{ROUNDS} rounds of nova then sentence-transformers on the same {} texts the \
             ingest embedded; above 1 is nova faster",
            texts.len()
        ),
    );
    lines.push(format!(
        "- alternating rounds, median nova / sentence-transformers: **{median:.2}x**"
    ));
    lines
}

// ---------------------------------------------------------------- main

async fn bench() {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let bench = bench_dir();
    std::fs::create_dir_all(&bench).expect("bench dir");
    let (root, version) = docs_root();
    let corpus = prepare_corpus(&bench, &root);
    let setup = Setup::new(&bench, &corpus);
    println!(
        "knowledge base: {cores} cores, load average {} at start; corpus: {} pages, {:.1} MB \
         of HTML from {} ({version}), in {}; nova built {}",
        loadavg(),
        corpus.files,
        corpus.bytes as f64 / 1e6,
        root.display(),
        corpus.dir.display(),
        built_at(&nova_bin())
    );
    let http = common::client(Duration::from_secs(120));

    let (ingest, origin) = ingest(&bench, &setup, &corpus, &http).await;
    ingest.print(origin);
    if ingest.chunks_indexed < MIN_CHUNKS {
        println!(
            "  NOTE: {} chunks, fewer than the {MIN_CHUNKS} this benchmark is meant for",
            ingest.chunks_indexed
        );
    }

    let restarts = restarts(&setup, &http).await;
    println!();
    println!(
        "Restart to ready (spawn to the first /health 200, same data directory, {} chunks):",
        ingest.chunks_indexed
    );
    for line in &restarts.lines {
        println!("{line}");
    }
    println!(
        "- median of {RESTARTS}: **{:.2} s**",
        median(&restarts.ready_s)
    );
    headline(
        "rag",
        "restart to ready",
        format!("{:.2} s", median(&restarts.ready_s)),
        &format!(
            "median of {RESTARTS}, {} chunks, no re-embedding",
            ingest.chunks_indexed
        ),
    );

    println!();
    println!(
        "Query latency over HTTP (POST /rag/query, top_k {TOP_K}, warm, distinct questions, \
         cache off unless said, restarted host):"
    );
    for line in &restarts.queries {
        println!("{line}");
    }
    println!("{}", restarts.cached);
    println!(
        "- peak RSS of the restarted host after the queries: {}",
        mib(restarts.peak_rss_kib)
    );
    headline(
        "rag",
        "peak RSS serving queries",
        mib(restarts.peak_rss_kib),
        "restarted host, after the query figures",
    );

    println!();
    println!("Retrieval quality by search mode (POST /rag/query, restarted host, cache off):");
    println!();
    for line in &restarts.quality {
        println!("{line}");
    }

    // `NOVA_BENCH_SKIP=during,embedding,upload` leaves parts out.
    let skip = std::env::var("NOVA_BENCH_SKIP").unwrap_or_default();
    let skipped = |part: &str| skip.split(',').any(|s| s.trim() == part);
    if !skipped("upload") {
        println!();
        println!(
            "Ingest through the document API against from a directory (fresh data directories):"
        );
        for line in upload_figures(&setup, &http).await {
            println!("{line}");
        }
    }

    if !skipped("during") {
        println!();
        println!(
            "Query latency during an ingest (POST /rag/query, top_k {TOP_K}, cache off, fresh \
             data directory):"
        );
        for line in during_ingest(&setup, &http).await {
            println!("{line}");
        }
    }

    if !skipped("embedding") {
        println!();
        println!("Embedding throughput (all-MiniLM-L6-v2, CPU):");
        for line in embedding_figures(&bench, &setup).await {
            println!("{line}");
        }
    }
    println!();
    println!("load average at the end: {}", loadavg());
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(bench());
}
