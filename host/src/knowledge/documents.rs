//! Collections and documents through the API: create and drop
//! collections, put, read, list and delete documents. A document put
//! through here is split by the same loader plugins as a file in a
//! knowledge directory, and is marked as uploaded so that a directory's
//! sync leaves it alone.

use std::collections::BTreeMap;

use serde_json::Value;

use super::document::{self, Incoming, IndexError};
use super::ingest::Loaders;
use super::{ChunkBudget, Knowledge, KnowledgeError, valid_meta_key};
use crate::plugins::{Registry, sha256_hex};
use crate::vector::{FileRecord, Settings, valid_collection};
use nova_client::types as wire;

/// Longest document id, in bytes.
pub const MAX_ID_BYTES: usize = 512;
/// Most metadata keys a document may carry.
pub const MAX_METADATA_KEYS: usize = 64;
/// Most bytes of a document's metadata, as JSON.
pub const MAX_METADATA_BYTES: usize = 16 << 10;
/// Longest collection description, in characters.
pub const MAX_DESCRIPTION: usize = 1024;
/// Smallest chunk a collection may ask for, in tokens.
pub const MIN_CHUNK_TOKENS: u32 = 16;
/// Documents listed per page at most (and by default).
pub const MAX_PAGE: u32 = 1000;
pub const DEFAULT_PAGE: u32 = 100;

/// A document as it arrives.
pub struct Upload {
    pub body: Vec<u8>,
    /// The body's media type, lowercase, without parameters.
    pub media_type: Option<String>,
    /// `?loader=`: a loader plugin to use whatever the media type.
    pub loader: Option<String>,
    /// `X-Nova-Metadata`: a JSON object.
    pub metadata: Option<String>,
}

/// The JSON form of an upload.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Form {
    text: String,
    #[serde(default)]
    metadata: BTreeMap<String, Value>,
}

fn bad(message: impl Into<String>) -> KnowledgeError {
    KnowledgeError::BadDocument(message.into())
}

/// Checks a document id: what `GET` and `DELETE` name it by.
pub fn check_id(id: &str) -> Result<(), KnowledgeError> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(bad(format!(
            "document id: 1 to {MAX_ID_BYTES} bytes (got {})",
            id.len()
        )));
    }
    if id.chars().any(char::is_control) || id.trim() != id {
        return Err(bad(
            "document id: no control characters, nor spaces at either end",
        ));
    }
    Ok(())
}

/// Checks a document's metadata: plain keys, and values that are strings,
/// numbers, booleans, or lists of them.
pub fn check_metadata(metadata: &BTreeMap<String, Value>) -> Result<(), KnowledgeError> {
    if metadata.len() > MAX_METADATA_KEYS {
        return Err(bad(format!("metadata: at most {MAX_METADATA_KEYS} keys")));
    }
    let scalar = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
    for (key, value) in metadata {
        if !valid_meta_key(key) {
            return Err(bad(format!(
                "metadata key {key:?}: use 1 to 64 of A-Z, a-z, 0-9, '_' and '-'"
            )));
        }
        if key == "source" {
            return Err(bad("metadata key \"source\" is the document's id"));
        }
        let ok = match value {
            Value::Array(items) => items.iter().all(scalar),
            other => scalar(other),
        };
        if !ok {
            return Err(bad(format!(
                "metadata.{key}: a string, number or boolean, or a list of them"
            )));
        }
    }
    let bytes = serde_json::to_vec(metadata).map(|v| v.len()).unwrap_or(0);
    if bytes > MAX_METADATA_BYTES {
        return Err(bad(format!(
            "metadata: {bytes} bytes of JSON; the limit is {MAX_METADATA_BYTES}"
        )));
    }
    Ok(())
}

