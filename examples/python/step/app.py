"""word-stats: a nova workflow step that counts the words of input.text.

Input `{"text": "..."}`, config `{"top": 5, "stop_words": ["the"]}` (both
optional). Output: the number of words, of distinct words, the `top` most
frequent, and `total_words`, a running total across calls kept in the
plugin's `kv` store.
"""

import json
import re
from collections import Counter

import nova_plugin
from nova_plugin import InvalidInput

# A word: letters or digits, with inner apostrophes ("don't", "l’été").
WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
TOTAL_KEY = "total_words"


def parse_object(text: str, what: str) -> dict:
    """Parse JSON text that must be an object; `what` names it in errors."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidInput(f"{what} is not JSON: {e}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    return value


def read_config(config: dict) -> tuple:
    """(top, stop_words) from the step's configuration."""
    top = config.get("top", 5)
    if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= 1000:
        raise InvalidInput("config.top must be an integer from 0 to 1000")
    stop_words = config.get("stop_words", [])
    if not isinstance(stop_words, list) or not all(isinstance(w, str) for w in stop_words):
        raise InvalidInput("config.stop_words must be a list of strings")
    return top, {w.casefold() for w in stop_words}


def count_words(text: str, top: int, stop_words=frozenset()) -> dict:
    """Words are compared case-insensitively; stop words are not counted."""
    words = [w for w in (m.casefold() for m in WORD.findall(text)) if w not in stop_words]
    counts = Counter(words)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {
        "words": len(words),
        "unique": len(counts),
        "top": [{"word": w, "count": c} for w, c in ranked[:top]],
    }


def add_to_total(kv, words: int) -> int:
    """Add `words` to the running total in `kv` and return the new total.

    kv's last write wins: two calls at the same instant may count once.
    Keep a total that must be exact in `store`, with a versioned put."""
    raw = kv.get(TOTAL_KEY)
    total = (int(raw) if raw else 0) + words
    kv.set(TOTAL_KEY, str(total).encode(), None)
    return total


class WorkflowStep:
    """The export `nova:plugin/workflow-step`."""

    def describe(self) -> nova_plugin.StepInfo:
        return nova_plugin.StepInfo(
            name="word-stats",
            version="0.1.0",
            description="Counts the words of input.text, with a running total",
        )

    @nova_plugin.catch_errors
    def run(self, input: str, config: str) -> str:
        data = parse_object(input, "input")
        text = data.get("text")
        if not isinstance(text, str):
            raise InvalidInput("input.text must be a string")
        top, stop_words = read_config(parse_object(config, "config"))
        stats = count_words(text, top, stop_words)
        stats["total_words"] = add_to_total(nova_plugin.kv, stats["words"])
        nova_plugin.log("info", f"counted {stats['words']} words ({stats['total_words']} in all)")
        return json.dumps(stats, ensure_ascii=False)
