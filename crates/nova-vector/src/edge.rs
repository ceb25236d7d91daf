//! The embedded backend: one qdrant-edge shard per collection, in
//! `DIR/<collection>/`. qdrant-edge is synchronous, so every call runs on
//! tokio's blocking pool; its write-ahead log makes each update durable,
//! and a directory can be opened by one process only.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use parking_lot::RwLock;
use qdrant_edge::{
    Condition, CountRequest, CreateIndex, CreateVectorName, DEFAULT_VECTOR_NAME, Distance,
    EdgeConfig, EdgeShard, EdgeSparseVectorParams, EdgeVectorParams, FieldCondition,
    FieldIndexOperations, Filter as EdgeFilter, Fusion, JsonPath, KeywordIndexParams, Match,
    Modifier, NamedQuery, PayloadFieldSchema, PayloadSchemaParams, PayloadSchemaType,
    PointInsertOperations, PointOperations, PointStruct, PrefetchBuilder, QueryEnum,
    QueryRequestBuilder, RetrieveRequest, ScoringQuery, ScrollRequest, SparseVector,
    SparseVectorConfig, UpdateOperation, ValueVariants, Vector, VectorInternal, VectorNameConfig,
    VectorNameOperations, Vectors, WithPayloadInterface,
};

use super::{
    CHUNK_INDEX_FIELD, ChunkPayload, FileRecord, Filter, IndexKind, KEYWORDS_VECTOR, Point, RRF_K,
    Ranking, SOURCE_FIELD, Scored, Settings, Sparse, VectorError, VectorIndex, meta_path,
    valid_collection,
};

/// Files scrolled per page when listing a collection's files.
const SCROLL_PAGE: usize = 1024;

struct Shard {
    shard: EdgeShard,
    /// Payload fields that have an index (created on first use for
    /// metadata keys).
    indexed: RwLock<HashSet<String>>,
    optimizing: AtomicBool,
}

/// qdrant-edge shards under one directory.
pub struct EdgeIndex {
    dir: PathBuf,
    shards: RwLock<HashMap<String, Arc<Shard>>>,
    /// Held while creating a collection: two creators of one name would
    /// both open its new WAL, and the second would fail on the lock.
    creating: tokio::sync::Mutex<()>,
}

fn backend_error(what: &str, e: impl std::fmt::Display) -> VectorError {
    VectorError::Backend(format!("{what}: {e}"))
}

impl EdgeIndex {
    /// Opens every collection already under `dir` (creating `dir`).
    pub fn open(dir: &Path) -> Result<Self, VectorError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| backend_error(&format!("cannot create {}", dir.display()), e))?;
        let mut shards = HashMap::new();
        let entries = std::fs::read_dir(dir)
            .map_err(|e| backend_error(&format!("cannot read {}", dir.display()), e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !valid_collection(&name) || !entry.path().is_dir() {
                continue;
            }
            let shard = EdgeShard::load(&entry.path(), None).map_err(|e| {
                backend_error(
                    &format!(
                        "cannot open the index at {} (is another nova using this data directory?)",
                        entry.path().display()
                    ),
                    e,
                )
            })?;
            if !shard.config().sparse_vectors.contains_key(KEYWORDS_VECTOR) {
                // Made before keyword search: its chunks are re-indexed
                // with keywords by the next ingest (their records say so).
                add_keywords_vector(&shard).map_err(|e| {
                    backend_error(
                        &format!("cannot add keyword search to {}", entry.path().display()),
                        e,
                    )
                })?;
                tracing::info!(collection = name, "keyword vector added to the collection");
            }
            let indexed = shard
                .info()
                .map(|i| i.payload_schema.keys().map(|k| k.to_string()).collect())
                .unwrap_or_default();
            shards.insert(
                name,
                Arc::new(Shard {
                    shard,
                    indexed: RwLock::new(indexed),
                    optimizing: AtomicBool::new(false),
                }),
            );
        }
        Ok(EdgeIndex {
            dir: dir.to_owned(),
            shards: RwLock::new(shards),
            creating: tokio::sync::Mutex::new(()),
        })
    }

    /// Where `collection`'s settings are kept: beside its shard (a name
    /// with a dot is never a collection's).
    fn settings_file(&self, collection: &str) -> PathBuf {
        self.dir.join(format!("{collection}.settings.json"))
    }

    fn shard(&self, collection: &str) -> Result<Arc<Shard>, VectorError> {
        self.shards
            .read()
            .get(collection)
            .cloned()
            .ok_or_else(|| VectorError::UnknownCollection(collection.to_owned()))
    }

    /// Runs `f` on `collection`'s shard on the blocking pool.
    async fn with_shard<T, F>(&self, collection: &str, f: F) -> Result<T, VectorError>
    where
        T: Send + 'static,
        F: FnOnce(&Shard) -> Result<T, VectorError> + Send + 'static,
    {
        let shard = self.shard(collection)?;
        tokio::task::spawn_blocking(move || f(&shard))
            .await
            .map_err(|e| backend_error("index task failed", e))?
    }
}

