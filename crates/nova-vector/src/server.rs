//! The Qdrant server backend (`QDRANT_URL`), through qdrant-client (gRPC).
//!
//! A nova collection `c` is the Qdrant collection `{prefix}{c}`, so several
//! nova deployments (or a test run) can share one server. Writes wait for
//! the server to apply them, so a search right after an upsert sees it;
//! the server builds its search index in the background by itself.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::RwLock;
use qdrant_client::qdrant::r#match::MatchValue;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePointsBuilder, Distance, FieldType, Filter as QdrantFilter, KeywordIndexParamsBuilder,
    PointStruct, QueryPointsBuilder, ScrollPointsBuilder, UpsertPointsBuilder, Value,
    VectorParamsBuilder,
};
use qdrant_client::{Payload, Qdrant, QdrantError};

use super::{
    CHUNK_INDEX_FIELD, ChunkPayload, FileRecord, Filter, META_FIELD, Point, SOURCE_FIELD, Scored,
    VectorError, VectorIndex, valid_collection,
};

/// Files scrolled per page when listing a collection's files.
const SCROLL_PAGE: u32 = 1024;
/// The limit on every request (and on connecting).
const TIMEOUT: Duration = Duration::from_secs(10);

/// Collections of a Qdrant server.
pub struct ServerIndex {
    client: Qdrant,
    url: String,
    prefix: String,
    /// Per nova collection, the payload fields known to have an index
    /// (metadata keys get one the first time a search filters on them).
    indexed: RwLock<HashMap<String, Arc<RwLock<HashSet<String>>>>>,
}

/// gRPC status codes (tonic is not a direct dependency, and qdrant-client
/// does not re-export it).
mod code {
    pub const CANCELLED: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const NOT_FOUND: i32 = 5;
    pub const ALREADY_EXISTS: i32 = 6;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
}

/// The gRPC status code of a server's answer, if `e` is one.
fn status_code(e: &QdrantError) -> Option<i32> {
    match e {
        QdrantError::ResponseError { status }
        | QdrantError::ResourceExhaustedError { status, .. } => Some(i32::from(status.code())),
        _ => None,
    }
}

/// Whether `e` says the server could not be reached (rather than that it
/// refused the request).
fn is_transport(e: &QdrantError) -> bool {
    let (QdrantError::ResponseError { status }
    | QdrantError::ResourceExhaustedError { status, .. }) = e
    else {
        return matches!(e, QdrantError::Io(_));
    };
    match i32::from(status.code()) {
        code::UNAVAILABLE
        | code::DEADLINE_EXCEEDED
        | code::CANCELLED
        | code::RESOURCE_EXHAUSTED => true,
        // qdrant-client reports a failed connect as `internal`.
        code::INTERNAL | code::UNKNOWN => {
            let message = status.message();
            message.starts_with("Failed to connect") || message.contains("transport error")
        }
        _ => false,
    }
}

impl ServerIndex {
    /// Connects to the server at `url` (its gRPC port, usually 6334) and
    /// checks that it answers.
    pub async fn connect(
        url: &str,
        api_key: Option<String>,
        prefix: &str,
    ) -> Result<ServerIndex, VectorError> {
        let client = Qdrant::from_url(url)
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .skip_compatibility_check()
            .api_key(api_key)
            .build()
            .map_err(|e| VectorError::Unavailable(format!("cannot use Qdrant at {url}: {e}")))?;
        let health = client
            .health_check()
            .await
            .map_err(|e| VectorError::Unavailable(format!("no Qdrant answers at {url}: {e}")))?;
        tracing::info!(url, version = %health.version, "connected to Qdrant");
        Ok(ServerIndex {
            client,
            url: url.to_owned(),
            prefix: prefix.to_owned(),
            indexed: RwLock::new(HashMap::new()),
        })
    }

    /// The Qdrant collection holding nova collection `collection`.
    fn name(&self, collection: &str) -> String {
        format!("{}{collection}", self.prefix)
    }

    /// Maps a client error; `NotFound` means the collection does not exist.
    fn error(&self, collection: &str, what: &str, e: QdrantError) -> VectorError {
        if status_code(&e) == Some(code::NOT_FOUND) {
            VectorError::UnknownCollection(collection.to_owned())
        } else if is_transport(&e) {
            VectorError::Unavailable(format!("{what} (Qdrant at {}): {e}", self.url))
        } else {
            VectorError::Backend(format!("{what}: {e}"))
        }
    }

