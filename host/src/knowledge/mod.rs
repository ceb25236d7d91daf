//! The knowledge base: documents, split into chunks, embedded and indexed,
//! searchable by meaning.
//!
//! [`Knowledge`] answers queries (for `/rag/query` and the plugins'
//! `knowledge.search`): embed the query, search the vector index, cache
//! the answer. [`ingest::Ingestor`] keeps the index in step with the
//! knowledge directories, through the loader plugins.

pub mod cache;
pub mod chunk;
pub mod document;
pub mod documents;
pub mod ingest;
pub mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::embed::{EmbedError, Embedder, ModelInfo};
use crate::vector::{
    Bound, Filter, Keywords, Ranking, Scalar, Test, VectorError, VectorIndex, valid_collection,
};
pub use cache::QueryCache;
pub use chunk::ChunkBudget;
pub use nova_client::SearchMode;

pub const MAX_TOP_K: u32 = 100;
pub const DEFAULT_TOP_K: u32 = 5;
/// Longest query accepted, in bytes: queries are questions, not documents.
pub const MAX_QUERY_BYTES: usize = 4096;
pub const DEFAULT_COLLECTION: &str = "default";
/// Values in one any-of or not list.
pub const MAX_FILTER_VALUES: usize = 256;
/// Conditions in one filter.
pub const MAX_FILTER_KEYS: usize = 32;
/// How deep each ranking goes before a hybrid search fuses them: a chunk
/// ranked below this by both is not found.
pub const HYBRID_DEPTH: usize = 50;

pub use nova_client::{Hit, QueryAnswer as Answer};

#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("query is empty")]
    EmptyQuery,
    #[error("query is {len} bytes; the limit is {MAX_QUERY_BYTES}")]
    QueryTooLong { len: usize },
    #[error("top_k must be between 1 and {MAX_TOP_K}")]
    BadTopK,
    #[error("invalid filter: {0}")]
    BadFilter(String),
    #[error("invalid collection name {0:?}: use 1 to 64 of a-z, 0-9, '-' and '_'")]
    BadCollection(String),
    #[error("no collection named {0:?}")]
    UnknownCollection(String),
    #[error("the knowledge base is disabled: {0}")]
    Disabled(String),
    #[error("ingest failed: {0}")]
    Ingest(String),
    #[error("no document {id:?} in collection {collection:?}")]
    UnknownDocument { collection: String, id: String },
    #[error("{0}")]
    BadDocument(String),
    #[error("{0}")]
    NoLoader(String),
    #[error("{0}")]
    DocumentRejected(String),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Index(VectorError),
}

impl From<VectorError> for KnowledgeError {
    fn from(e: VectorError) -> Self {
        match e {
            VectorError::UnknownCollection(c) => KnowledgeError::UnknownCollection(c),
            VectorError::InvalidCollection(c) => KnowledgeError::BadCollection(c),
            other => KnowledgeError::Index(other),
        }
    }
}

/// A validated query.
#[derive(Debug, Clone)]
pub struct Query {
    pub text: String,
    pub top_k: u32,
    pub collection: String,
    pub filter: Filter,
    pub mode: SearchMode,
}

impl Query {
    /// Checks the parts a caller sends.
    pub fn new(
        text: String,
        top_k: Option<u32>,
        collection: Option<String>,
        filter: Filter,
    ) -> Result<Self, KnowledgeError> {
        if text.trim().is_empty() {
            return Err(KnowledgeError::EmptyQuery);
        }
        if text.len() > MAX_QUERY_BYTES {
            return Err(KnowledgeError::QueryTooLong { len: text.len() });
        }
        let top_k = top_k.unwrap_or(DEFAULT_TOP_K);
        if top_k == 0 || top_k > MAX_TOP_K {
            return Err(KnowledgeError::BadTopK);
        }
        let collection = collection.unwrap_or_else(|| DEFAULT_COLLECTION.to_owned());
        if !valid_collection(&collection) {
            return Err(KnowledgeError::BadCollection(collection));
        }
        for (key, _) in &filter.meta {
            if !valid_meta_key(key) {
                return Err(KnowledgeError::BadFilter(format!(
                    "metadata key {key:?}: use 1 to 64 of A-Z, a-z, 0-9, '_' and '-'"
                )));
            }
        }
        Ok(Query {
            text,
            top_k,
            collection,
            filter,
            mode: SearchMode::default(),
        })
    }

    /// The same query ranked by `mode`.
    pub fn with_mode(mut self, mode: Option<SearchMode>) -> Self {
        self.mode = mode.unwrap_or_default();
        self
    }

