"""Tests of the step's logic: `python3 -m unittest` (no component needed)."""

import json
import unittest

import nova_plugin
from app import WorkflowStep, greet, parse_object
from nova_plugin import InvalidInput


class GreetTest(unittest.TestCase):
    def test_greets_with_config(self):
        self.assertEqual(greet({"name": "Ada"}, {"greeting": "Hi"}), {"message": "Hi, Ada!"})

    def test_defaults(self):
        self.assertEqual(greet({}, {}), {"message": "Hello, world!"})

    def test_name_must_be_a_string(self):
        with self.assertRaisesRegex(InvalidInput, r"^input\.name must be a string$"):
            greet({"name": 42}, {})

    def test_input_must_be_an_object(self):
        with self.assertRaisesRegex(InvalidInput, "input must be a JSON object"):
            parse_object("[1, 2]", "input")
        with self.assertRaisesRegex(InvalidInput, "input is not JSON"):
            parse_object("{", "input")


class StepTest(unittest.TestCase):
    def test_run_returns_json_and_logs_one_line(self):
        nova_plugin.logged.clear()
        output = WorkflowStep().run('{"name": "Ada"}', '{"greeting": "Hi"}')
        self.assertEqual(json.loads(output), {"message": "Hi, Ada!"})
        self.assertEqual([level for level, _ in nova_plugin.logged], ["info"])

    def test_describe(self):
        info = WorkflowStep().describe()
        self.assertEqual((info.name, info.version), ("{{name}}", "0.1.0"))

    def test_error_cases(self):
        self.assertEqual(
            nova_plugin.error_case(InvalidInput("input.name must be a string")),
            ("invalid-input", "input.name must be a string"),
        )
        self.assertEqual(nova_plugin.error_case(KeyError("x")), ("failed", "KeyError: 'x'"))
        # An import's failure (kv, store, knowledge) let through run():
        self.assertEqual(nova_plugin.error_case(nova_plugin.Err("kv down")), ("failed", "Err: kv down"))
        self.assertEqual(
            nova_plugin.error_case(nova_plugin.Err(nova_plugin.StoreError_Unavailable("no database"))),
            ("failed", "StoreError_Unavailable: no database"),
        )


if __name__ == "__main__":
    unittest.main()
