"""{{name}}: a nova document loader, built by componentize-py into a component.

nova calls `DocumentLoader.load(source, bytes)` with a document's name and
content and expects a list of chunks back. This one splits UTF-8 text into
paragraphs (separated by blank lines). Keep the logic in plain functions
such as `paragraphs`, which test_app.py tests with plain `python3 -m unittest`.
"""

import re
from typing import List

import nova_plugin
from nova_plugin import Chunk, InvalidInput

# One or more blank lines (lines holding only whitespace) end a paragraph.
_BLANK_LINES = re.compile(r"\n[ \t\f\v]*(?:\n[ \t\f\v]*)+")


def decode(source: str, data: bytes) -> str:
    """The document as text; a UTF-8 byte order mark is dropped."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInput(f"{source} is not UTF-8 text: {e}") from None
    return text.removeprefix("\ufeff")


def paragraphs(text: str) -> List[str]:
    """The paragraphs of `text`, trimmed, without empty ones."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return [p.strip() for p in _BLANK_LINES.split(text) if p.strip()]


def chunks(source: str, data: bytes) -> List[Chunk]:
    """One chunk per paragraph, with its source and number (from 1)."""
    return [
        Chunk(text=p, metadata=[("source", source), ("paragraph", str(i))])
        for i, p in enumerate(paragraphs(decode(source, data)), start=1)
    ]


class DocumentLoader:
    """The export `nova:plugin/document-loader`: componentize-py looks for a
    class of this name in the module `app`."""

    def describe(self) -> nova_plugin.LoaderInfo:
        return nova_plugin.LoaderInfo(
            name="{{name}}",
            version="0.1.0",
            extensions=["txt", "text"],
            media_types=["text/plain"],
        )

    @nova_plugin.catch_errors
    def load(self, source: str, bytes: bytes) -> List[Chunk]:
        result = chunks(source, bytes)
        nova_plugin.log("info", f"{source}: {len(result)} paragraphs")
        return result
