"""JSON as the store keeps it: strict (SQLite's json functions must parse it).

Non-finite floats, which strict JSON cannot hold, are written as the object
{"__float__": "NaN"} (or "Infinity", "-Infinity") and read back as floats, so
they cannot be confused with the strings "NaN" or "Infinity" (a user key "__float__",
or one starting with a backslash, is stored with one more leading backslash, so
nothing is ambiguous). Text that SQLite
cannot store as UTF-8 (lone surrogates) is written with \\u escapes.
"""

from __future__ import annotations

import json
import math
from typing import Any

FLOAT_TAG = "__float__"
_TOKENS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _escaped(obj: Any) -> Any:
    """Non-finite floats as tagged objects; a user key that could be mistaken for the
    tag (or that starts with a backslash) gets one more leading backslash."""
    if isinstance(obj, float) and not math.isfinite(obj):
        token = "NaN" if obj != obj else ("Infinity" if obj > 0 else "-Infinity")
        return {FLOAT_TAG: token}
    if isinstance(obj, dict):
        return {("\\" + k if isinstance(k, str) and (k == FLOAT_TAG or k.startswith("\\"))
                 else k): _escaped(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_escaped(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    """Encode for a JSON column."""
    try:
        text = json.dumps(obj, allow_nan=False, ensure_ascii=False)
    except ValueError:
        text = None
    if text is None or FLOAT_TAG in text or '"\\\\' in text:
        obj = _escaped(obj)
        text = json.dumps(obj, allow_nan=False, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(obj, allow_nan=False, ensure_ascii=True)
    return text


def _restore(obj: Any) -> Any:
    if isinstance(obj, dict):
        if len(obj) == 1 and isinstance(obj.get(FLOAT_TAG), str) and obj[FLOAT_TAG] in _TOKENS:
            return _TOKENS[obj[FLOAT_TAG]]
        return {(k[1:] if k.startswith("\\") else k): _restore(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_restore(v) for v in obj]
    return obj


def loads(text: str | None, *, restore: bool = False) -> Any:
    """Decode a JSON column; `restore` turns tagged non-finite floats back into floats."""
    if text is None:
        return None
    obj = json.loads(text)
    return _restore(obj) if restore else obj


def decode_json(text: str | None) -> Any:
    """A JSON column as it was logged: `loads` with tagged non-finite floats restored."""
    return loads(text, restore=True)
