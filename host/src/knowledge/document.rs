//! Indexing one document: load it with its loader plugin, split the
//! chunks to the token budget, embed them, make their keyword vectors and
//! replace the document's chunks in the index. Directory ingest
//! ([`super::ingest`]) and the document API ([`super::Documents`]) both
//! index through [`index`].

use std::collections::BTreeMap;

use serde_json::Value;
use tokio::task::JoinSet;

use super::{ChunkBudget, Inner, chunk};
use crate::plugins::{Plugin, Runtime};
use crate::vector::{ChunkPayload, FileRecord, KEYWORDS_MODEL, Point, point_id};

/// Texts per embedding request; several requests share a forward pass.
const EMBED_GROUP: usize = 32;

/// The metadata that gives a chunk its context, first found first: the
/// section's heading path, else the document's title.
pub const CONTEXT_KEYS: [&str; 2] = ["heading_path", "title"];

/// What is embedded for a chunk's `text`: its `context` line before it,
/// unless the text already starts with it (the stored text stays bare).
pub fn embedded_text(text: &str, context: Option<&str>) -> String {
    match context {
        Some(c) if !text.starts_with(c) => format!("{c}\n{text}"),
        _ => text.to_owned(),
    }
}

/// A document to index.
pub struct Incoming<'a> {
    /// Its id in the collection: a path under a directory, or the id it
    /// was uploaded with.
    pub source: &'a str,
    pub bytes: &'a [u8],
    /// sha256 of `bytes`, hex.
    pub content_hash: String,
    pub modified_ms: u64,
    pub uploaded: bool,
    /// The document's own metadata: on every chunk (over the loader's),
    /// and kept on its record.
    pub metadata: BTreeMap<String, Value>,
    pub budget: ChunkBudget,
}

/// Why a document was not indexed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The document's fault: its loader refused it, it has no text, or it
    /// splits into too many chunks.
    #[error("{0}")]
    Rejected(String),
    /// The host's: the embedder or the index failed.
    #[error("{0}")]
    Failed(String),
}

/// Whether `known` records this document as it would be indexed now: the
/// same content, loader and version, model, keyword model and metadata.
pub fn is_current(
    known: &FileRecord,
    inner: &Inner,
    loader: &Plugin,
    content_hash: &str,
    uploaded: bool,
    metadata: &BTreeMap<String, Value>,
) -> bool {
    same_indexing(known, inner, loader)
        && known.content_hash == content_hash
        && known.uploaded == uploaded
        && known.metadata == *metadata
}

/// Whether `known` was indexed the way a document would be now (another
/// loader version, embedding or keyword model makes other chunks).
pub fn same_indexing(known: &FileRecord, inner: &Inner, loader: &Plugin) -> bool {
    known.loader == *loader.name
        && known.loader_version == loader.info.version
        && known.model == inner.embedder.info().name
        && known.keywords == KEYWORDS_MODEL
}

