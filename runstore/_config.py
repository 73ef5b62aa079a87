"""run.config: a dict with attribute access whose every change is persisted."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._errors import UsageError
from ._mapping import DictView
from ._names import check_text
from ._values import Unstorable, json_text, plain, warn

MAX_VALUE_BYTES = 10 * 1024 * 1024


def _other(value: Any) -> Any:
    """A config value of no JSON kind: paths as text, anything else as its str()."""
    if not isinstance(value, pathlib.PurePath):
        warn(f"config value {value!r} of type {type(value).__name__} is stored as its str()")
    return str(value)


def check_key(key: Any) -> str:
    """Validate a config key; leading/trailing '-' are stripped as wandb does (--lr -> lr)."""
    if not isinstance(key, str):
        raise UsageError(f"config keys must be strings, got {key!r} ({type(key).__name__})")
    key = check_text("config key", key).strip("-")  # key is a str: so is the result
    if not key:
        raise UsageError("config keys must not be empty")
    if "." in key:
        raise UsageError(
            f"config key {key!r} contains '.'; use '_' or '-' instead, or nest a dict "
            "(dots are how nested keys are shown)"
        )
    return key


class Config(DictView):
    """Hyperparameters of a run. Changing a value already set raises UsageError
    unless `allow_val_change` (per call or set at init)."""

    def __init__(
        self,
        allow_val_change: bool = False,
        on_change: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        object.__setattr__(self, "_data", {})
        object.__setattr__(self, "_allow_val_change", allow_val_change)
        object.__setattr__(self, "_on_change", on_change)
        object.__setattr__(self, "_locked", {})

    def lock(self, keys: Iterable[str], by: str) -> None:
        """Keep `keys` as they are: later updates are ignored with a warning (wandb locks
        a sweep's parameters this way)."""
        self._locked.update(dict.fromkeys(keys, by))

    def checked(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """`data` validated and made JSON-friendly, without storing it."""
        return self._staged(data, allow=True)

    def load(self, items: Mapping[str, Any]) -> None:
        """Set already-checked items that are already in the store (no persist)."""
        self._data.update(items)

    def _set_many(self, data: Mapping[str, Any], allow_val_change: bool | None) -> None:
        allow = self._allow_val_change if allow_val_change is None else allow_val_change
        staged = self._staged(data, allow)
        if not staged:
            return
        self._data.update(staged)
        if self._on_change is not None:
            self._on_change(dict(self._data))

    def _staged(self, data: Mapping[str, Any], allow: bool) -> dict[str, Any]:
        staged = {}
        for raw_key, raw_value in data.items():
            key = check_key(raw_key)
            if key in self._locked:
                if self._data.get(key) != raw_value:
                    warn(f"config item {key!r} was locked by {self._locked[key]!r}; "
                         "the update was ignored")
                continue
            try:
                value = plain(raw_value, _other)
            except Unstorable as exc:
                warn(f"config value for {key!r} cannot be stored ({exc}); skipped")
                continue
            try:
                json_text(value)
            except (TypeError, ValueError) as exc:
                raise UsageError(f"config value for {key!r} cannot be stored: {exc}") from None
            size = len(json.dumps(value, default=str))
            if size > MAX_VALUE_BYTES:
                raise UsageError(
                    f"config value for {key!r} is {size} bytes, over the 10 MB limit; "
                    "log large data as metrics or files instead"
                )
            if key in self._data and self._data[key] != value and not allow:
                raise UsageError(
                    f"attempted to change config value of {key!r} from {self._data[key]!r} "
                    f"to {value!r}; pass allow_val_change=True to config.update() "
                    "(or to init()) if this is intended"
                )
            staged[key] = value
        return staged

    def update(self, d: Mapping[str, Any] | Any, allow_val_change: bool | None = None) -> None:
        """Add or change keys (a dict, or an object such as argparse.Namespace)."""
        if not isinstance(d, Mapping):
            d = vars(d)
        self._set_many(d, allow_val_change)

    def setdefaults(self, d: Mapping[str, Any]) -> None:
        """Set keys that are not set yet."""
        self._set_many({k: v for k, v in d.items() if check_key(k) not in self._data}, False)

    def __setitem__(self, key: str, value: Any) -> None:
        self._set_many({key: value}, None)

    def __setattr__(self, key: str, value: Any) -> None:
        self._set_many({key: value}, None)
