//! Ingestion: bring a collection in step with a directory.
//!
//! Walk the directory; for each file pick a loader plugin by extension or
//! media type; skip it when its size and modification time, or else its
//! content hash, and its loader's name and version match what the index
//! records; otherwise load it in the sandbox, split the chunks to the
//! token budget, embed them and replace the file's chunks. Files gone from
//! the directory are deleted from the index. A file that no loader handles
//! or that its loader rejects is reported and skipped; the rest goes on.
//!
//! One ingest runs at a time per host; requests made meanwhile queue.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::document::{self, Incoming, IndexError};
use super::{Knowledge, KnowledgeError};
use crate::plugins::{Plugin, PluginKind, Registry, sha256_hex};
use crate::time::rfc3339;
use crate::vector::FileRecord;

pub use super::document::{CONTEXT_KEYS, embedded_text};

/// Largest file ingested; bigger ones are reported and skipped.
pub const MAX_FILE_BYTES: u64 = 32 << 20;
/// Files loaded and embedded at once: enough to keep the embedder's
/// batches full while a loader runs.
const FILES_IN_FLIGHT: usize = 4;
/// Failures listed in a report (all are counted and logged).
const MAX_LISTED_FAILURES: usize = 100;

/// A directory ingested into a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub collection: String,
    pub dir: PathBuf,
}

pub use nova_client::{IngestFailure as Failure, IngestReport as Report};

