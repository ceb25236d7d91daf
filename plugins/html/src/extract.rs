//! Extracts the readable text of an HTML page and splits it by heading.
//!
//! The page is parsed by html5ever (through `scraper`), as a browser would,
//! so unclosed tags, entities and broken markup come out as a browser shows
//! them. Then:
//!
//! * The content root is the first `<main>` (or `role="main"`), else the
//!   page's only `<article>`, else `<body>`.
//! * Page furniture is dropped: `script`, `style`, `noscript`, `template`,
//!   `svg`, `nav`, `aside`, `form`, embedded objects and form controls,
//!   elements with `role` `navigation`, `banner`, `contentinfo`, `search`
//!   or `complementary`, hidden elements (`hidden`, `aria-hidden="true"`,
//!   inline `display:none`), and `header`/`footer` when they belong to the
//!   page rather than to an article or section. A `form` that wraps the
//!   page's content (it holds a heading, `main` or `article`) is kept.
//! * Whitespace collapses as in a browser; block elements start new lines
//!   or paragraphs, list items are lines of their own (`- ` or `1. `),
//!   table cells are joined by ` | `, and `<pre>` keeps its whitespace.
//! * `h1`-`h6` split the text into sections, as in the Markdown loader.

use std::borrow::Cow;

use ego_tree::NodeRef;
use ego_tree::iter::Edge;
use scraper::{Html, Node};

/// A piece of the page with its metadata pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub text: String,
    pub metadata: Vec<(String, String)>,
}

/// Separator between the headings of `heading_path`.
pub const PATH_SEPARATOR: &str = " > ";
/// Separator between the headings of `headings`.
pub const HEADINGS_SEPARATOR: &str = " | ";
/// `headings` is cut (at a heading, ending with ` | …`) past this many
/// characters: it is repeated on every chunk, and a long page has many.
pub const HEADINGS_MAX_CHARS: usize = 1000;

/// Decodes a page: UTF-8 (a byte order mark dropped, invalid bytes replaced)
/// unless it is not valid UTF-8 and declares a Latin-1 family charset in its
/// first kilobyte, in which case it is read as windows-1252 (as browsers
/// read `iso-8859-1`).
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) if declares_latin1(&bytes[..bytes.len().min(1024)]) => {
            Cow::Owned(bytes.iter().map(|&b| windows_1252(b)).collect())
        }
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

fn declares_latin1(head: &[u8]) -> bool {
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    let Some(at) = head.find("charset=") else {
        return false;
    };
    let label: String = head[at + 8..]
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect();
    matches!(
        label.as_str(),
        "iso-8859-1"
            | "iso8859-1"
            | "latin1"
            | "l1"
            | "windows-1252"
            | "cp1252"
            | "us-ascii"
            | "ascii"
            | "iso-8859-15"
    )
}

fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9f => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

/// Extracts and splits `html`, the content of `source`.
///
/// Every section carries `source`, `heading_path`, `heading` and `level`;
/// `title` (the page's `<title>`, else its first `h1`) when there is one;
/// and `headings` (all heading texts of the content, in order) when there
/// are any. Text before the first heading has an empty `heading_path` and
/// `heading` and level `0`. Sections with no text are skipped; their
/// heading still appears in their children's paths.
pub fn split(source: &str, html: &str) -> Vec<Section> {
    let page = extract(html);
    let title = page.title.clone().or_else(|| {
        page.sections
            .iter()
            .filter_map(|s| s.heading.as_ref())
            .find(|h| h.0 == 1)
            .map(|h| h.1.clone())
    });
    let headings = join_headings(
        page.sections
            .iter()
            .filter_map(|s| s.heading.as_ref().map(|h| h.1.as_str())),
    );

    let mut out = Vec::new();
    let mut stack: Vec<(usize, &str)> = Vec::new();
    for section in &page.sections {
        let (level, heading) = match &section.heading {
            Some((level, text)) => {
                while stack.last().is_some_and(|h| h.0 >= *level) {
                    stack.pop();
                }
                stack.push((*level, text));
                (*level, text.as_str())
            }
            None => (0, ""),
        };
        if section.body.is_empty() {
            continue;
        }
        let path = stack
            .iter()
            .map(|h| h.1)
            .collect::<Vec<_>>()
            .join(PATH_SEPARATOR);
        let text = if heading.is_empty() {
            section.body.clone()
        } else {
            format!("{heading}\n\n{}", section.body)
        };
        let mut metadata = vec![("source".to_string(), source.to_string())];
        if let Some(title) = &title {
            metadata.push(("title".to_string(), title.clone()));
        }
        metadata.push(("heading_path".to_string(), path));
        metadata.push(("heading".to_string(), heading.to_string()));
        metadata.push(("level".to_string(), level.to_string()));
        if !headings.is_empty() {
            metadata.push(("headings".to_string(), headings.clone()));
        }
        out.push(Section { text, metadata });
    }
    out
}

