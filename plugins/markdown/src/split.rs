//! Splits a Markdown document into one section per heading.
//!
//! Only top-level headings (not those inside block quotes or list items)
//! start a section. A section's text is its heading, written as an ATX
//! heading (`## Title`), a blank line, then the section's body exactly as it
//! stands in the source: Markdown stays Markdown, code blocks included.

use std::ops::Range;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// A piece of the document with its metadata pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub text: String,
    pub metadata: Vec<(String, String)>,
}

/// Separator between the headings of `heading_path`.
pub const PATH_SEPARATOR: &str = " > ";

struct Heading {
    level: usize,
    text: String,
    /// Byte range of the heading in the (front-matter-less) source.
    range: Range<usize>,
}

/// Splits `text`, the content of `source`, into sections.
///
/// Every section carries `source`, `heading_path`, `heading` and `level`,
/// and `title` when the document has one (front matter `title:`, else its
/// first level-1 heading). Text before the first heading has an empty
/// `heading_path` and `heading` and level `0`. Sections with an empty body
/// are skipped; their heading still appears in their children's paths.
pub fn split(source: &str, text: &str) -> Vec<Section> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.replace("\r\n", "\n");
    let (front_title, body) = front_matter(&text);
    let headings = headings(body);

    let title = front_title.or_else(|| {
        headings
            .iter()
            .find(|h| h.level == 1)
            .map(|h| h.text.clone())
    });
    let meta = |path: String, heading: &str, level: usize| {
        let mut m = vec![("source".to_string(), source.to_string())];
        if let Some(title) = &title {
            m.push(("title".to_string(), title.clone()));
        }
        m.push(("heading_path".to_string(), path));
        m.push(("heading".to_string(), heading.to_string()));
        m.push(("level".to_string(), level.to_string()));
        m
    };

    let mut sections = Vec::new();
    let preamble_end = headings.first().map_or(body.len(), |h| h.range.start);
    let preamble = trim_blank_lines(&body[..preamble_end]);
    if !preamble.is_empty() {
        sections.push(Section {
            text: preamble.to_string(),
            metadata: meta(String::new(), "", 0),
        });
    }

    // The open headings, outermost first.
    let mut stack: Vec<&Heading> = Vec::new();
    for (i, heading) in headings.iter().enumerate() {
        while stack.last().is_some_and(|h| h.level >= heading.level) {
            stack.pop();
        }
        stack.push(heading);
        let end = headings.get(i + 1).map_or(body.len(), |h| h.range.start);
        let content = trim_blank_lines(&body[heading.range.end..end]);
        if content.is_empty() {
            continue;
        }
        let path = stack
            .iter()
            .map(|h| h.text.as_str())
            .collect::<Vec<_>>()
            .join(PATH_SEPARATOR);
        let text = format!(
            "{} {}\n\n{}",
            "#".repeat(heading.level),
            heading.text,
            content
        );
        sections.push(Section {
            text,
            metadata: meta(path, &heading.text, heading.level),
        });
    }
    sections
}

/// Splits off a YAML front matter block (`---` on the first line, closed by
/// `---` or `...`). Returns its `title:` if any, and the rest of the text.
/// Without a closing line the leading `---` is ordinary Markdown.
pub fn front_matter(text: &str) -> (Option<String>, &str) {
    let Some(rest) = text.strip_prefix("---\n") else {
        return (None, text);
    };
    let mut offset = 0;
    let mut title = None;
    for line in rest.split_inclusive('\n') {
        let bare = line.trim_end();
        if bare == "---" || bare == "..." {
            return (title, &rest[offset + line.len()..]);
        }
        if title.is_none()
            && let Some(value) = bare.strip_prefix("title:")
        {
            title = yaml_scalar(value);
        }
        offset += line.len();
    }
    (None, text)
}