/// A report of an ingest of `source` starting now.
fn new_report(id: Uuid, source: &Source) -> Report {
    Report {
        id: id.to_string(),
        collection: source.collection.clone(),
        dir: source.dir.display().to_string(),
        started_at: rfc3339(SystemTime::now()),
        ..Report::default()
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub running: Option<Report>,
    pub last: Option<Report>,
    /// Ingests requested and not finished yet (one id may cover several
    /// collections).
    pub queued: Vec<Uuid>,
    /// The last few finished, newest last, for `GET /rag/ingests/{id}`.
    #[serde(skip)]
    recent: std::collections::VecDeque<Report>,
}

/// Finished reports kept for lookup by id.
const RECENT_REPORTS: usize = 32;

pub struct Ingestor {
    knowledge: Knowledge,
    registry: Arc<Registry>,
    sources: Vec<Source>,
    /// Held for the length of an ingest: one at a time.
    gate: tokio::sync::Mutex<()>,
    status: Mutex<Status>,
}

/// A file found by the walk.
struct Found {
    source: String,
    path: PathBuf,
    size: u64,
    modified_ms: u64,
}

/// Adds a finished ingest's figures to the process metrics, once at the
/// end rather than per file: the report already counts them.
fn record_metrics(report: &Report) {
    use crate::metrics::{self, FileOutcome};
    metrics::ingest_run();
    for (outcome, count) in [
        (FileOutcome::Added, report.added),
        (FileOutcome::Updated, report.updated),
        (FileOutcome::Removed, report.removed),
        (FileOutcome::Unchanged, report.unchanged),
        (FileOutcome::Failed, report.failed),
    ] {
        metrics::ingest_files(outcome, count);
    }
    metrics::ingest_chunks_embedded(report.chunks_embedded);
}

/// A file's source and what ingesting it did (or why it failed).
type FileResult = (String, Result<Outcome, String>);

enum Outcome {
    Added(usize),
    Updated(usize),
    Unchanged,
}

impl Ingestor {
    pub fn new(knowledge: Knowledge, registry: Arc<Registry>, sources: Vec<Source>) -> Self {
        Ingestor {
            knowledge,
            registry,
            sources,
            gate: tokio::sync::Mutex::new(()),
            status: Mutex::new(Status::default()),
        }
    }

    pub fn knowledge(&self) -> &Knowledge {
        &self.knowledge
    }

    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    pub fn status(&self) -> Status {
        self.status.lock().clone()
    }

    /// The report of ingest `id`, and whether it is still running.
    pub fn report(&self, id: Uuid) -> Option<(Report, bool)> {
        let id = id.to_string();
        let status = self.status.lock();
        if let Some(running) = status.running.as_ref().filter(|r| r.id == id) {
            return Some((running.clone(), true));
        }
        status
            .recent
            .iter()
            .rev()
            .find(|r| r.id == id)
            .map(|r| (r.clone(), false))
    }

    pub fn is_queued(&self, id: Uuid) -> bool {
        self.status.lock().queued.contains(&id)
    }

    /// Ingests every configured source in turn.
    pub async fn ingest_all(self: &Arc<Self>) -> Vec<Report> {
        let mut reports = Vec::new();
        for source in self.sources.clone() {
            reports.push(self.ingest(Uuid::now_v7(), source).await);
        }
        reports
    }

    /// Starts ingesting `source` (or every configured source) in the
    /// background; returns the ingest's id at once.
    pub fn start(self: &Arc<Self>, source: Option<Source>) -> Uuid {
        let id = Uuid::now_v7();
        let this = self.clone();
        self.status.lock().queued.push(id);
        tokio::spawn(async move {
            let sources = match source {
                Some(source) => vec![source],
                None => this.sources.clone(),
            };
            for source in sources {
                this.ingest(id, source).await;
            }
            this.status.lock().queued.retain(|q| *q != id);
        });
        id
    }

    /// Ingests one directory into one collection, waiting for any ingest
    /// already running.
    pub async fn ingest(self: &Arc<Self>, id: Uuid, source: Source) -> Report {
        let _turn = self.gate.lock().await;
        let start = Instant::now();
        let report = new_report(id, &source);
        self.status.lock().running = Some(report);
        let result = self.run(&source).await;
        let mut status = self.status.lock();
        let mut report = status
            .running
            .take()
            .unwrap_or_else(|| new_report(id, &source));
        if let Err(e) = result {
            report.error = Some(e.to_string());
        }
        // Files are ingested concurrently: list failures in a stable order.
        report.failures.sort_by(|a, b| a.source.cmp(&b.source));
        report.finished_at = Some(rfc3339(SystemTime::now()));
        report.duration_ms = Some(start.elapsed().as_millis() as u64);
        record_metrics(&report);
        tracing::info!(
            collection = %report.collection,
            dir = %report.dir,
            added = report.added,
            updated = report.updated,
            removed = report.removed,
            unchanged = report.unchanged,
            failed = report.failed,
            chunks = report.chunks_embedded,
            ms = report.duration_ms,
            error = report.error.as_deref(),
            "ingest finished"
        );
        status.last = Some(report.clone());
        if status.recent.len() >= RECENT_REPORTS {
            status.recent.pop_front();
        }
        status.recent.push_back(report.clone());
        report
    }

    fn update(&self, f: impl FnOnce(&mut Report)) {
        if let Some(report) = self.status.lock().running.as_mut() {
            f(report);
        }
    }

    fn fail(&self, source: &str, error: String) {
        tracing::warn!(source, %error, "document skipped");
        self.update(|r| {
            r.failed += 1;
            r.files_done += 1;
            if r.failures.len() < MAX_LISTED_FAILURES {
                r.failures.push(Failure {
                    source: source.to_owned(),
                    error,
                });
            }
        });
    }

    async fn run(self: &Arc<Self>, source: &Source) -> Result<(), KnowledgeError> {
        let inner = self.knowledge.inner()?;
        let collection = source.collection.as_str();
        inner
            .index
            .ensure_collection(collection, inner.embedder.info().dimensions)
            .await?;
        // Documents uploaded through the API are not the directory's: its
        // sync neither removes them nor counts them as its own (a file of
        // the same name replaces one, though: the directory wins its paths).
        let known: HashMap<String, FileRecord> = inner
            .index
            .files(collection)
            .await?
            .into_iter()
            .map(|f| (f.source.clone(), f))
            .collect();
        let dir = source.dir.clone();
        let found = tokio::task::spawn_blocking(move || walk(&dir))
            .await
            .map_err(|e| KnowledgeError::Ingest(e.to_string()))?
            .map_err(|e| {
                KnowledgeError::Ingest(format!("cannot read {}: {e}", source.dir.display()))
            })?;
        self.update(|r| r.files_total = found.len() as u64);

        let loaders = Loaders::new(&self.registry);
        let mut changed = false;
        let mut tasks = JoinSet::new();
        let mut seen = Vec::with_capacity(found.len());
        for file in found {
            seen.push(file.source.clone());
            let Some(loader) = loaders.pick(&file.source) else {
                changed |= self.drop_stale(collection, &known, &file.source).await;
                self.fail(
                    &file.source,
                    "no loader plugin handles this file type".into(),
                );
                continue;
            };
            if file.size > MAX_FILE_BYTES {
                changed |= self.drop_stale(collection, &known, &file.source).await;
                self.fail(
                    &file.source,
                    format!("{} bytes; the limit is {MAX_FILE_BYTES}", file.size),
                );
                continue;
            }
            while tasks.len() >= FILES_IN_FLIGHT {
                changed |= self.collect(tasks.join_next().await);
            }
            let this = self.clone();
            let known = known.get(&file.source).cloned();
            let collection = collection.to_owned();
            tasks.spawn(async move {
                let result = this.ingest_file(&collection, &file, loader, known).await;
                (file.source, result)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            changed |= self.collect(Some(joined));
        }

        let seen: std::collections::HashSet<String> = seen.into_iter().collect();
        for gone in known
            .iter()
            .filter(|(s, k)| !k.uploaded && !seen.contains(*s))
            .map(|(s, _)| s)
        {
            inner.index.delete_source(collection, gone).await?;
            self.update(|r| r.removed += 1);
            changed = true;
        }
        if changed {
            inner.cache.invalidate(collection).await;
            inner.index.optimize(collection).await?;
        }
        Ok(())
    }

    /// Deletes what an earlier ingest indexed for `source`, now that the
    /// file can no longer be ingested: its old text would be stale.
    async fn drop_stale(
        &self,
        collection: &str,
        known: &HashMap<String, FileRecord>,
        source: &str,
    ) -> bool {
        if !known.get(source).is_some_and(|k| !k.uploaded) {
            return false;
        }
        let Ok(inner) = self.knowledge.inner() else {
            return false;
        };
        match inner.index.delete_source(collection, source).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(source, error = %e, "cannot delete the chunks of a skipped file");
                false
            }
        }
    }

    /// Records one file's outcome; true when the index changed.
    fn collect(&self, joined: Option<Result<FileResult, tokio::task::JoinError>>) -> bool {
        match joined {
            Some(Ok((_, Ok(outcome)))) => {
                let changed = !matches!(outcome, Outcome::Unchanged);
                self.update(|r| {
                    r.files_done += 1;
                    match outcome {
                        Outcome::Added(n) => {
                            r.added += 1;
                            r.chunks_embedded += n as u64;
                        }
                        Outcome::Updated(n) => {
                            r.updated += 1;
                            r.chunks_embedded += n as u64;
                        }
                        Outcome::Unchanged => r.unchanged += 1,
                    }
                });
                changed
            }
            Some(Ok((source, Err(error)))) => {
                self.fail(&source, error);
                false
            }
            Some(Err(e)) => {
                tracing::error!(error = %e, "an ingest task failed");
                false
            }
            None => false,
        }
    }

    async fn ingest_file(
        &self,
        collection: &str,
        file: &Found,
        loader: Arc<Plugin>,
        known: Option<FileRecord>,
    ) -> Result<Outcome, String> {
        let inner = self.knowledge.inner().map_err(|e| e.to_string())?;
        let _writing = inner.writing(collection, &file.source).await;
        let current = |k: &FileRecord| !k.uploaded && document::same_indexing(k, inner, &loader);
        if let Some(k) = &known
            && current(k)
            && k.size == file.size
            && k.modified_ms == file.modified_ms
        {
            return Ok(Outcome::Unchanged);
        }
        // A known file that can no longer be read, loaded or indexed must
        // not keep answering queries (it may now be a link that leads out,
        // or its new content is refused): what was indexed from it goes,
        // and the reason is the file's error.
        let refuse = async |reason: String| -> Result<Outcome, String> {
            if known.is_some() {
                inner
                    .index
                    .delete_source(collection, &file.source)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Err(reason)
        };
        let (root, relative) = (self_root(&file.path, &file.source), file.source.clone());
        let read =
            tokio::task::spawn_blocking(move || read_beneath(&root, &relative, MAX_FILE_BYTES))
                .await
                .map_err(|e| format!("cannot read: {e}"))?;
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(e) => return refuse(format!("cannot read: {e}")).await,
        };
        let content_hash = sha256_hex(&bytes);
        if let Some(k) = &known
            && current(k)
            && k.content_hash == content_hash
        {
            return Ok(Outcome::Unchanged);
        }
        let incoming = Incoming {
            source: &file.source,
            bytes: &bytes,
            content_hash,
            modified_ms: file.modified_ms,
            uploaded: false,
            metadata: BTreeMap::new(),
            budget: inner.chunk,
        };
        let runtime = self.registry.runtime();
        match document::index(inner, runtime, collection, incoming, &loader).await {
            Ok(total) if known.is_some() => Ok(Outcome::Updated(total as usize)),
            Ok(total) => Ok(Outcome::Added(total as usize)),
            Err(IndexError::Rejected(reason)) => refuse(reason).await,
            Err(IndexError::Failed(reason)) => Err(reason),
        }
    }
}

/// The serving loaders, by extension and by media type.
pub(super) struct Loaders {
    by_extension: HashMap<String, Arc<Plugin>>,
    by_media_type: HashMap<String, Arc<Plugin>>,
    by_name: HashMap<String, Arc<Plugin>>,
}

impl Loaders {
    pub(super) fn new(registry: &Registry) -> Self {
        let mut loaders = registry.active_of_kind(PluginKind::Loader);
        // Two loaders claiming one extension: the first by name wins, the
        // same on every host.
        loaders.sort_by(|a, b| b.name.cmp(&a.name));
        let mut by_extension = HashMap::new();
        let mut by_media_type = HashMap::new();
        let mut by_name = HashMap::new();
        for plugin in loaders {
            for ext in &plugin.info.extensions {
                by_extension.insert(ext.trim_start_matches('.').to_lowercase(), plugin.clone());
            }
            for media in &plugin.info.media_types {
                by_media_type.insert(media.to_lowercase(), plugin.clone());
            }
            by_name.insert(plugin.name.to_string(), plugin);
        }
        Loaders {
            by_extension,
            by_media_type,
            by_name,
        }
    }

    pub(super) fn pick(&self, source: &str) -> Option<Arc<Plugin>> {
        let ext = Path::new(source)
            .extension()?
            .to_string_lossy()
            .to_lowercase();
        self.by_extension
            .get(&ext)
            .or_else(|| media_type(&ext).and_then(|m| self.by_media_type.get(m)))
            .cloned()
    }

    /// The loader for a body of `media` (lowercase, without parameters):
    /// one that declares it, else one whose extension is that type's.
    pub(super) fn for_media_type(&self, media: &str) -> Option<Arc<Plugin>> {
        self.by_media_type.get(media).cloned().or_else(|| {
            self.by_extension
                .iter()
                .filter(|(ext, _)| media_type(ext) == Some(media))
                .min_by(|a, b| a.0.cmp(b.0))
                .map(|(_, p)| p.clone())
        })
    }

    /// The serving loader named `name`.
    pub(super) fn named(&self, name: &str) -> Option<Arc<Plugin>> {
        self.by_name.get(name).cloned()
    }

    /// The media types some loader takes, sorted: for an error message.
    pub(super) fn media_types(&self) -> Vec<String> {
        let mut all: Vec<String> = self.by_media_type.keys().cloned().collect();
        all.extend(
            self.by_extension
                .keys()
                .filter_map(|e| media_type(e).map(str::to_owned)),
        );
        all.sort();
        all.dedup();
        all
    }
}

/// Media types of common document extensions, for loaders that declare
/// media types rather than extensions.
pub fn media_type(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "md" | "markdown" => "text/markdown",
        "txt" | "text" => "text/plain",
        "html" | "htm" | "xhtml" => "text/html",
        "pdf" => "application/pdf",
        "json" => "application/json",
        "csv" => "text/csv",
        "xml" => "application/xml",
        "rst" => "text/x-rst",
        "adoc" | "asciidoc" => "text/asciidoc",
        _ => return None,
    })
}

