//! The knowledge API: `POST /rag/query`, `GET /rag/stats`,
//! `POST /rag/reload` and `GET /rag/ingests/{id}`; collections and their
//! documents under `/rag/collections`. All behind a per-credential rate
//! limit, and a key held to some collections sees no other: one outside
//! them is answered as if it did not exist.

use std::path::PathBuf;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query as UrlQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::{Authenticated, ClientIp, Need, scope};
use super::error::{ApiError, ErrorBody};
use super::{JsonBody, MaybeJsonBody};
use crate::auth::{Principal, Scope};
use crate::knowledge::documents::Upload;
use crate::knowledge::ingest::{Ingestor, Source};
use crate::knowledge::{KnowledgeError, Query, filter_of};
use crate::ratelimit::Verdict;
use crate::vector::valid_collection;
use nova_client::QueryAnswer;
use nova_client::types as wire;

impl From<KnowledgeError> for ApiError {
    fn from(e: KnowledgeError) -> Self {
        let message = e.to_string();
        match e {
            KnowledgeError::EmptyQuery
            | KnowledgeError::QueryTooLong { .. }
            | KnowledgeError::BadTopK
            | KnowledgeError::BadFilter(_)
            | KnowledgeError::BadCollection(_)
            | KnowledgeError::BadDocument(_) => ApiError::bad_request("invalid_request", message),
            KnowledgeError::UnknownCollection(_) => {
                ApiError::not_found("unknown_collection", message)
            }
            KnowledgeError::UnknownDocument { .. } => {
                ApiError::not_found("unknown_document", message)
            }
            KnowledgeError::NoLoader(_) => {
                ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "no_loader", message)
            }
            KnowledgeError::DocumentRejected(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "document_rejected",
                message,
            ),
            KnowledgeError::Disabled(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "knowledge_disabled",
                message,
            ),
            KnowledgeError::Embed(_) | KnowledgeError::Index(_) | KnowledgeError::Ingest(_) => {
                tracing::warn!(error = %message, "knowledge query failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "knowledge_unavailable",
                    message,
                )
            }
        }
    }
}

const RATE_LIMITED: &str =
    "Over the rate limit of this credential (`rate_limited`); see `Retry-After`";

/// 404 for a collection outside the caller's key, worded as for one that
/// does not exist.
fn visible(caller: &Principal, collection: &str) -> Result<(), ApiError> {
    if caller.may_use(collection) {
        Ok(())
    } else {
        Err(KnowledgeError::UnknownCollection(collection.to_owned()).into())
    }
}

/// Searches the knowledge base.
#[utoipa::path(
    post,
    path = "/rag/query",
    operation_id = "query_knowledge",
    tag = "knowledge",
    security(("bearer" = ["rag:query"])),
    request_body = nova_client::Query,
    responses(
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `rag:query` scope", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "The body is not `application/json`", body = ErrorBody),
        (status = OK, description = "The best chunks", body = QueryAnswer),
        (status = BAD_REQUEST, description = "Not JSON (`invalid_json`) or not a valid query (`invalid_request`)", body = ErrorBody),
        (status = NOT_FOUND, description = "No such collection (`unknown_collection`)", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "Body over the JSON body limit", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = RATE_LIMITED, body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Knowledge base disabled (`knowledge_disabled`) or failing (`knowledge_unavailable`)", body = ErrorBody),
    )
)]
pub async fn query(
    caller: Need<scope::RagQuery>,
    State(state): State<AppState>,
    JsonBody(request): JsonBody<nova_client::Query>,
) -> Result<Json<QueryAnswer>, ApiError> {
    let query = Query::new(
        request.query,
        request.top_k,
        request.collection,
        filter_of(request.filter)?,
    )?
    .with_mode(request.mode);
    visible(&caller.0, &query.collection)?;
    Ok(Json(state.knowledge.query(&query).await?))
}

