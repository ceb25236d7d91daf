//! The vector index backends, one suite for both.
//!
//! Every scenario is an async function of an `Arc<dyn VectorIndex>` and
//! runs twice: on the embedded backend (qdrant-edge in a temporary
//! directory), and on a Qdrant server when `QDRANT_URL` (its gRPC address,
//! e.g. http://127.0.0.1:6334) is set, under a fresh collection prefix per
//! test whose collections are dropped at the end. The server variants run
//! only when the tests are built with `QDRANT_URL` set (see `build.rs`);
//! without it they are marked ignored, so the test summary counts them as
//! skipped, never as passed. (This suite lives in nova-tests rather than
//! nova-vector so that turning the server on rebuilds only the tests.)

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use nova_vector::edge::EdgeIndex;
use nova_vector::server::ServerIndex;
use nova_vector::{
    Bound, ChunkPayload, FileRecord, Filter, Keywords, Point, Ranking, Scalar, Scored, Settings,
    Test, VectorError, VectorIndex, point_id,
};
use serde_json::{Value, json};

const DIM: usize = 8;

// ---------------------------------------------------------------------------
// Fixtures

/// Runs `scenario` on a fresh qdrant-edge index in a temporary directory.
async fn on_edge<F, Fut>(scenario: F)
where
    F: FnOnce(Arc<dyn VectorIndex>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temporary directory");
    let index = EdgeIndex::open(dir.path()).expect("open the edge index");
    assert_eq!(index.backend(), "qdrant-edge");
    scenario(Arc::new(index)).await;
}

/// The server at `QDRANT_URL`: the server tests are built only when it
/// is set, and then fail without it rather than pass.
fn qdrant_url() -> String {
    match std::env::var("QDRANT_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("these tests were built for a Qdrant server: set QDRANT_URL"),
    }
}

/// A collection prefix no other test (or run) uses.
fn fresh_prefix() -> String {
    format!("novatest_{}_", uuid::Uuid::now_v7().simple())
}

async fn connect(url: &str, prefix: &str) -> Arc<dyn VectorIndex> {
    let index = ServerIndex::connect(url, std::env::var("QDRANT_API_KEY").ok(), prefix)
        .await
        .unwrap_or_else(|e| panic!("QDRANT_URL is set but the server is unusable: {e}"));
    assert_eq!(index.backend(), "qdrant");
    Arc::new(index)
}

/// Runs `scenario` on the Qdrant server under a fresh prefix, then drops
/// every collection it made, whether it passed or not.
async fn on_server<F, Fut>(scenario: F)
where
    F: FnOnce(Arc<dyn VectorIndex>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let url = qdrant_url();
    let prefix = fresh_prefix();
    let index = connect(&url, &prefix).await;
    // On its own task, so a failing assertion still lets us clean up.
    let outcome = tokio::spawn(scenario(index.clone())).await;
    for collection in index.collections().await.unwrap_or_default() {
        let _ = index.drop_collection(&collection).await;
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Declares, for each scenario, a test on edge and one on the server.
macro_rules! suite {
    ($($scenario:ident),* $(,)?) => {
        mod edge {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $scenario() {
                    super::on_edge(super::$scenario).await;
                }
            )*
        }
        mod server {
            $(
                #[tokio::test(flavor = "multi_thread")]
                #[cfg_attr(not(qdrant_server), ignore = "needs a Qdrant server: set QDRANT_URL when building the tests")]
                async fn $scenario() {
                    super::on_server(super::$scenario).await;
                }
            )*
        }
    };
}

suite!(
    ensure_collection_is_idempotent,
    invalid_collection_names_are_rejected,
    upsert_and_count,
    search_is_best_first_and_round_trips_payloads,
    filters,
    delete_source_removes_exactly_that_source,
    files_lists_one_record_per_file,
    upsert_with_same_ids_overwrites,
    collections_are_isolated,
    unknown_collections,
    drop_collection_forgets_it,
    optimize_keeps_search_working,
    concurrent_ensure_collection,
    keyword_and_hybrid_search,
    rich_filters,
    settings_and_single_reads,
);

// ---------------------------------------------------------------------------
// Data

/// The unit vector along axis `i`.
fn axis(i: usize) -> Vec<f32> {
    let mut v = vec![0.0; DIM];
    v[i % DIM] = 1.0;
    v
}

/// `v` scaled to length 1.
fn unit(v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

/// A deterministic unit vector for chunk `n` of a test file: mostly along
/// one axis, a little along the next, so no two are equal.
fn vector_for(n: usize) -> Vec<f32> {
    let mut v = axis(n);
    v[(n + 1) % DIM] = 0.1 + (n / DIM) as f32 * 0.05;
    unit(v)
}

fn payload(
    collection: &str,
    source: &str,
    index: u32,
    chunks: u32,
    meta: &[(&str, &str)],
) -> ChunkPayload {
    ChunkPayload {
        source: source.to_owned(),
        text: format!("chunk {index} of {source}: héllo, wörld\n\tsecond line «quoted»"),
        collection: collection.to_owned(),
        loader: "markdown".to_owned(),
        loader_version: "1.2.0".to_owned(),
        model: "all-MiniLM-L6-v2".to_owned(),
        content_hash: format!("sha256-of-{source}"),
        chunk_index: index,
        chunks,
        size: 10_000 + source.len() as u64,
        modified_ms: 1_754_000_000_000 + index as u64,
        meta: meta
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect::<BTreeMap<_, _>>(),
        keywords: String::new(),
        uploaded: false,
        doc_meta: BTreeMap::new(),
    }
}

/// The points of one file, chunk 0 last (as ingestion writes them).
fn file_points(
    collection: &str,
    source: &str,
    chunks: u32,
    first_vector: usize,
    meta: &[(&str, &str)],
) -> Vec<Point> {
    let mut points: Vec<Point> = (0..chunks)
        .map(|i| Point {
            id: point_id(collection, source, i),
            vector: vector_for(first_vector + i as usize),
            keywords: None,
            payload: payload(collection, source, i, chunks, meta),
        })
        .collect();
    points.rotate_left(1);
    points
}

/// A test file: its source, how many chunks, its metadata.
type File = (&'static str, u32, &'static [(&'static str, &'static str)]);

/// The corpus the filter and file scenarios use.
const CORPUS: &[File] = &[
    (
        "docs/intro.md",
        2,
        &[("lang", "en"), ("title", "Getting started")],
    ),
    (
        "docs/api.md",
        3,
        &[("lang", "en"), ("kind", "reference"), ("title", "API")],
    ),
    ("guides/setup.md", 2, &[("lang", "de"), ("kind", "howto")]),
    // Shares a prefix with "docs/" only without the slash.
    ("docs-old/x.md", 1, &[("lang", "en")]),
    // Whitespace in a source must still match exactly.
    ("My Notes/a b.md", 1, &[("lang", "en"), ("title", "Notes")]),
];

fn corpus_chunks() -> u64 {
    CORPUS.iter().map(|(_, n, _)| u64::from(*n)).sum()
}

/// Creates `collection` and writes the corpus into it.
async fn load_corpus(index: &dyn VectorIndex, collection: &str) {
    index.ensure_collection(collection, DIM).await.unwrap();
    let mut next = 0;
    for (source, chunks, meta) in CORPUS {
        index
            .upsert(
                collection,
                file_points(collection, source, *chunks, next, meta),
            )
            .await
            .unwrap();
        next += *chunks as usize;
    }
}

/// The distinct sources of search hits.
fn sources(hits: &[Scored]) -> BTreeSet<String> {
    hits.iter().map(|h| h.payload.source.clone()).collect()
}

/// The sources a keyword search for `text` finds in `collection`.
async fn keyword_sources(
    index: &dyn VectorIndex,
    collection: &str,
    text: &str,
) -> BTreeSet<String> {
    let keywords = Keywords::new().unwrap();
    let hits = index
        .query(
            collection,
            Ranking::Keywords(keywords.query(text)),
            5,
            &Filter::default(),
        )
        .await
        .unwrap();
    sources(&hits)
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Sources of everything in `collection` that passes `filter`.
async fn matching(index: &dyn VectorIndex, collection: &str, filter: &Filter) -> BTreeSet<String> {
    let hits = index
        .search(collection, axis(0), 100, filter)
        .await
        .unwrap_or_else(|e| panic!("search with {filter:?} failed: {e}"));
    sources(&hits)
}

fn meta(pairs: &[(&str, &str)]) -> Vec<(String, Test)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Test::Eq(Scalar::Text((*v).to_owned()))))
        .collect()
}

