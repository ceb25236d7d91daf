"""python: nova's code step. Runs the Python snippet in `config.code` on
the step's input, in the plugin sandbox.

- The input (any JSON value) is the global `input`. Without
  `config.code`, the input must be `{"code": "...", "input": ...}` (code
  an earlier step made), and `input` is its `input`.
- The result is what the code assigns to the global `result`, or else
  what its `main(input)` returns, if it defines one; it must be JSON
  (tuples and sets become lists, dates and times ISO 8601 text).
- `print` and `sys.stdout`/`sys.stderr` writes are captured, each stream
  up to `config.capture_bytes` (64 KiB by default); the rest is counted,
  not kept.
- Output: `{"result": ..., "stdout": "...", "stderr": "..."}`.
- A syntax error, or a result that is not JSON, is `invalid-input`; an
  exception the code raises is `failed`; each says the exception, its
  message and the line of the snippet. With `config.on_error = "return"`
  (what `POST /sandbox/run` asks for) the error is returned in the output
  as `"error": {"type", "message", "line"}`, with what was printed before
  it.

Time and memory are bounded by the host (`config.timeout_ms` and
`config.memory_mb` lower the plugin's limits for one call); there is no
filesystem, environment or network unless the manifest grants them;
`urllib.request.urlopen` reaches the hosts of its `allowed_outbound_hosts`
through `wasi:http` (see wasi_urllib.py).
"""

# The standard library a snippet may import. componentize-py keeps only
# the modules imported while it builds (nothing is read from a file at run
# time), so this list is what a snippet can `import`; a snippet's
# `import json` is then a lookup in the snapshot, not a load.
import abc  # noqa: F401
import array  # noqa: F401
import base64  # noqa: F401
import binascii  # noqa: F401
import bisect  # noqa: F401
import calendar  # noqa: F401
import cmath  # noqa: F401
import collections  # noqa: F401
import collections.abc  # noqa: F401
import colorsys  # noqa: F401
import contextlib  # noqa: F401
import copy  # noqa: F401
import csv  # noqa: F401
import dataclasses  # noqa: F401
import datetime
import decimal
import difflib  # noqa: F401
import encodings.idna  # noqa: F401
import encodings.utf_16  # noqa: F401
import encodings.utf_8_sig  # noqa: F401
import enum  # noqa: F401
import fnmatch  # noqa: F401
import fractions
import functools  # noqa: F401
import graphlib  # noqa: F401
import gzip  # noqa: F401
import hashlib  # noqa: F401
import heapq  # noqa: F401
import hmac  # noqa: F401
import html  # noqa: F401
import html.parser  # noqa: F401
import io
import ipaddress  # noqa: F401
import itertools  # noqa: F401
import json
import math  # noqa: F401
import numbers  # noqa: F401
import operator  # noqa: F401
import pprint  # noqa: F401
import random  # noqa: F401
import secrets  # noqa: F401
import re  # noqa: F401
import shlex  # noqa: F401
import statistics  # noqa: F401
import string  # noqa: F401
import struct  # noqa: F401
import sys
import textwrap  # noqa: F401
import time  # noqa: F401
import tomllib  # noqa: F401
import traceback  # noqa: F401
import types  # noqa: F401
import typing  # noqa: F401
import unicodedata  # noqa: F401
import urllib.parse  # noqa: F401
import urllib.request  # noqa: F401
import uuid  # noqa: F401
import xml.etree.ElementTree  # noqa: F401
import zlib  # noqa: F401

import wasi_urllib
from componentize_py_types import Err
from wit_world.exports.workflow_step import Info
from wit_world.imports import nova_plugin_types as wit_types

# urlopen goes through wasi:http, to the hosts the manifest allows.
wasi_urllib.install()

# Bound now: a snippet that replaces json.dumps (or json.loads) changes
# its own module, not what the step answers with.
_dumps = json.dumps
_loads = json.loads

VERSION = "0.1.0"
FILENAME = "<code>"
DEFAULT_CAPTURE = 64 << 10
MAX_CAPTURE = 1 << 20


class Refused(Exception):
    """The step cannot run as configured: `invalid-input`."""


class Capture(io.TextIOBase):
    """A text stream that keeps its first `limit` bytes (UTF-8) and counts
    the rest."""

    def __init__(self, limit: int):
        self.limit = limit
        self.parts = []
        self.kept = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, s) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        data = s.encode("utf-8", "replace")
        room = self.limit - self.kept
        if len(data) <= room:
            self.parts.append(s)
            self.kept += len(data)
        else:
            head = data[:room].decode("utf-8", "ignore")
            self.parts.append(head)
            kept = len(head.encode("utf-8"))
            self.kept += kept
            self.dropped += len(data) - kept
        return len(s)

    def text(self) -> str:
        out = "".join(self.parts)
        if self.dropped:
            out += f"\n[{self.dropped} more bytes not captured: the limit is {self.limit}]\n"
        return out


