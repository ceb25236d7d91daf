"""Tests of word-stats' logic: `python3 -m unittest` (no component needed)."""

import json
import unittest

import nova_plugin
from app import WorkflowStep, add_to_total, count_words, read_config
from nova_plugin import InvalidInput


class FakeKv:
    """Stands in for nova's kv import: get(key) -> bytes | None, set(key, value, ttl)."""

    def __init__(self):
        self.data = {}

    def get(self, key):
        return self.data.get(key)

    def set(self, key, value, ttl_seconds):
        self.data[key] = bytes(value)


class CountTest(unittest.TestCase):
    def test_counts_case_insensitively(self):
        stats = count_words("The cat and the hat. THE END, don't stop", top=2)
        self.assertEqual(stats["words"], 9)
        self.assertEqual(stats["unique"], 7)
        self.assertEqual(stats["top"], [{"word": "the", "count": 3}, {"word": "and", "count": 1}])

    def test_stop_words_and_unicode(self):
        stats = count_words("Le café, l’été, le CAFÉ", top=1, stop_words={"le"})
        self.assertEqual(stats["words"], 3)
        self.assertEqual(stats["top"], [{"word": "café", "count": 2}])

    def test_config(self):
        self.assertEqual(read_config({}), (5, set()))
        self.assertEqual(read_config({"top": 1, "stop_words": ["The"]}), (1, {"the"}))
        for bad in ({"top": -1}, {"top": True}, {"top": "3"}):
            with self.assertRaisesRegex(InvalidInput, r"^config\.top must be"):
                read_config(bad)
        with self.assertRaisesRegex(InvalidInput, r"^config\.stop_words must be"):
            read_config({"stop_words": "the"})

    def test_running_total(self):
        kv = FakeKv()
        self.assertEqual(add_to_total(kv, 3), 3)
        self.assertEqual(add_to_total(kv, 4), 7)
        self.assertEqual(kv.data["total_words"], b"7")


class StepTest(unittest.TestCase):
    def setUp(self):
        self.saved_kv = nova_plugin.kv
        nova_plugin.kv = FakeKv()
        nova_plugin.logged.clear()

    def tearDown(self):
        nova_plugin.kv = self.saved_kv

    def test_run(self):
        step = WorkflowStep()
        step.run('{"text": "a b a"}', "{}")
        output = json.loads(step.run('{"text": "a c"}', '{"top": 1}'))
        self.assertEqual(output, {"words": 2, "unique": 2, "top": [{"word": "a", "count": 1}], "total_words": 5})
        self.assertEqual(nova_plugin.logged[-1], ("info", "counted 2 words (5 in all)"))

    def test_text_must_be_a_string(self):
        with self.assertRaisesRegex(InvalidInput, r"^input\.text must be a string$"):
            WorkflowStep().run('{"text": 1}', "{}")


if __name__ == "__main__":
    unittest.main()