fn path(field: &str) -> Result<JsonPath, VectorError> {
    field
        .parse::<JsonPath>()
        .map_err(|_| VectorError::Backend(format!("invalid payload path {field:?}")))
}

fn keyword(field: &str, value: &str) -> Result<Condition, VectorError> {
    Ok(Condition::Field(FieldCondition::new_match(
        path(field)?,
        Match::new_value(ValueVariants::String(value.to_owned())),
    )))
}

fn integer(field: &str, value: i64) -> Result<Condition, VectorError> {
    Ok(Condition::Field(FieldCondition::new_match(
        path(field)?,
        Match::new_value(ValueVariants::Integer(value)),
    )))
}

fn must(conditions: Vec<Condition>) -> Option<EdgeFilter> {
    if conditions.is_empty() {
        return None;
    }
    let mut filter = EdgeFilter::new_must(conditions[0].clone());
    filter.must = Some(conditions);
    Some(filter)
}

/// The IDF-weighted sparse vector keyword search ranks by.
fn keywords_params() -> EdgeSparseVectorParams {
    EdgeSparseVectorParams::builder()
        .modifier(Modifier::Idf)
        .build()
}

/// Adds the keyword vector to a shard made without it.
fn add_keywords_vector(shard: &EdgeShard) -> Result<(), String> {
    let config = serde_json::to_value(SparseVectorConfig {
        modifier: Some(Modifier::Idf),
        datatype: None,
    })
    .and_then(|sparse| {
        serde_json::from_value::<VectorNameConfig>(serde_json::json!({ "sparse": sparse }))
    })
    .map_err(|e| e.to_string())?;
    shard
        .update(UpdateOperation::VectorNameOperation(
            VectorNameOperations::CreateVectorName(CreateVectorName {
                vector_name: KEYWORDS_VECTOR.into(),
                config,
            }),
        ))
        .map_err(|e| e.to_string())
}

fn sparse(keywords: Sparse) -> SparseVector {
    SparseVector {
        indices: keywords.indices,
        values: keywords.values,
    }
}

fn schema(kind: IndexKind) -> PayloadFieldSchema {
    PayloadFieldSchema::FieldType(match kind {
        IndexKind::Keyword => PayloadSchemaType::Keyword,
        IndexKind::Integer => PayloadSchemaType::Integer,
        IndexKind::Bool => PayloadSchemaType::Bool,
        IndexKind::Float => PayloadSchemaType::Float,
        IndexKind::Datetime => PayloadSchemaType::Datetime,
    })
}

impl Shard {
    /// Creates a payload index on `field` unless it has one.
    fn ensure_index(&self, field: &str, schema: PayloadFieldSchema) -> Result<(), VectorError> {
        if self.indexed.read().contains(field) {
            return Ok(());
        }
        self.shard
            .update(UpdateOperation::FieldIndexOperation(
                FieldIndexOperations::CreateIndex(CreateIndex {
                    field_name: path(field)?,
                    field_schema: Some(schema),
                }),
            ))
            .map_err(|e| backend_error(&format!("cannot index {field}"), e))?;
        self.indexed.write().insert(field.to_owned());
        Ok(())
    }

    fn filter(&self, filter: &Filter) -> Result<Option<EdgeFilter>, VectorError> {
        for (key, test) in &filter.meta {
            // Unindexed filters scan every payload (~100x slower). A key
            // indexed as one kind keeps that index: another kind of test
            // on it is answered by a scan.
            self.ensure_index(&meta_path(key), schema(test.index_kind()))?;
        }
        filter
            .to_qdrant_json()
            .map(|json| {
                serde_json::from_value::<EdgeFilter>(json)
                    .map_err(|e| VectorError::Backend(format!("invalid filter: {e}")))
            })
            .transpose()
    }
}