def json_default(value):
    """What `result` may hold beyond JSON's own types."""
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, (decimal.Decimal, fractions.Fraction)):
        return float(value)
    raise TypeError(f"a value of type {type(value).__name__} is not JSON")


def snippet_line(exc: BaseException):
    """The line of the snippet where `exc` was raised (the innermost frame
    in the snippet), or None."""
    if isinstance(exc, SyntaxError) and exc.filename == FILENAME:
        return exc.lineno
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def describe_error(exc: BaseException) -> dict:
    message = str(exc)
    if isinstance(exc, SyntaxError):
        message = exc.msg
    return {"type": type(exc).__name__, "message": message, "line": snippet_line(exc)}


def error_text(error: dict) -> str:
    text = error["type"]
    if error["message"]:
        text += f": {error['message']}"
    if error["line"] is not None:
        text += f" (line {error['line']})"
    return text


def read_config(text: str) -> dict:
    try:
        config = _loads(text) if text.strip() else {}
    except json.JSONDecodeError as e:
        raise Refused(f"config is not JSON: {e}") from None
    if not isinstance(config, dict):
        raise Refused("config must be a JSON object")
    code = config.get("code")
    if code is not None and not isinstance(code, str):
        raise Refused("config.code must be the Python source to run, as a string")
    capture = config.get("capture_bytes", DEFAULT_CAPTURE)
    if isinstance(capture, bool) or not isinstance(capture, int) or not 0 <= capture <= MAX_CAPTURE:
        raise Refused(f"config.capture_bytes must be an integer from 0 to {MAX_CAPTURE}")
    on_error = config.get("on_error", "fail")
    if on_error not in ("fail", "return"):
        raise Refused('config.on_error must be "fail" or "return"')
    return {"code": code, "capture": capture, "on_error": on_error}


def execute(code: str, data, stdout: Capture, stderr: Capture):
    """Runs the snippet; returns (result, None) or (None, (case, error))."""
    try:
        compiled = compile(code, FILENAME, "exec")
    except (SyntaxError, ValueError) as exc:
        return None, ("invalid-input", describe_error(exc))
    scope = {"__name__": "__main__", "__builtins__": __builtins__, "input": data}
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = stdout, stderr
    try:
        exec(compiled, scope)
        if "result" in scope:
            result = scope["result"]
        elif callable(scope.get("main")):
            result = scope["main"](data)
        else:
            result = None
    except SystemExit as exc:
        if exc.code in (None, 0):
            result = scope.get("result")
        else:
            return None, ("failed", describe_error(exc))
    except BaseException as exc:  # noqa: BLE001 - the snippet's own failure
        return None, ("failed", describe_error(exc))
    finally:
        sys.stdout, sys.stderr = saved
    return result, None


class WorkflowStep:
    """The export `nova:plugin/workflow-step`."""

    def describe(self) -> Info:
        return Info(
            name="python",
            version=VERSION,
            description="Runs the Python snippet in config.code on the input; "
            "returns its result and what it printed",
        )

    def run(self, input: str, config: str) -> str:
        try:
            settings = read_config(config)
            try:
                data = _loads(input) if input.strip() else None
            except json.JSONDecodeError as e:
                raise Refused(f"input is not JSON: {e}") from None
            if settings["code"] is None:
                # Code made by an earlier step: {"code": "...", "input": ...}.
                if not isinstance(data, dict) or not isinstance(data.get("code"), str):
                    raise Refused(
                        'no code: give config.code, or an input {"code": "...", "input": ...}'
                    )
                settings["code"], data = data["code"], data.get("input")
        except Refused as exc:
            raise Err(wit_types.PluginError_InvalidInput(str(exc))) from None

        stdout = Capture(settings["capture"])
        stderr = Capture(settings["capture"])
        result, failure = execute(settings["code"], data, stdout, stderr)
        result_text = "null"
        if failure is None:
            try:
                result_text = _dumps(
                    result,
                    ensure_ascii=False,
                    allow_nan=False,
                    default=json_default,
                    separators=(",", ":"),
                )
            except (TypeError, ValueError, RecursionError) as exc:
                failure = (
                    "invalid-input",
                    {"type": "ResultError", "message": f"result is not JSON: {exc}", "line": None},
                )
        error = None
        if failure is not None:
            case, error = failure
            if settings["on_error"] == "fail":
                kind = wit_types.PluginError_InvalidInput if case == "invalid-input" else wit_types.PluginError_Failed
                raise Err(kind(error_text(error)))
        streams = _dumps({"stdout": stdout.text(), "stderr": stderr.text()}, ensure_ascii=False)
        out = '{"result": ' + result_text + ", " + streams[1:-1]
        if error is not None:
            out += ', "error": ' + _dumps(error, ensure_ascii=False)
        return out + "}"