/// The value of a one-line YAML scalar, unquoted; `None` when empty or a
/// block scalar (`|`, `>`), which this loader does not read.
fn yaml_scalar(value: &str) -> Option<String> {
    let value = value.trim();
    let unquoted = if value.len() >= 2
        && ((value.starts_with('"') && value.ends_with('"'))
            || (value.starts_with('\'') && value.ends_with('\'')))
    {
        value[1..value.len() - 1].trim()
    } else {
        // An unquoted scalar ends at a comment.
        value.split(" #").next().unwrap_or_default().trim()
    };
    if unquoted.is_empty() || value.starts_with('|') || value.starts_with('>') {
        None
    } else {
        Some(unquoted.to_string())
    }
}

/// The document's top-level headings with non-empty text, in order.
fn headings(text: &str) -> Vec<Heading> {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES;
    let mut headings = Vec::new();
    let mut depth = 0usize;
    // The heading being read: level, text so far, range.
    let mut current: Option<(usize, String, Range<usize>)> = None;
    for (event, range) in Parser::new_ext(text, options).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level, .. }) if depth == 0 => {
                current = Some((level as usize, String::new(), range));
                depth += 1;
            }
            Event::End(TagEnd::Heading(_)) if depth == 1 && current.is_some() => {
                depth -= 1;
                if let Some((level, raw, range)) = current.take() {
                    let text = raw.split_whitespace().collect::<Vec<_>>().join(" ");
                    if !text.is_empty() {
                        headings.push(Heading { level, text, range });
                    }
                }
            }
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(t) | Event::Code(t) => {
                if let Some((_, raw, _)) = &mut current {
                    raw.push_str(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((_, raw, _)) = &mut current {
                    raw.push(' ');
                }
            }
            _ => {}
        }
    }
    headings
}

