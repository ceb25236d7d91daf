//! The knowledge API: `POST /rag/query`, `GET /rag/stats`,
//! `POST /rag/reload` (admin) and `GET /rag/ingests/{id}`, all behind a
//! per-credential rate limit.

use std::path::PathBuf;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::{Authenticated, ClientIp, Need, scope};
use super::error::{ApiError, ErrorBody};
use super::{JsonBody, MaybeJsonBody};
use crate::auth::{Principal, Scope};
use crate::knowledge::ingest::{Ingestor, Source};
use crate::knowledge::{KnowledgeError, Query};
use crate::ratelimit::Verdict;
use crate::vector::{Filter, valid_collection};
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
            | KnowledgeError::BadCollection(_) => ApiError::bad_request("invalid_request", message),
            KnowledgeError::UnknownCollection(_) => {
                ApiError::not_found("unknown_collection", message)
            }
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

/// `filter`: `source`, `source_prefix`, and metadata keys (string values,
/// which the request's type already holds them to).
fn filter_of(map: std::collections::BTreeMap<String, String>) -> Result<Filter, ApiError> {
    let mut filter = Filter::default();
    for (key, value) in map {
        match key.as_str() {
            "collection" => {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    "filter.collection: name the collection with the top-level \"collection\" field",
                ));
            }
            "source" => filter.source = Some(value),
            "source_prefix" => filter.source_prefix = Some(value),
            _ => filter.meta.push((key, value)),
        }
    }
    Ok(filter)
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
    _: Need<scope::RagQuery>,
    State(state): State<AppState>,
    JsonBody(request): JsonBody<nova_client::Query>,
) -> Result<Json<QueryAnswer>, ApiError> {
    let query = Query::new(
        request.query,
        request.top_k,
        request.collection,
        filter_of(request.filter)?,
    )?;
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
    _: Need<scope::RagQuery>,
    State(state): State<AppState>,
) -> Result<Json<wire::RagStats>, ApiError> {
    let knowledge = &state.knowledge;
    let inner = knowledge.inner()?;
    let names = inner
        .index
        .collections()
        .await
        .map_err(KnowledgeError::from)?;
    let mut collections = Vec::with_capacity(names.len());
    let (mut documents, mut chunks) = (0u64, 0u64);
    for name in names {
        let files = inner
            .index
            .files(&name)
            .await
            .map_err(KnowledgeError::from)?;
        let count = inner
            .index
            .count(&name)
            .await
            .map_err(KnowledgeError::from)?;
        documents += files.len() as u64;
        chunks += count;
        collections.push(wire::CollectionStats {
            documents: files.len() as u64,
            name,
            chunks: count,
        });
    }
    let ingest = state.ingestor.as_ref().map(|i| {
        let status = i.status();
        wire::IngestState {
            running: status.running,
            last: status.last,
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
    use serde_json::json;

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

    #[test]
    fn filters_take_strings_only() {
        let query = |filter| {
            serde_json::from_value::<nova_client::Query>(json!({"query": "q", "filter": filter}))
        };
        let request = query(json!({"source_prefix": "guides/", "title": "Intro"})).unwrap();
        let f = filter_of(request.filter).unwrap();
        assert_eq!(f.source_prefix.as_deref(), Some("guides/"));
        assert_eq!(f.meta, vec![("title".to_owned(), "Intro".to_owned())]);
        assert!(query(json!({"page": 3})).is_err());
        let named = query(json!({"collection": "x"})).unwrap();
        assert!(filter_of(named.filter).is_err());
    }
}
