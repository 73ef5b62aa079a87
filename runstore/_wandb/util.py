"""wandb.util: the few helpers training libraries call."""

from __future__ import annotations

import importlib
import secrets
import string
from typing import Any

from runstore._errors import Error


def get_module(name: str, required: Any = None, lazy: bool = True) -> Any:
    """The module `name`, or None when it cannot be imported (an Error naming `required`
    when that is given)."""
    try:
        return importlib.import_module(name)
    except Exception:
        if required:
            raise Error(required if isinstance(required, str) else
                        f"{name} is required but cannot be imported") from None
        return None


def generate_id(length: int = 8) -> str:
    """A random run id: `length` characters of [a-z0-9], as wandb makes them."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def is_numpy_array(obj: Any) -> bool:
    return type(obj).__module__ == "numpy" and type(obj).__name__ == "ndarray"


def json_friendly(obj: Any) -> tuple[Any, bool]:
    """(obj as plain Python, whether it changed): numpy/torch scalars and arrays."""
    if hasattr(obj, "tolist") and callable(obj.tolist):
        return obj.tolist(), True
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item(), True
    return obj, False