/// `s` without its leading blank lines (keeping the first line's
/// indentation, which may mark an indented code block) and trailing
/// whitespace.
fn trim_blank_lines(s: &str) -> &str {
    let s = s.trim_end();
    match s.find(|c: char| !c.is_whitespace()) {
        None => "",
        Some(first) => {
            let line_start = s[..first].rfind('\n').map_or(0, |i| i + 1);
            &s[line_start..]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(s: &'a Section, key: &str) -> Option<&'a str> {
        s.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn paths(sections: &[Section]) -> Vec<&str> {
        sections
            .iter()
            .map(|s| get(s, "heading_path").unwrap())
            .collect()
    }

    #[test]
    fn nested_headings_make_paths() {
        let doc = "# Install\nIntro.\n## Linux\nUse a package.\n### Debian\napt install nova\n## macOS\nbrew install nova\n";
        let s = split("docs/install.md", doc);
        assert_eq!(
            paths(&s),
            [
                "Install",
                "Install > Linux",
                "Install > Linux > Debian",
                "Install > macOS"
            ]
        );
        assert_eq!(s[2].text, "### Debian\n\napt install nova");
        assert_eq!(get(&s[2], "heading"), Some("Debian"));
        assert_eq!(get(&s[2], "level"), Some("3"));
        assert_eq!(get(&s[2], "title"), Some("Install"));
        assert_eq!(get(&s[2], "source"), Some("docs/install.md"));
        assert_eq!(
            s[0].metadata
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>(),
            ["source", "title", "heading_path", "heading", "level"]
        );
    }

    #[test]
    fn preamble_is_its_own_chunk() {
        let s = split("a.md", "Some intro.\n\n# Title\n\nBody.\n");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].text, "Some intro.");
        assert_eq!(get(&s[0], "heading_path"), Some(""));
        assert_eq!(get(&s[0], "heading"), Some(""));
        assert_eq!(get(&s[0], "level"), Some("0"));
        assert_eq!(get(&s[0], "title"), Some("Title"));
        assert_eq!(s[1].text, "# Title\n\nBody.");
    }

    #[test]
    fn blank_preamble_and_empty_sections_are_skipped() {
        let s = split("a.md", "\n\n# A\n\n## B\n\nb body\n\n## C\n\n");
        assert_eq!(paths(&s), ["A > B"]);
    }

    #[test]
    fn no_headings_gives_one_chunk_without_title() {
        let s = split("a.md", "just text\n\nmore text\n");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].text, "just text\n\nmore text");
        assert_eq!(get(&s[0], "title"), None);
    }

    #[test]
    fn empty_document_gives_nothing() {
        assert!(split("a.md", "").is_empty());
        assert!(split("a.md", "  \n\n").is_empty());
        assert!(split("a.md", "# Only\n## Headings\n").is_empty());
    }

    #[test]
    fn code_blocks_are_kept_and_not_split() {
        let doc = "# Build\n\n```sh\n# not a heading\ncargo build\n```\n\nDone.\n";
        let s = split("a.md", doc);
        assert_eq!(s.len(), 1);
        assert_eq!(
            s[0].text,
            "# Build\n\n```sh\n# not a heading\ncargo build\n```\n\nDone."
        );
    }

    #[test]
    fn indented_code_keeps_its_indentation() {
        let s = split("a.md", "## Code\n\n    let x = 1;\n    let y = 2;\n");
        assert_eq!(s[0].text, "## Code\n\n    let x = 1;\n    let y = 2;");
    }

    #[test]
    fn setext_headings_and_inline_markup() {
        let doc =
            "The *Guide*\n=========\n\nHello.\n\nUsing `nova run`\n----------------\n\nRun it.\n";
        let s = split("a.md", doc);
        assert_eq!(paths(&s), ["The Guide", "The Guide > Using nova run"]);
        assert_eq!(s[1].text, "## Using nova run\n\nRun it.");
        assert_eq!(get(&s[1], "title"), Some("The Guide"));
    }

    #[test]
    fn headings_in_containers_do_not_split() {
        let doc = "# A\n\n> # Quoted\n> text\n\n- # In a list\n\nafter\n";
        let s = split("a.md", doc);
        assert_eq!(s.len(), 1);
        assert!(s[0].text.contains("> # Quoted"));
        assert!(s[0].text.ends_with("after"));
    }

    #[test]
    fn skipped_levels_and_pops() {
        let doc = "# A\na\n### C\nc\n## B\nb\n# Z\nz\n";
        assert_eq!(paths(&split("a.md", doc)), ["A", "A > C", "A > B", "Z"]);
    }

    #[test]
    fn front_matter_is_stripped_and_gives_the_title() {
        let doc = "---\ntitle: \"Nova Guide\"\ntags: [a, b]\n---\n# Intro\n\nHi.\n";
        let s = split("a.md", doc);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].text, "# Intro\n\nHi.");
        assert_eq!(get(&s[0], "title"), Some("Nova Guide"));
    }

    #[test]
    fn front_matter_without_title_falls_back_to_h1() {
        let s = split("a.md", "---\nauthor: me\n...\n\n# Real\n\nx\n");
        assert_eq!(get(&s[0], "title"), Some("Real"));
    }

    #[test]
    fn unclosed_front_matter_is_markdown() {
        let (title, rest) = front_matter("---\ntitle: x\nno end\n");
        assert_eq!(title, None);
        assert_eq!(rest, "---\ntitle: x\nno end\n");
    }

    #[test]
    fn yaml_scalars() {
        assert_eq!(yaml_scalar(" plain # comment"), Some("plain".into()));
        assert_eq!(yaml_scalar(" 'single'"), Some("single".into()));
        assert_eq!(yaml_scalar(" |"), None);
        assert_eq!(yaml_scalar("  "), None);
    }

    #[test]
    fn crlf_and_bom() {
        let s = split("a.md", "\u{feff}# A\r\n\r\nline one\r\nline two\r\n");
        assert_eq!(s[0].text, "# A\n\nline one\nline two");
        assert_eq!(get(&s[0], "heading"), Some("A"));
    }

    #[test]
    fn heading_attributes_are_not_in_the_text() {
        let s = split("a.md", "# Setup {#setup .x}\n\nbody\n");
        assert_eq!(get(&s[0], "heading"), Some("Setup"));
    }
}