// ---------------------------------------------------------------------------
// Scenarios

async fn ensure_collection_is_idempotent(index: Arc<dyn VectorIndex>) {
    assert!(index.collections().await.unwrap().is_empty());
    index.ensure_collection("docs", DIM).await.unwrap();
    index.ensure_collection("docs", DIM).await.unwrap();
    assert_eq!(index.collections().await.unwrap(), ["docs"]);
    assert_eq!(index.count("docs").await.unwrap(), 0);

    // Again once it holds points: nothing is lost.
    index
        .upsert("docs", file_points("docs", "a.md", 3, 0, &[]))
        .await
        .unwrap();
    index.ensure_collection("docs", DIM).await.unwrap();
    assert_eq!(index.count("docs").await.unwrap(), 3);

    index.ensure_collection("other", DIM).await.unwrap();
    assert_eq!(index.collections().await.unwrap(), ["docs", "other"]);
}

async fn invalid_collection_names_are_rejected(index: Arc<dyn VectorIndex>) {
    for name in ["", "Upper", "../etc", "a/b", "with space", &"a".repeat(65)] {
        match index.ensure_collection(name, DIM).await {
            Err(VectorError::InvalidCollection(n)) => assert_eq!(n, name),
            other => panic!("{name:?} was accepted: {other:?}"),
        }
    }
    assert!(index.collections().await.unwrap().is_empty());
}

async fn upsert_and_count(index: Arc<dyn VectorIndex>) {
    index.ensure_collection("docs", DIM).await.unwrap();
    index.upsert("docs", Vec::new()).await.unwrap();
    assert_eq!(index.count("docs").await.unwrap(), 0);
    load_corpus(&*index, "docs").await;
    assert_eq!(index.count("docs").await.unwrap(), corpus_chunks());
}

