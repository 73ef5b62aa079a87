"""What log() accepts: nested dicts flattened, values turned into storable form.

A stored value is either a float (numbers, bools, numpy/torch scalars, NaN,
±inf) or a `JsonText` (strings, small lists and dicts, None). Anything else is
a warning and a skipped value: logging never raises in the training loop.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from typing import Any

MAX_JSON_CHARS = 100_000
RESERVED_KEYS = frozenset({"_step", "_runtime", "_timestamp"})


class JsonText(str):
    """A non-numeric value, already JSON-encoded."""

    __slots__ = ()

    def decode(self) -> Any:
        return json.loads(self)


class MediaText(JsonText):
    """A logged image, video or other file: its JSON description is the stored value;
    the bytes go to the store's blobs (deduplicated) under `path`."""

    __slots__ = ("blob", "path")

    def __new__(cls, description: str, blob: bytes, path: str) -> MediaText:
        text = super().__new__(cls, description)
        text.blob = blob
        text.path = path
        return text


def warn(message: str) -> None:
    """A logging problem: said once per call site, never raised."""
    warnings.warn(f"runstore: {message}", RuntimeWarning, stacklevel=4)


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


def convert(key: str, value: Any) -> float | JsonText | None:
    """One value in stored form, or None (after a warning) if it cannot be stored."""
    t = type(value)
    if t is float:
        return value
    if t is bool:
        return float(value)
    if isinstance(value, (int, float)):  # also int/float subclasses, numpy float64
        try:
            return float(value)
        except OverflowError:  # an int beyond float range is kept exactly, as JSON
            return JsonText(str(int(value)))
    scalar = _scalar(value)
    if scalar is not None and isinstance(scalar, (int, float)):
        return float(scalar)
    if value is None or isinstance(value, str):
        try:
            return JsonText(json_text(value))
        except ValueError as exc:
            warn(f"value for {key!r} could not be stored ({exc}); skipped")
            return None
    if isinstance(value, (list, tuple)) or (scalar is None and hasattr(value, "tolist")):
        try:
            plain = value.tolist() if hasattr(value, "tolist") else list(value)
            text = json_text(plain)
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


_FLOAT_ONLY = {float}
_STR_ONLY = {str}


def plain_floats(data: dict) -> bool:
    """True for the common payload, a flat dict of str keys to floats, which needs no
    flattening or conversion (checked with C-level set operations)."""
    return (set(map(type, data.values())) == _FLOAT_ONLY
            and set(map(type, data)) == _STR_ONLY
            and RESERVED_KEYS.isdisjoint(data))


def flatten(data: Mapping[str, Any], prefix: str = "", out: dict | None = None) -> dict:
    """Nested dicts as dotted keys ({"a": {"b": 1}} -> {"a.b": 1.0}), values converted."""
    if out is None:
        out = {}
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
            flatten(value, name + ".", out)
        else:
            converted = convert(name, value)
            if converted is not None:
                out[name] = converted
    return out


def is_number(value: Any) -> bool:
    """True for a stored numeric value that aggregates (min/max/mean) can use."""
    return type(value) is float and not math.isnan(value)
