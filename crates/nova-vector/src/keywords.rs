//! Keyword vectors: BM25 over a chunk's words, as sparse vectors.
//!
//! A document's vector holds, per term, BM25's term-frequency part
//! (saturated by `k1`, normalised by length with `b`); a query's holds 1
//! per term. The index multiplies in each term's inverse document
//! frequency over the collection at search time (the vector is created
//! with the IDF modifier), so the score is BM25 and stays right as the
//! collection grows, with nothing to recompute.
//!
//! The words are cut, lowercased, stop-word filtered and stemmed (English)
//! by Qdrant's own text pipeline, and terms are hashed to dimensions the
//! way a Qdrant server's `qdrant/bm25` model does: the vectors mean the
//! same on both backends.

use qdrant_edge::bm25_embed::{EdgeBm25, EdgeBm25Config};
use qdrant_edge::external::ordered_float::NotNan;

use crate::VectorError;

/// Words in an average chunk (200 model tokens at most).
const AVERAGE_WORDS: f64 = 120.0;

/// Recorded with every chunk: a change here (tokenizer, parameters)
/// re-indexes what was indexed with another.
pub const KEYWORDS_MODEL: &str = "bm25-en-1";

/// A sparse vector: term dimensions and their weights.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sparse {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl Sparse {
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// Turns text into keyword vectors.
pub struct Keywords {
    bm25: EdgeBm25,
}

impl std::fmt::Debug for Keywords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(KEYWORDS_MODEL)
    }
}

impl Keywords {
    pub fn new() -> Result<Self, VectorError> {
        // k1 1.2, b 0.75, the word tokenizer, English stop words and
        // stemmer; an average length of a chunk's words rather than a
        // document's.
        let avg_len = NotNan::new(AVERAGE_WORDS)
            .map_err(|e| VectorError::Backend(format!("BM25 average length: {e}")))?;
        let config = EdgeBm25Config {
            avg_len,
            ..EdgeBm25Config::default()
        };
        let bm25 = EdgeBm25::new(config)
            .map_err(|e| VectorError::Backend(format!("cannot make the BM25 model: {e}")))?;
        Ok(Keywords { bm25 })
    }

    /// A chunk's vector.
    pub fn document(&self, text: &str) -> Sparse {
        let v = self.bm25.embed_document(text);
        Sparse {
            indices: v.indices,
            values: v.values,
        }
    }

    /// A query's vector.
    pub fn query(&self, text: &str) -> Sparse {
        let v = self.bm25.embed_query(text);
        Sparse {
            indices: v.indices,
            values: v.values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_stemmed_and_stop_words_dropped() {
        let k = Keywords::new().unwrap();
        let q = k.query("the running of E0499");
        // "the", "of" dropped; "running" stemmed; the code kept.
        assert_eq!(q.indices.len(), 2, "{q:?}");
        assert_eq!(k.query("run e0499").indices.len(), 2);
        let mut a = k.query("run e0499").indices;
        let mut b = q.indices.clone();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b, "case and inflection do not change the terms");
        assert!(q.values.iter().all(|v| *v == 1.0));
        let d = k.document("E0499 E0499 cannot borrow");
        assert_eq!(d.indices.len(), 3);
        assert!(k.query("the of and").is_empty());
    }
}
