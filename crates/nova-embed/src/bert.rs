//! A BERT-family encoder's forward pass on the CPU, for sentence
//! embeddings: the computation of candle-transformers' `BertModel` (and of
//! Hugging Face's), arranged for throughput on a few cores.
//!
//! - No padding: the texts of a batch are packed one after another, so
//!   the linear layers run on real tokens only, and attention runs per
//!   text on its own length (no mask, nothing computed for padding).
//! - Query, key and value are one matrix product; the 1/√d attention scale
//!   is folded into the query weights at load.
//! - Bias, activation, residual and LayerNorm are fused into single passes.
//! - On CPUs with AVX-512 the linear weights are packed once, at load, for
//!   nova's own product (`avx512.rs`); elsewhere they stay as stored, for
//!   the `gemm` crate.
//! - The activations live in a workspace kept by each thread and reused,
//!   so a batch allocates nothing and memory stays flat under load.
//!
//! Weights are read with candle-core from `model.safetensors` (f32, f16 or
//! bf16), converted to f32. `host/tests/embed_parity.rs` holds the output
//! to sentence-transformers' within cosine 0.9999.

use std::cell::RefCell;
use std::path::Path;

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device};
use serde::Deserialize;

use super::EmbedError;
use super::kernels::{self, Activation, Linear};

/// The fields of a Hugging Face BERT `config.json` the encoder uses.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

/// One encoder layer.
struct Layer {
    /// hidden → 3·hidden: query (pre-scaled), key and value stacked.
    qkv: Linear,
    /// hidden → hidden
    out: Linear,
    attn_norm: (Vec<f32>, Vec<f32>),
    /// hidden → intermediate
    up: Linear,
    /// intermediate → hidden
    down: Linear,
    out_norm: (Vec<f32>, Vec<f32>),
}

pub struct Bert {
    /// Whether the AVX-512 product runs: one choice for the model's life,
    /// since the weights are laid out for it (see `kernels::Linear`).
    wide: bool,
    hidden: usize,
    heads: usize,
    intermediate: usize,
    eps: f32,
    act: Activation,
    max_positions: usize,
    type_vocab: usize,
    vocab: usize,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    embed_norm: (Vec<f32>, Vec<f32>),
    layers: Vec<Layer>,
}

/// One text to encode: its token ids and token type ids.
pub struct Tokens<'a> {
    pub ids: &'a [u32],
    pub types: &'a [u32],
}

/// Activations of one forward pass, reused between passes on a thread.
#[derive(Default)]
struct Workspace {
    x: Vec<f32>,
    qkv: Vec<f32>,
    context: Vec<f32>,
    tmp: Vec<f32>,
    inter: Vec<f32>,
    scores: Vec<f32>,
    /// One head's keys, packed for the AVX-512 product.
    keys: Vec<f32>,
}

thread_local! {
    static WORKSPACE: RefCell<Workspace> = RefCell::new(Workspace::default());
}

/// Most tokens run through the layers together (one text may exceed it).
/// Enough rows for the matrix kernel to run at full speed, few enough that
/// a thread's activations stay near 8 MB for MiniLM.
const BLOCK_TOKENS: usize = 512;