/// The directory a found file was walked from: its path without its
/// relative source.
fn self_root(path: &Path, source: &str) -> PathBuf {
    let mut root = path.to_owned();
    for _ in source.split('/') {
        root.pop();
    }
    root
}

/// Reads `relative` under `root` without ever leaving `root`: a symlink
/// that resolves outside it (to `/proc/self/environ`, say, planted by
/// whoever can write into the directory), an absolute symlink, or `..`
/// that climbs out is refused, as is anything but a regular file (a FIFO
/// would block the read forever). Reads at most `max` bytes.
fn read_beneath(root: &Path, relative: &str, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;

    use rustix::fs::{Mode, OFlags, ResolveFlags};

    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
    let dir = std::fs::File::open(root)?;
    let file = match rustix::fs::openat2(
        &dir,
        relative,
        flags,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => std::fs::File::from(fd),
        Err(rustix::io::Errno::XDEV) => {
            return Err(std::io::Error::other(
                "it leads outside the knowledge directory (a symlink?); not read",
            ));
        }
        // openat2 is Linux 5.6 and later: resolve, check, and open the
        // resolved path without following a last symlink.
        Err(rustix::io::Errno::NOSYS) => {
            let real_root = root.canonicalize()?;
            let real = root.join(relative).canonicalize()?;
            if !real.starts_with(&real_root) {
                return Err(std::io::Error::other(
                    "it leads outside the knowledge directory (a symlink?); not read",
                ));
            }
            let fd = rustix::fs::open(&real, flags | OFlags::NOFOLLOW, Mode::empty())?;
            std::fs::File::from(fd)
        }
        Err(e) => return Err(e.into()),
    };
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file; not read"));
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::other(format!(
            "over {max} bytes; the limit is {MAX_FILE_BYTES}"
        )));
    }
    Ok(bytes)
}