    /// Builds a query from a plugin's filter pairs: `collection`, `source`,
    /// `source_prefix`, or any metadata key.
    pub fn from_pairs(
        text: String,
        top_k: u32,
        pairs: &[(String, String)],
    ) -> Result<Self, KnowledgeError> {
        let mut filter = Filter::default();
        let mut collection = None;
        for (key, value) in pairs {
            match key.as_str() {
                "collection" => collection = Some(value.clone()),
                "source" => filter.source = Some(value.clone()),
                "source_prefix" => filter.source_prefix = Some(value.clone()),
                _ => filter
                    .meta
                    .push((key.clone(), Test::Eq(Scalar::Text(value.clone())))),
            }
        }
        Query::new(text, Some(top_k), collection, filter)
    }

    /// The cache key: everything that shapes the answer.
    fn cache_key(&self) -> String {
        let mut meta: Vec<String> = self
            .filter
            .meta
            .iter()
            .map(|(k, t)| format!("{k}{t:?}"))
            .collect();
        meta.sort();
        serde_json::json!([
            self.text,
            self.top_k,
            self.mode.as_str(),
            self.filter.source,
            self.filter.source_prefix,
            meta
        ])
        .to_string()
    }
}

/// A filter from its JSON form (`POST /rag/query`'s `filter`): `source`,
/// `source_prefix`, and metadata keys, each with a value to match or an
/// object of `any`, `not`, or range ends (`gt`, `gte`, `lt`, `lte`).
pub fn filter_of(
    map: std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<Filter, KnowledgeError> {
    use serde_json::Value;
    let bad = |m: String| KnowledgeError::BadFilter(m);
    if map.len() > MAX_FILTER_KEYS {
        return Err(bad(format!("at most {MAX_FILTER_KEYS} conditions")));
    }
    let mut filter = Filter::default();
    for (key, value) in map {
        match key.as_str() {
            "collection" => {
                return Err(bad(
                    "filter.collection: name the collection with the top-level \"collection\" field"
                        .into(),
                ));
            }
            "source" | "source_prefix" => {
                let Value::String(text) = value else {
                    return Err(bad(format!("filter.{key}: a string")));
                };
                if key == "source" {
                    filter.source = Some(text);
                } else {
                    filter.source_prefix = Some(text);
                }
                continue;
            }
            _ => {}
        }
        if !valid_meta_key(&key) {
            return Err(bad(format!(
                "metadata key {key:?}: use 1 to 64 of A-Z, a-z, 0-9, '_' and '-'"
            )));
        }
        let test = test_of(&key, value).map_err(bad)?;
        filter.meta.push((key, test));
    }
    Ok(filter)
}

/// One condition of a filter.
fn test_of(key: &str, value: serde_json::Value) -> Result<Test, String> {
    use serde_json::Value;
    let Value::Object(object) = value else {
        return match value {
            // A fractional number has no exact match: a range of one point.
            Value::Number(n) if n.as_i64().is_none() => {
                let x = n.as_f64().ok_or(format!("filter.{key}: not a number"))?;
                Ok(Test::Range {
                    gt: None,
                    gte: Some(Bound::Number(x)),
                    lt: None,
                    lte: Some(Bound::Number(x)),
                })
            }
            other => Ok(Test::Eq(scalar_of(key, other)?)),
        };
    };
    let list = |v: Value| -> Result<Vec<Scalar>, String> {
        let items = match v {
            Value::Array(items) => items,
            one => vec![one],
        };
        if items.is_empty() || items.len() > MAX_FILTER_VALUES {
            return Err(format!(
                "filter.{key}: give 1 to {MAX_FILTER_VALUES} values"
            ));
        }
        let scalars = items
            .into_iter()
            .map(|i| scalar_of(key, i))
            .collect::<Result<Vec<_>, _>>()?;
        let texts = scalars
            .iter()
            .filter(|s| matches!(s, Scalar::Text(_)))
            .count();
        let integers = scalars
            .iter()
            .filter(|s| matches!(s, Scalar::Integer(_)))
            .count();
        if texts != scalars.len() && integers != scalars.len() {
            return Err(format!(
                "filter.{key}: a list of values is all strings or all integers"
            ));
        }
        Ok(scalars)
    };
    let mut entries = object.into_iter();
    let Some((op, operand)) = entries.next() else {
        return Err(format!("filter.{key}: an empty object tests nothing"));
    };
    match op.as_str() {
        "any" | "not" => {
            if entries.next().is_some() {
                return Err(format!("filter.{key}: \"{op}\" stands alone"));
            }
            let values = list(operand)?;
            Ok(if op == "any" {
                Test::Any(values)
            } else {
                Test::Not(values)
            })
        }
        "gt" | "gte" | "lt" | "lte" => {
            let (mut gt, mut gte, mut lt, mut lte) = (None, None, None, None);
            for (op, operand) in std::iter::once((op, operand)).chain(entries) {
                let bound = bound_of(key, &op, operand)?;
                match op.as_str() {
                    "gt" => gt = Some(bound),
                    "gte" => gte = Some(bound),
                    "lt" => lt = Some(bound),
                    "lte" => lte = Some(bound),
                    _ => {
                        return Err(format!(
                            "filter.{key}: a range has only gt, gte, lt and lte, not {op:?}"
                        ));
                    }
                }
            }
            let ends: Vec<&Bound> = [&gt, &gte, &lt, &lte].into_iter().flatten().collect();
            let dates = ends.iter().filter(|b| matches!(b, Bound::Date(_))).count();
            if dates != 0 && dates != ends.len() {
                return Err(format!(
                    "filter.{key}: a range's ends are all numbers or all date-times"
                ));
            }
            Ok(Test::Range { gt, gte, lt, lte })
        }
        other => Err(format!(
            "filter.{key}: unknown test {other:?}; use any, not, gt, gte, lt or lte"
        )),
    }
}

fn scalar_of(key: &str, value: serde_json::Value) -> Result<Scalar, String> {
    use serde_json::Value;
    match value {
        Value::String(s) => Ok(Scalar::Text(s)),
        Value::Bool(b) => Ok(Scalar::Bool(b)),
        Value::Number(n) => n
            .as_i64()
            .map(Scalar::Integer)
            .ok_or_else(|| format!("filter.{key}: only whole numbers match exactly; use a range")),
        _ => Err(format!(
            "filter.{key}: a string, a whole number, a boolean, or an object of any, not, gt, \
             gte, lt, lte"
        )),
    }
}

/// A range end: a number, or an RFC 3339 date-time (or a date, which is
/// its midnight UTC).
fn bound_of(key: &str, op: &str, value: serde_json::Value) -> Result<Bound, String> {
    match value {
        serde_json::Value::Number(n) => n
            .as_f64()
            .map(Bound::Number)
            .ok_or_else(|| format!("filter.{key}.{op}: not a number")),
        serde_json::Value::String(text) => date_of(&text).map(Bound::Date).ok_or_else(|| {
            format!(
                "filter.{key}.{op}: {text:?} is not an RFC 3339 date-time \
                     (2024-05-01T12:00:00Z) or a date (2024-05-01)"
            )
        }),
        _ => Err(format!("filter.{key}.{op}: a number or a date-time")),
    }
}

/// `text` as an RFC 3339 date-time in UTC, if it is one (or a date).
pub fn date_of(text: &str) -> Option<String> {
    if let Ok(at) = text.parse::<jiff::Timestamp>() {
        return Some(at.to_string());
    }
    let date: jiff::civil::Date = text.parse().ok()?;
    let at = jiff::tz::Offset::UTC
        .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
        .ok()?;
    Some(at.to_string())
}

/// Metadata keys become payload paths: keep them plain.
pub(crate) fn valid_meta_key(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A handle to the knowledge base; clones share it.
#[derive(Clone)]
pub struct Knowledge {
    state: Arc<State>,
}

enum State {
    /// No model or index: every query says why.
    Disabled(String),
    Enabled(Inner),
}

pub struct Inner {
    pub embedder: Embedder,
    /// Makes the keyword vectors of chunks and queries.
    pub keywords: Arc<Keywords>,
    pub index: Arc<dyn VectorIndex>,
    pub cache: QueryCache,
    pub chunk: ChunkBudget,
    /// Set once the first ingest at start has finished.
    ready: AtomicBool,
    /// Writes of one document wait for each other (striped by collection
    /// and source: bounded however many documents there are).
    writes: Vec<tokio::sync::Mutex<()>>,
}

/// Locks a document's writes are striped over.
const WRITE_STRIPES: usize = 64;

impl Inner {
    /// Held while a document of `collection` is written or deleted: two
    /// writes of one document would interleave their chunks.
    pub async fn writing(&self, collection: &str, source: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (collection, source).hash(&mut hasher);
        let stripe = (hasher.finish() % WRITE_STRIPES as u64) as usize;
        self.writes[stripe].lock().await
    }
}

impl Knowledge {
    /// A knowledge base that answers every query with why it cannot.
    pub fn disabled(reason: impl Into<String>) -> Self {
        Knowledge {
            state: Arc::new(State::Disabled(reason.into())),
        }
    }

    pub fn new(
        embedder: Embedder,
        keywords: Keywords,
        index: Arc<dyn VectorIndex>,
        cache: QueryCache,
        chunk: ChunkBudget,
    ) -> Self {
        // A chunk the model would truncate loses its tail: cap the budget
        // at what the model reads ([CLS] and [SEP] take two).
        let most = embedder.info().max_tokens.saturating_sub(2).max(1);
        let chunk = ChunkBudget {
            max_tokens: chunk.max_tokens.min(most),
            overlap: chunk.overlap.min(most / 2),
        };
        Knowledge {
            state: Arc::new(State::Enabled(Inner {
                embedder,
                keywords: Arc::new(keywords),
                index,
                cache,
                chunk,
                ready: AtomicBool::new(false),
                writes: (0..WRITE_STRIPES)
                    .map(|_| tokio::sync::Mutex::new(()))
                    .collect(),
            })),
        }
    }

    /// The parts, or why there are none.
    pub fn inner(&self) -> Result<&Inner, KnowledgeError> {
        match &*self.state {
            State::Enabled(inner) => Ok(inner),
            State::Disabled(reason) => Err(KnowledgeError::Disabled(reason.clone())),
        }
    }

    /// Whether the first ingest has finished (always false when disabled).
    pub fn is_ready(&self) -> bool {
        self.inner()
            .is_ok_and(|inner| inner.ready.load(Ordering::Acquire))
    }

    pub fn set_ready(&self) {
        if let Ok(inner) = self.inner() {
            inner.ready.store(true, Ordering::Release);
        }
    }

    pub fn model(&self) -> Option<&ModelInfo> {
        self.inner().ok().map(|inner| inner.embedder.info())
    }

    /// Answers `query`: from the cache, or by embedding it and searching.
    pub async fn query(&self, query: &Query) -> Result<Answer, KnowledgeError> {
        let start = Instant::now();
        let inner = self.inner()?;
        let key = query.cache_key();
        if let Some(cached) = inner.cache.get(&query.collection, &key).await
            && let Ok(results) = serde_json::from_str::<Vec<Hit>>(&cached)
        {
            return Ok(Answer {
                results,
                took_ms: elapsed_ms(start),
                cached: true,
                mode: query.mode,
            });
        }
        let generation = inner.cache.generation();
        let ranking = match query.mode {
            SearchMode::Dense => Ranking::Dense(inner.embedder.embed_one(&query.text).await?),
            SearchMode::Keyword => Ranking::Keywords(inner.keywords.query(&query.text)),
            SearchMode::Hybrid => Ranking::Hybrid {
                dense: inner.embedder.embed_one(&query.text).await?,
                keywords: inner.keywords.query(&query.text),
                depth: HYBRID_DEPTH,
            },
        };
        let scored = inner
            .index
            .query(
                &query.collection,
                ranking,
                query.top_k as usize,
                &query.filter,
            )
            .await?;
        let results: Vec<Hit> = scored
            .into_iter()
            .map(|s| Hit {
                text: s.payload.text,
                source: s.payload.source,
                score: s.score,
                metadata: s.payload.meta,
            })
            .collect();
        if let Ok(json) = serde_json::to_string(&results) {
            inner
                .cache
                .put(&query.collection, &key, json, generation)
                .await;
        }
        Ok(Answer {
            results,
            took_ms: elapsed_ms(start),
            cached: false,
            mode: query.mode,
        })
    }

    /// The plugins' `knowledge.search`, within the collections `granted`.
    pub async fn search(
        &self,
        query: &str,
        top_k: u32,
        filter: &[(String, String)],
        granted: &[String],
    ) -> Result<Vec<Hit>, KnowledgeError> {
        let query = Query::from_pairs(query.to_owned(), top_k, filter)?;
        // Outside the grant, as if it did not exist.
        if !granted
            .iter()
            .any(|c| *c == query.collection || c == crate::plugins::ALL_KNOWLEDGE)
        {
            return Err(KnowledgeError::UnknownCollection(query.collection));
        }
        Ok(self.query(&query).await?.results)
    }
}

fn elapsed_ms(start: Instant) -> f64 {
    (start.elapsed().as_secs_f64() * 1e3 * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_validated() {
        let ok = |text: &str| Query::new(text.into(), None, None, Filter::default());
        assert!(matches!(ok("  "), Err(KnowledgeError::EmptyQuery)));
        assert!(matches!(
            ok(&"x".repeat(MAX_QUERY_BYTES + 1)),
            Err(KnowledgeError::QueryTooLong { .. })
        ));
        let q = ok("how do plugins reload?").unwrap();
        assert_eq!((q.top_k, q.collection.as_str()), (5, "default"));
        for top_k in [0, MAX_TOP_K + 1] {
            assert!(matches!(
                Query::new("q".into(), Some(top_k), None, Filter::default()),
                Err(KnowledgeError::BadTopK)
            ));
        }
        assert!(matches!(
            Query::new("q".into(), None, Some("../x".into()), Filter::default()),
            Err(KnowledgeError::BadCollection(_))
        ));
        let bad_key = Filter {
            meta: vec![("a.b".into(), Test::Eq(Scalar::Text("x".into())))],
            ..Filter::default()
        };
        assert!(matches!(
            Query::new("q".into(), None, None, bad_key),
            Err(KnowledgeError::BadFilter(_))
        ));
    }

    #[test]
    fn filters_from_json() {
        use serde_json::json;
        let of =
            |v: serde_json::Value| filter_of(serde_json::from_value(v).unwrap()).map(|f| f.meta);
        let text = |s: &str| Scalar::Text(s.into());
        assert_eq!(
            of(json!({"team": "infra", "year": 2024, "ok": true})).unwrap(),
            vec![
                ("ok".to_owned(), Test::Eq(Scalar::Bool(true))),
                ("team".to_owned(), Test::Eq(text("infra"))),
                ("year".to_owned(), Test::Eq(Scalar::Integer(2024))),
            ]
        );
        assert_eq!(
            of(json!({"tags": {"any": ["a", "b"]}, "status": {"not": "draft"}})).unwrap(),
            vec![
                ("status".to_owned(), Test::Not(vec![text("draft")])),
                ("tags".to_owned(), Test::Any(vec![text("a"), text("b")])),
            ]
        );
        let year = of(json!({"year": {"gte": 2020, "lt": 2025}})).unwrap();
        assert_eq!(
            year[0].1,
            Test::Range {
                gt: None,
                gte: Some(Bound::Number(2020.0)),
                lt: Some(Bound::Number(2025.0)),
                lte: None
            }
        );
        let dates =
            of(json!({"at": {"gte": "2024-05-01", "lt": "2024-06-01T12:00:00+02:00"}})).unwrap();
        assert_eq!(
            dates[0].1,
            Test::Range {
                gt: None,
                gte: Some(Bound::Date("2024-05-01T00:00:00Z".into())),
                lt: Some(Bound::Date("2024-06-01T10:00:00Z".into())),
                lte: None
            }
        );
        assert!(dates[0].1.is_date_range());
        // A fractional number: the one-point range.
        assert!(matches!(
            of(json!({"r": 4.5})).unwrap()[0].1,
            Test::Range { .. }
        ));
        let filter = filter_of(
            serde_json::from_value(json!({"source": "a.md", "source_prefix": "docs/"})).unwrap(),
        )
        .unwrap();
        assert_eq!(filter.source.as_deref(), Some("a.md"));
        assert_eq!(filter.source_prefix.as_deref(), Some("docs/"));
        for bad in [
            json!({"collection": "x"}),
            json!({"source": 3}),
            json!({"a.b": 1}),
            json!({"k": null}),
            json!({"k": [1, 2]}),
            json!({"k": {}}),
            json!({"k": {"near": 1}}),
            json!({"k": {"any": []}}),
            json!({"k": {"any": ["a", 1]}}),
            json!({"k": {"any": [1.5]}}),
            json!({"k": {"any": ["a"], "not": ["b"]}}),
            json!({"k": {"gte": "soon"}}),
            json!({"k": {"gte": 1, "lt": "2024-01-01"}}),
            json!({"k": {"gte": 1, "any": [1]}}),
        ] {
            assert!(
                matches!(of(bad.clone()), Err(KnowledgeError::BadFilter(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn plugin_filter_pairs() {
        let pairs = [
            ("collection".to_owned(), "docs".to_owned()),
            ("source_prefix".to_owned(), "guides/".to_owned()),
            ("title".to_owned(), "Intro".to_owned()),
        ];
        let q = Query::from_pairs("q".into(), 3, &pairs).unwrap();
        assert_eq!(q.collection, "docs");
        assert_eq!(q.filter.source_prefix.as_deref(), Some("guides/"));
        assert_eq!(
            q.filter.meta,
            vec![("title".to_owned(), Test::Eq(Scalar::Text("Intro".into())))]
        );
    }
}