    /// The indexed fields of `collection`, read from the server the first
    /// time.
    async fn indexed(&self, collection: &str) -> Result<Arc<RwLock<HashSet<String>>>, VectorError> {
        if let Some(set) = self.indexed.read().get(collection) {
            return Ok(set.clone());
        }
        let info = self
            .client
            .collection_info(self.name(collection))
            .await
            .map_err(|e| self.error(collection, "cannot read the collection", e))?;
        let fields: HashSet<String> = info
            .result
            .map(|i| i.payload_schema.into_keys().collect())
            .unwrap_or_default();
        Ok(self
            .indexed
            .write()
            .entry(collection.to_owned())
            .or_insert_with(|| Arc::new(RwLock::new(fields)))
            .clone())
    }

    /// Creates a payload index on `field` of `collection` unless it has one.
    async fn ensure_index(&self, collection: &str, field: &str) -> Result<(), VectorError> {
        let set = self.indexed(collection).await?;
        if set.read().contains(field) {
            return Ok(());
        }
        self.create_index(
            collection,
            CreateFieldIndexCollectionBuilder::new(
                self.name(collection),
                field,
                FieldType::Keyword,
            ),
        )
        .await?;
        set.write().insert(field.to_owned());
        Ok(())
    }

    /// Creates a payload index; one that exists already is fine.
    async fn create_index(
        &self,
        collection: &str,
        request: CreateFieldIndexCollectionBuilder,
    ) -> Result<(), VectorError> {
        match self.client.create_field_index(request.wait(true)).await {
            Ok(_) => Ok(()),
            Err(e) if status_code(&e) == Some(code::ALREADY_EXISTS) => Ok(()),
            Err(e) => Err(self.error(collection, "cannot create a payload index", e)),
        }
    }

    /// The Qdrant filter for `filter`, indexing metadata keys on first use.
    async fn filter(
        &self,
        collection: &str,
        filter: &Filter,
    ) -> Result<Option<QdrantFilter>, VectorError> {
        let mut conditions = Vec::new();
        if let Some(source) = &filter.source {
            conditions.push(keyword(SOURCE_FIELD, source));
        }
        if let Some(prefix) = &filter.source_prefix {
            conditions.push(Condition::matches_prefix(SOURCE_FIELD, prefix.clone()));
        }
        for (key, value) in &filter.meta {
            let field = format!("{META_FIELD}.{key}");
            // Unindexed filters scan every payload.
            self.ensure_index(collection, &field).await?;
            conditions.push(keyword(&field, value));
        }
        Ok((!conditions.is_empty()).then(|| QdrantFilter::must(conditions)))
    }
}

/// `field` equals `value` exactly. (`Condition::matches` with a `String`
/// would turn a value with whitespace into a full-text match.)
fn keyword(field: &str, value: &str) -> Condition {
    Condition::matches(field, MatchValue::Keyword(value.to_owned()))
}

fn payload_of(payload: HashMap<String, Value>) -> Result<ChunkPayload, VectorError> {
    serde_json::from_value(serde_json::Value::from(Payload::from(payload)))
        .map_err(|e| VectorError::Backend(format!("a stored chunk has an unexpected payload: {e}")))
}

