//! The text of one page, recovered from its content stream.
//!
//! A PDF page does not store text as lines and paragraphs: its content
//! stream shows runs of glyphs at positions. This module walks the stream
//! (following form XObjects), decodes each run with its font's encoding
//! (lopdf reads encodings, `Differences` and `ToUnicode` CMaps), and places
//! the runs by where they land on the page:
//!
//! - a run on the same baseline as the previous one joins its line, with a
//!   space when there is a visible gap between them;
//! - a run on another baseline starts a new line;
//! - a larger vertical gap than the usual line spacing, a change of font
//!   size (a heading), a jump back up the page (a new column) or a change of
//!   writing direction starts a new paragraph (a blank line).
//!
//! Runs are taken in content-stream order, which is reading order for
//! nearly every producer. Everything here reads the document through
//! lopdf's `Result` API and bounds what it walks, so hostile input gives an
//! error or less text, never a panic.

use std::collections::HashMap;
use std::rc::Rc;

use lopdf::content::Content;
use lopdf::{Dictionary, Document, Encoding, Object, ObjectId, decode_text_string};

/// The most bytes that one page's content, one form XObject or one font's
/// `ToUnicode` CMap may decompress to.
pub const MAX_STREAM_BYTES: usize = 16 << 20;
/// Form XObjects nest at most this deep.
const MAX_FORM_DEPTH: usize = 12;
/// The graphics-state stack (`q`) grows at most this deep; deeper pushes
/// are ignored (and so are their pops).
const MAX_STATE_DEPTH: usize = 256;
/// The most operations walked for one page, forms included.
const MAX_OPERATIONS: usize = 4_000_000;
/// The most characters kept for one page.
const MAX_PAGE_CHARS: usize = 4 << 20;

/// Fonts already read, by the id of their dictionary, shared by all pages.
pub type FontCache<'a> = HashMap<ObjectId, Rc<Font<'a>>>;

/// The text of page `page_id`, with `\n` between lines and `\n\n` between
/// paragraphs; not yet normalised. An error means the page could not be
/// read at all; a content stream that breaks off part way gives the text
/// before the break.
pub fn page_text<'a>(
    doc: &'a Document,
    page_id: ObjectId,
    fonts: &mut FontCache<'a>,
) -> lopdf::Result<String> {
    let content = doc.get_page_content_with_limit(page_id, MAX_STREAM_BYTES)?;
    let (direct, ids) = doc.get_page_resources(page_id)?;
    let mut resources: Vec<&Dictionary> = direct.into_iter().collect();
    resources.extend(ids.into_iter().filter_map(|id| doc.get_dictionary(id).ok()));

    let mut walker = Walker {
        doc,
        fonts,
        layout: Layout::default(),
        operations: 0,
        forms: Vec::new(),
    };
    let state = State {
        ctm: Matrix::IDENTITY,
        text: TextState::default(),
    };
    walker.walk(&content, &resources, state);
    Ok(walker.layout.out)
}

/// A 2D affine transform `[a b c d e f]`, applied to row vectors as PDF
/// does: `[x y 1] × M`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Matrix([f32; 6]);

impl Matrix {
    const IDENTITY: Matrix = Matrix([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);

    fn translate(tx: f32, ty: f32) -> Matrix {
        Matrix([1.0, 0.0, 0.0, 1.0, tx, ty])
    }

    /// `self × other`: first `self`, then `other`.
    fn then(self, other: Matrix) -> Matrix {
        let [a1, b1, c1, d1, e1, f1] = self.0;
        let [a2, b2, c2, d2, e2, f2] = other.0;
        Matrix([
            a1 * a2 + b1 * c2,
            a1 * b2 + b1 * d2,
            c1 * a2 + d1 * c2,
            c1 * b2 + d1 * d2,
            e1 * a2 + f1 * c2 + e2,
            e1 * b2 + f1 * d2 + f2,
        ])
    }

    fn apply(self, x: f32, y: f32) -> (f32, f32) {
        let [a, b, c, d, e, f] = self.0;
        (x * a + y * c + e, x * b + y * d + f)
    }

    /// Six numbers from `operands`, if they are there.
    fn from_operands(operands: &[Object]) -> Option<Matrix> {
        let mut m = [0.0; 6];
        for (slot, operand) in m.iter_mut().zip(operands) {
            *slot = number(operand)?;
        }
        (operands.len() >= 6).then_some(Matrix(m))
    }
}

/// A finite number operand.
fn number(object: &Object) -> Option<f32> {
    object.as_float().ok().filter(|n| n.is_finite())
}

/// Text state (PDF 32000-1, 9.3) and the text and line matrices.
#[derive(Clone)]
struct TextState<'a> {
    font: Option<Rc<Font<'a>>>,
    size: f32,
    char_spacing: f32,
    word_spacing: f32,
    /// `Tz` / 100.
    scale: f32,
    leading: f32,
    matrix: Matrix,
    line_matrix: Matrix,
}