/// Every regular file under `dir`, hidden names and symlinked directories
/// left out, by relative path with `/` separators. (A symlink to a file is
/// listed; reading it refuses one that leads out: see [`read_beneath`].)
fn walk(dir: &Path) -> std::io::Result<Vec<Found>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        let entries = match std::fs::read_dir(&current) {
            Ok(entries) => entries,
            // The root must be readable; a subdirectory that is not is
            // skipped like a file that cannot be read.
            Err(e) if current == dir => return Err(e),
            Err(e) => {
                tracing::warn!(dir = %current.display(), error = %e, "cannot read a knowledge subdirectory");
                continue;
            }
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let Ok(relative) = path.strip_prefix(dir) else {
                continue;
            };
            let source = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let modified_ms = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            found.push(Found {
                source,
                path,
                size: meta.len(),
                modified_ms,
            });
        }
    }
    found.sort_by(|a, b| a.source.cmp(&b.source));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_lists_files_relative_and_skips_hidden() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("guides/deep")).unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join("a.md"), "a").unwrap();
        std::fs::write(dir.path().join("guides/deep/b.txt"), "bb").unwrap();
        std::fs::write(dir.path().join(".hidden.md"), "x").unwrap();
        std::fs::write(dir.path().join(".git/config"), "x").unwrap();
        let found = walk(dir.path()).unwrap();
        let names: Vec<_> = found.iter().map(|f| f.source.as_str()).collect();
        assert_eq!(names, vec!["a.md", "guides/deep/b.txt"]);
        assert_eq!(found[1].size, 2);
        assert!(found[1].modified_ms > 0);
        assert!(walk(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn reads_stay_beneath_the_directory() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let dir = root.path();
        std::fs::create_dir_all(dir.join("docs")).unwrap();
        std::fs::write(dir.join("docs/a.md"), "inside").unwrap();
        std::fs::write(outside.path().join("secret.md"), "secret").unwrap();
        std::os::unix::fs::symlink("a.md", dir.join("docs/same.md")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.md"), dir.join("abs.md")).unwrap();
        std::os::unix::fs::symlink("../../../../../../proc/self/environ", dir.join("env.md"))
            .unwrap();
        assert_eq!(read_beneath(dir, "docs/a.md", 100).unwrap(), b"inside");
        assert_eq!(read_beneath(dir, "docs/same.md", 100).unwrap(), b"inside");
        for escape in ["abs.md", "env.md", "../escape.md"] {
            let err = read_beneath(dir, escape, 100).unwrap_err().to_string();
            assert!(!err.is_empty(), "{escape}");
            assert!(read_beneath(dir, escape, 100).is_err(), "{escape} was read");
        }
        // A FIFO is not read (nor waited on).
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.join("pipe.md"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert!(read_beneath(dir, "pipe.md", 100).is_err());
        // Too big.
        assert!(read_beneath(dir, "docs/a.md", 3).is_err());
        assert_eq!(self_root(&dir.join("docs/a.md"), "docs/a.md"), dir);
    }

    #[test]
    fn media_types_of_common_extensions() {
        assert_eq!(media_type("md"), Some("text/markdown"));
        assert_eq!(media_type("pdf"), Some("application/pdf"));
        assert_eq!(media_type("exe"), None);
    }
}
