"""{{name}}: a nova workflow step, built by componentize-py into a component.

nova calls `WorkflowStep.run(input, config)` with JSON text (the previous
step's output, and this step's configuration) and expects JSON text back.
Keep the logic in plain functions such as `greet`, which test_app.py tests
with plain `python3 -m unittest`.
"""

import json

import nova_plugin
from nova_plugin import InvalidInput


def parse_object(text: str, what: str) -> dict:
    """Parse JSON text that must be an object; `what` names it in errors."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidInput(f"{what} is not JSON: {e}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    return value


def greet(input: dict, config: dict) -> dict:
    """The step's logic: {"name": "Ada"} with {"greeting": "Hi"} gives
    {"message": "Hi, Ada!"}."""
    name = input.get("name", "world")
    if not isinstance(name, str):
        raise InvalidInput("input.name must be a string")
    greeting = config.get("greeting", "Hello")
    if not isinstance(greeting, str):
        raise InvalidInput("config.greeting must be a string")
    return {"message": f"{greeting}, {name}!"}


class WorkflowStep:
    """The export `nova:plugin/workflow-step`: componentize-py looks for a
    class of this name in the module `app`."""

    def describe(self) -> nova_plugin.StepInfo:
        return nova_plugin.StepInfo(
            name="{{name}}",
            version="0.1.0",
            description="Greets input.name with config.greeting",
        )

    @nova_plugin.catch_errors
    def run(self, input: str, config: str) -> str:
        output = greet(parse_object(input, "input"), parse_object(config, "config"))
        nova_plugin.log("info", output["message"])
        return json.dumps(output)