impl Default for TextState<'_> {
    fn default() -> Self {
        TextState {
            font: None,
            size: 0.0,
            char_spacing: 0.0,
            word_spacing: 0.0,
            scale: 1.0,
            leading: 0.0,
            matrix: Matrix::IDENTITY,
            line_matrix: Matrix::IDENTITY,
        }
    }
}

/// The graphics state that matters for text: the CTM and the text state
/// (which `q`/`Q` save and restore too).
#[derive(Clone)]
struct State<'a> {
    ctm: Matrix,
    text: TextState<'a>,
}

struct Walker<'a, 'f> {
    doc: &'a Document,
    fonts: &'f mut FontCache<'a>,
    layout: Layout,
    operations: usize,
    /// The form XObjects being walked, innermost last (cycle guard).
    forms: Vec<ObjectId>,
}

impl<'a> Walker<'a, '_> {
    /// Walks one content stream (a page's, or a form's) drawn with
    /// `resources` (nearest first), starting from `state`.
    fn walk(&mut self, content: &[u8], resources: &[&'a Dictionary], mut state: State<'a>) {
        let mut stack: Vec<State<'a>> = Vec::new();
        // Pushes beyond MAX_STATE_DEPTH, whose pops are ignored too.
        let mut ignored_pushes = 0usize;
        // Fonts of this stream by resource name.
        let mut by_name: HashMap<Vec<u8>, Option<Rc<Font<'a>>>> = HashMap::new();

        for operation in Content::decode_iter(content) {
            // A stream that breaks off keeps the text before the break.
            let Ok(operation) = operation else { break };
            self.operations += 1;
            if self.operations > MAX_OPERATIONS || self.layout.chars > MAX_PAGE_CHARS {
                break;
            }
            let operands = operation.operands.as_slice();
            let text = &mut state.text;
            match operation.operator.as_str() {
                "q" => {
                    if stack.len() < MAX_STATE_DEPTH {
                        stack.push(state.clone());
                    } else {
                        ignored_pushes += 1;
                    }
                }
                "Q" => {
                    if ignored_pushes > 0 {
                        ignored_pushes -= 1;
                    } else if let Some(saved) = stack.pop() {
                        // The text and line matrices are not part of the
                        // graphics state: they survive a `Q`.
                        let (matrix, line_matrix) = (text.matrix, text.line_matrix);
                        state = saved;
                        state.text.matrix = matrix;
                        state.text.line_matrix = line_matrix;
                    }
                }
                "cm" => {
                    if let Some(m) = Matrix::from_operands(operands) {
                        state.ctm = m.then(state.ctm);
                    }
                }
                "BT" => {
                    text.matrix = Matrix::IDENTITY;
                    text.line_matrix = Matrix::IDENTITY;
                }
                "Tf" => {
                    if let [name, size, ..] = operands {
                        let name = name.as_name().unwrap_or_default();
                        let font = by_name
                            .entry(name.to_vec())
                            .or_insert_with(|| self.font(resources, name))
                            .clone();
                        text.font = font;
                        text.size = number(size).unwrap_or(0.0);
                    }
                }
                "Tc" => set(&mut text.char_spacing, operands),
                "Tw" => set(&mut text.word_spacing, operands),
                "TL" => set(&mut text.leading, operands),
                "Tz" => {
                    if let Some(scale) = operands.first().and_then(number) {
                        text.scale = scale / 100.0;
                    }
                }
                "Td" | "TD" => {
                    if let [tx, ty, ..] = operands
                        && let (Some(tx), Some(ty)) = (number(tx), number(ty))
                    {
                        if operation.operator == "TD" {
                            text.leading = -ty;
                        }
                        move_line(text, tx, ty);
                    }
                }
                "Tm" => {
                    if let Some(m) = Matrix::from_operands(operands) {
                        text.matrix = m;
                        text.line_matrix = m;
                    }
                }
                "T*" => next_line(text),
                "Tj" => {
                    if let Some(Object::String(bytes, _)) = operands.first() {
                        self.show(&mut state, bytes);
                    }
                }
                "'" => {
                    next_line(text);
                    if let Some(Object::String(bytes, _)) = operands.first() {
                        self.show(&mut state, bytes);
                    }
                }
                "\"" => {
                    if let [aw, ac, Object::String(bytes, _), ..] = operands {
                        text.word_spacing = number(aw).unwrap_or(text.word_spacing);
                        text.char_spacing = number(ac).unwrap_or(text.char_spacing);
                        next_line(text);
                        self.show(&mut state, bytes);
                    }
                }
                "TJ" => {
                    if let Some(Object::Array(items)) = operands.first() {
                        for item in items {
                            match item {
                                Object::String(bytes, _) => self.show(&mut state, bytes),
                                other => {
                                    if let Some(n) = number(other) {
                                        let t = &mut state.text;
                                        let tx = -n / 1000.0 * t.size * t.scale;
                                        t.matrix = Matrix::translate(tx, 0.0).then(t.matrix);
                                    }
                                }
                            }
                        }
                    }
                }
                "Do" => {
                    if let Some(Ok(name)) = operands.first().map(Object::as_name) {
                        self.form(resources, name, &state);
                    }
                }
                _ => {}
            }
        }
    }

    /// Walks the form XObject `name`, if it is one.
    /// The form starts from the graphics state at `Do`, its own matrix
    /// applied.
    fn form(&mut self, resources: &[&'a Dictionary], name: &[u8], state: &State<'a>) {
        let doc = self.doc;
        let Some(id) = resources.iter().find_map(|res| {
            res.get_deref(b"XObject", doc)
                .and_then(Object::as_dict)
                .and_then(|xobjects| xobjects.get(name))
                .and_then(Object::as_reference)
                .ok()
        }) else {
            return;
        };
        if self.forms.len() >= MAX_FORM_DEPTH || self.forms.contains(&id) {
            return;
        }
        let Ok(stream) = doc.get_object(id).and_then(Object::as_stream) else {
            return;
        };
        if stream.dict.get(b"Subtype").and_then(Object::as_name).ok() != Some(b"Form".as_slice()) {
            return;
        }
        let Ok(content) = stream.decompressed_content_with_limit(MAX_STREAM_BYTES) else {
            return;
        };
        let matrix = stream
            .dict
            .get_deref(b"Matrix", doc)
            .and_then(Object::as_array)
            .ok()
            .and_then(|m| Matrix::from_operands(m))
            .unwrap_or(Matrix::IDENTITY);
        let own = stream
            .dict
            .get_deref(b"Resources", doc)
            .and_then(Object::as_dict)
            .ok();
        // A form without resources of its own uses its parent's.
        let mut scope: Vec<&'a Dictionary> = own.into_iter().collect();
        scope.extend_from_slice(resources);
        self.forms.push(id);
        let inner = State {
            ctm: matrix.then(state.ctm),
            text: state.text.clone(),
        };
        self.walk(&content, &scope, inner);
        self.forms.pop();
    }

    /// The font named `name` in `resources`, read once per document.
    fn font(&mut self, resources: &[&'a Dictionary], name: &[u8]) -> Option<Rc<Font<'a>>> {
        let doc = self.doc;
        let object = resources.iter().find_map(|res| {
            res.get_deref(b"Font", doc)
                .and_then(Object::as_dict)
                .and_then(|fonts| fonts.get(name))
                .ok()
        })?;
        let (id, object) = doc.dereference(object).ok()?;
        let dict = object.as_dict().ok()?;
        match id {
            Some(id) => Some(
                self.fonts
                    .entry(id)
                    .or_insert_with(|| Rc::new(Font::read(doc, dict)))
                    .clone(),
            ),
            None => Some(Rc::new(Font::read(doc, dict))),
        }
    }

    /// Shows the string `bytes` with the current text state: places its
    /// text in the layout and advances the text matrix past it.
    fn show(&mut self, state: &mut State<'a>, bytes: &[u8]) {
        let text = &mut state.text;
        let Some(font) = text.font.clone() else {
            return;
        };
        let rendering = text.matrix.then(state.ctm);
        let origin = rendering.apply(0.0, 0.0);
        let [a, b, c, d, ..] = rendering.0;
        let size = text.size.abs() * c.hypot(d);
        let direction = unit(a, b);

        let advance =
            font.advance(bytes, text.size, text.char_spacing, text.word_spacing) * text.scale;
        text.matrix = Matrix::translate(advance, 0.0).then(text.matrix);
        let end = text.matrix.then(state.ctm).apply(0.0, 0.0);

        let decoded = font.decode(bytes);
        if decoded.trim().is_empty() {
            // Spaces drawn on their own still separate words.
            if !decoded.is_empty() && self.layout.last.is_some() {
                self.layout.pending_space = true;
            }
            return;
        }
        self.layout.place(
            Run {
                origin,
                end,
                size,
                direction,
            },
            &decoded,
        );
    }
}

fn set(slot: &mut f32, operands: &[Object]) {
    if let Some(n) = operands.first().and_then(number) {
        *slot = n;
    }
}

fn move_line(text: &mut TextState<'_>, tx: f32, ty: f32) {
    text.line_matrix = Matrix::translate(tx, ty).then(text.line_matrix);
    text.matrix = text.line_matrix;
}

fn next_line(text: &mut TextState<'_>) {
    let leading = text.leading;
    move_line(text, 0.0, -leading);
}

/// The unit vector along `(x, y)`, or the x axis when that is degenerate.
fn unit(x: f32, y: f32) -> (f32, f32) {
    let len = x.hypot(y);
    if len.is_finite() && len > 1e-6 {
        (x / len, y / len)
    } else {
        (1.0, 0.0)
    }
}

/// Where a run of text landed, in page space.
#[derive(Clone, Copy, Debug)]
struct Run {
    origin: (f32, f32),
    end: (f32, f32),
    /// The font size as drawn.
    size: f32,
    /// Unit vector along the baseline.
    direction: (f32, f32),
}

/// The page's text so far and where its last run ended.
#[derive(Default)]
struct Layout {
    out: String,
    chars: usize,
    last: Option<Run>,
    /// The baseline-to-baseline distance of the last line break that was
    /// not a paragraph break.
    line_gap: Option<f32>,
    /// A run of only spaces was shown since the last text.
    pending_space: bool,
}

impl Layout {
    fn place(&mut self, run: Run, text: &str) {
        if let Some(last) = self.last {
            let (ux, uy) = last.direction;
            let (dx, dy) = (run.origin.0 - last.end.0, run.origin.1 - last.end.1);
            // Along the last baseline, and up across it.
            let along = dx * ux + dy * uy;
            let up = dy * ux - dx * uy;
            let size = run.size.max(last.size).max(1e-3);
            let same_direction = run.direction.0 * ux + run.direction.1 * uy > 0.9;
            if same_direction && up.abs() <= 0.5 * size {
                // Same line: a space for a visible gap, or a jump back.
                if self.pending_space || along > 0.15 * size || along < -size {
                    self.push_space();
                }
            } else {
                let down = -up;
                let small = run.size.min(last.size).max(1e-3);
                let new_size = size / small > 1.15;
                let wide_gap =
                    down > 1.5 * size && self.line_gap.is_none_or(|gap| down > 1.3 * gap);
                if !same_direction || new_size || wide_gap || up > size {
                    self.push_break("\n\n");
                } else {
                    self.line_gap = Some(down);
                    self.push_break("\n");
                }
            }
        }
        self.pending_space = false;
        for c in text.chars() {
            self.chars += push_clean(&mut self.out, c);
        }
        self.last = Some(run);
    }

    fn push_space(&mut self) {
        if !self.out.ends_with(char::is_whitespace) {
            self.out.push(' ');
            self.chars += 1;
        }
    }

    fn push_break(&mut self, separator: &str) {
        let trimmed = self.out.trim_end_matches([' ', '\t']).len();
        self.out.truncate(trimmed);
        if separator == "\n\n" && self.out.ends_with('\n') && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        } else if !self.out.ends_with('\n') {
            self.out.push_str(separator);
        }
        self.chars += separator.len();
    }
}

/// Appends `c` as it goes into the text: ligatures spelled out, other
/// whitespace as a plain space, control characters and U+FFFD (an unmapped
/// glyph) dropped. Returns how many characters were appended.
fn push_clean(out: &mut String, c: char) -> usize {
    let spelled = match c {
        '\u{fb00}' => "ff",
        '\u{fb01}' => "fi",
        '\u{fb02}' => "fl",
        '\u{fb03}' => "ffi",
        '\u{fb04}' => "ffl",
        '\u{fb05}' | '\u{fb06}' => "st",
        '\n' | '\r' | '\t' | '\u{a0}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{3000}' => " ",
        '\u{fffd}' | '\u{feff}' | '\u{200b}' => return 0,
        c if c.is_control() => return 0,
        c => {
            out.push(c);
            return 1;
        }
    };
    out.push_str(spelled);
    spelled.len()
}

/// How a font's string bytes become text.
enum Decoder<'a> {
    Lopdf(Encoding<'a>),
    /// Two-byte codes that are UTF-16BE (`Uni…-UCS2-…`, `Uni…-UTF16-…`).
    Utf16Be,
    /// No usable mapping to Unicode: the text is dropped rather than
    /// guessed (it would be noise in the knowledge base).
    None,
}

/// How wide a font's glyphs are, in glyph units (1/1000 em for all but
/// Type 3 fonts).
enum Widths {
    /// Simple fonts: `Widths` from `FirstChar`, else `MissingWidth`.
    Simple {
        first: i64,
        widths: Vec<f32>,
        missing: f32,
    },
    /// The standard 14 fonts, which may omit `Widths`: the Adobe metrics
    /// of printable ASCII, by character.
    Standard(&'static [u16; 95]),
    /// Monospaced standard fonts (Courier).
    Fixed(f32),
    /// Composite (Type 0) fonts: `W` ranges of CIDs, sorted by first CID,
    /// else `DW`.
    Cid {
        ranges: Vec<(u32, u32, f32)>,
        default: f32,
    },
}

/// What the walker needs of a font.
pub struct Font<'a> {
    decoder: Decoder<'a>,
    /// Codes are two bytes (Type 0 fonts), else one.
    two_byte: bool,
    widths: Widths,
    /// Glyph units to text space: 0.001, or a Type 3 font's `FontMatrix`.
    unit: f32,
}

/// The most `W` ranges read from a composite font.
const MAX_CID_RANGES: usize = 1 << 16;

impl<'a> Font<'a> {
    fn read(doc: &'a Document, dict: &'a Dictionary) -> Font<'a> {
        let subtype = dict
            .get(b"Subtype")
            .and_then(Object::as_name)
            .unwrap_or_default();
        let two_byte = subtype == b"Type0";
        let to_unicode = to_unicode(doc, dict);
        let decoder = if two_byte {
            match to_unicode {
                Some(encoding) => Decoder::Lopdf(encoding),
                None => {
                    let name = dict
                        .get(b"Encoding")
                        .and_then(Object::as_name)
                        .unwrap_or_default();
                    let utf16 = name.starts_with(b"Uni")
                        && (contains(name, b"UCS2") || contains(name, b"UTF16"));
                    if utf16 {
                        Decoder::Utf16Be
                    } else {
                        Decoder::None
                    }
                }
            }
        } else {
            match to_unicode {
                Some(encoding) => Decoder::Lopdf(encoding),
                None => match dict.get_font_encoding_with_limit(doc, MAX_STREAM_BYTES) {
                    Ok(encoding) => Decoder::Lopdf(encoding),
                    Err(_) => Decoder::None,
                },
            }
        };
        let unit = if subtype == b"Type3" {
            dict.get_deref(b"FontMatrix", doc)
                .and_then(Object::as_array)
                .ok()
                .and_then(|m| m.first())
                .and_then(number)
                .map_or(0.001, f32::abs)
        } else {
            0.001
        };
        let widths = if two_byte {
            cid_widths(doc, dict)
        } else {
            simple_widths(doc, dict)
        };
        Font {
            decoder,
            two_byte,
            widths,
            unit,
        }
    }

    fn decode(&self, bytes: &[u8]) -> String {
        match &self.decoder {
            Decoder::Lopdf(encoding) => encoding.bytes_to_string(bytes).unwrap_or_default(),
            Decoder::Utf16Be => {
                let units: Vec<u16> = bytes
                    .as_chunks::<2>()
                    .0
                    .iter()
                    .map(|&pair| u16::from_be_bytes(pair))
                    .collect();
                String::from_utf16_lossy(&units)
            }
            Decoder::None => String::new(),
        }
    }

    /// How far showing `bytes` moves the text position, in unscaled text
    /// space units (before `Tz`).
    fn advance(&self, bytes: &[u8], size: f32, char_spacing: f32, word_spacing: f32) -> f32 {
        let mut glyph_units = 0.0f32;
        let mut glyphs = 0usize;
        let mut spaces = 0usize;
        if self.two_byte {
            for pair in bytes.chunks(2) {
                let cid = pair.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
                glyph_units += self.cid_width(cid);
                glyphs += 1;
            }
        } else {
            match &self.widths {
                Widths::Standard(table) => {
                    for c in self.decode(bytes).chars() {
                        let index = (c as usize).wrapping_sub(32);
                        glyph_units += table.get(index).map_or(500.0, |&w| f32::from(w));
                    }
                }
                _ => {
                    for &b in bytes {
                        glyph_units += self.simple_width(b);
                    }
                }
            }
            glyphs = bytes.len();
            spaces = bytes.iter().filter(|&&b| b == b' ').count();
        }
        glyph_units * self.unit * size + glyphs as f32 * char_spacing + spaces as f32 * word_spacing
    }

    fn simple_width(&self, code: u8) -> f32 {
        match &self.widths {
            Widths::Simple {
                first,
                widths,
                missing,
            } => usize::try_from(i64::from(code) - first)
                .ok()
                .and_then(|i| widths.get(i))
                .copied()
                .unwrap_or(*missing),
            Widths::Fixed(w) => *w,
            // Characters are measured by `advance` itself.
            Widths::Standard(_) => 500.0,
            Widths::Cid { default, .. } => *default,
        }
    }

    fn cid_width(&self, cid: u32) -> f32 {
        match &self.widths {
            Widths::Cid { ranges, default } => {
                let after = ranges.partition_point(|&(first, _, _)| first <= cid);
                ranges[..after]
                    .iter()
                    .rev()
                    .take(8)
                    .find(|&&(first, last, _)| first <= cid && cid <= last)
                    .map_or(*default, |&(_, _, w)| w)
            }
            Widths::Fixed(w) => *w,
            _ => 1000.0,
        }
    }
}

/// The font's `ToUnicode` CMap as an encoding, if it has a readable one.
fn to_unicode<'a>(doc: &'a Document, dict: &'a Dictionary) -> Option<Encoding<'a>> {
    let stream = dict.get(b"ToUnicode").ok()?;
    // lopdf reads `ToUnicode` only for a font without `Encoding`, so ask it
    // about a font dictionary that has nothing else. The CMap it returns
    // owns its data, so it outlives that dictionary.
    let mut probe = Dictionary::new();
    probe.set("Type", Object::Name(b"Font".to_vec()));
    probe.set("ToUnicode", stream.clone());
    match probe.get_font_encoding_with_limit(doc, MAX_STREAM_BYTES) {
        Ok(Encoding::UnicodeMapEncoding(cmap)) => Some(Encoding::UnicodeMapEncoding(cmap)),
        _ => None,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn simple_widths(doc: &Document, dict: &Dictionary) -> Widths {
    let widths: Option<Vec<f32>> = dict
        .get_deref(b"Widths", doc)
        .and_then(Object::as_array)
        .ok()
        .map(|array| {
            array
                .iter()
                .take(256)
                .map(|w| {
                    doc.dereference(w)
                        .ok()
                        .and_then(|(_, w)| number(w))
                        .unwrap_or(0.0)
                })
                .collect()
        });
    let missing = dict
        .get_deref(b"FontDescriptor", doc)
        .and_then(Object::as_dict)
        .and_then(|fd| fd.get_deref(b"MissingWidth", doc))
        .ok()
        .and_then(number);
    match widths {
        Some(widths) if !widths.is_empty() => Widths::Simple {
            first: dict
                .get_deref(b"FirstChar", doc)
                .and_then(Object::as_i64)
                .unwrap_or(0),
            widths,
            missing: missing.unwrap_or(500.0),
        },
        _ => standard_widths(
            dict.get(b"BaseFont")
                .and_then(Object::as_name)
                .unwrap_or_default(),
        )
        .unwrap_or(Widths::Fixed(missing.unwrap_or(500.0))),
    }
}

/// Metrics for a standard 14 font (or its common substitutes) named
/// `base_font`, which may carry a subset tag (`ABCDEF+Helvetica`).
fn standard_widths(base_font: &[u8]) -> Option<Widths> {
    let name = String::from_utf8_lossy(base_font);
    let name = name.split_once('+').map_or(&*name, |(_, rest)| rest);
    let bold = name.contains("Bold");
    let italic = name.contains("Italic") || name.contains("Oblique");
    if name.starts_with("Courier") {
        Some(Widths::Fixed(600.0))
    } else if name.starts_with("Helvetica") || name.starts_with("Arial") {
        Some(Widths::Standard(if bold {
            &HELVETICA_BOLD
        } else {
            &HELVETICA
        }))
    } else if name.starts_with("Times") {
        Some(Widths::Standard(match (bold, italic) {
            (false, false) => &TIMES_ROMAN,
            (true, false) => &TIMES_BOLD,
            (false, true) => &TIMES_ITALIC,
            (true, true) => &TIMES_BOLD_ITALIC,
        }))
    } else {
        None
    }
}

fn cid_widths(doc: &Document, dict: &Dictionary) -> Widths {
    let descendant = dict
        .get_deref(b"DescendantFonts", doc)
        .and_then(Object::as_array)
        .ok()
        .and_then(|fonts| fonts.first())
        .and_then(|font| doc.dereference(font).ok())
        .and_then(|(_, font)| font.as_dict().ok());
    let Some(descendant) = descendant else {
        return Widths::Fixed(1000.0);
    };
    let default = descendant
        .get_deref(b"DW", doc)
        .ok()
        .and_then(number)
        .unwrap_or(1000.0);
    let mut ranges = Vec::new();
    if let Ok(w) = descendant.get_deref(b"W", doc).and_then(Object::as_array) {
        let item = |i: usize| {
            w.get(i)
                .and_then(|o| doc.dereference(o).ok())
                .map(|(_, o)| o)
        };
        let mut i = 0;
        while i < w.len() && ranges.len() < MAX_CID_RANGES {
            let Some(first) = item(i)
                .and_then(|o| o.as_i64().ok())
                .and_then(|n| u32::try_from(n).ok())
            else {
                break;
            };
            match item(i + 1) {
                Some(Object::Array(list)) => {
                    for (k, width) in list.iter().enumerate().take(MAX_CID_RANGES) {
                        let Some(cid) = u32::try_from(k).ok().and_then(|k| first.checked_add(k))
                        else {
                            break;
                        };
                        let width = doc.dereference(width).ok().and_then(|(_, w)| number(w));
                        ranges.push((cid, cid, width.unwrap_or(default)));
                    }
                    i += 2;
                }
                Some(last) => {
                    let last = last.as_i64().ok().and_then(|n| u32::try_from(n).ok());
                    let width = item(i + 2).and_then(number);
                    if let (Some(last), Some(width)) = (last, width) {
                        ranges.push((first, last, width));
                    }
                    i += 3;
                }
                None => break,
            }
        }
    }
    ranges.sort_by_key(|&(first, _, _)| first);
    Widths::Cid { ranges, default }
}

/// The document's title from its Info dictionary, whitespace collapsed;
/// `None` when it has none or it is blank.
pub fn info_title(doc: &Document) -> Option<String> {
    let info = doc
        .trailer
        .get_deref(b"Info", doc)
        .and_then(Object::as_dict)
        .ok()?;
    let title = info.get_deref(b"Title", doc).ok()?;
    let title = decode_text_string(title).ok()?;
    let title = title
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (!title.is_empty()).then_some(title)
}

// Adobe's metrics for the standard 14 fonts, printable ASCII (32..=126),
// in 1/1000 em. The oblique and italic Helvetica share the upright widths.
#[rustfmt::skip]
static HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667,
    611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500,
    222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];
#[rustfmt::skip]
static HELVETICA_BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722, 722, 667,
    611, 778, 722, 278, 556, 722, 611, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 333, 278, 333, 584, 556, 333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556,
    278, 889, 611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
];
#[rustfmt::skip]
static TIMES_ROMAN: [u16; 95] = [
    250, 333, 408, 500, 500, 833, 778, 180, 333, 333, 500, 564, 250, 333, 250, 278, 500, 500, 500,
    500, 500, 500, 500, 500, 500, 500, 278, 278, 564, 564, 564, 444, 921, 722, 667, 667, 722, 611,
    556, 722, 722, 333, 389, 722, 611, 889, 722, 722, 556, 722, 667, 556, 611, 722, 722, 944, 722,
    722, 611, 333, 278, 333, 469, 500, 333, 444, 500, 444, 500, 444, 333, 500, 500, 278, 278, 500,
    278, 778, 500, 500, 500, 500, 333, 389, 278, 500, 500, 722, 500, 500, 444, 480, 200, 480, 541,
];
#[rustfmt::skip]
static TIMES_BOLD: [u16; 95] = [
    250, 333, 555, 500, 500, 1000, 833, 278, 333, 333, 500, 570, 250, 333, 250, 278, 500, 500, 500,
    500, 500, 500, 500, 500, 500, 500, 333, 333, 570, 570, 570, 500, 930, 722, 667, 722, 722, 667,
    611, 778, 778, 389, 500, 778, 667, 944, 722, 778, 611, 778, 722, 556, 667, 722, 722, 1000, 722,
    722, 667, 333, 278, 333, 581, 500, 333, 500, 556, 444, 556, 444, 333, 500, 556, 278, 333, 556,
    278, 833, 556, 500, 556, 556, 444, 389, 333, 556, 500, 722, 500, 500, 444, 394, 220, 394, 520,
];
#[rustfmt::skip]
static TIMES_ITALIC: [u16; 95] = [
    250, 333, 420, 500, 500, 833, 778, 214, 333, 333, 500, 675, 250, 333, 250, 278, 500, 500, 500,
    500, 500, 500, 500, 500, 500, 500, 333, 333, 675, 675, 675, 500, 920, 611, 611, 667, 722, 611,
    611, 722, 722, 333, 444, 667, 556, 833, 667, 722, 611, 722, 611, 500, 556, 722, 611, 833, 611,
    556, 556, 389, 278, 389, 422, 500, 333, 500, 500, 444, 500, 444, 278, 500, 500, 278, 278, 444,
    278, 722, 500, 500, 500, 500, 389, 389, 278, 500, 444, 667, 444, 444, 389, 400, 275, 400, 541,
];
#[rustfmt::skip]
static TIMES_BOLD_ITALIC: [u16; 95] = [
    250, 389, 555, 500, 500, 833, 778, 278, 333, 333, 500, 570, 250, 333, 250, 278, 500, 500, 500,
    500, 500, 500, 500, 500, 500, 500, 333, 333, 570, 570, 570, 500, 832, 667, 667, 667, 722, 667,
    667, 722, 778, 389, 500, 667, 611, 889, 722, 722, 611, 722, 667, 556, 611, 722, 667, 889, 667,
    611, 611, 333, 278, 333, 570, 500, 333, 500, 500, 444, 500, 444, 333, 500, 556, 278, 278, 500,
    278, 778, 556, 500, 500, 500, 389, 389, 278, 556, 444, 667, 500, 444, 389, 348, 220, 348, 570,
];