/// Collections, documents, the model, the cache and ingest progress.
#[utoipa::path(
    get,
    path = "/rag/stats",
    operation_id = "knowledge_stats",
    tag = "knowledge",
    security(("bearer" = ["rag:query"])),
    responses(
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `rag:query` scope", body = ErrorBody),
        (status = OK, description = "The knowledge base's figures", body = wire::RagStats),
        (status = TOO_MANY_REQUESTS, description = RATE_LIMITED, body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Knowledge base disabled (`knowledge_disabled`) or its index failing (`knowledge_unavailable`)", body = ErrorBody),
    )
)]
pub async fn stats(
    caller: Need<scope::RagQuery>,
    State(state): State<AppState>,
) -> Result<Json<wire::RagStats>, ApiError> {
    let knowledge = &state.knowledge;
    let inner = knowledge.inner()?;
    let mut names = inner
        .index
        .collections()
        .await
        .map_err(KnowledgeError::from)?;
    names.retain(|n| caller.0.may_use(n));
    let mut collections = Vec::with_capacity(names.len());
    let (mut documents, mut chunks) = (0u64, 0u64);
    for name in names {
        let files = inner
            .index
            .file_count(&name)
            .await
            .map_err(KnowledgeError::from)?;
        let count = inner
            .index
            .count(&name)
            .await
            .map_err(KnowledgeError::from)?;
        documents += files;
        chunks += count;
        collections.push(wire::CollectionStats {
            documents: files,
            name,
            chunks: count,
        });
    }
    let ingest = state.ingestor.as_ref().map(|i| {
        let status = i.status();
        let seen = |r: &wire::IngestReport| caller.0.may_use(&r.collection);
        wire::IngestState {
            running: status.running.filter(seen),
            last: status.last.filter(seen),
            queued: status.queued.iter().map(ToString::to_string).collect(),
        }
    });
    let model = inner.embedder.info();
    let cache = inner.cache.stats();
    Ok(Json(wire::RagStats {
        ready: knowledge.is_ready(),
        collections,
        documents,
        chunks,
        model: wire::ModelInfo {
            name: model.name.clone(),
            dimensions: model.dimensions as u64,
            max_tokens: model.max_tokens as u64,
        },
        index: wire::IndexStats {
            backend: inner.index.backend().to_owned(),
        },
        cache: wire::CacheStats {
            backend: cache.backend.to_owned(),
            ttl_s: cache.ttl_s,
            hits: cache.hits,
            misses: cache.misses,
        },
        rate_limit: wire::RateLimitStats {
            backend: state.limiter.backend().to_owned(),
            enabled: state.limiter.enabled(),
        },
        ingest,
        sources: state.ingestor.as_ref().map(|i| {
            i.sources()
                .iter()
                .filter(|s| caller.0.may_use(&s.collection))
                .map(|s| wire::Source {
                    collection: s.collection.clone(),
                    dir: s.dir.display().to_string(),
                })
                .collect()
        }),
    }))
}

fn ingestor(state: &AppState) -> Result<&std::sync::Arc<Ingestor>, ApiError> {
    state.knowledge.inner()?;
    state.ingestor.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "knowledge_disabled",
            "this host does not ingest",
        )
    })
}