/// Checks a collection's settings against the model's budget.
pub fn check_settings(
    settings: &wire::CollectionSettings,
    model_tokens: usize,
) -> Result<(), KnowledgeError> {
    let most = model_tokens.saturating_sub(2) as u32;
    if let Some(d) = &settings.description
        && d.chars().count() > MAX_DESCRIPTION
    {
        return Err(bad(format!(
            "description: at most {MAX_DESCRIPTION} characters"
        )));
    }
    if let Some(t) = settings.chunk_tokens
        && !(MIN_CHUNK_TOKENS..=most).contains(&t)
    {
        return Err(bad(format!(
            "chunk_tokens: between {MIN_CHUNK_TOKENS} and {most} (what the model reads)"
        )));
    }
    if let Some(o) = settings.chunk_overlap {
        let tokens = settings.chunk_tokens.unwrap_or(most);
        if o > tokens / 2 {
            return Err(bad(format!(
                "chunk_overlap: at most half of chunk_tokens ({})",
                tokens / 2
            )));
        }
    }
    Ok(())
}

fn settings_of(stored: Settings) -> wire::CollectionSettings {
    serde_json::from_value(Value::Object(stored)).unwrap_or_default()
}

/// The chunk budget of a collection with `settings`, within the host's.
fn budget_of(settings: &wire::CollectionSettings, host: ChunkBudget) -> ChunkBudget {
    let max_tokens = settings
        .chunk_tokens
        .map_or(host.max_tokens, |t| t as usize);
    let overlap = settings.chunk_overlap.map_or(host.overlap, |o| o as usize);
    ChunkBudget {
        max_tokens,
        overlap: overlap.min(max_tokens / 2),
    }
}

fn view(record: FileRecord) -> wire::DocumentInfo {
    wire::DocumentInfo {
        id: record.source,
        content_hash: record.content_hash,
        loader: record.loader,
        loader_version: record.loader_version,
        chunks: record.chunks,
        size: record.size,
        uploaded: record.uploaded,
        metadata: record.metadata,
        chunk_list: None,
    }
}

impl Knowledge {
    /// Creates `name` with `settings` unless it exists; the collection, and
    /// whether it was created now.
    pub async fn create_collection(
        &self,
        name: &str,
        settings: &wire::CollectionSettings,
    ) -> Result<(wire::CollectionInfo, bool), KnowledgeError> {
        let inner = self.inner()?;
        if !valid_collection(name) {
            return Err(KnowledgeError::BadCollection(name.to_owned()));
        }
        let model = inner.embedder.info();
        check_settings(settings, model.max_tokens)?;
        let stored = match serde_json::to_value(settings) {
            Ok(Value::Object(map)) => map,
            _ => Settings::new(),
        };
        let created = inner
            .index
            .create_collection(name, model.dimensions, &stored)
            .await?;
        Ok((self.collection(name).await?, created))
    }

    /// A collection's figures and settings.
    pub async fn collection(&self, name: &str) -> Result<wire::CollectionInfo, KnowledgeError> {
        let inner = self.inner()?;
        if !valid_collection(name) {
            return Err(KnowledgeError::BadCollection(name.to_owned()));
        }
        let settings = settings_of(inner.index.settings(name).await?);
        let documents = inner.index.file_count(name).await?;
        let chunks = inner.index.count(name).await?;
        Ok(wire::CollectionInfo {
            name: name.to_owned(),
            documents,
            chunks,
            settings,
            dir: None,
            created: false,
        })
    }

    /// Drops `name` and every document in it.
    pub async fn drop_collection(&self, name: &str) -> Result<(), KnowledgeError> {
        let inner = self.inner()?;
        if !valid_collection(name) {
            return Err(KnowledgeError::BadCollection(name.to_owned()));
        }
        inner.index.drop_collection(name).await?;
        inner.cache.invalidate(name).await;
        Ok(())
    }

