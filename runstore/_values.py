"""What log() and run.summary accept: nested dicts flattened, values in storable form.

A stored value keeps its kind, as wandb keeps it: a float (NaN and ±inf included),
an int (numpy/torch integer scalars too; the full int64 range, larger ones exactly
as JSON), a bool, or a `JsonText` (strings, small lists and dicts, None). Anything
else is a warning and a skipped value: logging never raises in the training loop.
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from operator import is_
from typing import Any

MAX_JSON_CHARS = 100_000
# What run.summary keeps of one value: longer values stay whole in the history, but
# the summary is rewritten with every commit, so one huge value must not ride along.
SUMMARY_MAX_CHARS = 10_000
SUMMARY_PREVIEW_CHARS = 200
# Nesting deeper than this (or a dict that contains itself) is refused, not recursed.
MAX_DEPTH = 100
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
RESERVED_KEYS = frozenset({"_step", "_runtime", "_timestamp"})


class Unstorable(ValueError):
    """A value that has no stored form (the message says why)."""


class JsonText(str):
    """A non-numeric value, already JSON-encoded."""

    __slots__ = ()

    def decode(self) -> Any:
        return json.loads(self)


class MediaText(JsonText):
    """A logged image, video or other file: its JSON description is the stored value;
    the bytes go to the store's blobs (deduplicated) under `path`."""

    __slots__ = ("blob", "path")
    blob: bytes
    path: str

    def __new__(cls, description: str, blob: bytes, path: str) -> MediaText:
        text = super().__new__(cls, description)
        text.blob = blob
        text.path = path
        return text

    def __reduce__(self) -> tuple[type[MediaText], tuple[str, bytes, str]]:
        # Pickled on its way to the writer process; str's own reduce drops the slots.
        return MediaText, (str(self), self.blob, self.path)