/// The chunk 0s: one record per document.
fn first_chunks() -> Result<Option<EdgeFilter>, VectorError> {
    Ok(must(vec![integer(CHUNK_INDEX_FIELD, 0)?]))
}

/// One page of the chunks passing `filter`, from `offset`; and where the
/// next page starts, if there is one.
fn scroll_page(
    s: &Shard,
    filter: &Option<EdgeFilter>,
    offset: Option<qdrant_edge::PointId>,
    limit: usize,
) -> Result<(Vec<ChunkPayload>, Option<qdrant_edge::PointId>), VectorError> {
    let request = ScrollRequest {
        offset,
        limit: Some(limit),
        filter: filter.clone(),
        with_payload: Some(WithPayloadInterface::Bool(true)),
        ..ScrollRequest::new()
    };
    let (records, next) = s
        .shard
        .scroll(request)
        .map_err(|e| backend_error("cannot list chunks", e))?;
    let chunks = records
        .into_iter()
        .map(|r| payload_of(r.payload))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((chunks, next))
}

/// Every chunk passing `filter`.
fn scroll_all(s: &Shard, filter: Option<EdgeFilter>) -> Result<Vec<ChunkPayload>, VectorError> {
    let mut out = Vec::new();
    let mut offset = None;
    loop {
        let (chunks, next) = scroll_page(s, &filter, offset, SCROLL_PAGE)?;
        out.extend(chunks);
        match next {
            Some(next) => offset = Some(next),
            None => return Ok(out),
        }
    }
}

fn payload_of(payload: Option<qdrant_edge::Payload>) -> Result<ChunkPayload, VectorError> {
    let map = payload.map(|p| p.0).unwrap_or_default();
    serde_json::from_value(serde_json::Value::Object(map.into_iter().collect()))
        .map_err(|e| backend_error("a stored chunk has an unexpected payload", e))
}