/// Which source a reload names: every configured one (none), a configured
/// collection, or a directory (into the collection named, or the one
/// configured for it, or one named after it).
fn source_of(ingestor: &Ingestor, request: wire::Reload) -> Result<Option<Source>, ApiError> {
    let configured = ingestor.sources();
    let Some(dir) = request.dir.map(PathBuf::from) else {
        return match request.collection {
            None => Ok(None),
            Some(collection) => configured
                .iter()
                .find(|s| s.collection == collection)
                .cloned()
                .map(Some)
                .ok_or_else(|| {
                    ApiError::not_found(
                        "unknown_collection",
                        format!("no configured directory for collection {collection:?}; send \"dir\" too"),
                    )
                }),
        };
    };
    if !dir.is_absolute() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "dir must be an absolute path on the host",
        ));
    }
    if !dir.is_dir() {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("{} is not a directory on the host", dir.display()),
        ));
    }
    let same_dir =
        |s: &&Source| s.dir == dir || (s.dir.canonicalize().ok() == dir.canonicalize().ok());
    let collection = match request.collection {
        Some(c) => c,
        None => match configured.iter().find(same_dir) {
            Some(s) => s.collection.clone(),
            None => collection_name_of(&dir),
        },
    };
    if !valid_collection(&collection) {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("invalid collection name {collection:?}: use 1 to 64 of a-z, 0-9, '-' and '_'"),
        ));
    }
    // A collection mirrors its directory: ingesting another directory into
    // a configured collection would delete that collection's documents.
    if let Some(s) = configured.iter().find(|s| s.collection == collection)
        && !same_dir(&s)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "collection {collection:?} mirrors {}; ingesting {} into it would remove its documents — choose another collection",
                s.dir.display(),
                dir.display()
            ),
        ));
    }
    Ok(Some(Source { collection, dir }))
}

/// A collection name from a directory's name: lowercase, other characters
/// as '-'.
fn collection_name_of(dir: &std::path::Path) -> String {
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    let name = name.trim_matches('-').to_owned();
    if name.is_empty() {
        "documents".to_owned()
    } else {
        name
    }
}

/// Re-ingests directories into the knowledge base, in the background.
#[utoipa::path(
    post,
    path = "/rag/reload",
    operation_id = "reload_knowledge",
    tag = "knowledge",
    security(("bearer" = ["rag:write"])),
    request_body(content = Option<wire::Reload>, description = "Empty for every configured directory"),
    responses(
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `rag:write` scope, or names a `dir` without the `admin` scope", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "The body is not `application/json`", body = ErrorBody),
        (status = ACCEPTED, description = "Ingest started", body = wire::ReloadStarted),
        (status = BAD_REQUEST, description = "Not JSON, or a bad `dir` or `collection` (`invalid_json`, `invalid_request`)", body = ErrorBody),
        (status = NOT_FOUND, description = "No configured directory for that collection (`unknown_collection`)", body = ErrorBody),
        (status = CONFLICT, description = "The collection mirrors another directory (`conflict`)", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "Body over the JSON body limit", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = RATE_LIMITED, body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Knowledge base disabled, or this host does not ingest (`knowledge_disabled`)", body = ErrorBody),
    )
)]
pub async fn reload(
    caller: Need<scope::RagWrite>,
    State(state): State<AppState>,
    MaybeJsonBody(request): MaybeJsonBody<wire::Reload>,
) -> Result<(StatusCode, Json<wire::ReloadStarted>), ApiError> {
    let ingestor = ingestor(&state)?;
    let request = request.unwrap_or_default();
    // Any directory of the host is the host's files: only an admin may
    // have one read into a collection others can query.
    if request.dir.is_some() && !caller.0.scopes.allow(Scope::Admin) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "naming a directory to ingest (\"dir\") needs the admin scope: any directory of \
             the host can be named",
        ));
    }
    let source = source_of(ingestor, request)?;
    let collections: Vec<String> = match &source {
        Some(s) => vec![s.collection.clone()],
        None => ingestor
            .sources()
            .iter()
            .map(|s| s.collection.clone())
            .collect(),
    };
    for collection in &collections {
        visible(&caller.0, collection)?;
    }
    let id = ingestor.start(source);
    Ok((
        StatusCode::ACCEPTED,
        Json(wire::ReloadStarted {
            id: id.to_string(),
            status: "started".to_owned(),
            collections,
        }),
    ))
}

