//! A PDF document to chunks: one or more per page that has text.
//!
//! Knows nothing of the component bindings, so it is unit-tested natively.
//! The document is parsed by lopdf; [`crate::page`] recovers each page's
//! text, [`crate::chunk`] normalises it and cuts it to size.

use lopdf::{Document, LoadOptions};

use crate::chunk;
use crate::page::{self, FontCache, MAX_STREAM_BYTES};

/// A chunk with its metadata pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub text: String,
    pub metadata: Vec<(String, String)>,
}

/// Why a document gave no chunks; maps onto the contract's `plugin-error`.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// Not a PDF, or too damaged to read.
    InvalidInput(String),
    /// A PDF, but its text cannot be had: encrypted, or no text at all.
    Unsupported(String),
}

/// The chunks of `bytes`, the PDF document `source`, and warnings about
/// pages that could not be read (the other pages still give chunks).
///
/// Every chunk carries `source`, `title` (the Info dictionary's Title;
/// absent when the document has none), `page` (1-based) and `format`
/// (`pdf`). A page without text gives no chunk.
pub fn extract(source: &str, bytes: &[u8]) -> Result<(Vec<Piece>, Vec<String>), Error> {
    // The header may follow some junk, but only a little (as readers allow).
    let head = bytes.get(..1024).unwrap_or(bytes);
    if !head.windows(5).any(|w| w == b"%PDF-") {
        return Err(Error::InvalidInput(format!(
            "{source} is not a PDF document: it has no %PDF- header"
        )));
    }
    // Every complete PDF ends with an end-of-file marker (after each
    // incremental update, too); lopdf would recover some pages of a cut
    // file by scanning for objects, and a partial document is worse than a
    // clear error.
    if !bytes.windows(5).any(|w| w == b"%%EOF") {
        return Err(Error::InvalidInput(format!(
            "{source} is truncated: the PDF has no %%EOF marker"
        )));
    }
    let options = LoadOptions {
        max_decompressed_size: Some(MAX_STREAM_BYTES),
        ..LoadOptions::default()
    };
    let doc = Document::load_mem_with_options(bytes, options)
        .map_err(|e| Error::InvalidInput(format!("{source} is not a readable PDF: {e}")))?;
    // lopdf opens a document encrypted with an empty user password (only an
    // owner password restricts it) as a viewer would; any other stays shut.
    if doc.trailer.has(b"Encrypt") && doc.encryption_state.is_none() {
        return Err(Error::Unsupported(format!(
            "{source} is encrypted with a password, so it has no extractable text"
        )));
    }
    let pages = doc.get_pages();
    if pages.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{source} is not a readable PDF: it has no pages"
        )));
    }
    let title = page::info_title(&doc);

    let mut fonts = FontCache::new();
    let mut pieces = Vec::new();
    let mut warnings = Vec::new();
    let mut first_error = None;
    let page_count = pages.len();
    for (number, id) in pages {
        let text = match page::page_text(&doc, id, &mut fonts) {
            Ok(text) => chunk::normalise(&text),
            Err(e) => {
                warnings.push(format!("{source}: page {number} skipped: {e}"));
                first_error.get_or_insert(format!("page {number}: {e}"));
                continue;
            }
        };
        for text in chunk::chunks(&text) {
            let mut metadata = vec![("source".to_string(), source.to_string())];
            if let Some(title) = &title {
                metadata.push(("title".to_string(), title.clone()));
            }
            metadata.push(("page".to_string(), number.to_string()));
            metadata.push(("format".to_string(), "pdf".to_string()));
            pieces.push(Piece { text, metadata });
        }
    }
    if pieces.is_empty() {
        if let Some(first) = first_error
            && warnings.len() == page_count
        {
            return Err(Error::InvalidInput(format!(
                "{source} is not a readable PDF: no page could be read ({first})"
            )));
        }
        return Err(Error::Unsupported(format!(
            "{source} has no extractable text (scanned image?)"
        )));
    }
    Ok((pieces, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lopdf::content::{Content, Operation};
    use lopdf::{Object, Stream, dictionary};

    const OVERVIEW: &[u8] = include_bytes!("../../../tests/fixtures/nova-overview.pdf");
    const LOCKED: &[u8] = include_bytes!("../fixtures/locked.pdf");
    const OWNER_ONLY: &[u8] = include_bytes!("../fixtures/owner-only.pdf");
    const DRAWING: &[u8] = include_bytes!("../fixtures/drawing.pdf");

    fn get<'a>(p: &'a Piece, key: &str) -> Option<&'a str> {
        p.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn load(bytes: &[u8]) -> Vec<Piece> {
        match extract("docs/doc.pdf", bytes) {
            Ok((pieces, warnings)) => {
                assert!(warnings.is_empty(), "{warnings:?}");
                pieces
            }
            Err(e) => panic!("{e:?}"),
        }
    }

    /// A PDF of `pages`, each the given content stream, Helvetica as /F1.
    fn pdf(pages: &[&str], title: Option<&str>) -> Vec<u8> {
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let font_id = doc.add_object(dictionary! {
            "Type" => "Font",
            "Subtype" => "Type1",
            "BaseFont" => "Helvetica",
            "Encoding" => "WinAnsiEncoding",
        });
        let resources_id = doc.add_object(dictionary! {
            "Font" => dictionary! { "F1" => font_id },
        });
        let kids: Vec<Object> = pages
            .iter()
            .map(|content| {
                let content_id =
                    doc.add_object(Stream::new(dictionary! {}, content.as_bytes().to_vec()));
                doc.add_object(dictionary! {
                    "Type" => "Page",
                    "Parent" => pages_id,
                    "Contents" => content_id,
                    "Resources" => resources_id,
                    "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
                })
                .into()
            })
            .collect();
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages",
                "Kids" => kids,
                "Count" => pages.len() as i64,
            }),
        );
        let catalog_id = doc.add_object(dictionary! {
            "Type" => "Catalog",
            "Pages" => pages_id,
        });
        doc.trailer.set("Root", catalog_id);
        if let Some(title) = title {
            let info_id = doc.add_object(dictionary! {
                "Title" => Object::string_literal(title),
            });
            doc.trailer.set("Info", info_id);
        }
        let mut out = Vec::new();
        doc.save_to(&mut out).unwrap();
        out
    }

    #[test]
    fn the_fixture_gives_its_three_pages() {
        let pieces = load(OVERVIEW);
        let pages: Vec<_> = pieces.iter().map(|p| get(p, "page").unwrap()).collect();
        assert_eq!(pages, ["1", "2", "3"]);
        for p in &pieces {
            assert_eq!(get(p, "source"), Some("docs/doc.pdf"));
            assert_eq!(get(p, "title"), Some("nova overview"));
            assert_eq!(get(p, "format"), Some("pdf"));
            assert_eq!(
                p.metadata
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
                ["source", "title", "page", "format"]
            );
        }
        let [one, two, three] = [&pieces[0].text, &pieces[1].text, &pieces[2].text];
        assert!(
            one.starts_with("nova overview\n\nnova is an automation host"),
            "{one}"
        );
        assert!(one.contains("sandboxed WebAssembly plugins,\nchains them into workflows"));
        assert!(
            two.starts_with("Plugins\n\nThere are two kinds of plugin."),
            "{two}"
        );
        assert!(two.contains("Plugins are hot reloaded"));
        assert!(
            three.starts_with("Workflows and the knowledge base\n\n"),
            "{three}"
        );
        assert!(
            three.contains("Semantic search finds the\npassages nearest in meaning"),
            "{three}"
        );
        // Paragraphs are separated by one blank line, lines by a newline.
        assert_eq!(one.matches("\n\n").count(), 3, "{one}");
        assert!(!one.contains("  ") && !one.contains("\n\n\n"));
    }

    #[test]
    fn a_page_without_text_is_skipped() {
        let bytes = pdf(
            &[
                "BT /F1 12 Tf 72 700 Td (First page.) Tj ET",
                "0 0 1 rg 10 10 100 100 re f",
                "BT /F1 12 Tf 72 700 Td (  ) Tj ET",
                "BT /F1 12 Tf 72 700 Td (Fourth page.) Tj ET",
            ],
            None,
        );
        let pieces = load(&bytes);
        assert_eq!(
            pieces
                .iter()
                .map(|p| (get(p, "page").unwrap(), p.text.as_str()))
                .collect::<Vec<_>>(),
            [("1", "First page."), ("4", "Fourth page.")]
        );
        // No Info Title: no title key.
        assert_eq!(get(&pieces[0], "title"), None);
    }

    #[test]
    fn lines_words_and_paragraphs_follow_the_layout() {
        let content = "BT /F1 10 Tf 72 700 Td (Hello) Tj 40 0 Td (world) Tj ET \
             BT /F1 10 Tf 72 688 Td [(Ke) 20 (rned) -300 (words)] TJ ET \
             BT /F1 10 Tf 12 TL 72 660 Td (After a gap.) Tj T* (Next line.) Tj ET \
             BT /F1 20 Tf 72 600 Td (Heading) Tj ET \
             BT /F1 10 Tf 72 580 Td (Body) Tj ( text) Tj ET \
             q 1 0 0 1 72 500 cm BT /F1 10 Tf 0 0 Td (Moved) Tj 0 -12 Td (by cm) Tj ET Q";
        let pieces = load(&pdf(&[content], Some("  A  title\n")));
        assert_eq!(pieces.len(), 1);
        assert_eq!(
            pieces[0].text,
            "Hello world\nKerned words\n\nAfter a gap.\nNext line.\n\nHeading\n\nBody text\n\nMoved\nby cm"
        );
        assert_eq!(get(&pieces[0], "title"), Some("A title"));
    }

    #[test]
    fn a_long_page_is_cut_into_several_chunks() {
        let sentence = "This line of text repeats to fill the page with words.";
        let mut content = String::from("BT /F1 10 Tf 12 TL 40 780 Td ");
        for _ in 0..60 {
            content.push_str(&format!("({sentence}) Tj T* "));
        }
        content.push_str("ET");
        let pieces = load(&pdf(&[&content], None));
        assert!(pieces.len() >= 3, "{}", pieces.len());
        for p in &pieces {
            assert_eq!(get(p, "page"), Some("1"));
            assert!(p.text.chars().count() <= chunk::TARGET_CHARS);
            assert!(p.text.lines().all(|l| l == sentence), "{}", p.text);
        }
        assert_eq!(
            pieces.iter().map(|p| p.text.lines().count()).sum::<usize>(),
            60
        );
    }

    #[test]
    fn form_xobjects_are_followed() {
        let mut doc = Document::load_mem(&pdf(&["q 1 0 0 1 100 600 cm /Fm1 Do Q"], None)).unwrap();
        let page_id = doc.get_pages()[&1];
        let form = Content {
            operations: vec![
                Operation::new("BT", vec![]),
                Operation::new("Tf", vec!["F1".into(), 10.into()]),
                Operation::new("Tj", vec![Object::string_literal("Inside a form")]),
                Operation::new("ET", vec![]),
                // A form that draws itself is walked once.
                Operation::new("Do", vec!["Fm1".into()]),
            ],
        };
        let form_id = doc.add_object(Stream::new(
            dictionary! { "Type" => "XObject", "Subtype" => "Form", "BBox" => vec![0.into(), 0.into(), 500.into(), 500.into()] },
            form.encode().unwrap(),
        ));
        let resources_id = doc
            .get_dictionary(page_id)
            .unwrap()
            .get(b"Resources")
            .unwrap()
            .as_reference()
            .unwrap();
        doc.get_dictionary_mut(resources_id)
            .unwrap()
            .set("XObject", dictionary! { "Fm1" => form_id });
        let mut bytes = Vec::new();
        doc.save_to(&mut bytes).unwrap();
        let pieces = load(&bytes);
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].text, "Inside a form");
    }

    #[test]
    fn composite_fonts_decode_through_their_cmaps() {
        let content = "BT /F2 10 Tf 72 700 Td <00010002> Tj ET \
             BT /F2 10 Tf 82 700 Td <0010> Tj ET \
             BT /F2 10 Tf 92 700 Td <0011> Tj ET \
             BT /F2 10 Tf 72 688 Td <00030012> Tj ET \
             BT /F3 10 Tf 72 676 Td <004e0069006800e3006f> Tj ET \
             BT /F4 10 Tf 72 664 Td <0001> Tj ET";
        let mut doc = Document::load_mem(&pdf(&[content], None)).unwrap();
        let cmap = "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n\
            /CMapName /Adobe-Identity-UCS def /CMapType 2 def\n\
            1 begincodespacerange <0000> <FFFF> endcodespacerange\n\
            3 beginbfchar <0001> <0048> <0002> <0069> <0003> <FB01> endbfchar\n\
            1 beginbfrange <0010> <0012> <0061> endbfrange\n\
            endcmap CMapName currentdict /CMap defineresource pop end end";
        let to_unicode = doc.add_object(Stream::new(dictionary! {}, cmap.as_bytes().to_vec()));
        let descendant = |doc: &mut Document| {
            doc.add_object(dictionary! {
                "Type" => "Font",
                "Subtype" => "CIDFontType2",
                "BaseFont" => "Sans",
                "DW" => 1000,
                "W" => vec![
                    1.into(),
                    vec![700.into(), 300.into()].into(),
                    16.into(),
                    18.into(),
                    500.into(),
                ],
            })
        };
        let identity = descendant(&mut doc);
        let f2 = doc.add_object(dictionary! {
            "Type" => "Font",
            "Subtype" => "Type0",
            "BaseFont" => "Sans",
            "Encoding" => "Identity-H",
            "DescendantFonts" => vec![identity.into()],
            "ToUnicode" => to_unicode,
        });
        let ucs2 = descendant(&mut doc);
        let f3 = doc.add_object(dictionary! {
            "Type" => "Font",
            "Subtype" => "Type0",
            "BaseFont" => "Sans",
            "Encoding" => "UniGB-UCS2-H",
            "DescendantFonts" => vec![ucs2.into()],
        });
        // Identity-H without ToUnicode: codes are glyph ids, not text.
        let opaque = descendant(&mut doc);
        let f4 = doc.add_object(dictionary! {
            "Type" => "Font",
            "Subtype" => "Type0",
            "BaseFont" => "Sans",
            "Encoding" => "Identity-H",
            "DescendantFonts" => vec![opaque.into()],
        });
        let page_id = doc.get_pages()[&1];
        let resources_id = doc
            .get_dictionary(page_id)
            .unwrap()
            .get(b"Resources")
            .unwrap()
            .as_reference()
            .unwrap();
        let fonts = doc
            .get_dictionary_mut(resources_id)
            .unwrap()
            .get_mut(b"Font")
            .unwrap()
            .as_dict_mut()
            .unwrap();
        fonts.set("F2", f2);
        fonts.set("F3", f3);
        fonts.set("F4", f4);
        let mut bytes = Vec::new();
        doc.save_to(&mut bytes).unwrap();
        let pieces = load(&bytes);
        assert_eq!(pieces.len(), 1);
        // "Hi" is 10 units wide (W), so "a" touches it; "b" starts 5 units
        // after "a" ends (width 5), a visible gap.
        assert_eq!(pieces[0].text, "Hia b\nfic\nNihão");
    }

    #[test]
    fn a_page_that_inflates_too_far_is_skipped() {
        let bytes = pdf(
            &["BT /F1 12 Tf 72 700 Td (Kept.) Tj ET", "placeholder"],
            None,
        );
        let mut doc = Document::load_mem(&bytes).unwrap();
        let page_id = doc.get_pages()[&2];
        let content_id = doc.get_page_contents(page_id)[0];
        let mut bomb = b"BT /F1 12 Tf 72 700 Td (Lost.) Tj ET ".to_vec();
        bomb.resize(MAX_STREAM_BYTES + 1, b' ');
        let mut stream = Stream::new(dictionary! {}, bomb);
        stream.compress().unwrap();
        assert!(stream.content.len() < 100_000);
        doc.objects.insert(content_id, Object::Stream(stream));
        let mut bytes = Vec::new();
        doc.save_to(&mut bytes).unwrap();

        let (pieces, warnings) = extract("bomb.pdf", &bytes).unwrap();
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].text, "Kept.");
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("bomb.pdf: page 2 skipped: "),
            "{warnings:?}"
        );

        // With no page left to read, the document is unreadable.
        doc.delete_object(doc.get_page_contents(doc.get_pages()[&1])[0]);
        let page_one = doc.get_pages()[&1];
        doc.get_dictionary_mut(page_one)
            .unwrap()
            .set("Contents", Object::Reference(content_id));
        let mut bytes = Vec::new();
        doc.save_to(&mut bytes).unwrap();
        match extract("bomb.pdf", &bytes) {
            Err(Error::InvalidInput(m)) => assert!(
                m.starts_with("bomb.pdf is not a readable PDF: no page could be read (page 1: "),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn not_a_pdf_is_invalid_input() {
        for bytes in [
            &b""[..],
            b"hello, world",
            [
                &b"<html>"[..],
                &[b' '; 1100],
                b"%PDF-1.4 is too late</html>",
            ]
            .concat()
            .as_slice(),
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
        ] {
            match extract("a.pdf", bytes) {
                Err(Error::InvalidInput(m)) => {
                    assert!(m.starts_with("a.pdf is not a PDF document"), "{m}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_truncated_pdf_is_an_error() {
        for len in [OVERVIEW.len() / 2, OVERVIEW.len() - 7, 9, 400] {
            match extract("cut.pdf", &OVERVIEW[..len]) {
                Err(Error::InvalidInput(m)) => assert!(m.contains("truncated"), "{m}"),
                other => panic!("{len}: {other:?}"),
            }
        }
    }

    #[test]
    fn encrypted_pdfs() {
        match extract("locked.pdf", LOCKED) {
            Err(Error::Unsupported(m)) => {
                assert_eq!(
                    m,
                    "locked.pdf is encrypted with a password, so it has no extractable text"
                )
            }
            other => panic!("{other:?}"),
        }
        // An owner password alone does not stop reading, as in a viewer.
        let pieces = load(OWNER_ONLY);
        assert_eq!(pieces.len(), 1);
        assert_eq!(
            pieces[0].text,
            "This page is encrypted; only its owner may change it."
        );
        assert_eq!(get(&pieces[0], "title"), Some("nova encrypted"));
    }

    #[test]
    fn a_pdf_without_text_is_unsupported() {
        match extract("scan.pdf", DRAWING) {
            Err(Error::Unsupported(m)) => {
                assert_eq!(m, "scan.pdf has no extractable text (scanned image?)")
            }
            other => panic!("{other:?}"),
        }
    }

    /// A tiny deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn random_bytes_give_an_error_not_a_panic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..200 {
            let len = rng.below(4096);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if round % 2 == 0 {
                // Past the header check, into the parser.
                bytes.splice(0..0, b"%PDF-1.7\n".iter().copied());
                bytes.extend_from_slice(b"\n%%EOF\n");
            }
            assert!(extract("noise.pdf", &bytes).is_err(), "round {round}");
        }
    }

    #[test]
    fn damaged_pdfs_never_panic() {
        // Mutations of real documents: flipped, dropped and duplicated
        // bytes, and cut-and-spliced tails. Any outcome but a panic is fine.
        let plain = pdf(
            &["BT /F1 12 Tf 72 700 Td (Plain) Tj ( text) Tj T* [(a) -300 (b)] TJ ET"],
            Some("t"),
        );
        let mut rng = Rng(42);
        for seed in [OVERVIEW, OWNER_ONLY, LOCKED, DRAWING, plain.as_slice()] {
            for _ in 0..300 {
                let mut bytes = seed.to_vec();
                for _ in 0..=rng.below(8) {
                    let at = rng.below(bytes.len());
                    match rng.below(4) {
                        0 => bytes[at] = rng.next() as u8,
                        1 => {
                            bytes.remove(at);
                        }
                        2 => bytes.insert(at, b"0123456789 []<>()/%RObjTjTJ"[rng.below(27)]),
                        _ => {
                            let from = rng.below(bytes.len());
                            let tail = bytes[from..].to_vec();
                            bytes.truncate(at);
                            bytes.extend_from_slice(&tail);
                        }
                    }
                    if bytes.is_empty() {
                        break;
                    }
                }
                let _ = extract("mutant.pdf", &bytes);
            }
        }
    }

    #[test]
    fn random_content_streams_do_not_panic() {
        // Operator soup: real operators with random operands of every type.
        const TOKENS: &[&str] = &[
            "BT",
            "ET",
            "Tf",
            "Tj",
            "TJ",
            "'",
            "\"",
            "Td",
            "TD",
            "Tm",
            "T*",
            "Tc",
            "Tw",
            "Tz",
            "TL",
            "cm",
            "q",
            "Q",
            "Do",
            "/F1",
            "/F2",
            "/Fm1",
            "12",
            "-3.5",
            "0",
            "1e30",
            "-1e30",
            "(text)",
            "( )",
            "<00ff>",
            "<>",
            "[(a) -250 (b)]",
            "[]",
            "[1 2",
            "]",
            "<<",
            ">>",
            "/Name",
            "true",
            "null",
            "%comment\n",
            "BI",
            "ID",
            "EI",
            "\n",
        ];
        let mut rng = Rng(7);
        let mut contents = Vec::new();
        for _ in 0..ROUNDS {
            let n = rng.below(60);
            let tokens: Vec<&str> = (0..n).map(|_| TOKENS[rng.below(TOKENS.len())]).collect();
            contents.push(tokens.join(" "));
        }
        for group in contents.chunks(10) {
            let refs: Vec<&str> = group.iter().map(String::as_str).collect();
            let _ = extract("soup.pdf", &pdf(&refs, None));
        }
    }

    const ROUNDS: usize = 400;

    #[test]
    fn hostile_structures_do_not_panic() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let contents = [
            // Operators without or with wrong operands.
            "BT Tf Tj TJ Td TD Tm cm ' \" T* Tz TL Tc Tw ET".to_string(),
            "BT /F1 Tf (x) Tj /F9 12 Tf (y) Tj 1 2 3 Tm 1e39 1e39 Td (z) Tj ET".to_string(),
            "BT /F1 12 Tf [(a) /Name 1e38 -1e38 (b) [(c)]] TJ 0 0 0 0 0 0 Tm (d) Tj ET".to_string(),
            format!("{} (x) Tj {}", "q ".repeat(10_000), "Q ".repeat(20_000)),
            format!("BT /F1 12 Tf {deep} TJ ET"),
            "/Missing Do BI /W 1 /H 1 /BPC 8 /CS /G ID X EI (after) Tj".to_string(),
        ];
        let refs: Vec<&str> = contents.iter().map(String::as_str).collect();
        let _ = extract("hostile.pdf", &pdf(&refs, None));
    }
}
