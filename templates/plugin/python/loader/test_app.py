"""Tests of the loader's logic: `python3 -m unittest` (no component needed)."""

import unittest

import nova_plugin
from app import DocumentLoader, chunks, paragraphs
from nova_plugin import InvalidInput


class ParagraphsTest(unittest.TestCase):
    def test_blank_lines_separate_paragraphs(self):
        text = "First line\nstill first.\n\nSecond.\n \n\n\r\nThird.\n"
        self.assertEqual(paragraphs(text), ["First line\nstill first.", "Second.", "Third."])

    def test_empty_document_has_no_paragraphs(self):
        self.assertEqual(paragraphs(""), [])
        self.assertEqual(paragraphs("\n\n  \n"), [])

    def test_chunks_carry_source_and_number(self):
        result = chunks("notes.txt", "\ufeffOne.\n\nTwo.".encode())
        self.assertEqual([c.text for c in result], ["One.", "Two."])
        self.assertEqual(result[1].metadata, [("source", "notes.txt"), ("paragraph", "2")])

    def test_non_utf8_is_invalid_input(self):
        with self.assertRaisesRegex(InvalidInput, "^notes.txt is not UTF-8 text"):
            chunks("notes.txt", b"caf\xe9")


class LoaderTest(unittest.TestCase):
    def test_load_logs_one_line(self):
        nova_plugin.logged.clear()
        result = DocumentLoader().load("a.txt", b"x\n\ny")
        self.assertEqual(len(result), 2)
        self.assertEqual(nova_plugin.logged, [("info", "a.txt: 2 paragraphs")])

    def test_describe(self):
        info = DocumentLoader().describe()
        self.assertEqual((info.name, info.version), ("{{name}}", "0.1.0"))
        self.assertEqual((info.extensions, info.media_types), (["txt", "text"], ["text/plain"]))


if __name__ == "__main__":
    unittest.main()