/// An ingest's progress, or its report once finished.
#[utoipa::path(
    get,
    path = "/rag/ingests/{id}",
    operation_id = "get_ingest",
    tag = "knowledge",
    security(("bearer" = ["rag:query"]), ("bearer" = ["rag:write"])),
    params(("id" = String, Path, format = "uuid", description = "The id `POST /rag/reload` answered")),
    responses(
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential holds neither `rag:query` nor `rag:write`", body = ErrorBody),
        (status = OK, description = "Progress or report", body = wire::IngestProgress),
        (status = BAD_REQUEST, description = "Not an ingest id (`invalid_id`)", body = ErrorBody),
        (status = NOT_FOUND, description = "No such ingest, or too old to be kept (`not_found`)", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = RATE_LIMITED, body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Knowledge base disabled (`knowledge_disabled`)", body = ErrorBody),
    )
)]
pub async fn ingest_report(
    Authenticated(caller): Authenticated,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<wire::IngestProgress>, ApiError> {
    // Who may start an ingest may follow it; who may query may too.
    if !(caller.scopes.allow(Scope::RagQuery) || caller.scopes.allow(Scope::RagWrite)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this credential ({}) lacks the scope rag:query or rag:write",
                caller.name
            ),
        ));
    }
    let ingestor = ingestor(&state)?;
    let id = uuid::Uuid::parse_str(&id)
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{id:?} is not an ingest id")))?;
    // One id may cover several collections: running until the last is done.
    let queued = ingestor.is_queued(id);
    match ingestor.report(id) {
        // Another collection's report, to a key held away from it: as if
        // there were none.
        Some((report, _)) if !caller.may_use(&report.collection) => {
            Err(ApiError::not_found("not_found", format!("no ingest {id}")))
        }
        Some((report, running)) => Ok(Json(wire::IngestProgress {
            running: running || queued,
            queued: false,
            report: Some(report),
        })),
        None => match ingestor.is_queued(id) {
            true => Ok(Json(wire::IngestProgress {
                running: false,
                queued: true,
                report: None,
            })),
            false => Err(ApiError::not_found("not_found", format!("no ingest {id}"))),
        },
    }
}

const COLLECTION: &str = "The collection: 1 to 64 of a-z, 0-9, '-' and '_'";
const DOCUMENT: &str = "The document's id: 1 to 512 bytes, no control characters; a `/` in it \
                        is sent as `%2F`";

/// The collections the caller may see, with their directories.
fn with_dir(state: &AppState, mut info: wire::CollectionInfo) -> wire::CollectionInfo {
    info.dir = state.ingestor.as_ref().and_then(|i| {
        i.sources()
            .iter()
            .find(|s| s.collection == info.name)
            .map(|s| s.dir.display().to_string())
    });
    info
}

/// Creates a collection (with optional settings); one that exists is
/// answered as it is.
#[utoipa::path(
    put,
    path = "/rag/collections/{collection}",
    operation_id = "create_collection",
    tag = "knowledge",
    security(("bearer" = ["rag:write"])),
    params(("collection" = String, Path, pattern = r"^[a-z0-9_-]{1,64}$", description = COLLECTION)),
    request_body(content = Option<wire::CollectionSettings>, description = "Optional settings"),
    responses(
        (status = CREATED, description = "Created", body = wire::CollectionInfo),
        (status = OK, description = "It existed; its settings are unchanged", body = wire::CollectionInfo),
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `rag:write` scope", body = ErrorBody),
        (status = NOT_FOUND, description = "Outside the collections of the caller's key (`unknown_collection`)", body = ErrorBody),
        (status = BAD_REQUEST, description = "A bad name or settings (`invalid_request`, `invalid_json`)", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "The body is not `application/json`", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = RATE_LIMITED, body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Knowledge base disabled or failing", body = ErrorBody),
    )
)]
pub async fn create_collection(
    caller: Need<scope::RagWrite>,
    State(state): State<AppState>,
    Path(collection): Path<String>,
    MaybeJsonBody(settings): MaybeJsonBody<wire::CollectionSettings>,
) -> Result<(StatusCode, Json<wire::CollectionInfo>), ApiError> {
    visible(&caller.0, &collection)?;
    let (info, created) = state
        .knowledge
        .create_collection(&collection, &settings.unwrap_or_default())
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut info = with_dir(&state, info);
    info.created = created;
    Ok((status, Json(info)))
}

