"""Helpers for a nova plugin written in Python (vendored by `nova plugin new`).

Inside the component, built by componentize-py, this module uses the
generated bindings (`wit_world`, `componentize_py_types`). Under plain
`python3`, as in the unit tests, they are absent: `log` records into
`logged`, `kv`, `store` and `knowledge` are None (put fakes there),
`catch_errors` lets exceptions through, and `Err`, `StepInfo`,
`LoaderInfo`, `Chunk` and the `StoreError_*` cases are plain dataclasses
with the same fields.
"""

import functools
from dataclasses import dataclass
from typing import List, Optional, Tuple

try:
    from componentize_py_types import Err
    from wit_world.imports import log as _wit_log
    from wit_world.imports import types as _wit_types

    IN_COMPONENT = True
except ImportError:
    _wit_log = None
    _wit_types = None
    IN_COMPONENT = False

    @dataclass(frozen=True)
    class Err(Exception):
        """What an import raises when it fails: `value` is its error (a
        string for kv and knowledge, a StoreError_* case for store)."""

        value: object

# The step world's imports (None in a loader, and under plain python3).
try:
    from wit_world.imports import kv, store, knowledge
except ImportError:
    kv = store = knowledge = None

try:
    from wit_world.imports.store import StoreError_Conflict, StoreError_Invalid, StoreError_Unavailable
except ImportError:

    @dataclass
    class StoreError_Conflict:
        value: Optional[int]

    @dataclass
    class StoreError_Invalid:
        value: str

    @dataclass
    class StoreError_Unavailable:
        value: str


try:
    from wit_world.exports.workflow_step import Info as StepInfo
except ImportError:

    @dataclass
    class StepInfo:
        name: str
        version: str
        description: str


try:
    from wit_world.exports.document_loader import Info as LoaderInfo
except ImportError:

    @dataclass
    class LoaderInfo:
        name: str
        version: str
        extensions: List[str]
        media_types: List[str]


try:
    from wit_world.imports.types import Chunk
except ImportError:

    @dataclass
    class Chunk:
        text: str
        metadata: List[Tuple[str, str]]


class InvalidInput(Exception):
    """Raise it for input that can never work: nova answers `invalid-input`
    (422 plugin_invalid_input) and a workflow does not retry the step."""


class Unsupported(Exception):
    """Raise it for well-formed input this plugin does not handle:
    nova answers `unsupported` (422 plugin_unsupported), never retried."""


# What `log` wrote, as (level, message), when not in a component.
logged: List[Tuple[str, str]] = []


def log(level: str, message: str) -> None:
    """Log one line into the host's log: level is "debug", "info", "warn"
    or "error"."""
    if _wit_log is None:
        logged.append((level, message))
        return
    _wit_log.log(_wit_log.Level[level.upper()], message)


def error_case(exc: BaseException) -> Tuple[str, str]:
    """The plugin-error case and message nova gets for an exception."""
    if isinstance(exc, InvalidInput):
        return "invalid-input", str(exc)
    if isinstance(exc, Unsupported):
        return "unsupported", str(exc)
    if isinstance(exc, Err):
        value = exc.value
        if _wit_types is not None and isinstance(
            value,
            (
                _wit_types.PluginError_InvalidInput,
                _wit_types.PluginError_Unsupported,
                _wit_types.PluginError_Failed,
            ),
        ):
            case = {
                _wit_types.PluginError_InvalidInput: "invalid-input",
                _wit_types.PluginError_Unsupported: "unsupported",
                _wit_types.PluginError_Failed: "failed",
            }[type(value)]
            return case, value.value
        # An import's error let through: kv and knowledge fail with a
        # string, store with a StoreError_* case.
        if hasattr(value, "value"):
            return "failed", f"{type(value).__name__}: {value.value}"
        return "failed", f"Err: {value}"
    message = str(exc)
    name = type(exc).__name__
    return "failed", f"{name}: {message}" if message else name


def catch_errors(method):
    """Wrap `run` or `load`: any exception becomes a plugin-error result
    (InvalidInput -> invalid-input, Unsupported -> unsupported, anything
    else -> failed "<ExceptionType>: <message>") instead of a trap."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            if not IN_COMPONENT:
                raise
            case, message = error_case(exc)
            error = {
                "invalid-input": _wit_types.PluginError_InvalidInput,
                "unsupported": _wit_types.PluginError_Unsupported,
                "failed": _wit_types.PluginError_Failed,
            }[case](message)
            raise Err(error) from None

    return wrapper
