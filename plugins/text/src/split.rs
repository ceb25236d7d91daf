//! Splits plain text into chunks of whole paragraphs.
//!
//! Paragraphs are separated by blank lines. Consecutive paragraphs are
//! merged while the chunk stays within [`TARGET_CHARS`]; a paragraph is
//! never cut unless it alone exceeds [`MAX_PARAGRAPH_CHARS`], and then it is
//! cut at line ends, else sentence ends, else spaces, into pieces of at most
//! [`TARGET_CHARS`]. Sizes are counted in characters, not bytes.

/// A chunk with its metadata pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub text: String,
    pub metadata: Vec<(String, String)>,
}

/// Paragraphs are merged into one chunk up to this many characters.
pub const TARGET_CHARS: usize = 1500;
/// A paragraph longer than this is cut into pieces of [`TARGET_CHARS`].
pub const MAX_PARAGRAPH_CHARS: usize = 4000;

/// Splits `text`, the content of `source`. Every chunk carries `source`,
/// `title` (the file name of `source` without its extension) and
/// `paragraph_start` (the 0-based index of its first paragraph; the pieces
/// of a cut paragraph all carry that paragraph's index).
pub fn split(source: &str, text: &str) -> Vec<Piece> {
    let title = title_of(source);
    let piece = |text: String, paragraph: usize| Piece {
        text,
        metadata: vec![
            ("source".to_string(), source.to_string()),
            ("title".to_string(), title.clone()),
            ("paragraph_start".to_string(), paragraph.to_string()),
        ],
    };

    let mut pieces = Vec::new();
    // The chunk being filled: text, its length in chars, first paragraph.
    let mut current: Option<(String, usize, usize)> = None;
    for (index, paragraph) in paragraphs(text).into_iter().enumerate() {
        let len = paragraph.chars().count();
        if len > MAX_PARAGRAPH_CHARS {
            if let Some((text, _, first)) = current.take() {
                pieces.push(piece(text, first));
            }
            for part in cut(&paragraph, TARGET_CHARS) {
                pieces.push(piece(part, index));
            }
            continue;
        }
        match &mut current {
            Some((text, chars, _)) if *chars + 2 + len <= TARGET_CHARS => {
                text.push_str("\n\n");
                text.push_str(&paragraph);
                *chars += 2 + len;
            }
            _ => {
                if let Some((text, _, first)) = current.take() {
                    pieces.push(piece(text, first));
                }
                current = Some((paragraph, len, index));
            }
        }
    }
    if let Some((text, _, first)) = current {
        pieces.push(piece(text, first));
    }
    pieces
}

/// The file name of `source` without directories or its last extension.
pub fn title_of(source: &str) -> String {
    let name = source
        .rsplit(['/', '\\'])
        .find(|part| !part.is_empty())
        .unwrap_or(source);
    match name.rfind('.') {
        Some(dot) if dot > 0 => name[..dot].to_string(),
        _ => name.to_string(),
    }
}

/// The non-blank paragraphs of `text`: runs of lines separated by blank
/// (whitespace-only) lines, each line without trailing whitespace.
pub fn paragraphs(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut paragraphs = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim_start().is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
        } else {
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    paragraphs
}

/// Cuts `text` into pieces of at most `max` characters, preferring line
/// ends, then sentence ends, then spaces; a single word longer than `max`
/// is cut anywhere (at a character boundary).
pub fn cut(text: &str, max: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    // Units at each level keep their trailing separator, so joining them
    // reproduces the text exactly.
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
    if !current.trim().is_empty() {
        pieces.push(current.trim().to_string());
    }
    pieces.retain(|p| !p.is_empty());
    pieces
}

/// `text` as a sequence of slices no longer than `max` characters each,
/// cut at the coarsest boundary that gets them under `max`.
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
                if word.chars().count() <= max {
                    out.push(word);
                    continue;
                }
                let mut rest = word;
                while !rest.is_empty() {
                    let end = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
                    out.push(&rest[..end]);
                    rest = &rest[end..];
                }
            }
        }
    }
    out
}

