//! Splitting loader output to the model's token budget.
//!
//! Loaders cut documents where the format suggests (sections, pages,
//! paragraphs); a piece longer than the budget would be truncated by the
//! model and its tail never found, so it is split here into windows of at
//! most `max_tokens`, overlapping by `overlap` tokens, cut between words.

use tokenizers::Tokenizer;

/// How chunks are sized, in model tokens (without [CLS]/[SEP]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkBudget {
    pub max_tokens: usize,
    pub overlap: usize,
}

impl Default for ChunkBudget {
    fn default() -> Self {
        ChunkBudget {
            max_tokens: 200,
            overlap: 32,
        }
    }
}

/// Splits `text` into pieces of at most `budget.max_tokens` tokens.
pub fn split(tokenizer: &Tokenizer, text: &str, budget: ChunkBudget) -> Vec<String> {
    let text = text.trim();
    if text.is_empty() {
        return Vec::new();
    }
    // `tokenizer` must not truncate (see `Embedder::tokenizer`), or the
    // text's tail would be invisible here.
    match tokenizer.encode(text, false) {
        Ok(encoding) => windows(text, encoding.get_offsets(), budget),
        Err(_) => vec![text.to_owned()],
    }
}

/// Cuts `text` at token boundaries given by `offsets` (byte ranges of each
/// token, in order).
fn windows(text: &str, offsets: &[(usize, usize)], budget: ChunkBudget) -> Vec<String> {
    let max = budget.max_tokens.max(1);
    let overlap = budget.overlap.min(max / 2);
    if offsets.len() <= max {
        return vec![text.to_owned()];
    }
    let starts_word = |i: usize| i == 0 || offsets[i].0 > offsets[i - 1].1;
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < offsets.len() {
        let mut end = (start + max).min(offsets.len());
        if end < offsets.len() {
            // Back off to a word boundary, but never below half a window.
            let floor = start + max / 2;
            let mut cut = end;
            while cut > floor && !starts_word(cut) {
                cut -= 1;
            }
            if starts_word(cut) {
                end = cut;
            }
        }
        let piece = text[offsets[start].0..offsets[end - 1].1].trim();
        if !piece.is_empty() {
            pieces.push(piece.to_owned());
        }
        if end >= offsets.len() {
            break;
        }
        let mut next = end.saturating_sub(overlap).max(start + 1);
        while next > start + 1 && !starts_word(next) {
            next -= 1;
        }
        start = next;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Word-level "tokens" of a text: (start, end) byte ranges.
    fn words(text: &str) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut start = None;
        for (i, c) in text.char_indices() {
            match (c.is_whitespace(), start) {
                (false, None) => start = Some(i),
                (true, Some(s)) => {
                    out.push((s, i));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            out.push((s, text.len()));
        }
        out
    }

    #[test]
    fn short_text_is_one_piece() {
        let text = "one two three";
        let budget = ChunkBudget {
            max_tokens: 5,
            overlap: 1,
        };
        assert_eq!(windows(text, &words(text), budget), vec![text]);
    }

    #[test]
    fn long_text_is_split_with_overlap_and_covers_everything() {
        let text: String = (0..25).map(|i| format!("w{i} ")).collect();
        let text = text.trim();
        let budget = ChunkBudget {
            max_tokens: 10,
            overlap: 3,
        };
        let pieces = windows(text, &words(text), budget);
        assert!(pieces.len() >= 3, "{pieces:?}");
        for piece in &pieces {
            assert!(piece.split_whitespace().count() <= 10, "{piece}");
        }
        assert!(pieces[0].starts_with("w0 "));
        assert!(pieces.last().is_some_and(|p| p.ends_with("w24")));
        // Consecutive pieces share the overlap.
        assert!(pieces[1].starts_with("w7 "), "{:?}", pieces[1]);
    }

    #[test]
    fn cuts_fall_between_words() {
        // Sub-word tokens: "abcdef" as three tokens with no gap between.
        let text = "xx abcdef yy zz";
        let offsets = vec![(0, 2), (3, 5), (5, 7), (7, 9), (10, 12), (13, 15)];
        let budget = ChunkBudget {
            max_tokens: 3,
            overlap: 0,
        };
        let pieces = windows(text, &offsets, budget);
        assert!(
            pieces
                .iter()
                .all(|p| !p.ends_with("ab") && !p.ends_with("cd")),
            "{pieces:?}"
        );
    }
}