/// The collections the credential may see, with their figures.
#[utoipa::path(
    get,
    path = "/rag/collections",
    operation_id = "list_collections",
    tag = "knowledge",
    security(("bearer" = ["rag:query"])),
    responses(
        (status = OK, description = "By name", body = wire::CollectionList),
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `rag:query` scope", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = RATE_LIMITED, body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Knowledge base disabled or failing", body = ErrorBody),
    )
)]
pub async fn list_collections(
    caller: Need<scope::RagQuery>,
    State(state): State<AppState>,
) -> Result<Json<wire::CollectionList>, ApiError> {
    let inner = state.knowledge.inner()?;
    let names = inner
        .index
        .collections()
        .await
        .map_err(KnowledgeError::from)?;
    let mut collections = Vec::new();
    for name in names.iter().filter(|n| caller.0.may_use(n)) {
        match state.knowledge.collection(name).await {
            Ok(info) => collections.push(with_dir(&state, info)),
            // Dropped meanwhile.
            Err(KnowledgeError::UnknownCollection(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Json(wire::CollectionList { collections }))
}

/// One collection: its figures and settings.
#[utoipa::path(
    get,
    path = "/rag/collections/{collection}",
    operation_id = "get_collection",
    tag = "knowledge",
    security(("bearer" = ["rag:query"])),
    params(("collection" = String, Path, description = COLLECTION)),
    responses(
        (status = OK, description = "The collection", body = wire::CollectionInfo),
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `rag:query` scope", body = ErrorBody),
        (status = NOT_FOUND, description = "No such collection, or outside the caller's key (`unknown_collection`)", body = ErrorBody),
        (status = BAD_REQUEST, description = "A bad name (`invalid_request`)", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = RATE_LIMITED, body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Knowledge base disabled or failing", body = ErrorBody),
    )
)]
pub async fn get_collection(
    caller: Need<scope::RagQuery>,
    State(state): State<AppState>,
    Path(collection): Path<String>,
) -> Result<Json<wire::CollectionInfo>, ApiError> {
    visible(&caller.0, &collection)?;
    let info = state.knowledge.collection(&collection).await?;
    Ok(Json(with_dir(&state, info)))
}

/// Deletes a collection and every document in it. (One that mirrors a
/// configured directory is made again by the next ingest.)
#[utoipa::path(
    delete,
    path = "/rag/collections/{collection}",
    operation_id = "delete_collection",
    tag = "knowledge",
    security(("bearer" = ["rag:write"])),
    params(("collection" = String, Path, description = COLLECTION)),
    responses(
        (status = NO_CONTENT, description = "Deleted"),
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `rag:write` scope", body = ErrorBody),
        (status = NOT_FOUND, description = "No such collection, or outside the caller's key (`unknown_collection`)", body = ErrorBody),
        (status = BAD_REQUEST, description = "A bad name (`invalid_request`)", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = RATE_LIMITED, body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Knowledge base disabled or failing", body = ErrorBody),
    )
)]
pub async fn delete_collection(
    caller: Need<scope::RagWrite>,
    State(state): State<AppState>,
    Path(collection): Path<String>,
) -> Result<StatusCode, ApiError> {
    visible(&caller.0, &collection)?;
    state.knowledge.drop_collection(&collection).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT …/documents/{id}`'s query.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PutParams {
    /// A loader plugin to split the body with, whatever its media type.
    loader: Option<String>,
}

/// Adds or replaces a document. The body is the document; its
/// `Content-Type` picks the loader plugin (`text/markdown`, `text/html`,
/// `application/pdf`, `text/plain`…), or `?loader=` names one;
/// `X-Nova-Metadata` (a JSON object) adds metadata to its chunks. A JSON
/// body is the form `{"text": "...", "metadata": {...}}`. The same
/// content, loader and metadata again embed nothing.
#[utoipa::path(
    put,
    path = "/rag/collections/{collection}/documents/{id}",
    operation_id = "put_document",
    tag = "knowledge",
    security(("bearer" = ["rag:write"])),
    params(
        ("collection" = String, Path, description = COLLECTION),
        ("id" = String, Path, description = DOCUMENT),
        ("X-Nova-Metadata" = Option<String>, Header, description = "The document's metadata: a JSON object of strings, numbers, booleans or lists of them"),
        PutParams,
    ),
    request_body(
        description = "The document, or the JSON form `{\"text\", \"metadata\"}`",
        content(("text/markdown"), ("text/html"), ("application/pdf"), ("text/plain"), ("application/json")),
    ),
    responses(
        (status = CREATED, description = "Added", body = wire::DocumentSaved),
        (status = OK, description = "Replaced, or unchanged (`embedded` 0)", body = wire::DocumentSaved),
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `rag:write` scope", body = ErrorBody),
        (status = NOT_FOUND, description = "No such collection, or outside the caller's key (`unknown_collection`)", body = ErrorBody),
        (status = BAD_REQUEST, description = "A bad id, metadata or JSON form, or an empty body (`invalid_request`)", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "Over the document size limit (32 MiB)", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "No loader takes the body's media type, or no loader has the name given (`no_loader`)", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "The loader refused the document, found no text in it, or it splits into too many chunks (`document_rejected`)", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = RATE_LIMITED, body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Knowledge base disabled or failing; or the host is holding its limit of request bodies (`busy`)", body = ErrorBody),
    )
)]
pub async fn put_document(
    caller: Need<scope::RagWrite>,
    State(state): State<AppState>,
    Path((collection, id)): Path<(String, String)>,
    UrlQuery(params): UrlQuery<PutParams>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<wire::DocumentSaved>), ApiError> {
    visible(&caller.0, &collection)?;
    let body = body?;
    let metadata = match headers.get("x-nova-metadata") {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| {
                    ApiError::bad_request(
                        "invalid_request",
                        "X-Nova-Metadata: JSON in ASCII (escape other characters as \\uXXXX)",
                    )
                })?
                .to_owned(),
        ),
        None => None,
    };
    let upload = Upload {
        body: body.to_vec(),
        media_type: super::body::media_type(&headers),
        loader: params.loader,
        metadata,
    };
    let (saved, created) = state
        .knowledge
        .put_document(&state.registry, &collection, &id, upload)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(saved)))
}