    /// Adds or replaces document `id` of `collection`.
    pub async fn put_document(
        &self,
        registry: &Registry,
        collection: &str,
        id: &str,
        upload: Upload,
    ) -> Result<(wire::DocumentSaved, bool), KnowledgeError> {
        let inner = self.inner()?;
        if !valid_collection(collection) {
            return Err(KnowledgeError::BadCollection(collection.to_owned()));
        }
        check_id(id)?;
        let loaders = Loaders::new(registry);
        let (bytes, media_type, metadata) = match upload.media_type.as_deref() {
            Some("application/json") => {
                let form: Form = serde_json::from_slice(&upload.body).map_err(|e| {
                    bad(format!(
                        "a JSON body is the form {{\"text\": \"...\", \"metadata\": {{...}}}}: {e}"
                    ))
                })?;
                if upload.metadata.is_some() {
                    return Err(bad(
                        "give the metadata in the JSON form or in X-Nova-Metadata, not both",
                    ));
                }
                (
                    form.text.into_bytes(),
                    "text/plain".to_owned(),
                    form.metadata,
                )
            }
            media => {
                let metadata = match &upload.metadata {
                    Some(text) => serde_json::from_str::<BTreeMap<String, Value>>(text)
                        .map_err(|e| bad(format!("X-Nova-Metadata: a JSON object: {e}")))?,
                    None => BTreeMap::new(),
                };
                (upload.body, media.unwrap_or_default().to_owned(), metadata)
            }
        };
        check_metadata(&metadata)?;
        if bytes.is_empty() {
            return Err(bad("the document is empty"));
        }
        let loader = match &upload.loader {
            Some(name) => loaders.named(name).ok_or_else(|| {
                KnowledgeError::NoLoader(format!("no serving loader plugin named {name:?}"))
            })?,
            None => loaders.for_media_type(&media_type).ok_or_else(|| {
                KnowledgeError::NoLoader(format!(
                    "no loader plugin takes {}; send one of {} or name a loader with ?loader=",
                    if media_type.is_empty() {
                        "a body without Content-Type".to_owned()
                    } else {
                        format!("{media_type:?}")
                    },
                    loaders.media_types().join(", ")
                ))
            })?,
        };
        // The collection must exist: its settings shape the chunks.
        let settings = settings_of(inner.index.settings(collection).await?);
        let budget = budget_of(&settings, inner.chunk);
        let content_hash = sha256_hex(&bytes);

        let _writing = inner.writing(collection, id).await;
        let known = inner.index.file(collection, id).await?;
        let mut saved = wire::DocumentSaved {
            collection: collection.to_owned(),
            id: id.to_owned(),
            chunks: 0,
            embedded: 0,
            created: known.is_none(),
            content_hash: content_hash.clone(),
            loader: loader.name.to_string(),
            loader_version: loader.info.version.clone(),
        };
        if let Some(k) = &known
            && document::is_current(k, inner, &loader, &content_hash, true, &metadata)
        {
            saved.chunks = k.chunks;
            return Ok((saved, false));
        }
        let incoming = Incoming {
            source: id,
            bytes: &bytes,
            content_hash,
            modified_ms: crate::store::now_ms().max(0) as u64,
            uploaded: true,
            metadata,
            budget,
        };
        let runtime = registry.runtime();
        let total = document::index(inner, runtime, collection, incoming, &loader)
            .await
            .map_err(|e| match e {
                IndexError::Rejected(m) => KnowledgeError::DocumentRejected(m),
                IndexError::Failed(m) => KnowledgeError::Ingest(m),
            })?;
        inner.cache.invalidate(collection).await;
        inner.index.optimize(collection).await?;
        saved.chunks = total;
        saved.embedded = total;
        Ok((saved, known.is_none()))
    }

