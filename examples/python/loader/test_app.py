"""Tests of csv-rows' logic: `python3 -m unittest` (no component needed)."""

import unittest

import nova_plugin
from app import DocumentLoader, rows
from nova_plugin import InvalidInput


class RowsTest(unittest.TestCase):
    def test_one_chunk_per_row(self):
        text = 'name,born,note\nAda,1815,"wrote the first\nprogram"\n\nGrace,1906,\n'
        result = rows("people.csv", text)
        self.assertEqual([c.text for c in result], [
            "name: Ada\nborn: 1815\nnote: wrote the first\nprogram",
            "name: Grace\nborn: 1906",
        ])
        self.assertEqual(result[0].metadata, [("source", "people.csv"), ("row", "1"), ("line", "3")])
        self.assertEqual(result[1].metadata, [("source", "people.csv"), ("row", "2"), ("line", "5")])

    def test_extra_cells_and_tabs(self):
        result = rows("t.TSV", "a\tb\n1\t2\t3\n")
        self.assertEqual(result[0].text, "a: 1\nb: 2\ncolumn 3: 3")

    def test_header_only_or_empty(self):
        self.assertEqual(rows("x.csv", "a,b\n"), [])
        self.assertEqual(rows("x.csv", ""), [])

    def test_bad_csv_is_invalid_input(self):
        with self.assertRaisesRegex(InvalidInput, r"^x\.csv: line 2: "):
            rows("x.csv", 'a\n"unterminated')


class LoaderTest(unittest.TestCase):
    def test_load(self):
        nova_plugin.logged.clear()
        result = DocumentLoader().load("p.csv", "\ufeffname\nAda\n".encode())
        self.assertEqual([c.text for c in result], ["name: Ada"])
        self.assertEqual(nova_plugin.logged, [("info", "p.csv: 1 rows")])

    def test_non_utf8_is_invalid_input(self):
        with self.assertRaisesRegex(InvalidInput, r"^p\.csv is not UTF-8 text"):
            DocumentLoader().load("p.csv", b"name\ncaf\xe9\n")


if __name__ == "__main__":
    unittest.main()
