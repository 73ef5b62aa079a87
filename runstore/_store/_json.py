"""JSON as the store keeps it: strict (SQLite's json functions must parse it).

Non-finite floats, which strict JSON cannot hold, are written as the strings
"NaN", "Infinity" and "-Infinity" and read back as floats.
"""

from __future__ import annotations

import json
import math
from typing import Any

_TOKENS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return "NaN" if obj != obj else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    """Encode for a JSON column."""
    try:
        return json.dumps(obj, allow_nan=False, ensure_ascii=False)
    except ValueError:
        return json.dumps(_finite(obj), allow_nan=False, ensure_ascii=False)


def _restore(obj: Any) -> Any:
    if isinstance(obj, str):
        return _TOKENS.get(obj, obj)
    if isinstance(obj, dict):
        return {k: _restore(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_restore(v) for v in obj]
    return obj


def loads(text: str | None, *, restore: bool = False) -> Any:
    """Decode a JSON column; `restore` turns the non-finite tokens back into floats."""
    if text is None:
        return None
    obj = json.loads(text)
    return _restore(obj) if restore else obj
