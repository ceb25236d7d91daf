//! The knowledge API: `POST /rag/query`, `GET /rag/stats`,
//! `POST /rag/reload` (admin) and `GET /rag/ingests/{id}`, all behind a
//! per-client rate limit.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::{AppState, json_response, parse_json};
use crate::knowledge::ingest::{Ingestor, Source};
use crate::knowledge::{KnowledgeError, Query};
use crate::ratelimit::Verdict;
use crate::vector::{Filter, valid_collection};

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryRequest {
    query: String,
    top_k: Option<u32>,
    #[serde(default)]
    filter: serde_json::Map<String, Value>,
    collection: Option<String>,
}

/// `filter`: `source`, `source_prefix`, and metadata keys, string values.
fn filter_of(map: serde_json::Map<String, Value>) -> Result<Filter, ApiError> {
    let mut filter = Filter::default();
    for (key, value) in map {
        let Value::String(value) = value else {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("filter.{key} must be a string"),
            ));
        };
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

pub async fn query(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let request: QueryRequest = parse_json(&body)?;
    let query = Query::new(
        request.query,
        request.top_k,
        request.collection,
        filter_of(request.filter)?,
    )?;
    let answer = state.knowledge.query(&query).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "results": answer.results,
            "took_ms": answer.took_ms,
            "cached": answer.cached,
        }),
    ))
}

pub async fn stats(State(state): State<AppState>) -> Result<Response, ApiError> {
    let knowledge = &state.knowledge;
    let inner = knowledge.inner()?;
    let names = inner
        .index
        .collections()
        .await
        .map_err(KnowledgeError::from)?;
    let mut collections = Vec::with_capacity(names.len());
    let (mut documents, mut chunks) = (0usize, 0u64);
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
        documents += files.len();
        chunks += count;
        collections.push(json!({"name": name, "documents": files.len(), "chunks": count}));
    }
    let ingest = state.ingestor.as_ref().map(|i| i.status());
    let body = json!({
        "ready": knowledge.is_ready(),
        "collections": collections,
        "documents": documents,
        "chunks": chunks,
        "model": inner.embedder.info(),
        "index": {"backend": inner.index.backend()},
        "cache": inner.cache.stats(),
        "rate_limit": {
            "backend": state.limiter.backend(),
            "enabled": state.limiter.enabled(),
        },
        "ingest": ingest,
        "sources": state.ingestor.as_ref().map(|i| i.sources().iter().map(|s| json!({
            "collection": s.collection,
            "dir": s.dir.display().to_string(),
        })).collect::<Vec<_>>()),
    });
    Ok(json_response(StatusCode::OK, &body))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReloadRequest {
    collection: Option<String>,
    dir: Option<PathBuf>,
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
fn source_of(ingestor: &Ingestor, request: ReloadRequest) -> Result<Option<Source>, ApiError> {
    let configured = ingestor.sources();
    let Some(dir) = request.dir else {
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

pub async fn reload(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let ingestor = ingestor(&state)?;
    let request: ReloadRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReloadRequest::default()
    } else {
        parse_json(&body)?
    };
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
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({"id": id, "status": "started", "collections": collections}),
    ))
}

pub async fn ingest_report(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let ingestor = ingestor(&state)?;
    let id = uuid::Uuid::parse_str(&id)
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{id:?} is not an ingest id")))?;
    // One id may cover several collections: running until the last is done.
    let queued = ingestor.is_queued(id);
    match ingestor.report(id) {
        Some((report, running)) => Ok(json_response(
            StatusCode::OK,
            &json!({"running": running || queued, "report": report}),
        )),
        None => match ingestor.is_queued(id) {
            true => Ok(json_response(
                StatusCode::OK,
                &json!({"running": false, "queued": true, "report": null}),
            )),
            false => Err(ApiError::not_found("not_found", format!("no ingest {id}"))),
        },
    }
}

/// Rate limit for `/rag/*`, per client address.
pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned());
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

    #[test]
    fn filters_take_strings_only() {
        let map = json!({"source_prefix": "guides/", "title": "Intro"});
        let Value::Object(map) = map else {
            unreachable!()
        };
        let f = filter_of(map).unwrap();
        assert_eq!(f.source_prefix.as_deref(), Some("guides/"));
        assert_eq!(f.meta, vec![("title".to_owned(), "Intro".to_owned())]);
        let Value::Object(bad) = json!({"page": 3}) else {
            unreachable!()
        };
        assert!(filter_of(bad).is_err());
    }
}