impl Bert {
    /// Loads the weights, laid out for the AVX-512 product when `wide`.
    pub fn load(weights: &Path, config: &BertConfig, wide: bool) -> Result<Self, EmbedError> {
        let act = match config.hidden_act.as_str() {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            other => {
                return Err(EmbedError::Load(format!(
                    "config.json: hidden_act {other:?} is not supported (gelu, gelu_new, relu)"
                )));
            }
        };
        if let Some(kind) = &config.position_embedding_type
            && kind != "absolute"
        {
            return Err(EmbedError::Load(format!(
                "config.json: position_embedding_type {kind:?} is not supported (absolute)"
            )));
        }
        let (h, heads) = (config.hidden_size, config.num_attention_heads);
        if heads == 0 || h % heads != 0 {
            return Err(EmbedError::Load(format!(
                "config.json: hidden_size {h} is not a multiple of num_attention_heads {heads}"
            )));
        }
        // SAFETY: the weights file is memory-mapped read-only while it is
        // converted; nova owns the model directory and does not modify it.
        let file = unsafe { MmapedSafetensors::new(weights) }
            .map_err(|e| EmbedError::Load(format!("model.safetensors: {e}")))?;
        let weights = Weights::new(&file);
        let i = config.intermediate_size;
        let scale = 1.0 / ((h / heads) as f32).sqrt();
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let at = |name: &str| format!("encoder.layer.{l}.{name}");
            let mut q = weights.linear(&at("attention.self.query"), h, h)?;
            let k = weights.linear(&at("attention.self.key"), h, h)?;
            let v = weights.linear(&at("attention.self.value"), h, h)?;
            q.0.iter_mut().for_each(|w| *w *= scale);
            q.1.iter_mut().for_each(|b| *b *= scale);
            let linear = |(w, b): (Vec<f32>, Vec<f32>), inputs| Linear::new(w, b, inputs, wide);
            layers.push(Layer {
                qkv: linear(([q.0, k.0, v.0].concat(), [q.1, k.1, v.1].concat()), h),
                out: linear(weights.linear(&at("attention.output.dense"), h, h)?, h),
                attn_norm: weights.norm(&at("attention.output.LayerNorm"), h)?,
                up: linear(weights.linear(&at("intermediate.dense"), h, i)?, h),
                down: linear(weights.linear(&at("output.dense"), i, h)?, i),
                out_norm: weights.norm(&at("output.LayerNorm"), h)?,
            });
        }
        Ok(Bert {
            wide,
            hidden: h,
            heads,
            intermediate: i,
            eps: config.layer_norm_eps as f32,
            act,
            max_positions: config.max_position_embeddings,
            type_vocab: config.type_vocab_size,
            vocab: config.vocab_size,
            word: weights.tensor("embeddings.word_embeddings.weight", &[config.vocab_size, h])?,
            position: weights.tensor(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, h],
            )?,
            token_type: weights.tensor(
                "embeddings.token_type_embeddings.weight",
                &[config.type_vocab_size, h],
            )?,
            embed_norm: weights.norm("embeddings.LayerNorm", h)?,
            layers,
        })
    }

    /// Mean-pooled, L2-normalised embeddings of `texts`, one per text.
    pub fn embed(&self, texts: &[Tokens<'_>]) -> Result<Vec<Vec<f32>>, EmbedError> {
        for text in texts {
            if text.ids.len() > self.max_positions {
                return Err(EmbedError::Model(format!(
                    "{} tokens; the model takes at most {}",
                    text.ids.len(),
                    self.max_positions
                )));
            }
            if text.types.len() != text.ids.len() {
                return Err(EmbedError::Model("token types do not match the ids".into()));
            }
        }
        WORKSPACE.with(|ws| {
            let mut ws = ws.borrow_mut();
            let mut out = Vec::with_capacity(texts.len());
            // Texts are independent: a block of them runs through every
            // layer before the next, so the activations stay small.
            let mut rest = texts;
            while !rest.is_empty() {
                let mut tokens = 0;
                let take = rest
                    .iter()
                    .take_while(|text| {
                        tokens += text.ids.len();
                        tokens <= BLOCK_TOKENS
                    })
                    .count()
                    .max(1);
                let (block, later) = rest.split_at(take);
                out.extend(self.forward(block, &mut ws)?);
                rest = later;
            }
            Ok(out)
        })
    }

    fn forward(
        &self,
        texts: &[Tokens<'_>],
        ws: &mut Workspace,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let h = self.hidden;
        let t: usize = texts.iter().map(|s| s.ids.len()).sum();
        let longest = texts.iter().map(|s| s.ids.len()).max().unwrap_or(0);
        ws.size(t, h, self.intermediate, longest);
        self.embeddings(texts, &mut ws.x[..t * h])?;
        for layer in &self.layers {
            self.layer(layer, texts, t, ws);
        }
        // Mean over each text's tokens, then unit length.
        let mut out = Vec::with_capacity(texts.len());
        let mut start = 0;
        for text in texts {
            let n = text.ids.len();
            let mut mean = vec![0.0f32; h];
            for row in ws.x[start * h..(start + n) * h].chunks_exact(h) {
                mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
            }
            let count = (n as f32).max(1e-9);
            mean.iter_mut().for_each(|m| *m /= count);
            let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            mean.iter_mut().for_each(|m| *m /= norm);
            out.push(mean);
            start += n;
        }
        Ok(out)
    }

    /// The embedding layer into `x`, exactly the texts' tokens × hidden.
    fn embeddings(&self, texts: &[Tokens<'_>], x: &mut [f32]) -> Result<(), EmbedError> {
        let h = self.hidden;
        let mut rows = x.chunks_exact_mut(h);
        for text in texts {
            for (position, (&id, &kind)) in text.ids.iter().zip(text.types).enumerate() {
                let (id, kind) = (id as usize, kind as usize);
                if id >= self.vocab || kind >= self.type_vocab {
                    return Err(EmbedError::Model(format!(
                        "token {id} (type {kind}) is outside the model's vocabulary"
                    )));
                }
                let Some(row) = rows.next() else {
                    return Err(EmbedError::Model("workspace too small".into()));
                };
                let word = &self.word[id * h..(id + 1) * h];
                let pos = &self.position[position * h..(position + 1) * h];
                let typ = &self.token_type[kind * h..(kind + 1) * h];
                for (((v, w), p), k) in row.iter_mut().zip(word).zip(pos).zip(typ) {
                    *v = w + p + k;
                }
            }
        }
        let (w, b) = &self.embed_norm;
        kernels::layer_norm(x, w, b, self.eps);
        Ok(())
    }

    fn layer(&self, layer: &Layer, texts: &[Tokens<'_>], t: usize, ws: &mut Workspace) {
        let (h, i) = (self.hidden, self.intermediate);
        let d = h / self.heads;
        let x = &mut ws.x[..t * h];
        let qkv = &mut ws.qkv[..t * 3 * h];
        layer.qkv.forward(x, t, qkv);

        // Attention, text by text and head by head, on real tokens only.
        let context = &mut ws.context[..t * h];
        let mut start = 0;
        for text in texts {
            let n = text.ids.len();
            for head in 0..self.heads {
                kernels::attention_head(
                    self.wide,
                    qkv,
                    start,
                    n,
                    h,
                    head,
                    d,
                    &mut ws.scores,
                    &mut ws.keys,
                    context,
                );
            }
            start += n;
        }

        let tmp = &mut ws.tmp[..t * h];
        layer.out.forward(context, t, tmp);
        let (w, b) = &layer.attn_norm;
        kernels::add_layer_norm(x, tmp, w, b, self.eps);

        let inter = &mut ws.inter[..t * i];
        layer.up.forward(x, t, inter);
        kernels::activate(inter, self.act);
        layer.down.forward(inter, t, tmp);
        let (w, b) = &layer.out_norm;
        kernels::add_layer_norm(x, tmp, w, b, self.eps);
    }
}

impl Workspace {
    fn size(&mut self, t: usize, h: usize, i: usize, longest: usize) {
        fit(&mut self.x, t * h);
        fit(&mut self.qkv, t * 3 * h);
        fit(&mut self.context, t * h);
        fit(&mut self.tmp, t * h);
        fit(&mut self.inter, t * i);
        fit(&mut self.scores, longest * longest);
    }
}

fn fit(buf: &mut Vec<f32>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
}

/// Reads named tensors as f32, whichever prefix the checkpoint uses.
struct Weights<'a> {
    file: &'a MmapedSafetensors,
    prefix: &'static str,
}

impl<'a> Weights<'a> {
    fn new(file: &'a MmapedSafetensors) -> Self {
        // Checkpoints saved from a task model nest the encoder under "bert.".
        let nested = file.get("bert.embeddings.word_embeddings.weight").is_ok()
            && file.get("embeddings.word_embeddings.weight").is_err();
        Weights {
            file,
            prefix: if nested { "bert." } else { "" },
        }
    }

    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, EmbedError> {
        let full = format!("{}{name}", self.prefix);
        let tensor = self
            .file
            .load(&full, &Device::Cpu)
            .map_err(|e| EmbedError::Load(format!("model weights: {full}: {e}")))?;
        if tensor.dims() != shape {
            return Err(EmbedError::Load(format!(
                "model weights: {full} has shape {:?}, config.json says {shape:?}",
                tensor.dims()
            )));
        }
        tensor
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| EmbedError::Load(format!("model weights: {full}: {e}")))
    }

    /// A linear layer `inputs` → `outputs`: its weight ([outputs, inputs],
    /// as stored) and its bias.
    fn linear(
        &self,
        name: &str,
        inputs: usize,
        outputs: usize,
    ) -> Result<(Vec<f32>, Vec<f32>), EmbedError> {
        Ok((
            self.tensor(&format!("{name}.weight"), &[outputs, inputs])?,
            self.tensor(&format!("{name}.bias"), &[outputs])?,
        ))
    }

    fn norm(&self, name: &str, h: usize) -> Result<(Vec<f32>, Vec<f32>), EmbedError> {
        Ok((
            self.tensor(&format!("{name}.weight"), &[h])?,
            self.tensor(&format!("{name}.bias"), &[h])?,
        ))
    }
}