/// Joins heading texts with [`HEADINGS_SEPARATOR`], up to
/// [`HEADINGS_MAX_CHARS`].
fn join_headings<'a>(headings: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    let mut chars = 0;
    for heading in headings {
        let len = heading.chars().count();
        let sep = if out.is_empty() {
            0
        } else {
            HEADINGS_SEPARATOR.len()
        };
        if chars + sep + len > HEADINGS_MAX_CHARS {
            if sep > 0 {
                out.push_str(HEADINGS_SEPARATOR);
            }
            out.push('…');
            break;
        }
        if sep > 0 {
            out.push_str(HEADINGS_SEPARATOR);
        }
        out.push_str(heading);
        chars += sep + len;
    }
    out
}

/// A page's title and its text, section by section.
#[derive(Debug, Default)]
pub struct Page {
    pub title: Option<String>,
    pub sections: Vec<RawSection>,
}

/// One heading's text; the first has no heading when text precedes it.
#[derive(Debug, Default)]
pub struct RawSection {
    /// Level (1-6) and text.
    pub heading: Option<(usize, String)>,
    pub body: String,
}

/// Parses `html` and extracts its title and sectioned text.
pub fn extract(html: &str) -> Page {
    let doc = Html::parse_document(html);
    let root = doc.tree.root();
    let title = find(root, &|n| element_name(n) == Some("title"), &|n| {
        matches!(element_name(n), Some("body" | "svg" | "math"))
    })
    .map(|t| collapse(&text_content(t)))
    .filter(|t| !t.is_empty());
    let body = find(root, &|n| element_name(n) == Some("body"), &|_| false).unwrap_or(root);
    let content = content_root(body);

    let mut walker = Walker::default();
    walk_tree(content, |visit| match visit {
        Visit::Open(node) => walker.open(node),
        Visit::Close(node) => {
            walker.close(node);
            true
        }
    });
    walker.finish_section();
    Page {
        title,
        sections: walker.sections,
    }
}

fn element_name<'a>(node: NodeRef<'a, Node>) -> Option<&'a str> {
    node.value().as_element().map(|e| e.name())
}

fn attr<'a>(node: NodeRef<'a, Node>, name: &str) -> Option<&'a str> {
    node.value().as_element().and_then(|e| e.attr(name))
}