/// `GET …/documents`'s query.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// The `next` of the page before (an opaque cursor).
    after: Option<String>,
    /// Documents on the page, 1 to 1000 (100 when absent).
    limit: Option<u32>,
}

/// A page of a collection's documents, in the index's stable order (each
/// page sorted by id); `next` continues it.
#[utoipa::path(
    get,
    path = "/rag/collections/{collection}/documents",
    operation_id = "list_documents",
    tag = "knowledge",
    security(("bearer" = ["rag:query"])),
    params(("collection" = String, Path, description = COLLECTION), ListParams),
    responses(
        (status = OK, description = "A page", body = wire::DocumentPage),
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `rag:query` scope", body = ErrorBody),
        (status = NOT_FOUND, description = "No such collection, or outside the caller's key (`unknown_collection`)", body = ErrorBody),
        (status = BAD_REQUEST, description = "A bad limit (`invalid_request`)", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = RATE_LIMITED, body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Knowledge base disabled or failing", body = ErrorBody),
    )
)]
pub async fn list_documents(
    caller: Need<scope::RagQuery>,
    State(state): State<AppState>,
    Path(collection): Path<String>,
    UrlQuery(params): UrlQuery<ListParams>,
) -> Result<Json<wire::DocumentPage>, ApiError> {
    visible(&caller.0, &collection)?;
    let page = state
        .knowledge
        .documents(&collection, params.after.as_deref(), params.limit)
        .await?;
    Ok(Json(page))
}

