//! Embedding parity: nova's candle embeddings against reference vectors
//! made by sentence-transformers on the same model directory
//! (`scripts/embedding_parity.py` wrote `fixtures/embedding_parity.json`).

use std::path::PathBuf;

use nova_embed::{BatchConfig, Embedder, Kernel};

fn model_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "no embedding model at {}: run `just model`",
        dir.display()
    );
    dir
}

#[derive(serde::Deserialize)]
struct Fixture {
    texts: Vec<String>,
    vectors: Vec<Vec<f32>>,
    tokens: Vec<usize>,
    dim: usize,
    max_seq_length: usize,
}

fn fixture() -> Fixture {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/embedding_parity.json");
    serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("fixture JSON")
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[tokio::test(flavor = "multi_thread")]
async fn matches_sentence_transformers_on_every_fixture_text() {
    matches_sentence_transformers(Kernel::Fastest).await;
}

/// The `gemm` product that CPUs without AVX-512 run, checked on this one
/// too (on a CPU without AVX-512 both tests run it).
#[tokio::test(flavor = "multi_thread")]
async fn the_portable_kernel_matches_sentence_transformers_too() {
    matches_sentence_transformers(Kernel::Portable).await;
}

async fn matches_sentence_transformers(kernel: Kernel) {
    let fixture = fixture();
    assert!(fixture.texts.len() >= 50);
    assert!(
        fixture.tokens.iter().any(|&t| t > 256),
        "the fixture must include a text over 256 tokens"
    );
    let config = BatchConfig {
        kernel,
        ..BatchConfig::default()
    };
    let embedder = Embedder::load(&model_dir(), config).expect("model");
    assert_eq!(embedder.info().dimensions, fixture.dim);
    assert_eq!(embedder.info().max_tokens, fixture.max_seq_length);

    // All at once: batched, padded and length-sorted by the batcher.
    let vectors = embedder.embed(fixture.texts.clone()).await.expect("embed");
    assert_eq!(vectors.len(), fixture.texts.len());
    let mut worst = (1.0f64, 0usize);
    for (i, (got, want)) in vectors.iter().zip(&fixture.vectors).enumerate() {
        assert_eq!(got.len(), fixture.dim);
        let cos = cosine(got, want);
        if cos < worst.0 {
            worst = (cos, i);
        }
        assert!(
            cos >= 0.9999,
            "{kernel:?}: text {i} ({} tokens) has cosine {cos} to sentence-transformers: {:?}",
            fixture.tokens[i],
            fixture.texts[i].chars().take(80).collect::<String>()
        );
    }
    eprintln!("{kernel:?}: worst cosine {:.9} (text {})", worst.0, worst.1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_text_embeds_the_same_alone_or_in_a_batch() {
    let fixture = fixture();
    // Two replicas share the request queue, as a server's do.
    let config = BatchConfig {
        replicas: 2,
        ..BatchConfig::default()
    };
    let embedder = Embedder::load(&model_dir(), config).expect("model");
    let batch = embedder
        .embed(fixture.texts[..12].to_vec())
        .await
        .expect("batch");
    for (i, text) in fixture.texts[..12].iter().enumerate() {
        let alone = embedder.embed_one(text).await.expect("alone");
        let norm: f64 = alone
            .iter()
            .map(|x| f64::from(*x).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "unit length, got {norm}");
        assert!(
            cosine(&alone, &batch[i]) > 0.99999,
            "text {i}: padding changed the vector"
        );
    }
    // Concurrent callers are batched together and each gets its own answer.
    let calls = fixture.texts[..8].iter().map(|t| {
        let e = embedder.clone();
        let t = t.clone();
        tokio::spawn(async move { e.embed_one(&t).await })
    });
    for (i, call) in calls.enumerate() {
        let v = call.await.expect("join").expect("embed");
        assert!(cosine(&v, &batch[i]) > 0.99999, "concurrent text {i}");
    }
}

#[test]
fn a_missing_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let error = Embedder::load(dir.path(), BatchConfig::default())
        .err()
        .expect("must fail");
    assert!(error.to_string().contains("just model"), "{error}");
}
