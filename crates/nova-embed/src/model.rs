//! One BERT-family sentence encoder on the CPU: tokenize, run, mean-pool,
//! normalise — the procedure sentence-transformers applies, so vectors
//! match its output (see `host/tests/embed_parity.rs`).

use std::path::{Path, PathBuf};

use tokenizers::{Encoding, Tokenizer, TruncationParams};

use super::EmbedError;
use super::bert::{Bert, BertConfig, Tokens};
use super::kernels::Kernel;

/// Used when the model directory does not say (sentence-transformers' own
/// default for MiniLM-style models).
const DEFAULT_MAX_TOKENS: usize = 256;

pub struct Model {
    bert: Bert,
    tokenizer: Tokenizer,
    /// The same tokenizer without truncation, to measure and split text.
    untruncated: Tokenizer,
    pub name: String,
    pub dim: usize,
    pub max_tokens: usize,
}

impl Model {
    /// Loads `config.json`, `model.safetensors` and `tokenizer.json` from
    /// `dir` (Hugging Face layout), to run on `kernel`.
    pub fn load(dir: &Path, kernel: Kernel) -> Result<Self, EmbedError> {
        let file = |name: &str| -> Result<PathBuf, EmbedError> {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(EmbedError::MissingFile {
                    dir: dir.to_owned(),
                    file: name.to_owned(),
                })
            }
        };
        let config_text = std::fs::read_to_string(file("config.json")?)
            .map_err(|e| EmbedError::Load(format!("config.json: {e}")))?;
        let config: BertConfig = serde_json::from_str(&config_text)
            .map_err(|e| EmbedError::Load(format!("config.json is not a BERT config: {e}")))?;
        let max_tokens = max_tokens(dir).min(config.max_position_embeddings);

        let load_tokenizer = || {
            Tokenizer::from_file(dir.join("tokenizer.json"))
                .map_err(|e| EmbedError::Load(format!("tokenizer.json: {e}")))
        };
        file("tokenizer.json")?;
        let mut tokenizer = load_tokenizer()?;
        let mut untruncated = load_tokenizer()?;
        untruncated.with_padding(None);
        untruncated
            .with_truncation(None)
            .map_err(|e| EmbedError::Load(format!("tokenizer truncation: {e}")))?;
        // The shipped tokenizer.json may fix truncation and padding at 128;
        // sentence-transformers truncates at the model's maximum and pads
        // to the longest text of a batch (done here, per batch).
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..TruncationParams::default()
            }))
            .map_err(|e| EmbedError::Load(format!("tokenizer truncation: {e}")))?;
        tokenizer.with_padding(None);

        let bert = Bert::load(&file("model.safetensors")?, &config, kernel.wide())?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".to_owned());
        Ok(Model {
            bert,
            tokenizer,
            untruncated,
            name,
            dim: config.hidden_size,
            max_tokens,
        })
    }

    /// Tokenizes one text, truncated at the model's maximum.
    pub fn tokenize(&self, text: &str) -> Result<Encoding, EmbedError> {
        self.tokenizer
            .encode_fast(text, true)
            .map_err(|e| EmbedError::Tokenize(e.to_string()))
    }

    /// The tokenizer without truncation, for chunking by token count.
    pub fn untruncated_tokenizer(&self) -> &Tokenizer {
        &self.untruncated
    }

    /// Embeds a batch of tokenized texts: mean-pooled over their tokens
    /// and L2-normalised.
    pub fn embed(&self, batch: &[&Encoding]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let texts: Vec<Tokens<'_>> = batch
            .iter()
            .map(|e| Tokens {
                ids: e.get_ids(),
                types: e.get_type_ids(),
            })
            .collect();
        self.bert.embed(&texts)
    }
}

/// The model's maximum sequence length: `sentence_bert_config.json`'s
/// `max_seq_length` when present (what sentence-transformers uses).
fn max_tokens(dir: &Path) -> usize {
    #[derive(serde::Deserialize)]
    struct SentenceBertConfig {
        max_seq_length: usize,
    }
    std::fs::read_to_string(dir.join("sentence_bert_config.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<SentenceBertConfig>(&text).ok())
        .map(|c| c.max_seq_length)
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_MAX_TOKENS)
}