async fn search_is_best_first_and_round_trips_payloads(index: Arc<dyn VectorIndex>) {
    index.ensure_collection("docs", DIM).await.unwrap();
    // Cosine similarity to axis 0: 1, 0.8, 0.6 (ish), 0, -1.
    let vectors = [
        ("exact.md", axis(0)),
        (
            "close.md",
            unit(vec![0.8, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        ),
        (
            "closer-to-1.md",
            unit(vec![0.6, 0.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        ),
        ("orthogonal.md", axis(3)),
        (
            "opposite.md",
            unit(vec![-1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        ),
    ];
    let mut expected = BTreeMap::new();
    let points: Vec<Point> = vectors
        .iter()
        .map(|(source, vector)| {
            let payload = payload(
                "docs",
                source,
                0,
                1,
                &[
                    ("title", "Getting started — ünïcode"),
                    ("heading", "Intro > Install"),
                    ("page", "3"),
                ],
            );
            expected.insert(source.to_string(), payload.clone());
            Point {
                id: point_id("docs", source, 0),
                vector: vector.clone(),
                keywords: None,
                payload,
            }
        })
        .collect();
    index.upsert("docs", points).await.unwrap();

    let hits = index
        .search("docs", axis(0), 10, &Filter::default())
        .await
        .unwrap();
    let order: Vec<&str> = hits.iter().map(|h| h.payload.source.as_str()).collect();
    assert_eq!(
        order,
        [
            "exact.md",
            "close.md",
            "closer-to-1.md",
            "orthogonal.md",
            "opposite.md"
        ]
    );
    for pair in hits.windows(2) {
        assert!(pair[0].score >= pair[1].score, "not best first: {hits:?}");
    }
    for hit in &hits {
        assert!(
            (-1.0001..=1.0001).contains(&hit.score),
            "score out of range: {hit:?}"
        );
        assert_eq!(hit.payload, expected[&hit.payload.source]);
    }
    assert!((hits[0].score - 1.0).abs() < 1e-3, "{hits:?}");
    assert!((hits[1].score - 0.8).abs() < 1e-3, "{hits:?}");
    assert!(hits[3].score.abs() < 1e-3, "{hits:?}");
    assert!((hits[4].score + 1.0).abs() < 1e-3, "{hits:?}");

    // top_k is a limit.
    let top2 = index
        .search("docs", axis(0), 2, &Filter::default())
        .await
        .unwrap();
    assert_eq!(top2.len(), 2);
    assert_eq!(top2[0].payload.source, "exact.md");
    assert_eq!(top2[1].payload.source, "close.md");
}

async fn filters(index: Arc<dyn VectorIndex>) {
    load_corpus(&*index, "docs").await;
    let all = set(&[
        "docs/intro.md",
        "docs/api.md",
        "guides/setup.md",
        "docs-old/x.md",
        "My Notes/a b.md",
    ]);
    assert_eq!(matching(&*index, "docs", &Filter::default()).await, all);

    let cases: Vec<(Filter, BTreeSet<String>)> = vec![
        // Source, exact.
        (
            Filter {
                source: Some("docs/api.md".into()),
                ..Filter::default()
            },
            set(&["docs/api.md"]),
        ),
        (
            Filter {
                source: Some("My Notes/a b.md".into()),
                ..Filter::default()
            },
            set(&["My Notes/a b.md"]),
        ),
        (
            Filter {
                source: Some("docs/api".into()),
                ..Filter::default()
            },
            set(&[]),
        ),
        // Source prefix.
        (
            Filter {
                source_prefix: Some("docs/".into()),
                ..Filter::default()
            },
            set(&["docs/intro.md", "docs/api.md"]),
        ),
        (
            Filter {
                source_prefix: Some("guides/".into()),
                ..Filter::default()
            },
            set(&["guides/setup.md"]),
        ),
        (
            Filter {
                source_prefix: Some("docs".into()),
                ..Filter::default()
            },
            set(&["docs/intro.md", "docs/api.md", "docs-old/x.md"]),
        ),
        (
            Filter {
                source_prefix: Some("My Notes/".into()),
                ..Filter::default()
            },
            set(&["My Notes/a b.md"]),
        ),
        (
            Filter {
                source_prefix: Some("nothing/".into()),
                ..Filter::default()
            },
            set(&[]),
        ),
        // Metadata.
        (
            Filter {
                meta: meta(&[("lang", "de")]),
                ..Filter::default()
            },
            set(&["guides/setup.md"]),
        ),
        (
            Filter {
                meta: meta(&[("lang", "en")]),
                ..Filter::default()
            },
            set(&[
                "docs/intro.md",
                "docs/api.md",
                "docs-old/x.md",
                "My Notes/a b.md",
            ]),
        ),
        (
            // A value with whitespace matches exactly, not as full text.
            Filter {
                meta: meta(&[("title", "Getting started")]),
                ..Filter::default()
            },
            set(&["docs/intro.md"]),
        ),
        (
            Filter {
                meta: meta(&[("title", "Getting")]),
                ..Filter::default()
            },
            set(&[]),
        ),
        (
            Filter {
                meta: meta(&[("missing-key", "x")]),
                ..Filter::default()
            },
            set(&[]),
        ),
        // Combinations: every condition must hold.
        (
            Filter {
                meta: meta(&[("lang", "en"), ("kind", "reference")]),
                ..Filter::default()
            },
            set(&["docs/api.md"]),
        ),
        (
            Filter {
                meta: meta(&[("lang", "de"), ("kind", "reference")]),
                ..Filter::default()
            },
            set(&[]),
        ),
        (
            Filter {
                source_prefix: Some("docs/".into()),
                meta: meta(&[("lang", "en")]),
                ..Filter::default()
            },
            set(&["docs/intro.md", "docs/api.md"]),
        ),
        (
            Filter {
                source_prefix: Some("docs/".into()),
                meta: meta(&[("kind", "reference")]),
                ..Filter::default()
            },
            set(&["docs/api.md"]),
        ),
        (
            Filter {
                source: Some("docs/intro.md".into()),
                meta: meta(&[("kind", "reference")]),
                ..Filter::default()
            },
            set(&[]),
        ),
        (
            Filter {
                source: Some("docs/intro.md".into()),
                source_prefix: Some("docs/".into()),
                meta: meta(&[("title", "Getting started"), ("lang", "en")]),
            },
            set(&["docs/intro.md"]),
        ),
        (
            Filter {
                source: Some("docs/intro.md".into()),
                source_prefix: Some("guides/".into()),
                ..Filter::default()
            },
            set(&[]),
        ),
    ];
    for (filter, expected) in &cases {
        assert_eq!(
            &matching(&*index, "docs", filter).await,
            expected,
            "filter {filter:?}"
        );
    }
    // Every chunk of a matching file is found, not just one.
    let api = index
        .search(
            "docs",
            axis(0),
            100,
            &Filter {
                source: Some("docs/api.md".into()),
                ..Filter::default()
            },
        )
        .await
        .unwrap();
    let mut indexes: Vec<u32> = api.iter().map(|h| h.payload.chunk_index).collect();
    indexes.sort();
    assert_eq!(indexes, [0, 1, 2]);
    // The same filters again (metadata keys are indexed by now).
    for (filter, expected) in &cases {
        assert_eq!(
            &matching(&*index, "docs", filter).await,
            expected,
            "filter {filter:?}"
        );
    }
}

async fn delete_source_removes_exactly_that_source(index: Arc<dyn VectorIndex>) {
    load_corpus(&*index, "docs").await;
    let total = corpus_chunks();
    index.delete_source("docs", "docs/api.md").await.unwrap();
    assert_eq!(index.count("docs").await.unwrap(), total - 3);
    let left = matching(&*index, "docs", &Filter::default()).await;
    assert_eq!(
        left,
        set(&[
            "docs/intro.md",
            "guides/setup.md",
            "docs-old/x.md",
            "My Notes/a b.md"
        ])
    );
    let gone = Filter {
        source: Some("docs/api.md".into()),
        ..Filter::default()
    };
    assert!(matching(&*index, "docs", &gone).await.is_empty());
    assert!(
        !index
            .files("docs")
            .await
            .unwrap()
            .iter()
            .any(|f| f.source == "docs/api.md")
    );

    // A source with whitespace; a prefix of a source deletes nothing.
    index
        .delete_source("docs", "My Notes/a b.md")
        .await
        .unwrap();
    index.delete_source("docs", "docs").await.unwrap();
    index.delete_source("docs", "docs/").await.unwrap();
    index
        .delete_source("docs", "never-ingested.md")
        .await
        .unwrap();
    assert_eq!(index.count("docs").await.unwrap(), total - 4);
    assert_eq!(
        matching(&*index, "docs", &Filter::default()).await,
        set(&["docs/intro.md", "guides/setup.md", "docs-old/x.md"])
    );
}

async fn files_lists_one_record_per_file(index: Arc<dyn VectorIndex>) {
    index.ensure_collection("docs", DIM).await.unwrap();
    assert!(index.files("docs").await.unwrap().is_empty());
    load_corpus(&*index, "docs").await;
    let mut files = index.files("docs").await.unwrap();
    files.sort_by(|a, b| a.source.cmp(&b.source));
    let mut expected: Vec<FileRecord> = CORPUS
        .iter()
        .map(|(source, chunks, meta)| FileRecord::from(payload("docs", source, 0, *chunks, meta)))
        .collect();
    expected.sort_by(|a, b| a.source.cmp(&b.source));
    assert_eq!(files, expected);
    for file in &files {
        assert_eq!(file.content_hash, format!("sha256-of-{}", file.source));
        assert_eq!(file.loader, "markdown");
        assert_eq!(file.loader_version, "1.2.0");
    }

    // A file whose chunk 0 is not written yet is not recorded.
    let mut partial = file_points("docs", "partial.md", 3, 20, &[]);
    partial.retain(|p| p.payload.chunk_index != 0);
    index.upsert("docs", partial).await.unwrap();
    assert_eq!(index.files("docs").await.unwrap().len(), CORPUS.len());

    // Many files: every page of the listing.
    let many: Vec<Point> = (0..1500u32)
        .map(|i| {
            let source = format!("bulk/{i:04}.md");
            Point {
                id: point_id("docs", &source, 0),
                vector: vector_for(i as usize),
                keywords: None,
                payload: payload("docs", &source, 0, 1, &[]),
            }
        })
        .collect();
    for batch in many.chunks(500) {
        index.upsert("docs", batch.to_vec()).await.unwrap();
    }
    let files = index.files("docs").await.unwrap();
    assert_eq!(files.len(), CORPUS.len() + 1500);
    let distinct: BTreeSet<&str> = files.iter().map(|f| f.source.as_str()).collect();
    assert_eq!(distinct.len(), files.len(), "a file is listed twice");
}

async fn upsert_with_same_ids_overwrites(index: Arc<dyn VectorIndex>) {
    load_corpus(&*index, "docs").await;
    let total = corpus_chunks();
    // Re-ingest docs/intro.md with new content, same ids.
    let mut points = file_points("docs", "docs/intro.md", 2, 40, &[("lang", "fr")]);
    for point in &mut points {
        point.payload.content_hash = "sha256-new".into();
        point.payload.loader_version = "2.0.0".into();
        point.payload.text = format!("new text {}", point.payload.chunk_index);
    }
    index.upsert("docs", points).await.unwrap();
    assert_eq!(index.count("docs").await.unwrap(), total);

    let hits = index
        .search(
            "docs",
            axis(0),
            10,
            &Filter {
                source: Some("docs/intro.md".into()),
                ..Filter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(hits.len(), 2);
    for hit in &hits {
        assert_eq!(
            hit.payload.text,
            format!("new text {}", hit.payload.chunk_index)
        );
        assert_eq!(hit.payload.meta.get("lang"), Some(&json!("fr")));
        assert_eq!(hit.payload.meta.get("title"), None);
    }
    let old_meta = Filter {
        meta: meta(&[("title", "Getting started")]),
        ..Filter::default()
    };
    assert!(matching(&*index, "docs", &old_meta).await.is_empty());

    let files = index.files("docs").await.unwrap();
    assert_eq!(files.len(), CORPUS.len());
    let intro = files
        .iter()
        .find(|f| f.source == "docs/intro.md")
        .expect("docs/intro.md is listed");
    assert_eq!(intro.content_hash, "sha256-new");
    assert_eq!(intro.loader_version, "2.0.0");

    // The new vectors are searched, not the old ones.
    let best = index
        .search("docs", vector_for(41), 1, &Filter::default())
        .await
        .unwrap();
    assert_eq!(best[0].payload.source, "docs/intro.md");
    assert_eq!(best[0].payload.chunk_index, 1);
}

async fn collections_are_isolated(index: Arc<dyn VectorIndex>) {
    index.ensure_collection("a", DIM).await.unwrap();
    index.ensure_collection("b", DIM).await.unwrap();
    // The same id in both collections, different content.
    let in_a = Point {
        id: 7,
        vector: axis(0),
        keywords: None,
        payload: payload("a", "only-in-a.md", 0, 1, &[("tag", "shared")]),
    };
    let in_b = Point {
        id: 7,
        vector: axis(5),
        keywords: None,
        payload: payload("b", "only-in-b.md", 0, 1, &[("tag", "shared")]),
    };
    index.upsert("a", vec![in_a.clone()]).await.unwrap();
    assert_eq!(index.count("a").await.unwrap(), 1);
    assert_eq!(index.count("b").await.unwrap(), 0);
    assert!(
        index
            .search("b", axis(0), 10, &Filter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(index.files("b").await.unwrap().is_empty());

    index.upsert("b", vec![in_b.clone()]).await.unwrap();
    for (collection, point) in [("a", &in_a), ("b", &in_b)] {
        assert_eq!(index.count(collection).await.unwrap(), 1);
        for filter in [
            Filter::default(),
            Filter {
                meta: meta(&[("tag", "shared")]),
                ..Filter::default()
            },
        ] {
            let hits = index
                .search(collection, axis(0), 10, &filter)
                .await
                .unwrap();
            assert_eq!(hits.len(), 1, "{collection}: {hits:?}");
            assert_eq!(hits[0].payload, point.payload);
        }
        let files = index.files(collection).await.unwrap();
        assert_eq!(files, [FileRecord::from(point.payload.clone())]);
    }

    index.delete_source("a", "only-in-b.md").await.unwrap();
    assert_eq!(index.count("b").await.unwrap(), 1);
    index.drop_collection("a").await.unwrap();
    assert_eq!(index.count("b").await.unwrap(), 1);
}

fn assert_unknown<T: std::fmt::Debug>(result: Result<T, VectorError>, name: &str, what: &str) {
    match result {
        Err(VectorError::UnknownCollection(n)) => assert_eq!(n, name, "{what}"),
        other => panic!("{what} on a missing collection gave {other:?}"),
    }
}

async fn unknown_collections(index: Arc<dyn VectorIndex>) {
    index.ensure_collection("known", DIM).await.unwrap();
    let name = "nope";
    assert_unknown(
        index.search(name, axis(0), 5, &Filter::default()).await,
        name,
        "search",
    );
    assert_unknown(
        index
            .search(
                name,
                axis(0),
                5,
                &Filter {
                    meta: meta(&[("lang", "en")]),
                    source_prefix: Some("docs/".into()),
                    ..Filter::default()
                },
            )
            .await,
        name,
        "filtered search",
    );
    assert_unknown(index.count(name).await, name, "count");
    assert_unknown(index.files(name).await, name, "files");
    assert_unknown(
        index
            .upsert(name, file_points(name, "a.md", 1, 0, &[]))
            .await,
        name,
        "upsert",
    );
    assert_unknown(index.drop_collection(name).await, name, "drop_collection");
    // Nothing was created on the way.
    assert_eq!(index.collections().await.unwrap(), ["known"]);
}

async fn drop_collection_forgets_it(index: Arc<dyn VectorIndex>) {
    load_corpus(&*index, "docs").await;
    // Index a metadata key, so that a re-created collection must index it
    // again.
    let de = Filter {
        meta: meta(&[("lang", "de")]),
        ..Filter::default()
    };
    assert_eq!(
        matching(&*index, "docs", &de).await,
        set(&["guides/setup.md"])
    );
    index.ensure_collection("keep", DIM).await.unwrap();
    assert_eq!(index.collections().await.unwrap(), ["docs", "keep"]);

    index.drop_collection("docs").await.unwrap();
    assert_eq!(index.collections().await.unwrap(), ["keep"]);
    assert_unknown(index.count("docs").await, "docs", "count after drop");
    assert_unknown(
        index.search("docs", axis(0), 5, &Filter::default()).await,
        "docs",
        "search after drop",
    );
    assert_unknown(
        index.drop_collection("docs").await,
        "docs",
        "drop after drop",
    );

    // It can be made again, empty, and works as before.
    index.ensure_collection("docs", DIM).await.unwrap();
    assert_eq!(index.count("docs").await.unwrap(), 0);
    assert!(matching(&*index, "docs", &de).await.is_empty());
    load_corpus(&*index, "docs").await;
    assert_eq!(
        matching(&*index, "docs", &de).await,
        set(&["guides/setup.md"])
    );
    assert_eq!(index.count("docs").await.unwrap(), corpus_chunks());
}

async fn optimize_keeps_search_working(index: Arc<dyn VectorIndex>) {
    index.ensure_collection("docs", DIM).await.unwrap();
    let points: Vec<Point> = (0..2000u32)
        .map(|i| {
            let source = format!("{}/{i:04}.md", if i % 2 == 0 { "docs" } else { "guides" });
            Point {
                id: point_id("docs", &source, 0),
                vector: vector_for(i as usize),
                keywords: None,
                payload: payload(
                    "docs",
                    &source,
                    0,
                    1,
                    &[("parity", if i % 2 == 0 { "even" } else { "odd" })],
                ),
            }
        })
        .collect();
    for batch in points.chunks(500) {
        index.upsert("docs", batch.to_vec()).await.unwrap();
    }
    let query = vector_for(10);
    let filter = Filter {
        source_prefix: Some("docs/".into()),
        meta: meta(&[("parity", "even")]),
        ..Filter::default()
    };
    let before = index
        .search("docs", query.clone(), 5, &filter)
        .await
        .unwrap();
    assert_eq!(before.len(), 5);
    assert_eq!(before[0].payload.source, "docs/0010.md");

    index.optimize("docs").await.unwrap();
    // Searches work while the index is built, and after.
    for round in 0..2 {
        let hits = index
            .search("docs", query.clone(), 5, &filter)
            .await
            .unwrap();
        assert_eq!(hits.len(), 5, "round {round}");
        assert_eq!(hits[0].payload.source, "docs/0010.md", "round {round}");
        assert!(hits.iter().all(|h| h.payload.source.starts_with("docs/")));
        let all = index
            .search("docs", query.clone(), 1, &Filter::default())
            .await
            .unwrap();
        assert_eq!(all[0].payload.source, "docs/0010.md");
        assert_eq!(index.count("docs").await.unwrap(), 2000);
        if round == 0 && index.backend() == "qdrant-edge" {
            // Let the background optimiser finish (it is detached).
            tokio::time::sleep(Duration::from_secs(3)).await;
            index.optimize("docs").await.unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    // Writes after optimising are searchable.
    let late = Point {
        id: point_id("docs", "docs/late.md", 0),
        vector: axis(7),
        keywords: None,
        payload: payload("docs", "docs/late.md", 0, 1, &[("parity", "even")]),
    };
    index.upsert("docs", vec![late]).await.unwrap();
    let hits = index.search("docs", axis(7), 1, &filter).await.unwrap();
    assert_eq!(hits[0].payload.source, "docs/late.md");
}

/// Racing creators of one collection in one process all succeed.
async fn concurrent_ensure_collection(index: Arc<dyn VectorIndex>) {
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let index = index.clone();
        tasks.push(tokio::spawn(async move {
            index.ensure_collection("raced", DIM).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(index.collections().await.unwrap(), ["raced"]);
    index
        .upsert("raced", file_points("raced", "a.md", 2, 0, &[]))
        .await
        .unwrap();
    assert_eq!(index.count("raced").await.unwrap(), 2);
}

// ---------------------------------------------------------------------------
// Backend-specific

/// The edge index survives a restart: same collections, points and files,
/// and search still works.
#[tokio::test(flavor = "multi_thread")]
async fn edge_persists_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (count, mut files) = {
        let index = EdgeIndex::open(dir.path()).unwrap();
        load_corpus(&index, "docs").await;
        index.ensure_collection("empty", DIM).await.unwrap();
        // Index a metadata key before closing.
        let de = Filter {
            meta: meta(&[("lang", "de")]),
            ..Filter::default()
        };
        assert_eq!(
            matching(&index, "docs", &de).await,
            set(&["guides/setup.md"])
        );
        (
            index.count("docs").await.unwrap(),
            index.files("docs").await.unwrap(),
        )
    };
    assert_eq!(count, corpus_chunks());

    let index = EdgeIndex::open(dir.path()).unwrap();
    assert_eq!(index.collections().await.unwrap(), ["docs", "empty"]);
    assert_eq!(index.count("docs").await.unwrap(), count);
    assert_eq!(index.count("empty").await.unwrap(), 0);
    let mut reopened = index.files("docs").await.unwrap();
    files.sort_by(|a, b| a.source.cmp(&b.source));
    reopened.sort_by(|a, b| a.source.cmp(&b.source));
    assert_eq!(reopened, files);

    let hits = index
        .search("docs", vector_for(0), 1, &Filter::default())
        .await
        .unwrap();
    assert_eq!(
        hits[0].payload,
        payload("docs", "docs/intro.md", 0, 2, CORPUS[0].2)
    );
    for (filter, expected) in [
        (
            Filter {
                meta: meta(&[("lang", "de")]),
                ..Filter::default()
            },
            set(&["guides/setup.md"]),
        ),
        (
            Filter {
                source_prefix: Some("docs/".into()),
                meta: meta(&[("kind", "reference")]),
                ..Filter::default()
            },
            set(&["docs/api.md"]),
        ),
    ] {
        assert_eq!(matching(&index, "docs", &filter).await, expected);
    }
    // And it still takes writes.
    index.delete_source("docs", "docs/api.md").await.unwrap();
    assert_eq!(index.count("docs").await.unwrap(), count - 3);
    drop(index);
    let index = EdgeIndex::open(dir.path()).unwrap();
    assert_eq!(index.count("docs").await.unwrap(), count - 3);
}

/// Two hosts sharing one server create the same collection at once.
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(qdrant_server),
    ignore = "needs a Qdrant server: set QDRANT_URL when building the tests"
)]
async fn server_racing_hosts_create_one_collection() {
    let url = qdrant_url();
    let prefix = fresh_prefix();
    let hosts = [connect(&url, &prefix).await, connect(&url, &prefix).await];
    let outcome = tokio::spawn({
        let hosts = hosts.clone();
        async move {
            let (a, b) = tokio::join!(
                hosts[0].ensure_collection("shared", DIM),
                hosts[1].ensure_collection("shared", DIM)
            );
            a.unwrap();
            b.unwrap();
            hosts[0]
                .upsert("shared", file_points("shared", "a.md", 2, 0, &[]))
                .await
                .unwrap();
            assert_eq!(hosts[1].count("shared").await.unwrap(), 2);
            assert_eq!(hosts[1].collections().await.unwrap(), ["shared"]);
            let found = hosts[1]
                .search(
                    "shared",
                    axis(0),
                    5,
                    &Filter {
                        source_prefix: Some("a".into()),
                        ..Filter::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(found.len(), 2);
        }
    })
    .await;
    for collection in hosts[0].collections().await.unwrap_or_default() {
        let _ = hosts[0].drop_collection(&collection).await;
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// An unreachable server is `Unavailable`, naming the address.
#[tokio::test(flavor = "multi_thread")]
async fn server_unreachable_is_unavailable() {
    // Nothing listens on port 9 (discard) of localhost here.
    let url = "http://127.0.0.1:9";
    match ServerIndex::connect(url, None, "novatest_").await {
        Err(VectorError::Unavailable(message)) => {
            assert!(message.contains(url), "{message}")
        }
        Err(e) => panic!("expected Unavailable, got {e:?}"),
        Ok(_) => panic!("connected to {url}"),
    }
}

// ---------------------------------------------------------------------------
// Keyword and hybrid search, rich filters, settings

/// A chunk of `source` with `text`, its dense vector, its keywords (made
/// from the text) unless `keywords` is false, and `meta`.
fn text_point(
    collection: &str,
    source: &str,
    text: &str,
    vector: Vec<f32>,
    keywords: bool,
    meta: Value,
) -> Point {
    let mut payload = payload(collection, source, 0, 1, &[]);
    payload.text = text.to_owned();
    payload.meta = serde_json::from_value(meta).unwrap();
    Point {
        id: point_id(collection, source, 0),
        vector,
        keywords: keywords.then(|| Keywords::new().unwrap().document(text)),
        payload,
    }
}

async fn keyword_and_hybrid_search(index: Arc<dyn VectorIndex>) {
    let c = "words";
    index.ensure_collection(c, DIM).await.unwrap();
    let keywords = Keywords::new().unwrap();
    let points = vec![
        text_point(
            c,
            "errors.md",
            "The compiler reports E0499 when a value is borrowed mutably twice at once.",
            axis(0),
            true,
            json!({}),
        ),
        text_point(
            c,
            "ownership.md",
            "Ownership rules: each value has one owner, and borrowing lends it without moving.",
            axis(1),
            true,
            json!({}),
        ),
        text_point(
            c,
            "traits.md",
            "Traits describe shared behaviour; generics are bounded by traits.",
            axis(2),
            true,
            json!({}),
        ),
        // Indexed before keyword search: no keywords, found by meaning only.
        text_point(
            c,
            "legacy.md",
            "An old page that also mentions E0499 in passing.",
            axis(3),
            false,
            json!({}),
        ),
    ];
    index.upsert(c, points).await.unwrap();
    let order = |hits: &[Scored]| -> Vec<String> {
        hits.iter().map(|h| h.payload.source.clone()).collect()
    };

    // By keywords: the rare token ranks its chunk first; stemming and case
    // do not matter; a chunk without keywords is not found this way.
    let hits = index
        .query(
            c,
            Ranking::Keywords(keywords.query("e0499")),
            10,
            &Filter::default(),
        )
        .await
        .unwrap();
    assert_eq!(order(&hits), ["errors.md"], "{hits:?}");
    let hits = index
        .query(
            c,
            Ranking::Keywords(keywords.query("owners borrowed")),
            10,
            &Filter::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        order(&hits).into_iter().collect::<BTreeSet<_>>(),
        set(&["errors.md", "ownership.md"]),
        "stemmed terms match: {hits:?}"
    );
    assert_eq!(hits[0].payload.source, "ownership.md", "two terms beat one");
    // Words in no chunk: nothing.
    let none = index
        .query(
            c,
            Ranking::Keywords(keywords.query("kubernetes")),
            10,
            &Filter::default(),
        )
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");

    // Hybrid: meaning points at traits, keywords at the error; both
    // lists' best come first, before what neither ranks.
    let hits = index
        .query(
            c,
            Ranking::Hybrid {
                dense: axis(2),
                keywords: keywords.query("E0499"),
                depth: 10,
            },
            2,
            &Filter::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        order(&hits).into_iter().collect::<BTreeSet<_>>(),
        set(&["errors.md", "traits.md"]),
        "{hits:?}"
    );
    // Filters hold in every mode.
    let only = Filter {
        source: Some("traits.md".into()),
        ..Filter::default()
    };
    for ranking in [
        Ranking::Keywords(keywords.query("E0499 traits")),
        Ranking::Hybrid {
            dense: axis(0),
            keywords: keywords.query("E0499"),
            depth: 10,
        },
        Ranking::Dense(axis(0)),
    ] {
        let hits = index.query(c, ranking, 10, &only).await.unwrap();
        assert_eq!(order(&hits), ["traits.md"], "{hits:?}");
    }
}

async fn rich_filters(index: Arc<dyn VectorIndex>) {
    let c = "rich";
    index.ensure_collection(c, DIM).await.unwrap();
    let docs = [
        (
            "a",
            json!({"year": 2019, "status": "draft", "tags": ["rust", "wasm"], "score": 0.5, "published": "2019-03-01T00:00:00Z"}),
        ),
        (
            "b",
            json!({"year": 2021, "status": "final", "tags": ["rust"], "score": 2.5, "published": "2021-06-15T12:00:00Z"}),
        ),
        (
            "c",
            json!({"year": 2024, "status": "final", "tags": ["python"], "score": 9.0, "published": "2024-01-01T00:00:00Z"}),
        ),
        (
            "d",
            json!({"year": 2025, "tags": [], "published": "2025-02-01T00:00:00Z"}),
        ),
    ];
    let points = docs
        .iter()
        .enumerate()
        .map(|(i, (source, meta))| {
            text_point(c, source, source, vector_for(i), false, meta.clone())
        })
        .collect();
    index.upsert(c, points).await.unwrap();
    let text = |s: &str| Scalar::Text(s.to_owned());
    let range = |gt, gte, lt, lte| Test::Range { gt, gte, lt, lte };
    let n = |x: f64| Some(Bound::Number(x));
    let d = |x: &str| Some(Bound::Date(x.to_owned()));
    type Case<'a> = (Vec<(&'a str, Test)>, &'a [&'a str]);
    let cases: Vec<Case> = vec![
        (vec![("year", Test::Eq(Scalar::Integer(2021)))], &["b"]),
        (
            vec![("status", Test::Any(vec![text("draft"), text("final")]))],
            &["a", "b", "c"],
        ),
        (
            vec![(
                "year",
                Test::Any(vec![Scalar::Integer(2019), Scalar::Integer(2025)]),
            )],
            &["a", "d"],
        ),
        // A list value matches when it holds one of them.
        (vec![("tags", Test::Eq(text("rust")))], &["a", "b"]),
        (
            vec![("tags", Test::Any(vec![text("wasm"), text("python")]))],
            &["a", "c"],
        ),
        // Not: a chunk without the key passes.
        (
            vec![("status", Test::Not(vec![text("draft")]))],
            &["b", "c", "d"],
        ),
        (vec![("tags", Test::Not(vec![text("rust")]))], &["c", "d"]),
        // Numeric ranges, integer and fractional values alike.
        (
            vec![("year", range(None, n(2020.0), n(2025.0), None))],
            &["b", "c"],
        ),
        (
            vec![("year", range(n(2021.0), None, None, n(2025.0)))],
            &["c", "d"],
        ),
        (
            vec![("score", range(None, n(1.0), None, n(9.0)))],
            &["b", "c"],
        ),
        // Date-time ranges.
        (
            vec![(
                "published",
                range(
                    None,
                    d("2021-01-01T00:00:00Z"),
                    d("2024-06-01T00:00:00Z"),
                    None,
                ),
            )],
            &["b", "c"],
        ),
        (
            vec![(
                "published",
                range(d("2024-01-01T00:00:00Z"), None, None, None),
            )],
            &["d"],
        ),
        // Combined.
        (
            vec![
                ("status", Test::Eq(text("final"))),
                ("year", range(None, None, n(2022.0), None)),
            ],
            &["b"],
        ),
    ];
    for (tests, expected) in cases {
        let filter = Filter {
            meta: tests.into_iter().map(|(k, t)| (k.to_owned(), t)).collect(),
            ..Filter::default()
        };
        assert_eq!(
            matching(&*index, c, &filter).await,
            set(expected),
            "filter {filter:?}"
        );
    }
}

async fn settings_and_single_reads(index: Arc<dyn VectorIndex>) {
    let mut settings = Settings::new();
    settings.insert("description".into(), json!("team docs"));
    settings.insert("chunk_tokens".into(), json!(128));
    assert!(
        index
            .create_collection("team", DIM, &settings)
            .await
            .unwrap()
    );
    // Again: not created, the settings stay.
    assert!(
        !index
            .create_collection("team", DIM, &Settings::new())
            .await
            .unwrap()
    );
    assert_eq!(index.settings("team").await.unwrap(), settings);
    index.ensure_collection("plain", DIM).await.unwrap();
    assert_eq!(index.settings("plain").await.unwrap(), Settings::new());
    assert_unknown(index.settings("nope").await, "nope", "settings");

    let mut points = file_points("team", "guide.md", 3, 0, &[("lang", "en")]);
    points[2].payload.uploaded = true;
    points[2].payload.doc_meta = [("team".to_owned(), json!("infra"))].into();
    index.upsert("team", points).await.unwrap();
    let record = index
        .file("team", "guide.md")
        .await
        .unwrap()
        .expect("record");
    assert_eq!((record.chunks, record.uploaded), (3, true));
    assert_eq!(record.metadata.get("team"), Some(&json!("infra")));
    assert!(index.file("team", "other.md").await.unwrap().is_none());
    let chunks = index.chunks("team", "guide.md").await.unwrap();
    assert_eq!(
        chunks.iter().map(|c| c.chunk_index).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(index.chunks("team", "other.md").await.unwrap().is_empty());
    // Paged listing: every record once, one page at a time.
    for (source, first) in [("b.md", 10), ("c.md", 20), ("d.md", 30)] {
        index
            .upsert("team", file_points("team", source, 2, first, &[]))
            .await
            .unwrap();
    }
    assert_eq!(index.file_count("team").await.unwrap(), 4);
    let mut seen = BTreeSet::new();
    let mut cursor = None;
    loop {
        let (page, next) = index.files_page("team", cursor, 3).await.unwrap();
        assert!(page.len() <= 3);
        for record in page {
            assert!(
                seen.insert(record.source.clone()),
                "{} twice",
                record.source
            );
        }
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, set(&["guide.md", "b.md", "c.md", "d.md"]));
    let one = index
        .chunk("team", point_id("team", "guide.md", 1))
        .await
        .unwrap()
        .expect("chunk 1");
    assert_eq!(one.chunk_index, 1);
    // Dropped: its settings go with it.
    index.drop_collection("team").await.unwrap();
    assert!(
        index
            .create_collection("team", DIM, &Settings::new())
            .await
            .unwrap()
    );
    assert_eq!(index.settings("team").await.unwrap(), Settings::new());
}

/// A collection made before keyword search (a dense vector only) gets its
/// keyword vector when opened: its chunks keep answering by meaning, and
/// chunks written with keywords are found by them.
#[tokio::test(flavor = "multi_thread")]
async fn edge_adds_keyword_search_to_an_old_collection() {
    use qdrant_edge::{
        DEFAULT_VECTOR_NAME, Distance, EdgeConfig, EdgeShard, EdgeVectorParams,
        PointInsertOperations, PointOperations, PointStruct, UpdateOperation,
    };
    let dir = tempfile::tempdir().unwrap();
    {
        let config = EdgeConfig::builder()
            .vector(
                DEFAULT_VECTOR_NAME,
                EdgeVectorParams::builder(DIM, Distance::Cosine).build(),
            )
            .build();
        let shard = EdgeShard::new(&dir.path().join("old"), config).unwrap();
        let old = payload("old", "old.md", 0, 1, &[]);
        let point = PointStruct::new(
            point_id("old", "old.md", 0),
            axis(0),
            serde_json::to_value(&old).unwrap(),
        );
        shard
            .update(UpdateOperation::PointOperation(
                PointOperations::UpsertPoints(PointInsertOperations::PointsList(vec![
                    point.into(),
                ])),
            ))
            .unwrap();
        shard.flush().unwrap();
    }
    let index = EdgeIndex::open(dir.path()).unwrap();
    let found = index
        .search("old", axis(0), 5, &Filter::default())
        .await
        .unwrap();
    assert_eq!(sources(&found), set(&["old.md"]));
    index
        .upsert(
            "old",
            vec![text_point(
                "old",
                "new.md",
                "Error E0499 explained",
                axis(1),
                true,
                json!({}),
            )],
        )
        .await
        .unwrap();
    assert_eq!(
        keyword_sources(&index, "old", "E0499").await,
        set(&["new.md"])
    );
    // And again after a reopen: nothing to add the second time.
    drop(index);
    let index = EdgeIndex::open(dir.path()).unwrap();
    assert_eq!(index.count("old").await.unwrap(), 2);
}

/// On a server too: a collection made before keyword search gets its
/// keyword vector when nova ensures it.
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(qdrant_server),
    ignore = "needs a Qdrant server: set QDRANT_URL when building the tests"
)]
async fn server_adds_keyword_search_to_an_old_collection() {
    use qdrant_client::Qdrant;
    use qdrant_client::qdrant::{CreateCollectionBuilder, Distance, VectorParamsBuilder};
    let url = qdrant_url();
    let prefix = fresh_prefix();
    let raw = Qdrant::from_url(&url)
        .skip_compatibility_check()
        .build()
        .unwrap();
    raw.create_collection(
        CreateCollectionBuilder::new(format!("{prefix}old"))
            .vectors_config(VectorParamsBuilder::new(DIM as u64, Distance::Cosine)),
    )
    .await
    .unwrap();
    let index = connect(&url, &prefix).await;
    let outcome = tokio::spawn({
        let index = index.clone();
        async move {
            index.ensure_collection("old", DIM).await.unwrap();
            index
                .upsert(
                    "old",
                    vec![
                        text_point(
                            "old",
                            "a.md",
                            "Error E0499 explained",
                            axis(0),
                            true,
                            json!({}),
                        ),
                        text_point("old", "b.md", "Nothing of note", axis(1), false, json!({})),
                    ],
                )
                .await
                .unwrap();
            assert_eq!(
                keyword_sources(&*index, "old", "E0499").await,
                set(&["a.md"])
            );
            // Ensured again: nothing more to add.
            index.ensure_collection("old", DIM).await.unwrap();
        }
    })
    .await;
    let _ = index.drop_collection("old").await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