def utc_now() -> str:
    """Now as ISO-8601 UTC text, as the store keeps times."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def warn(message: str) -> None:
    """A logging problem: said once per call site, never raised."""
    warnings.warn(f"runstore: {message}", RuntimeWarning, stacklevel=4)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """A warning about the user's call into runstore (init(), say), shown at the line of
    that call however deep in runstore it is given: no stacklevel to count by hand."""
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def _scalar(value: Any) -> Any:
    """numpy and torch scalars (and one-element arrays/tensors) as Python numbers."""
    item = getattr(value, "item", None)
    if item is None:
        return None
    try:
        size = getattr(value, "size", 1)
        size = size() if callable(size) else size
        if getattr(value, "numel", None) is not None:
            size = value.numel()
        if size != 1:
            return None
        return item()
    except Exception:
        return None


def storable_text(text: str) -> bool:
    """False for text SQLite cannot hold as UTF-8 (lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_text(value: Any) -> str:
    """`value` as JSON text SQLite can store and that reads back equal; ValueError if
    there is none (a pair of lone surrogates would read back as one character)."""
    text = json.dumps(value, ensure_ascii=False)
    if storable_text(text):
        return text
    # Lone surrogates (e.g. file names decoded with surrogateescape) are kept as
    # \u escapes, which read back to the same string unless two of them form a pair.
    text = json.dumps(value, ensure_ascii=True)
    if json.loads(text) != value:
        raise ValueError("it holds unpaired surrogates that would not read back the same")
    return text


def _int(value: int) -> int | JsonText:
    """An int as SQLite holds it: itself within int64, else exactly, as JSON."""
    return value if INT64_MIN <= value <= INT64_MAX else JsonText(str(value))


def _number(value: Any) -> float | int | bool | JsonText | None:
    """A number of any kind (Python, numpy, torch) as a float, int or bool; None if
    `value` is not one."""
    t = type(value)
    if t is float or t is bool:
        return value
    if t is int:
        return _int(value)
    if isinstance(value, float):  # numpy.float64 and other float subclasses
        return float(value)
    if isinstance(value, int):  # IntEnum and other int subclasses (bool is handled)
        return _int(int(value))
    scalar = _scalar(value)
    if type(scalar) in (float, int, bool):  # numpy/torch scalars, one-element arrays
        return _number(scalar)
    return None


def convert(key: str, value: Any) -> float | int | bool | JsonText | None:
    """One value in stored form, or None (after a warning) if it cannot be stored."""
    number = _number(value)
    if number is not None:
        return number
    if value is None or isinstance(value, str):
        try:
            return JsonText(json_text(value))
        except ValueError as exc:
            warn(f"value for {key!r} could not be stored ({exc}); skipped")
            return None
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        try:
            text = json_text(plain(value))
        except (TypeError, ValueError) as exc:
            warn(f"value for {key!r} could not be stored ({exc}); skipped")
            return None
        if len(text) > MAX_JSON_CHARS:
            warn(f"value for {key!r} is too large to store ({len(text)} chars "
                 f"> {MAX_JSON_CHARS}); skipped")
            return None
        return JsonText(text)
    if getattr(type(value), "_runstore_media", False):
        try:
            return value.stored(key)
        except Exception as exc:  # a bad image must not stop training
            warn(f"{type(value).__name__} for {key!r} could not be stored ({exc}); skipped")
            return None
    warn(f"value for {key!r} of type {type(value).__name__} cannot be logged; skipped "
         "(log numbers, strings, or small lists)")
    return None


def _refuse(value: Any) -> Any:
    raise Unstorable(f"a {type(value).__name__} has no stored form")


def plain(value: Any, other: Callable[[Any], Any] = _refuse, _depth: int = 0) -> Any:
    """`value` as JSON-friendly Python: numbers by kind (numpy/torch scalars too),
    str, None, dicts (str keys) and lists (tuples, sets, arrays). Anything else is
    `other(value)`; nesting deeper than MAX_DEPTH (or a container holding itself)
    is Unstorable, never a RecursionError."""
    if value is None or isinstance(value, str):
        return value
    number = _number(value)
    if number is not None:
        return number.decode() if isinstance(number, JsonText) else number
    if _depth >= MAX_DEPTH:
        raise Unstorable(f"it is nested deeper than {MAX_DEPTH} levels (or contains itself)")
    if isinstance(value, Mapping):
        return {str(k): plain(v, other, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v, other, _depth + 1) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays, torch tensors
        return plain(value.tolist(), other, _depth + 1)
    return other(value)


def summary_value(value: Any) -> Any:
    """A value assigned to run.summary in the form it is kept (Unstorable if none):
    converted now, in the caller's thread, so the writer never meets it raw."""
    value = plain(value)
    text = json_text(value)  # a summary value must survive the JSON column
    return value if len(text) <= SUMMARY_MAX_CHARS else truncated(text)


def truncated(text: str) -> dict[str, Any]:
    """What the summary keeps of a value whose JSON is longer than SUMMARY_MAX_CHARS
    (the summary is rewritten with every commit; the history keeps logged values whole)."""
    return {"truncated": text[:SUMMARY_PREVIEW_CHARS], "chars": len(text)}


_NUMBERS = {float, int}
_STR_ONLY = {str}
# The keys of the last row whose keys passed plain_numbers' checks (exact str, none
# reserved), and as many `float`s. A training loop logs the same key objects step after
# step, so a row whose keys are these very objects, in order, needs no check of them:
# by identity, never by equality, since a str subclass equal to a checked key must
# still be refused.
FloatKeys = tuple[tuple[Any, ...], tuple[type, ...]]
_checked: FloatKeys = ((object(),), (float,))


def plain_numbers(data: dict) -> bool | FloatKeys:
    """Truthy for the common payload, a flat dict of str keys to floats and int64 ints,
    which needs no flattening or conversion (checked with C-level operations). A row of
    floats alone gets (its keys in order, their types): the same pair object for every
    row with the very same key objects, so the hand-off can pack it without a pickle."""
    global _checked
    checked = _checked  # one read: another thread may replace it meanwhile
    keys, floats = checked
    if len(data) != len(keys) or not all(map(is_, data, keys)):
        if set(map(type, data)) != _STR_ONLY or not RESERVED_KEYS.isdisjoint(data):
            return False
        keys = tuple(data)
        checked = _checked = keys, (float,) * len(keys)
        floats = checked[1]
    if tuple(map(type, data.values())) == floats:  # types compare by identity
        return checked
    kinds = set(map(type, data.values()))
    if not kinds <= _NUMBERS:
        return False
    ints = [v for v in data.values() if type(v) is int]
    return not ints or (INT64_MIN <= min(ints) and max(ints) <= INT64_MAX)


def flatten(
    data: Mapping[str, Any], prefix: str = "", out: dict | None = None, depth: int = 0
) -> dict:
    """Nested dicts as dotted keys ({"a": {"b": 1}} -> {"a.b": 1}), values converted."""
    if out is None:
        out = {}
    if depth >= MAX_DEPTH:
        where = prefix[:-1] if len(prefix) <= 60 else prefix[:60] + "…"
        warn(f"value for {where!r} is nested deeper than {MAX_DEPTH} levels (or "
             "contains itself); skipped")
        return out
    for key, value in data.items():
        if type(key) is not str or not storable_text(key):
            warn(f"metric key {key!r} is not a string of storable text; skipped")
            continue
        if not prefix and key in RESERVED_KEYS:
            continue  # runstore stamps these itself, as wandb does
        name = prefix + key if prefix else key
        if type(value) is float:
            out[name] = value
        elif isinstance(value, Mapping):
            flatten(value, name + ".", out, depth + 1)
        else:
            converted = convert(name, value)
            if converted is not None:
                out[name] = converted
    return out


def is_number(value: Any) -> bool:
    """True for a stored numeric value that aggregates (min/max/mean) can use
    (floats other than NaN, and ints; not bools)."""
    t = type(value)
    return t is int or (t is float and not math.isnan(value))
