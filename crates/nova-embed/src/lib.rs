//! Sentence embeddings, computed in-process: a BERT-family model (by
//! default all-MiniLM-L6-v2) run on the CPU by nova's own encoder
//! (`bert.rs`, weights read with candle-core), behind a dynamic batcher so
//! that concurrent callers share forward passes.

// The one crate where `unsafe` is allowed throughout (the workspace denies
// it): SIMD kernels and the memory-mapped weights. Each block says why it
// is sound, and the kernels assert their bounds before entering one.
#![allow(unsafe_code)]

mod avx512;
mod batcher;
mod bert;
mod kernels;
mod model;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::oneshot;

pub use batcher::{BatchConfig, Priority};

/// Called after each forward pass with the texts it embedded and how long
/// it took: how the process's metrics learn of batches.
pub type BatchObserver = fn(texts: usize, took: std::time::Duration);

static OBSERVER: std::sync::OnceLock<BatchObserver> = std::sync::OnceLock::new();

/// Sets the process's [`BatchObserver`]; the first call wins.
pub fn observe_batches(observer: BatchObserver) {
    let _ = OBSERVER.set(observer);
}

fn observe_batch(texts: usize, took: std::time::Duration) {
    if let Some(observer) = OBSERVER.get() {
        observer(texts, took);
    }
}
pub use kernels::Kernel;

#[derive(Debug, Clone, thiserror::Error)]
pub enum EmbedError {
    #[error(
        "the model directory {dir} has no {file} (fetch all-MiniLM-L6-v2 with `just model`, or set NOVA_MODEL_DIR)"
    )]
    MissingFile { dir: PathBuf, file: String },
    #[error("cannot load the model: {0}")]
    Load(String),
    #[error("cannot tokenize: {0}")]
    Tokenize(String),
    #[error("the model failed: {0}")]
    Model(String),
    #[error("the embedder has stopped")]
    Stopped,
}

/// What the loaded model is.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub dimensions: usize,
    pub max_tokens: usize,
}

/// A handle to the embedder; clones share the model and its batcher.
#[derive(Clone)]
pub struct Embedder {
    model: Arc<model::Model>,
    queue: Arc<Handle>,
    info: Arc<ModelInfo>,
}

/// The batcher's queue, closed when the last handle is dropped so the
/// replica threads end.
struct Handle(Arc<batcher::Queue>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl Embedder {
    /// Loads the model in `dir` and starts its batching thread.
    pub fn load(dir: &Path, config: BatchConfig) -> Result<Self, EmbedError> {
        let model = Arc::new(model::Model::load(dir, config.kernel)?);
        let info = Arc::new(ModelInfo {
            name: model.name.clone(),
            dimensions: model.dim,
            max_tokens: model.max_tokens,
        });
        let queue = Arc::new(batcher::Queue::default());
        for i in 0..config.replicas.max(1) {
            let (worker, queue) = (model.clone(), queue.clone());
            std::thread::Builder::new()
                .name(format!("nova-embed-{i}"))
                .spawn(move || batcher::run(worker, config, queue))
                .map_err(|e| EmbedError::Load(format!("cannot start the embedding thread: {e}")))?;
        }
        Ok(Embedder {
            model,
            queue: Arc::new(Handle(queue)),
            info,
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Embeds `texts` (unit-length vectors, in order), ahead of any bulk
    /// work. Texts longer than the model's maximum are truncated, as
    /// sentence-transformers does.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.request(texts, Priority::Interactive).await
    }

    /// Embeds `texts` as bulk work (an ingest): served only when no
    /// interactive request waits, in smaller batches that queries may
    /// come between.
    pub async fn embed_bulk(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.request(texts, Priority::Bulk).await
    }

    async fn request(
        &self,
        texts: Vec<String>,
        priority: Priority,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .0
            .push(batcher::Request { texts, reply }, priority);
        answer.await.map_err(|_| EmbedError::Stopped)?
    }

    /// Embeds one text.
    pub async fn embed_one(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        self.embed(vec![text.to_owned()])
            .await?
            .pop()
            .ok_or(EmbedError::Stopped)
    }

    /// The model's tokenizer, for splitting text by token count.
    pub fn tokenizer(&self) -> &tokenizers::Tokenizer {
        self.model.untruncated_tokenizer()
    }
}