    /// Document `id` of `collection`, with its chunks when `chunks`.
    pub async fn document(
        &self,
        collection: &str,
        id: &str,
        chunks: bool,
    ) -> Result<wire::DocumentInfo, KnowledgeError> {
        let inner = self.inner()?;
        check_id(id)?;
        let record = inner.index.file(collection, id).await?.ok_or_else(|| {
            KnowledgeError::UnknownDocument {
                collection: collection.to_owned(),
                id: id.to_owned(),
            }
        })?;
        let mut info = view(record);
        if chunks {
            let list = inner.index.chunks(collection, id).await?;
            info.chunk_list = Some(
                list.into_iter()
                    .map(|c| wire::DocumentChunk {
                        index: c.chunk_index,
                        text: c.text,
                        metadata: c.meta,
                    })
                    .collect(),
            );
        }
        Ok(info)
    }

    /// A page of `collection`'s documents: at most `limit`, from `cursor`
    /// (the `next` of the page before) on, in the index's stable order;
    /// one page is held, however big the collection.
    pub async fn documents(
        &self,
        collection: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<wire::DocumentPage, KnowledgeError> {
        let inner = self.inner()?;
        let limit = limit.unwrap_or(DEFAULT_PAGE);
        if limit == 0 || limit > MAX_PAGE {
            return Err(bad(format!("limit: between 1 and {MAX_PAGE}")));
        }
        let cursor = cursor
            .map(|c| {
                c.parse::<u64>()
                    .map_err(|_| bad(format!("after: {c:?} is not the next of a page")))
            })
            .transpose()?;
        let (mut records, next) = inner
            .index
            .files_page(collection, cursor, limit as usize)
            .await?;
        records.sort_by(|a, b| a.source.cmp(&b.source));
        Ok(wire::DocumentPage {
            documents: records.into_iter().map(view).collect(),
            next: next.map(|n| n.to_string()),
        })
    }

    /// Deletes document `id` of `collection`.
    pub async fn delete_document(&self, collection: &str, id: &str) -> Result<(), KnowledgeError> {
        let inner = self.inner()?;
        check_id(id)?;
        let _writing = inner.writing(collection, id).await;
        if inner.index.file(collection, id).await?.is_none() {
            return Err(KnowledgeError::UnknownDocument {
                collection: collection.to_owned(),
                id: id.to_owned(),
            });
        }
        inner.index.delete_source(collection, id).await?;
        inner.cache.invalidate(collection).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_and_metadata_are_checked() {
        assert!(check_id("guides/intro.md").is_ok());
        assert!(check_id("").is_err());
        assert!(check_id(" x").is_err());
        assert!(check_id("a\nb").is_err());
        assert!(check_id(&"x".repeat(MAX_ID_BYTES + 1)).is_err());
        let meta = |v: Value| serde_json::from_value::<BTreeMap<String, Value>>(v).unwrap();
        assert!(
            check_metadata(&meta(json!({"year": 2024, "tags": ["a", "b"], "ok": true}))).is_ok()
        );
        assert!(check_metadata(&meta(json!({"a.b": 1}))).is_err());
        assert!(check_metadata(&meta(json!({"source": "x"}))).is_err());
        assert!(check_metadata(&meta(json!({"nested": {"x": 1}}))).is_err());
        assert!(check_metadata(&meta(json!({"list": [[1]]}))).is_err());
    }

    #[test]
    fn settings_are_checked_and_shape_the_budget() {
        let s = |t: Option<u32>, o: Option<u32>| wire::CollectionSettings {
            description: None,
            chunk_tokens: t,
            chunk_overlap: o,
        };
        assert!(check_settings(&s(Some(128), Some(16)), 512).is_ok());
        assert!(check_settings(&s(Some(8), None), 512).is_err());
        assert!(check_settings(&s(Some(600), None), 512).is_err());
        assert!(check_settings(&s(Some(100), Some(60)), 512).is_err());
        let host = ChunkBudget {
            max_tokens: 200,
            overlap: 32,
        };
        assert_eq!(
            budget_of(&s(Some(64), None), host),
            ChunkBudget {
                max_tokens: 64,
                overlap: 32
            }
        );
        assert_eq!(budget_of(&s(None, None), host), host);
    }
}
