"""csv-rows: a nova document loader that makes one chunk per CSV row.

The first row names the columns. Each later row becomes a chunk whose text
is one `column: value` line per non-empty cell, with metadata `source`,
`row` (1 for the first row after the header) and `line` (where the row
ends in the file). `.tsv` files are split on tabs, everything else on
commas.
"""

import csv
import io
from typing import List

import nova_plugin
from nova_plugin import Chunk, InvalidInput


def decode(source: str, data: bytes) -> str:
    """The document as text; a UTF-8 byte order mark is dropped."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInput(f"{source} is not UTF-8 text: {e}") from None
    # Not data.decode("utf-8-sig"): a codec is a module, and only modules
    # imported when the component was built exist in it.
    return text.removeprefix("\ufeff")


def rows(source: str, text: str) -> List[Chunk]:
    delimiter = "\t" if source.lower().endswith(".tsv") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    result = []
    try:
        header = [name.strip() for name in next(reader, [])]
        for row in reader:
            lines = []
            for i, value in enumerate(row):
                name = header[i] if i < len(header) and header[i] else f"column {i + 1}"
                if value.strip():
                    lines.append(f"{name}: {value.strip()}")
            if not lines:
                continue  # a blank row
            metadata = [("source", source), ("row", str(len(result) + 1)), ("line", str(reader.line_num))]
            result.append(Chunk(text="\n".join(lines), metadata=metadata))
    except csv.Error as e:
        raise InvalidInput(f"{source}: line {reader.line_num}: {e}") from None
    return result


class DocumentLoader:
    """The export `nova:plugin/document-loader`."""

    def describe(self) -> nova_plugin.LoaderInfo:
        return nova_plugin.LoaderInfo(
            name="csv-rows",
            version="0.1.0",
            extensions=["csv", "tsv"],
            media_types=["text/csv", "text/tab-separated-values"],
        )

    @nova_plugin.catch_errors
    def load(self, source: str, bytes: bytes) -> List[Chunk]:
        result = rows(source, decode(source, bytes))
        nova_plugin.log("info", f"{source}: {len(result)} rows")
        return result