#[async_trait]
impl VectorIndex for EdgeIndex {
    fn backend(&self) -> &'static str {
        "qdrant-edge"
    }

    async fn collections(&self) -> Result<Vec<String>, VectorError> {
        let mut names: Vec<String> = self.shards.read().keys().cloned().collect();
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
        if self.shards.read().contains_key(collection) {
            return Ok(false);
        }
        let _creating = self.creating.lock().await;
        if self.shards.read().contains_key(collection) {
            return Ok(false);
        }
        let path = self.dir.join(collection);
        let settings_file = self.settings_file(collection);
        let settings = serde_json::to_vec(settings)
            .map_err(|e| backend_error("cannot encode the settings", e))?;
        let created = tokio::task::spawn_blocking(move || -> Result<Shard, VectorError> {
            // Settings first: a collection is only listed once its shard
            // exists, and then its settings are there.
            std::fs::write(&settings_file, settings)
                .map_err(|e| backend_error("cannot write the collection's settings", e))?;
            let config = EdgeConfig::builder()
                .vector(
                    DEFAULT_VECTOR_NAME,
                    EdgeVectorParams::builder(dim, Distance::Cosine).build(),
                )
                .sparse_vector(KEYWORDS_VECTOR, keywords_params())
                .build();
            let shard = EdgeShard::new(&path, config)
                .map_err(|e| backend_error("cannot create the collection", e))?;
            let shard = Shard {
                shard,
                indexed: RwLock::new(HashSet::new()),
                optimizing: AtomicBool::new(false),
            };
            shard.ensure_index(
                SOURCE_FIELD,
                PayloadFieldSchema::FieldParams(PayloadSchemaParams::Keyword(KeywordIndexParams {
                    prefix: Some(true),
                    ..KeywordIndexParams::default()
                })),
            )?;
            shard.ensure_index(
                CHUNK_INDEX_FIELD,
                PayloadFieldSchema::FieldType(PayloadSchemaType::Integer),
            )?;
            Ok(shard)
        })
        .await
        .map_err(|e| backend_error("index task failed", e))??;
        self.shards
            .write()
            .entry(collection.to_owned())
            .or_insert_with(|| Arc::new(created));
        Ok(true)
    }

    async fn settings(&self, collection: &str) -> Result<Settings, VectorError> {
        self.shard(collection)?;
        let file = self.settings_file(collection);
        tokio::task::spawn_blocking(move || match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| backend_error("the collection's settings are unreadable", e)),
            // Made before collections had settings.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::new()),
            Err(e) => Err(backend_error("cannot read the collection's settings", e)),
        })
        .await
        .map_err(|e| backend_error("index task failed", e))?
    }

    async fn upsert(&self, collection: &str, points: Vec<Point>) -> Result<(), VectorError> {
        if points.is_empty() {
            return Ok(());
        }
        let mut list = Vec::with_capacity(points.len());
        for point in points {
            let payload = serde_json::to_value(&point.payload)
                .map_err(|e| backend_error("cannot encode a payload", e))?;
            let vectors: Vectors = match point.keywords {
                Some(k) if !k.is_empty() => Vectors::new_named([
                    (
                        DEFAULT_VECTOR_NAME.to_owned(),
                        Vector::new_dense(point.vector),
                    ),
                    (
                        KEYWORDS_VECTOR.to_owned(),
                        Vector(VectorInternal::Sparse(sparse(k))),
                    ),
                ]),
                _ => point.vector.into(),
            };
            list.push(PointStruct::new(point.id, vectors, payload).into());
        }
        self.with_shard(collection, move |s| {
            s.shard
                .update(UpdateOperation::PointOperation(
                    PointOperations::UpsertPoints(PointInsertOperations::PointsList(list)),
                ))
                .map_err(|e| backend_error("upsert failed", e))
        })
        .await
    }

    async fn delete_source(&self, collection: &str, source: &str) -> Result<(), VectorError> {
        let Some(filter) = must(vec![keyword(SOURCE_FIELD, source)?]) else {
            return Ok(());
        };
        self.with_shard(collection, move |s| {
            s.shard
                .update(UpdateOperation::PointOperation(
                    PointOperations::DeletePointsByFilter(filter),
                ))
                .map_err(|e| backend_error("delete failed", e))
        })
        .await
    }

    async fn query(
        &self,
        collection: &str,
        ranking: Ranking,
        top_k: usize,
        filter: &Filter,
    ) -> Result<Vec<Scored>, VectorError> {
        let filter = filter.clone();
        self.with_shard(collection, move |s| {
            let filter = s.filter(&filter)?;
            let dense = |v: Vec<f32>| {
                ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
                    query: VectorInternal::Dense(v),
                    using: None,
                }))
            };
            let keywords = |k: Sparse| {
                ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
                    query: VectorInternal::Sparse(sparse(k)),
                    using: Some(KEYWORDS_VECTOR.into()),
                }))
            };
            let mut request =
                QueryRequestBuilder::new(top_k).with_payload(WithPayloadInterface::Bool(true));
            match ranking {
                Ranking::Dense(v) => request = request.query(dense(v)),
                Ranking::Keywords(k) => request = request.query(keywords(k)),
                Ranking::Hybrid {
                    dense: v,
                    keywords: k,
                    depth,
                } => {
                    let mut prefetches = Vec::with_capacity(2);
                    for query in [dense(v), keywords(k)] {
                        let mut prefetch = PrefetchBuilder::new(depth.max(top_k)).query(query);
                        if let Some(filter) = &filter {
                            prefetch = prefetch.filter(filter.clone());
                        }
                        prefetches.push(prefetch.build());
                    }
                    request =
                        request
                            .prefetches(prefetches)
                            .query(ScoringQuery::Fusion(Fusion::Rrf {
                                k: RRF_K,
                                weights: None,
                            }));
                }
            }
            if let Some(filter) = filter {
                request = request.filter(filter);
            }
            let points = s
                .shard
                .query(request.build())
                .map_err(|e| backend_error("search failed", e))?;
            points
                .into_iter()
                .map(|p| {
                    Ok(Scored {
                        score: p.score,
                        payload: payload_of(p.payload)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn chunk(&self, collection: &str, id: u64) -> Result<Option<ChunkPayload>, VectorError> {
        self.with_shard(collection, move |s| {
            let mut request = RetrieveRequest::new(vec![id.into()]);
            request.with_payload = Some(WithPayloadInterface::Bool(true));
            let records = s
                .shard
                .retrieve(request)
                .map_err(|e| backend_error("cannot read a chunk", e))?;
            records
                .into_iter()
                .next()
                .map(|r| payload_of(r.payload))
                .transpose()
        })
        .await
    }

    async fn chunks(
        &self,
        collection: &str,
        source: &str,
    ) -> Result<Vec<ChunkPayload>, VectorError> {
        let filter = must(vec![keyword(SOURCE_FIELD, source)?]);
        let mut chunks = self
            .with_shard(collection, move |s| scroll_all(s, filter))
            .await?;
        chunks.sort_by_key(|c| c.chunk_index);
        Ok(chunks)
    }

    async fn files(&self, collection: &str) -> Result<Vec<FileRecord>, VectorError> {
        let filter = first_chunks()?;
        self.with_shard(collection, move |s| {
            Ok(scroll_all(s, filter)?
                .into_iter()
                .map(FileRecord::from)
                .collect())
        })
        .await
    }

    async fn file_count(&self, collection: &str) -> Result<u64, VectorError> {
        let filter = first_chunks()?;
        self.with_shard(collection, move |s| {
            s.shard
                .count(CountRequest {
                    filter,
                    exact: true,
                })
                .map(|n| n as u64)
                .map_err(|e| backend_error("count failed", e))
        })
        .await
    }

    async fn files_page(
        &self,
        collection: &str,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<FileRecord>, Option<u64>), VectorError> {
        let filter = first_chunks()?;
        self.with_shard(collection, move |s| {
            let (chunks, next) = scroll_page(s, &filter, cursor.map(Into::into), limit)?;
            let next = match next {
                Some(qdrant_edge::PointId::NumId(n)) => Some(n),
                Some(other) => {
                    return Err(VectorError::Backend(format!(
                        "a point id nova did not write: {other}"
                    )));
                }
                None => None,
            };
            Ok((chunks.into_iter().map(FileRecord::from).collect(), next))
        })
        .await
    }

    async fn count(&self, collection: &str) -> Result<u64, VectorError> {
        self.with_shard(collection, |s| {
            s.shard
                .count(CountRequest {
                    filter: None,
                    exact: true,
                })
                .map(|n| n as u64)
                .map_err(|e| backend_error("count failed", e))
        })
        .await
    }

    async fn drop_collection(&self, collection: &str) -> Result<(), VectorError> {
        let Some(shard) = self.shards.write().remove(collection) else {
            return Err(VectorError::UnknownCollection(collection.to_owned()));
        };
        let path = self.dir.join(collection);
        let settings = self.settings_file(collection);
        tokio::task::spawn_blocking(move || {
            // The shard must be closed (its WAL lock released) first;
            // a search still holding it keeps the files until it ends.
            drop(shard);
            std::fs::remove_dir_all(&path)
                .map_err(|e| backend_error("cannot remove the collection", e))?;
            match std::fs::remove_file(&settings) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(backend_error("cannot remove the collection's settings", e))
                }
                _ => Ok(()),
            }
        })
        .await
        .map_err(|e| backend_error("index task failed", e))?
    }

    async fn optimize(&self, collection: &str) -> Result<(), VectorError> {
        let shard = self.shard(collection)?;
        if shard.optimizing.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Building the HNSW graph takes seconds per 10k points; queries
        // and upserts keep working meanwhile, so it runs detached.
        let spawned = std::thread::Builder::new()
            .name("nova-index-optimize".into())
            .spawn({
                let shard = shard.clone();
                let collection = collection.to_owned();
                move || {
                    let start = std::time::Instant::now();
                    let result = shard.shard.flush().and_then(|()| shard.shard.optimize());
                    match result {
                        Ok(changed) => tracing::info!(
                            collection,
                            changed,
                            ms = start.elapsed().as_millis() as u64,
                            "index optimised"
                        ),
                        Err(e) => {
                            tracing::warn!(collection, error = %e, "index optimisation failed")
                        }
                    }
                    shard.optimizing.store(false, Ordering::Release);
                }
            });
        if let Err(e) = spawned {
            shard.optimizing.store(false, Ordering::Release);
            return Err(backend_error("cannot start the optimiser", e));
        }
        Ok(())
    }
}