/// A step of a document-order walk.
enum Visit<'a> {
    Open(NodeRef<'a, Node>),
    Close(NodeRef<'a, Node>),
}

/// Walks the nodes under `root` (not `root` itself) in document order,
/// without recursion, so that no nesting depth can exhaust the stack. When
/// `f` returns `false` for an `Open`, the node's subtree is skipped and the
/// node gets no `Close`.
fn walk_tree<'a>(root: NodeRef<'a, Node>, mut f: impl FnMut(Visit<'a>) -> bool) {
    let mut skipping = None;
    for edge in root.traverse() {
        match edge {
            Edge::Open(node) if node != root && skipping.is_none() => {
                if !f(Visit::Open(node)) {
                    skipping = Some(node.id());
                }
            }
            Edge::Close(node) if node != root => {
                if skipping == Some(node.id()) {
                    skipping = None;
                } else if skipping.is_none() {
                    f(Visit::Close(node));
                }
            }
            _ => {}
        }
    }
}

/// The first node under `root` in document order matching `pred`, not
/// looking inside nodes matching `prune`.
fn find<'a>(
    root: NodeRef<'a, Node>,
    pred: &dyn Fn(NodeRef<'a, Node>) -> bool,
    prune: &dyn Fn(NodeRef<'a, Node>) -> bool,
) -> Option<NodeRef<'a, Node>> {
    let mut found = None;
    walk_tree(root, |visit| match visit {
        Visit::Open(node) if found.is_none() => {
            if pred(node) {
                found = Some(node);
                return false;
            }
            !prune(node)
        }
        _ => false,
    });
    found
}

/// The nodes under `root` matching `pred`, not looking inside them or
/// inside dropped elements.
fn find_all<'a>(
    root: NodeRef<'a, Node>,
    pred: &dyn Fn(NodeRef<'a, Node>) -> bool,
) -> Vec<NodeRef<'a, Node>> {
    let mut out = Vec::new();
    walk_tree(root, |visit| match visit {
        Visit::Open(node) if pred(node) => {
            out.push(node);
            false
        }
        Visit::Open(node) => !is_dropped(node),
        Visit::Close(_) => true,
    });
    out
}

