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
use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    CreateVectorNameRequest, DatetimeRange, DeletePointsBuilder, Distance, FieldType,
    Filter as QdrantFilter, GetPointsBuilder, KeywordIndexParamsBuilder, Modifier, NamedVectors,
    PointId, PointStruct, PrefetchQueryBuilder, Query, QueryPointsBuilder, Range, Rrf,
    ScrollPointsBuilder, SparseVectorConfig, SparseVectorCreationConfig, SparseVectorParamsBuilder,
    Timestamp, UpsertPointsBuilder, Value, Vector, VectorInput, VectorParamsBuilder,
    create_vector_name_request::VectorConfig,
};
use qdrant_client::{Payload, Qdrant, QdrantError};

use super::{
    Bound, CHUNK_INDEX_FIELD, ChunkPayload, FileRecord, Filter, IndexKind, KEYWORDS_VECTOR, Point,
    RRF_K, Ranking, SOURCE_FIELD, Scalar, Scored, Settings, Sparse, Test, VectorError, VectorIndex,
    meta_path, valid_collection,
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
    async fn ensure_index(
        &self,
        collection: &str,
        field: &str,
        kind: IndexKind,
    ) -> Result<(), VectorError> {
        let set = self.indexed(collection).await?;
        if set.read().contains(field) {
            return Ok(());
        }
        let kind = match kind {
            IndexKind::Keyword => FieldType::Keyword,
            IndexKind::Integer => FieldType::Integer,
            IndexKind::Bool => FieldType::Bool,
            IndexKind::Float => FieldType::Float,
            IndexKind::Datetime => FieldType::Datetime,
        };
        self.create_index(
            collection,
            CreateFieldIndexCollectionBuilder::new(self.name(collection), field, kind),
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

    /// One page of the chunks passing `filter`, from `offset`; and where
    /// the next page starts, if there is one.
    async fn scroll_page(
        &self,
        collection: &str,
        filter: &QdrantFilter,
        offset: Option<PointId>,
        limit: u32,
    ) -> Result<(Vec<ChunkPayload>, Option<PointId>), VectorError> {
        let mut request = ScrollPointsBuilder::new(self.name(collection))
            .filter(filter.clone())
            .limit(limit)
            .with_payload(true)
            .with_vectors(false);
        if let Some(offset) = offset {
            request = request.offset(offset);
        }
        let page = self
            .client
            .scroll(request)
            .await
            .map_err(|e| self.error(collection, "cannot list chunks", e))?;
        let chunks = page
            .result
            .into_iter()
            .map(|p| payload_of(p.payload))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((chunks, page.next_page_offset))
    }

    /// Every chunk passing `filter`.
    async fn scroll_all(
        &self,
        collection: &str,
        filter: QdrantFilter,
    ) -> Result<Vec<ChunkPayload>, VectorError> {
        let mut chunks = Vec::new();
        let mut offset = None;
        loop {
            let (page, next) = self
                .scroll_page(collection, &filter, offset, SCROLL_PAGE)
                .await?;
            chunks.extend(page);
            match next {
                Some(next) => offset = Some(next),
                None => return Ok(chunks),
            }
        }
    }

    /// Adds the keyword vector to a collection made before keyword search;
    /// its chunks get keywords when the next ingest re-indexes them.
    async fn ensure_keywords_vector(&self, collection: &str) -> Result<(), VectorError> {
        let name = self.name(collection);
        let info = self
            .client
            .collection_info(&name)
            .await
            .map_err(|e| self.error(collection, "cannot read the collection", e))?;
        let has = info
            .result
            .and_then(|i| i.config)
            .and_then(|c| c.params)
            .and_then(|p| p.sparse_vectors_config)
            .is_some_and(|s| s.map.contains_key(KEYWORDS_VECTOR));
        if has {
            return Ok(());
        }
        let request = CreateVectorNameRequest {
            collection_name: name,
            wait: Some(true),
            vector_name: KEYWORDS_VECTOR.to_owned(),
            vector_config: Some(VectorConfig::SparseConfig(SparseVectorCreationConfig {
                modifier: Some(Modifier::Idf as i32),
                datatype: None,
            })),
            ..CreateVectorNameRequest::default()
        };
        match self.client.create_vector_name(request).await {
            Ok(_) => Ok(()),
            Err(e) if status_code(&e) == Some(code::ALREADY_EXISTS) => Ok(()),
            Err(e) => Err(self.error(collection, "cannot add keyword search", e)),
        }
    }

    /// The Qdrant filter for `filter`, indexing metadata keys on first use.
    async fn filter(
        &self,
        collection: &str,
        filter: &Filter,
    ) -> Result<Option<QdrantFilter>, VectorError> {
        let mut must = Vec::new();
        let mut must_not = Vec::new();
        if let Some(source) = &filter.source {
            must.push(keyword(SOURCE_FIELD, source));
        }
        if let Some(prefix) = &filter.source_prefix {
            must.push(Condition::matches_prefix(SOURCE_FIELD, prefix.clone()));
        }
        for (key, test) in &filter.meta {
            let field = meta_path(key);
            // Unindexed filters scan every payload.
            self.ensure_index(collection, &field, test.index_kind())
                .await?;
            match test {
                Test::Eq(value) => must.push(Condition::matches(&field, scalar(value))),
                Test::Any(list) => must.push(Condition::matches(&field, any(list)?)),
                Test::Not(list) => must_not.push(Condition::matches(&field, any(list)?)),
                Test::Range { gt, gte, lt, lte } if test.is_date_range() => {
                    must.push(Condition::datetime_range(
                        &field,
                        DatetimeRange {
                            gt: date(gt)?,
                            gte: date(gte)?,
                            lt: date(lt)?,
                            lte: date(lte)?,
                        },
                    ))
                }
                Test::Range { gt, gte, lt, lte } => must.push(Condition::range(
                    &field,
                    Range {
                        gt: number(gt),
                        gte: number(gte),
                        lt: number(lt),
                        lte: number(lte),
                    },
                )),
            }
        }
        if must.is_empty() && must_not.is_empty() {
            return Ok(None);
        }
        Ok(Some(QdrantFilter {
            must,
            must_not,
            ..QdrantFilter::default()
        }))
    }
}

/// A scalar as an exact match (a string's is a keyword match, never a
/// full-text one).
fn scalar(value: &Scalar) -> MatchValue {
    match value {
        Scalar::Text(t) => MatchValue::Keyword(t.clone()),
        Scalar::Integer(i) => MatchValue::Integer(*i),
        Scalar::Bool(b) => MatchValue::Boolean(*b),
    }
}

/// A list of scalars of one kind as an any-of match.
fn any(list: &[Scalar]) -> Result<MatchValue, VectorError> {
    if let Some(texts) = list
        .iter()
        .map(|s| match s {
            Scalar::Text(t) => Some(t.clone()),
            _ => None,
        })
        .collect::<Option<Vec<String>>>()
    {
        return Ok(MatchValue::from(texts));
    }
    list.iter()
        .map(|s| match s {
            Scalar::Integer(i) => Some(*i),
            _ => None,
        })
        .collect::<Option<Vec<i64>>>()
        .map(MatchValue::from)
        .ok_or_else(|| {
            VectorError::Backend("a list to match is all strings or all integers".into())
        })
}

fn number(bound: &Option<Bound>) -> Option<f64> {
    match bound {
        Some(Bound::Number(n)) => Some(*n),
        _ => None,
    }
}

fn date(bound: &Option<Bound>) -> Result<Option<Timestamp>, VectorError> {
    let Some(Bound::Date(text)) = bound else {
        return Ok(None);
    };
    let at: jiff::Timestamp = text
        .parse()
        .map_err(|e| VectorError::Backend(format!("invalid date-time {text:?}: {e}")))?;
    Ok(Some(Timestamp {
        seconds: at.as_second(),
        nanos: at.subsec_nanosecond(),
    }))
}

fn sparse_input(keywords: Sparse) -> VectorInput {
    VectorInput::new_sparse(keywords.indices, keywords.values)
}

/// The chunk 0s: one record per document.
fn first_chunks() -> QdrantFilter {
    QdrantFilter::must([Condition::matches(CHUNK_INDEX_FIELD, 0i64)])
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

    async fn create_collection(
        &self,
        collection: &str,
        dim: usize,
        settings: &Settings,
    ) -> Result<bool, VectorError> {
        if !valid_collection(collection) {
            return Err(VectorError::InvalidCollection(collection.to_owned()));
        }
        let known = self.indexed.read().get(collection).cloned();
        if let Some(set) = known {
            let set = set.read();
            if set.contains(SOURCE_FIELD) && set.contains(CHUNK_INDEX_FIELD) {
                return Ok(false);
            }
        }
        let name = self.name(collection);
        let exists = self
            .client
            .collection_exists(&name)
            .await
            .map_err(|e| self.error(collection, "cannot check the collection", e))?;
        let mut created = false;
        if !exists {
            let mut sparse = SparseVectorConfig::default();
            sparse.map.insert(
                KEYWORDS_VECTOR.to_owned(),
                SparseVectorParamsBuilder::default()
                    .modifier(Modifier::Idf as i32)
                    .build(),
            );
            let metadata: HashMap<String, serde_json::Value> =
                settings.clone().into_iter().collect();
            let result = self
                .client
                .create_collection(
                    CreateCollectionBuilder::new(&name)
                        .vectors_config(VectorParamsBuilder::new(dim as u64, Distance::Cosine))
                        .sparse_vectors_config(sparse)
                        .metadata(metadata),
                )
                .await;
            match result {
                // Another host may have created it meanwhile.
                Err(e) if status_code(&e) == Some(code::ALREADY_EXISTS) => {}
                Err(e) => {
                    return Err(self.error(collection, "cannot create the collection", e));
                }
                Ok(_) => created = true,
            }
        } else {
            self.ensure_keywords_vector(collection).await?;
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
        Ok(created)
    }

    async fn settings(&self, collection: &str) -> Result<Settings, VectorError> {
        let info = self
            .client
            .collection_info(self.name(collection))
            .await
            .map_err(|e| self.error(collection, "cannot read the collection", e))?;
        let metadata = info
            .result
            .and_then(|i| i.config)
            .map(|c| c.metadata)
            .unwrap_or_default();
        Ok(serde_json::Map::from(Payload::from(metadata)))
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
            let mut vectors = NamedVectors::default().add_vector("", Vector::from(point.vector));
            if let Some(k) = point.keywords.filter(|k| !k.is_empty()) {
                vectors =
                    vectors.add_vector(KEYWORDS_VECTOR, Vector::new_sparse(k.indices, k.values));
            }
            list.push(PointStruct::new(point.id, vectors, payload));
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

    async fn query(
        &self,
        collection: &str,
        ranking: Ranking,
        top_k: usize,
        filter: &Filter,
    ) -> Result<Vec<Scored>, VectorError> {
        let filter = self.filter(collection, filter).await?;
        let mut request = QueryPointsBuilder::new(self.name(collection))
            .limit(top_k as u64)
            .with_payload(true);
        match ranking {
            Ranking::Dense(vector) => request = request.query(vector),
            Ranking::Keywords(k) => {
                request = request
                    .query(Query::new_nearest(sparse_input(k)))
                    .using(KEYWORDS_VECTOR)
            }
            Ranking::Hybrid {
                dense,
                keywords,
                depth,
            } => {
                let depth = depth.max(top_k) as u64;
                let mut by_meaning = PrefetchQueryBuilder::default()
                    .query(Query::new_nearest(dense))
                    .limit(depth);
                let mut by_keywords = PrefetchQueryBuilder::default()
                    .query(Query::new_nearest(sparse_input(keywords)))
                    .using(KEYWORDS_VECTOR)
                    .limit(depth);
                if let Some(filter) = &filter {
                    by_meaning = by_meaning.filter(filter.clone());
                    by_keywords = by_keywords.filter(filter.clone());
                }
                request = request
                    .add_prefetch(by_meaning)
                    .add_prefetch(by_keywords)
                    .query(Query::new_rrf(Rrf {
                        k: Some(RRF_K as u32),
                        weights: Vec::new(),
                    }));
            }
        }
        if let Some(filter) = filter {
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

    async fn chunk(&self, collection: &str, id: u64) -> Result<Option<ChunkPayload>, VectorError> {
        let response = self
            .client
            .get_points(
                GetPointsBuilder::new(self.name(collection), vec![id.into()])
                    .with_payload(true)
                    .with_vectors(false),
            )
            .await
            .map_err(|e| self.error(collection, "cannot read a chunk", e))?;
        response
            .result
            .into_iter()
            .next()
            .map(|p| payload_of(p.payload))
            .transpose()
    }

    async fn chunks(
        &self,
        collection: &str,
        source: &str,
    ) -> Result<Vec<ChunkPayload>, VectorError> {
        let mut chunks = self
            .scroll_all(
                collection,
                QdrantFilter::must([keyword(SOURCE_FIELD, source)]),
            )
            .await?;
        chunks.sort_by_key(|c| c.chunk_index);
        Ok(chunks)
    }

    async fn files(&self, collection: &str) -> Result<Vec<FileRecord>, VectorError> {
        Ok(self
            .scroll_all(collection, first_chunks())
            .await?
            .into_iter()
            .map(FileRecord::from)
            .collect())
    }

    async fn file_count(&self, collection: &str) -> Result<u64, VectorError> {
        let response = self
            .client
            .count(
                CountPointsBuilder::new(self.name(collection))
                    .filter(first_chunks())
                    .exact(true),
            )
            .await
            .map_err(|e| self.error(collection, "count failed", e))?;
        Ok(response.result.map(|r| r.count).unwrap_or(0))
    }

    async fn files_page(
        &self,
        collection: &str,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<FileRecord>, Option<u64>), VectorError> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let (chunks, next) = self
            .scroll_page(
                collection,
                &first_chunks(),
                cursor.map(PointId::from),
                limit,
            )
            .await?;
        let next = match next.and_then(|id| id.point_id_options) {
            Some(PointIdOptions::Num(n)) => Some(n),
            Some(other) => {
                return Err(VectorError::Backend(format!(
                    "a point id nova did not write: {other:?}"
                )));
            }
            None => None,
        };
        Ok((chunks.into_iter().map(FileRecord::from).collect(), next))
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