/// `GET …/documents/{id}`'s query.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetParams {
    /// Include the document's chunks.
    #[serde(default)]
    chunks: bool,
}

/// A document: its hash, loader and version, metadata and chunk count;
/// its chunks with `?chunks=true`.
#[utoipa::path(
    get,
    path = "/rag/collections/{collection}/documents/{id}",
    operation_id = "get_document",
    tag = "knowledge",
    security(("bearer" = ["rag:query"])),
    params(
        ("collection" = String, Path, description = COLLECTION),
        ("id" = String, Path, description = DOCUMENT),
        GetParams,
    ),
    responses(
        (status = OK, description = "The document", body = wire::DocumentInfo),
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `rag:query` scope", body = ErrorBody),
        (status = NOT_FOUND, description = "No such collection (`unknown_collection`) or document (`unknown_document`)", body = ErrorBody),
        (status = BAD_REQUEST, description = "A bad id (`invalid_request`)", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = RATE_LIMITED, body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Knowledge base disabled or failing", body = ErrorBody),
    )
)]
pub async fn get_document(
    caller: Need<scope::RagQuery>,
    State(state): State<AppState>,
    Path((collection, id)): Path<(String, String)>,
    UrlQuery(params): UrlQuery<GetParams>,
) -> Result<Json<wire::DocumentInfo>, ApiError> {
    visible(&caller.0, &collection)?;
    let info = state
        .knowledge
        .document(&collection, &id, params.chunks)
        .await?;
    Ok(Json(info))
}

/// Deletes a document (its chunks leave the index at once).
#[utoipa::path(
    delete,
    path = "/rag/collections/{collection}/documents/{id}",
    operation_id = "delete_document",
    tag = "knowledge",
    security(("bearer" = ["rag:write"])),
    params(
        ("collection" = String, Path, description = COLLECTION),
        ("id" = String, Path, description = DOCUMENT),
    ),
    responses(
        (status = NO_CONTENT, description = "Deleted"),
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = ErrorBody),
        (status = FORBIDDEN, description = "The credential lacks the `rag:write` scope", body = ErrorBody),
        (status = NOT_FOUND, description = "No such collection (`unknown_collection`) or document (`unknown_document`)", body = ErrorBody),
        (status = BAD_REQUEST, description = "A bad id (`invalid_request`)", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = RATE_LIMITED, body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Knowledge base disabled or failing", body = ErrorBody),
    )
)]
pub async fn delete_document(
    caller: Need<scope::RagWrite>,
    State(state): State<AppState>,
    Path((collection, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    visible(&caller.0, &collection)?;
    state.knowledge.delete_document(&collection, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rate limit for `/rag/*`, per credential: each API key has its bucket,
/// the admin token one; with authentication off, each client address.
pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let principal = request.extensions().get::<Principal>();
    let client = match principal {
        Some(Principal {
            key_id: Some(id), ..
        }) => format!("key:{id}"),
        _ if state.auth.enabled => "admin".to_owned(),
        _ => match request.extensions().get::<ClientIp>() {
            Some(ClientIp(ip)) => format!("ip:{ip}"),
            None => "unknown".to_owned(),
        },
    };
    match state.limiter.check(&client).await {
        Verdict::Allow => next.run(request).await,
        Verdict::Deny(wait) => {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests to /rag; retry in {secs} s"),
            )
            .into_response();
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_names_from_directories() {
        assert_eq!(
            collection_name_of(std::path::Path::new("/srv/Team Docs")),
            "team-docs"
        );
        assert_eq!(
            collection_name_of(std::path::Path::new("/srv/handbook")),
            "handbook"
        );
        assert_eq!(collection_name_of(std::path::Path::new("/")), "documents");
    }
}