/// The first `<main>`, else the only `<article>`, else `body`.
fn content_root(body: NodeRef<'_, Node>) -> NodeRef<'_, Node> {
    let is_main =
        |n: NodeRef<'_, Node>| element_name(n) == Some("main") || attr(n, "role") == Some("main");
    if let Some(main) = find(body, &is_main, &is_dropped) {
        return main;
    }
    let articles = find_all(body, &|n| element_name(n) == Some("article"));
    match articles.as_slice() {
        [article] => *article,
        _ => body,
    }
}

/// Whether the element `node` and everything in it is left out.
fn is_dropped(node: NodeRef<'_, Node>) -> bool {
    let Some(element) = node.value().as_element() else {
        return false;
    };
    let dropped_tag = match element.name() {
        "head" | "script" | "style" | "noscript" | "template" | "svg" | "math" | "nav"
        | "aside" | "iframe" | "object" | "embed" | "canvas" | "audio" | "video" | "picture"
        | "map" | "input" | "select" | "textarea" | "button" | "datalist" | "meter"
        | "progress" | "link" | "meta" => true,
        "dialog" => element.attr("open").is_none(),
        "header" | "footer" => !in_sectioning_content(node),
        "form" => !wraps_content(node),
        _ => false,
    };
    dropped_tag
        || element.attr("hidden").is_some()
        || element
            .attr("aria-hidden")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || element.attr("role").is_some_and(|role| {
            matches!(
                role.trim().to_ascii_lowercase().as_str(),
                "navigation" | "banner" | "contentinfo" | "search" | "complementary"
            )
        })
        || element.attr("style").is_some_and(|style| {
            let style: String = style
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_ascii_lowercase();
            style.contains("display:none")
        })
}

/// Whether a `header` or `footer` belongs to an article or section (and is
/// content) rather than to the page (and is a banner or footer).
fn in_sectioning_content(node: NodeRef<'_, Node>) -> bool {
    node.ancestors().any(|a| {
        matches!(
            element_name(a),
            Some("article" | "section" | "main" | "aside" | "nav")
        ) || attr(a, "role") == Some("main")
    })
}

/// Whether a `form` wraps the page's content (as ASP.NET pages do) rather
/// than being a search box or sign-up form.
fn wraps_content(node: NodeRef<'_, Node>) -> bool {
    node.descendants().any(|d| {
        matches!(
            element_name(d),
            Some("h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "main" | "article")
        )
    })
}

fn heading_level(name: &str) -> Option<usize> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

/// The text inside `node`, dropped elements left out, not collapsed.
fn text_content(node: NodeRef<'_, Node>) -> String {
    let mut out = String::new();
    walk_tree(node, |visit| {
        if let Visit::Open(child) = visit {
            match child.value() {
                Node::Text(t) => out.push_str(t),
                Node::Element(e) if e.name() == "br" => out.push(' '),
                Node::Element(_) => return !is_dropped(child),
                _ => {}
            }
        }
        true
    });
    out
}

/// `s` with runs of whitespace (non-breaking spaces included) as one space,
/// trimmed.
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A heading's text: collapsed, without a trailing permalink sign.
fn heading_text(node: NodeRef<'_, Node>) -> String {
    let text = collapse(&text_content(node));
    text.trim_end_matches(['¶', '§', '🔗'])
        .trim_end()
        .to_string()
}

/// What separates the next text from the text before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Break {
    None,
    Space,
    Cell,
    Line,
    Paragraph,
}

/// How an element affects the flow of text.
fn block_break(name: &str) -> Break {
    match name {
        "p" | "blockquote" | "pre" | "table" | "ul" | "ol" | "dl" | "figure" | "hr" | "address"
        | "article" | "section" | "main" | "header" | "footer" | "details" | "fieldset"
        | "hgroup" | "form" | "dialog" | "center" => Break::Paragraph,
        "div" | "li" | "dt" | "dd" | "tr" | "figcaption" | "summary" | "caption" | "legend"
        | "option" | "body" => Break::Line,
        "td" | "th" => Break::Cell,
        _ => Break::None,
    }
}

#[derive(Default)]
struct Walker {
    sections: Vec<RawSection>,
    /// The heading of the section being written.
    heading: Option<(usize, String)>,
    out: String,
    pending: Option<Break>,
    /// A list marker waiting for the item's first text.
    marker: Option<String>,
    /// Depth of `<pre>` elements around the current node.
    pre: usize,
    /// Open lists: `None` for `ul`, the next number for `ol`.
    lists: Vec<Option<u64>>,
    /// Depth of `<li>` elements around the current node.
    items: usize,
    /// The break each open element asked for, to repeat when it closes.
    open_breaks: Vec<Break>,
}

impl Walker {
    /// Enters `node`; returns whether to walk its children.
    fn open(&mut self, node: NodeRef<'_, Node>) -> bool {
        let element = match node.value() {
            Node::Text(text) => {
                self.text(text);
                return false;
            }
            Node::Element(element) => element,
            _ => return false,
        };
        if is_dropped(node) {
            return false;
        }
        let name = element.name();
        if let Some(level) = heading_level(name) {
            let text = heading_text(node);
            if !text.is_empty() {
                self.finish_section();
                self.heading = Some((level, text));
                return false;
            }
        }
        match name {
            "br" => {
                self.request(if self.pending >= Some(Break::Line) {
                    Break::Paragraph
                } else {
                    Break::Line
                });
                if self.pre > 0 {
                    self.pending = None;
                    self.out.push('\n');
                }
                return false;
            }
            "hr" => {
                self.request(Break::Paragraph);
                return false;
            }
            "img" | "area" | "wbr" => return false,
            _ => {}
        }

        let brk = match name {
            // Nested lists and paragraphs in list items keep lists tight.
            "ul" | "ol" | "menu" if !self.lists.is_empty() => Break::Line,
            "p" if self.items > 0 => Break::Line,
            _ => block_break(name),
        };
        // Cells are separated, not preceded, by ` | `.
        if brk != Break::Cell || has_prev_sibling(node, &["td", "th"]) {
            self.request(brk);
        }
        self.open_breaks.push(brk);
        match name {
            "li" => {
                let indent = "  ".repeat(self.lists.len().saturating_sub(1));
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        let marker = format!("{indent}{n}. ");
                        *n += 1;
                        marker
                    }
                    _ => format!("{indent}- "),
                };
                self.marker = Some(marker);
                self.items += 1;
            }
            "ul" | "menu" => self.lists.push(None),
            "ol" => {
                let start = attr(node, "start")
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(1);
                self.lists.push(Some(start));
            }
            "pre" | "textarea" | "listing" | "xmp" | "plaintext" => self.pre += 1,
            _ => {}
        }
        true
    }

    /// Leaves `node`, an element `open` entered.
    fn close(&mut self, node: NodeRef<'_, Node>) {
        let Some(name) = element_name(node) else {
            return;
        };
        match name {
            "ul" | "menu" | "ol" => {
                self.lists.pop();
            }
            "pre" | "textarea" | "listing" | "xmp" | "plaintext" => {
                self.pre = self.pre.saturating_sub(1);
            }
            "li" => {
                self.marker = None;
                self.items = self.items.saturating_sub(1);
            }
            _ => {}
        }
        let brk = self.open_breaks.pop().unwrap_or(Break::None);
        if brk != Break::Cell {
            self.request(brk);
        }
    }

    /// Asks for at least `brk` before the next text.
    fn request(&mut self, brk: Break) {
        if brk > Break::None && self.pending < Some(brk) {
            self.pending = Some(brk);
        }
    }

    fn text(&mut self, text: &str) {
        if self.pre > 0 {
            if !text.is_empty() {
                self.flush();
                self.out.push_str(text);
            }
            return;
        }
        if text.starts_with(char::is_whitespace) {
            self.request(Break::Space);
        }
        for (i, word) in text.split_whitespace().enumerate() {
            if i > 0 {
                self.request(Break::Space);
            }
            self.flush();
            self.out.push_str(word);
        }
        if text.ends_with(char::is_whitespace) {
            self.request(Break::Space);
        }
    }

    /// Writes the pending break (and list marker) before new text.
    fn flush(&mut self) {
        let pending = self.pending.take().unwrap_or(Break::None);
        if !self.out.is_empty() {
            match pending {
                Break::None => {}
                Break::Space => {
                    if !self.out.ends_with(char::is_whitespace) {
                        self.out.push(' ');
                    }
                }
                Break::Cell => {
                    trim_end_in_place(&mut self.out, false);
                    self.out.push_str(" | ");
                }
                Break::Line => {
                    trim_end_in_place(&mut self.out, true);
                    self.out.push('\n');
                }
                Break::Paragraph => {
                    trim_end_in_place(&mut self.out, true);
                    self.out.push_str("\n\n");
                }
            }
        }
        if let Some(marker) = self.marker.take() {
            self.out.push_str(&marker);
        }
    }

    /// Closes the current section and starts an empty one.
    fn finish_section(&mut self) {
        let body = std::mem::take(&mut self.out);
        let body = body.trim();
        let heading = self.heading.take();
        if heading.is_some() || !body.is_empty() {
            self.sections.push(RawSection {
                heading,
                body: body.to_string(),
            });
        }
        self.pending = None;
        self.marker = None;
    }
}

