//! Sentence embeddings, computed in-process: a BERT-family model (by
//! default all-MiniLM-L6-v2) run on the CPU by nova's own encoder
//! (`bert.rs`, weights read with candle-core), behind a dynamic batcher so
//! that concurrent callers share forward passes.

mod avx512;
mod batcher;
mod bert;
mod kernels;
mod model;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use tokio::sync::oneshot;

pub use batcher::BatchConfig;
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
    requests: mpsc::Sender<batcher::Request>,
    info: Arc<ModelInfo>,
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
        let (requests, receiver) = mpsc::channel();
        let receiver = Arc::new(std::sync::Mutex::new(receiver));
        for i in 0..config.replicas.max(1) {
            let (worker, receiver) = (model.clone(), receiver.clone());
            std::thread::Builder::new()
                .name(format!("nova-embed-{i}"))
                .spawn(move || batcher::run(worker, config, receiver))
                .map_err(|e| EmbedError::Load(format!("cannot start the embedding thread: {e}")))?;
        }
        Ok(Embedder {
            model,
            requests,
            info,
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Embeds `texts` (unit-length vectors, in order). Texts longer than
    /// the model's maximum are truncated, as sentence-transformers does.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(batcher::Request { texts, reply })
            .map_err(|_| EmbedError::Stopped)?;
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