/// Splits after sentence-ending punctuation (`.`, `!`, `?`, and their
/// full-width forms) that is followed by whitespace, keeping that space with
/// the sentence.
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

    fn get<'a>(p: &'a Piece, key: &str) -> &'a str {
        &p.metadata.iter().find(|(k, _)| k == key).unwrap().1
    }

    #[test]
    fn empty_and_blank_documents_give_nothing() {
        assert!(split("a.txt", "").is_empty());
        assert!(split("a.txt", " \n\t\n\n").is_empty());
    }

    #[test]
    fn short_paragraphs_are_merged() {
        let p = split("notes/today.txt", "one\ntwo\n\n\n  \nthree\r\n\r\nfour  \n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].text, "one\ntwo\n\nthree\n\nfour");
        assert_eq!(get(&p[0], "source"), "notes/today.txt");
        assert_eq!(get(&p[0], "title"), "today");
        assert_eq!(get(&p[0], "paragraph_start"), "0");
        assert_eq!(
            p[0].metadata
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>(),
            ["source", "title", "paragraph_start"]
        );
    }

    #[test]
    fn merging_stops_at_the_target_size() {
        let para = "x".repeat(700);
        let doc = [para.as_str(); 5].join("\n\n");
        let p = split("a.txt", &doc);
        // 700 + 2 + 700 = 1402 fits; a third would not.
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].text.len(), 1402);
        assert_eq!(get(&p[1], "paragraph_start"), "2");
        assert_eq!(get(&p[2], "paragraph_start"), "4");
        assert_eq!(p[2].text.len(), 700);
    }

    #[test]
    fn a_long_paragraph_below_the_cap_stays_whole() {
        let long = "word ".repeat(700); // 3500 chars
        let doc = format!("intro\n\n{long}\n\nend");
        let p = split("a.txt", &doc);
        assert_eq!(p.len(), 3);
        assert_eq!(p[1].text, long.trim_end());
        assert_eq!(get(&p[1], "paragraph_start"), "1");
        assert_eq!(get(&p[2], "paragraph_start"), "2");
    }

    #[test]
    fn an_oversized_paragraph_is_cut_at_sentences() {
        let sentence = "This sentence is exactly fifty characters long ok. ";
        assert_eq!(sentence.len(), 51);
        let long = sentence.repeat(100); // 5100 chars, one line
        let doc = format!("intro\n\n{long}\n\nend");
        let p = split("a.txt", &doc);
        assert_eq!(p[0].text, "intro");
        let cut_pieces: Vec<_> = p
            .iter()
            .filter(|c| get(c, "paragraph_start") == "1")
            .collect();
        assert_eq!(cut_pieces.len(), 4);
        for c in &cut_pieces {
            assert!(c.text.chars().count() <= TARGET_CHARS);
            assert!(
                c.text.ends_with("ok."),
                "{:?}",
                &c.text[c.text.len() - 10..]
            );
        }
        assert_eq!(p.last().unwrap().text, "end");
        assert_eq!(get(p.last().unwrap(), "paragraph_start"), "2");
    }

    #[test]
    fn an_oversized_paragraph_prefers_line_ends() {
        let line = format!("{}\n", "y".repeat(99));
        let long = line.repeat(46); // 4600 chars over 46 lines
        let pieces = cut(long.trim_end(), TARGET_CHARS);
        assert_eq!(pieces.len(), 4);
        assert!(pieces.iter().all(|p| p.split('\n').all(|l| l.len() == 99)));
    }

    #[test]
    fn a_huge_word_is_cut_at_char_boundaries() {
        let word = "é".repeat(3100);
        let pieces = cut(&word, TARGET_CHARS);
        assert_eq!(
            pieces.iter().map(|p| p.chars().count()).collect::<Vec<_>>(),
            [1500, 1500, 100]
        );
    }

    #[test]
    fn titles() {
        assert_eq!(title_of("a/b/notes.final.txt"), "notes.final");
        assert_eq!(title_of("C:\\logs\\app.log"), "app");
        assert_eq!(title_of(".profile"), ".profile");
        assert_eq!(title_of("README"), "README");
        assert_eq!(title_of("dir/"), "dir");
    }
}