/// Trims trailing spaces (and newlines when `newlines`) in place.
fn trim_end_in_place(s: &mut String, newlines: bool) {
    let trimmed = if newlines {
        s.trim_end().len()
    } else {
        s.trim_end_matches([' ', '\t']).len()
    };
    s.truncate(trimmed);
}

/// Whether an earlier sibling of `node` is an element named in `names`.
fn has_prev_sibling(node: NodeRef<'_, Node>, names: &[&str]) -> bool {
    node.prev_siblings()
        .any(|s| element_name(s).is_some_and(|n| names.contains(&n)))
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

    fn body_text(html: &str) -> String {
        let page = extract(html);
        page.sections
            .iter()
            .map(|s| s.body.as_str())
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    #[test]
    fn sections_paths_title_and_headings() {
        let html = r#"<!doctype html><html><head><title> Nova &amp; Docs </title>
            <style>p{color:red}</style></head><body>
            <nav><a href="/">Home</a></nav>
            <main>
              <p>Intro   text.</p>
              <h1>Install</h1><p>Get it.</p>
              <h2>Linux</h2><h3>Debian</h3><p>apt install nova</p>
              <h2>macOS</h2><p>brew install nova</p>
            </main>
            <footer>© 2026</footer></body></html>"#;
        let s = split("site/install.html", html);
        let paths: Vec<_> = s.iter().map(|c| get(c, "heading_path").unwrap()).collect();
        assert_eq!(
            paths,
            ["", "Install", "Install > Linux > Debian", "Install > macOS"]
        );
        assert_eq!(s[0].text, "Intro text.");
        assert_eq!(s[2].text, "Debian\n\napt install nova");
        assert_eq!(get(&s[2], "heading"), Some("Debian"));
        assert_eq!(get(&s[2], "level"), Some("3"));
        assert_eq!(get(&s[0], "level"), Some("0"));
        assert_eq!(get(&s[1], "title"), Some("Nova & Docs"));
        assert_eq!(
            get(&s[3], "headings"),
            Some("Install | Linux | Debian | macOS")
        );
        assert_eq!(get(&s[3], "source"), Some("site/install.html"));
        assert_eq!(
            s[1].metadata
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>(),
            [
                "source",
                "title",
                "heading_path",
                "heading",
                "level",
                "headings"
            ]
        );
        let all: String = s.iter().map(|c| c.text.as_str()).collect();
        assert!(!all.contains("Home") && !all.contains("2026") && !all.contains("color"));
    }

    #[test]
    fn title_falls_back_to_first_h1_and_headings_may_be_absent() {
        let s = split("a.html", "<p>one</p><h1>Big</h1><p>two</p>");
        assert_eq!(get(&s[0], "title"), Some("Big"));
        let s = split("a.html", "<p>only text</p>");
        assert_eq!(s.len(), 1);
        assert_eq!(get(&s[0], "title"), None);
        assert_eq!(get(&s[0], "headings"), None);
        assert_eq!(get(&s[0], "heading_path"), Some(""));
    }

    #[test]
    fn empty_pages_give_nothing() {
        assert!(split("a.html", "").is_empty());
        assert!(
            split(
                "a.html",
                "<html><head><title>T</title></head><body> </body></html>"
            )
            .is_empty()
        );
        assert!(split("a.html", "<h1>Only</h1><h2>Headings</h2>").is_empty());
    }

    #[test]
    fn article_is_preferred_when_alone() {
        let html = "<body><div class=sidebar>Menu junk</div><article><header><h1>Post</h1><p class=by>by me</p></header><p>Words.</p><footer>Tags: x</footer></article><div>More junk</div></body>";
        let s = split("a.html", html);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].text, "Post\n\nby me\n\nWords.\n\nTags: x");
    }

    #[test]
    fn several_articles_mean_the_body() {
        let html = "<body><header>Site</header><article><p>A</p></article><article><p>B</p></article></body>";
        assert_eq!(body_text(html), "A\n\nB");
    }

    #[test]
    fn furniture_is_dropped() {
        let html = r#"<body>
            <div role="navigation">nav</div><div role=banner>banner</div>
            <p>keep <span hidden>hidden</span><span aria-hidden="true">icon</span>this</p>
            <div style="display: none">gone</div>
            <form action="/search"><input name=q><button>Search</button></form>
            <aside>aside</aside><noscript>enable js</noscript>
            <script>var x = "<p>no</p>";</script><svg><text>svg</text></svg>
            <template><p>tpl</p></template>
            <p>end</p></body>"#;
        assert_eq!(body_text(html), "keep this\n\nend");
    }

    #[test]
    fn page_wrapping_form_is_kept() {
        let html = "<body><form id=aspnetForm><h2>Title</h2><p>Content</p><input type=hidden value=x></form></body>";
        assert_eq!(body_text(html), "Content");
        assert_eq!(split("a.html", html)[0].text, "Title\n\nContent");
    }

    #[test]
    fn whitespace_blocks_and_breaks() {
        let html = "<p>one\n   two\t three</p><div>four</div><div><div>five</div>six<br>seven<br><br>eight</div><p>a<b>b</b> <i>c</i></p>";
        assert_eq!(
            body_text(html),
            "one two three\n\nfour\nfive\nsix\nseven\n\neight\n\nab c"
        );
    }

    #[test]
    fn pre_keeps_whitespace() {
        let html = "<p>Run:</p><pre><code>fn main() {\n    println!(\"hi &lt;3\");\n}\n</code></pre><p>Done.</p>";
        assert_eq!(
            body_text(html),
            "Run:\n\nfn main() {\n    println!(\"hi <3\");\n}\n\nDone."
        );
    }

    #[test]
    fn lists_and_tables() {
        let html = "<ul><li>one</li><li>two<ul><li>nested</li></ul></li></ul><ol start=3><li><p>three</p></li><li>four</li></ol><table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td></tr></table>";
        assert_eq!(
            body_text(html),
            "- one\n- two\n  - nested\n\n3. three\n4. four\n\nk | v\na | 1"
        );
    }

    #[test]
    fn entities_and_nbsp() {
        let html = "<p>caf&eacute;&nbsp;&nbsp;au&#32;lait &lt;tag&gt; &#x1F600;</p>";
        assert_eq!(body_text(html), "café au lait <tag> 😀");
    }

    #[test]
    fn broken_markup_is_read_like_a_browser() {
        // Stray end tags are ignored, so "four" and "five" touch, as in a browser.
        let html = "<p>one<p>two<li>three<div>four</span></b>five";
        assert_eq!(body_text(html), "one\n\ntwo\n\n- three\nfourfive");
    }

    #[test]
    fn heading_permalinks_and_empty_headings() {
        let html = "<h2>Setup<a class=headerlink href=#setup>¶</a></h2><p>x</p><h2><img src=a.png></h2><p>y</p>";
        let s = split("a.html", html);
        assert_eq!(s.len(), 1);
        assert_eq!(get(&s[0], "heading"), Some("Setup"));
        assert_eq!(s[0].text, "Setup\n\nx\n\ny");
    }

    #[test]
    fn headings_are_capped() {
        let html: String = (0..300)
            .map(|i| format!("<h2>Heading {i}</h2><p>x</p>"))
            .collect();
        let s = split("a.html", &html);
        assert_eq!(s.len(), 300);
        let headings = get(&s[0], "headings").unwrap();
        assert!(headings.starts_with("Heading 0 | Heading 1 | "));
        assert!(headings.ends_with(" | …"));
        assert!(headings.chars().count() <= HEADINGS_MAX_CHARS + 4);
        assert_eq!(join_headings(["a", "b"].into_iter()), "a | b");
        let long = "x".repeat(HEADINGS_MAX_CHARS + 1);
        assert_eq!(join_headings([long.as_str()].into_iter()), "…");
    }

    #[test]
    fn deep_nesting_does_not_exhaust_the_stack() {
        // Deep enough to overflow a test thread's 2 MiB stack if the walk
        // recursed; html5ever's own parse is quadratic in nesting depth, so
        // much deeper trees are slow to build (browsers cap depth instead).
        let depth = 5_000;
        let html = format!(
            "{}<p>deep</p>{}",
            "<div>".repeat(depth),
            "</div>".repeat(depth)
        );
        assert_eq!(body_text(&html), "deep");
        let html = format!(
            "<h1>{}x{}</h1><p>y</p>",
            "<b>".repeat(depth),
            "</b>".repeat(depth)
        );
        assert_eq!(split("a.html", &html)[0].text, "x\n\ny");
    }

    #[test]
    fn decoding() {
        assert_eq!(decode(b"\xef\xbb\xbfok"), "ok");
        assert_eq!(decode("é".as_bytes()), "é");
        assert_eq!(decode(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(
            decode(b"<meta charset=\"ISO-8859-1\"><p>caf\xe9 \x80"),
            "<meta charset=\"ISO-8859-1\"><p>café €"
        );
    }
}
