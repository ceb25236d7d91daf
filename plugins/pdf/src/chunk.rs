//! Normalising a page's text and cutting it into chunks.
//!
//! Paragraphs (separated by a blank line) are merged into one chunk while
//! it stays within [`TARGET_CHARS`]; a paragraph longer than that is cut at
//! line ends, else sentence ends, else spaces, into pieces of at most
//! [`TARGET_CHARS`]. Sizes are counted in characters, not bytes.

/// A chunk holds at most about this many characters.
pub const TARGET_CHARS: usize = 1500;

/// `text` with every run of spaces collapsed to one, lines trimmed, and at
/// most one blank line in a row; no blank lines at the start or the end.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = false;
    for line in text.lines() {
        let mut words = line.split_whitespace().peekable();
        if words.peek().is_none() {
            blank = !out.is_empty();
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank { "\n\n" } else { "\n" });
        }
        blank = false;
        for (i, word) in words.enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}

/// The paragraphs of normalised `text` merged into chunks of at most
/// [`TARGET_CHARS`] characters (a paragraph over that is cut).
pub fn chunks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    for paragraph in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        let len = paragraph.chars().count();
        if len > TARGET_CHARS {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
                current_len = 0;
            }
            out.extend(cut(paragraph, TARGET_CHARS));
            continue;
        }
        if !current.is_empty() && current_len + 2 + len <= TARGET_CHARS {
            current.push_str("\n\n");
            current.push_str(paragraph);
            current_len += 2 + len;
        } else {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            current.push_str(paragraph);
            current_len = len;
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Cuts `text` into pieces of at most `max` characters, preferring line
/// ends, then sentence ends, then spaces; a single word longer than `max`
/// is cut anywhere (at a character boundary).
pub fn cut(text: &str, max: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    for unit in units(text, max) {
        let len = unit.chars().count();
        if current_len + len > max && !current.is_empty() {
            pieces.push(current.trim().to_string());
            current.clear();
            current_len = 0;
        }
        current.push_str(unit);
        current_len += len;
    }
    pieces.push(current.trim().to_string());
    pieces.retain(|p| !p.is_empty());
    pieces
}

/// `text` as slices of at most `max` characters, cut at the coarsest
/// boundary that gets them under `max`; joined, they are `text`.
fn units(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    for line in text.split_inclusive('\n') {
        if line.chars().count() <= max {
            out.push(line);
            continue;
        }
        for sentence in sentences(line) {
            if sentence.chars().count() <= max {
                out.push(sentence);
                continue;
            }
            for word in sentence.split_inclusive(char::is_whitespace) {
                let mut rest = word;
                while !rest.is_empty() {
                    let end = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
                    let (head, tail) = rest.split_at(end);
                    out.push(head);
                    rest = tail;
                }
            }
        }
    }
    out
}

/// Splits after sentence-ending punctuation followed by whitespace, keeping
/// that whitespace with the sentence.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut after_stop = false;
    for (i, c) in text.char_indices() {
        if after_stop && c.is_whitespace() {
            let end = i + c.len_utf8();
            out.push(&text[start..end]);
            start = end;
            after_stop = false;
            continue;
        }
        after_stop = matches!(c, '.' | '!' | '?' | '。' | '！' | '？');
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_collapses_spaces_and_blank_lines() {
        let text = "\n\n  Title   here \n\n\n\n first\tline  \nsecond line\n \n\nlast \n\n";
        assert_eq!(
            normalise(text),
            "Title here\n\nfirst line\nsecond line\n\nlast"
        );
        assert_eq!(normalise(" \n\t\n"), "");
    }

    #[test]
    fn short_paragraphs_are_merged_up_to_the_target() {
        let para = "x".repeat(700);
        let text = [para.as_str(); 5].join("\n\n");
        let chunks = chunks(&text);
        assert_eq!(
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [1402, 1402, 700]
        );
    }

    #[test]
    fn a_long_paragraph_is_cut_at_line_ends() {
        let line = "y".repeat(99);
        let para = vec![line.as_str(); 40].join("\n"); // 3999 chars
        let chunks = chunks(&format!("intro\n\n{para}\n\nend"));
        assert_eq!(chunks.first().map(String::as_str), Some("intro"));
        assert_eq!(chunks.last().map(String::as_str), Some("end"));
        let middle = &chunks[1..chunks.len() - 1];
        assert_eq!(middle.len(), 3);
        for c in middle {
            assert!(c.chars().count() <= TARGET_CHARS);
            assert!(c.lines().all(|l| l.len() == 99));
        }
    }

    #[test]
    fn one_huge_line_is_cut_at_sentences_then_anywhere() {
        let sentence = "This sentence is exactly fifty characters long ok. ";
        let pieces = cut(sentence.repeat(60).trim_end(), TARGET_CHARS);
        assert_eq!(pieces.len(), 3);
        assert!(pieces.iter().all(|p| p.ends_with("ok.")));
        let word = "é".repeat(3100);
        assert_eq!(
            cut(&word, TARGET_CHARS)
                .iter()
                .map(|p| p.chars().count())
                .collect::<Vec<_>>(),
            [1500, 1500, 100]
        );
    }
}