/// Indexes `doc` into `collection` with `loader`, replacing what was there
/// for its source; the number of chunks written.
pub async fn index(
    inner: &Inner,
    runtime: &Runtime,
    collection: &str,
    doc: Incoming<'_>,
    loader: &Plugin,
) -> Result<u32, IndexError> {
    let failed = |e: &dyn std::fmt::Display| IndexError::Failed(e.to_string());
    let loaded = runtime
        .run_loader(loader, doc.source, doc.bytes)
        .await
        .map_err(|e| IndexError::Rejected(format!("loader {} failed: {e}", loader.name)))?;
    let tokenizer = inner.embedder.tokenizer();
    // (text to store, text to embed, metadata)
    let mut pieces: Vec<(String, String, BTreeMap<String, Value>)> = Vec::new();
    for c in loaded {
        let mut meta: BTreeMap<String, Value> = c
            .metadata
            .into_iter()
            .filter(|(k, _)| k != "source")
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        let context = CONTEXT_KEYS
            .iter()
            .find_map(|k| meta.get(*k).and_then(Value::as_str))
            .map(str::to_owned);
        meta.extend(doc.metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
        for text in chunk::split(tokenizer, &c.text, doc.budget) {
            let embed = embedded_text(&text, context.as_deref());
            pieces.push((text, embed, meta.clone()));
        }
    }
    if pieces.is_empty() {
        return Err(IndexError::Rejected(format!(
            "loader {} found no text",
            loader.name
        )));
    }
    // Split to the token budget, a loader's chunks may multiply: the
    // document's allowance holds after splitting too.
    let allowed = runtime.config().output.chunks_for(doc.bytes.len());
    if pieces.len() > allowed {
        return Err(IndexError::Rejected(format!(
            "{} chunks once split, from a document of {} bytes; the limit is {allowed} \
             (plugins.max_chunks, and 64 more than one per 16 bytes)",
            pieces.len(),
            doc.bytes.len()
        )));
    }
    let total =
        u32::try_from(pieces.len()).map_err(|_| IndexError::Rejected("too many chunks".into()))?;

    // All groups at once: the embedder's replicas share them.
    let mut groups = JoinSet::new();
    for (g, group) in pieces.chunks(EMBED_GROUP).enumerate() {
        let texts: Vec<String> = group.iter().map(|(_, e, _)| e.clone()).collect();
        let embedder = inner.embedder.clone();
        groups.spawn(async move { (g, embedder.embed_bulk(texts).await) });
    }
    let mut embedded = vec![Vec::new(); groups.len()];
    while let Some(joined) = groups.join_next().await {
        let (g, result) = joined.map_err(|e| failed(&e))?;
        embedded[g] = result.map_err(|e| failed(&e))?;
    }
    let vectors: Vec<Vec<f32>> = embedded.into_iter().flatten().collect();
    // Keywords from the stored text with its context, as embedded: a
    // heading's words find its sections.
    let keywords = inner.keywords.clone();
    let texts: Vec<String> = pieces.iter().map(|(_, e, _)| e.clone()).collect();
    let sparse = tokio::task::spawn_blocking(move || {
        texts
            .iter()
            .map(|t| keywords.document(t))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| failed(&e))?;
    let model = inner.embedder.info().name.clone();
    let mut points: Vec<Point> = pieces
        .into_iter()
        .zip(vectors)
        .zip(sparse)
        .enumerate()
        .map(|(i, (((text, _, meta), vector), keywords))| Point {
            id: point_id(collection, doc.source, i as u32),
            vector,
            keywords: Some(keywords),
            payload: ChunkPayload {
                source: doc.source.to_owned(),
                text,
                collection: collection.to_owned(),
                loader: loader.name.to_string(),
                loader_version: loader.info.version.clone(),
                model: model.clone(),
                content_hash: doc.content_hash.clone(),
                chunk_index: i as u32,
                chunks: total,
                size: doc.bytes.len() as u64,
                modified_ms: doc.modified_ms,
                meta,
                keywords: KEYWORDS_MODEL.to_owned(),
                uploaded: doc.uploaded,
                doc_meta: if i == 0 {
                    doc.metadata.clone()
                } else {
                    BTreeMap::new()
                },
            },
        })
        .collect();

    // Old chunks out, new chunks in, chunk 0 (the document's record) last:
    // a crash in between leaves it unrecorded, so the next ingest does it
    // again. Always, even for a document not recorded: an interrupted
    // earlier attempt may have left some chunks (all but chunk 0).
    let index = &inner.index;
    index
        .delete_source(collection, doc.source)
        .await
        .map_err(|e| failed(&e))?;
    let first = points.remove(0);
    for batch in points.chunks(256) {
        index
            .upsert(collection, batch.to_vec())
            .await
            .map_err(|e| failed(&e))?;
    }
    index
        .upsert(collection, vec![first])
        .await
        .map_err(|e| failed(&e))?;
    Ok(total)
}