#[async_trait]
impl VectorIndex for ServerIndex {
    fn backend(&self) -> &'static str {
        "qdrant"
    }

    async fn collections(&self) -> Result<Vec<String>, VectorError> {
        let list = self
            .client
            .list_collections()
            .await
            .map_err(|e| self.error("", "cannot list the collections", e))?;
        let mut names: Vec<String> = list
            .collections
            .into_iter()
            .filter_map(|c| c.name.strip_prefix(&self.prefix).map(str::to_owned))
            .filter(|name| valid_collection(name))
            .collect();
        names.sort();
        Ok(names)
    }

    async fn ensure_collection(&self, collection: &str, dim: usize) -> Result<(), VectorError> {
        if !valid_collection(collection) {
            return Err(VectorError::InvalidCollection(collection.to_owned()));
        }
        let known = self.indexed.read().get(collection).cloned();
        if let Some(set) = known {
            let set = set.read();
            if set.contains(SOURCE_FIELD) && set.contains(CHUNK_INDEX_FIELD) {
                return Ok(());
            }
        }
        let name = self.name(collection);
        let exists = self
            .client
            .collection_exists(&name)
            .await
            .map_err(|e| self.error(collection, "cannot check the collection", e))?;
        if !exists {
            let created = self
                .client
                .create_collection(
                    CreateCollectionBuilder::new(&name)
                        .vectors_config(VectorParamsBuilder::new(dim as u64, Distance::Cosine)),
                )
                .await;
            match created {
                // Another host may have created it meanwhile.
                Err(e) if status_code(&e) == Some(code::ALREADY_EXISTS) => {}
                Err(e) => {
                    return Err(self.error(collection, "cannot create the collection", e));
                }
                Ok(_) => {}
            }
        }
        self.create_index(
            collection,
            CreateFieldIndexCollectionBuilder::new(&name, SOURCE_FIELD, FieldType::Keyword)
                .field_index_params(KeywordIndexParamsBuilder::default().prefix(true)),
        )
        .await?;
        self.create_index(
            collection,
            CreateFieldIndexCollectionBuilder::new(&name, CHUNK_INDEX_FIELD, FieldType::Integer),
        )
        .await?;
        // Read the indexes back (metadata keys indexed earlier).
        let set = self.indexed(collection).await?;
        let mut set = set.write();
        set.insert(SOURCE_FIELD.to_owned());
        set.insert(CHUNK_INDEX_FIELD.to_owned());
        Ok(())
    }

    async fn upsert(&self, collection: &str, points: Vec<Point>) -> Result<(), VectorError> {
        if points.is_empty() {
            return Ok(());
        }
        let mut list = Vec::with_capacity(points.len());
        for point in points {
            let payload = serde_json::to_value(&point.payload)
                .map_err(|e| VectorError::Backend(format!("cannot encode a payload: {e}")))
                .and_then(|v| {
                    Payload::try_from(v)
                        .map_err(|e| VectorError::Backend(format!("cannot encode a payload: {e}")))
                })?;
            list.push(PointStruct::new(point.id, point.vector, payload));
        }
        self.client
            .upsert_points(UpsertPointsBuilder::new(self.name(collection), list).wait(true))
            .await
            .map_err(|e| self.error(collection, "upsert failed", e))?;
        Ok(())
    }

    async fn delete_source(&self, collection: &str, source: &str) -> Result<(), VectorError> {
        self.client
            .delete_points(
                DeletePointsBuilder::new(self.name(collection))
                    .points(QdrantFilter::must([keyword(SOURCE_FIELD, source)]))
                    .wait(true),
            )
            .await
            .map_err(|e| self.error(collection, "delete failed", e))?;
        Ok(())
    }

    async fn search(
        &self,
        collection: &str,
        vector: Vec<f32>,
        top_k: usize,
        filter: &Filter,
    ) -> Result<Vec<Scored>, VectorError> {
        let mut request = QueryPointsBuilder::new(self.name(collection))
            .query(vector)
            .limit(top_k as u64)
            .with_payload(true);
        if let Some(filter) = self.filter(collection, filter).await? {
            request = request.filter(filter);
        }
        let response = self
            .client
            .query(request)
            .await
            .map_err(|e| self.error(collection, "search failed", e))?;
        response
            .result
            .into_iter()
            .map(|p| {
                Ok(Scored {
                    score: p.score,
                    payload: payload_of(p.payload)?,
                })
            })
            .collect()
    }

    async fn files(&self, collection: &str) -> Result<Vec<FileRecord>, VectorError> {
        let filter = QdrantFilter::must([Condition::matches(CHUNK_INDEX_FIELD, 0i64)]);
        let mut files = Vec::new();
        let mut offset = None;
        loop {
            let mut request = ScrollPointsBuilder::new(self.name(collection))
                .filter(filter.clone())
                .limit(SCROLL_PAGE)
                .with_payload(true)
                .with_vectors(false);
            if let Some(offset) = offset.take() {
                request = request.offset(offset);
            }
            let page = self
                .client
                .scroll(request)
                .await
                .map_err(|e| self.error(collection, "cannot list files", e))?;
            for point in page.result {
                files.push(FileRecord::from(payload_of(point.payload)?));
            }
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => break,
            }
        }
        Ok(files)
    }

    async fn count(&self, collection: &str) -> Result<u64, VectorError> {
        let response = self
            .client
            .count(CountPointsBuilder::new(self.name(collection)).exact(true))
            .await
            .map_err(|e| self.error(collection, "count failed", e))?;
        Ok(response.result.map(|r| r.count).unwrap_or(0))
    }

    async fn drop_collection(&self, collection: &str) -> Result<(), VectorError> {
        self.indexed.write().remove(collection);
        let response = self
            .client
            .delete_collection(self.name(collection))
            .await
            .map_err(|e| self.error(collection, "cannot delete the collection", e))?;
        if !response.result {
            return Err(VectorError::UnknownCollection(collection.to_owned()));
        }
        Ok(())
    }

    async fn optimize(&self, _collection: &str) -> Result<(), VectorError> {
        // The server optimises its segments in the background by itself.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use qdrant_client::qdrant::condition::ConditionOneOf;

    use super::*;

    #[test]
    fn keyword_is_exact_even_with_spaces() {
        let condition = keyword("meta.title", "Getting started");
        let Some(ConditionOneOf::Field(field)) = condition.condition_one_of else {
            panic!("not a field condition");
        };
        assert_eq!(field.key, "meta.title");
        assert_eq!(
            field.r#match.and_then(|m| m.match_value),
            Some(MatchValue::Keyword("Getting started".into()))
        );
    }
}
