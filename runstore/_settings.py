"""Settings: resolved in one place, afresh at each init().

Precedence, highest first: init() arguments, `settings=`, RUNSTORE_* variables,
WANDB_* variables, defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ._errors import UsageError
from ._names import parse_int64

# name: (default, environment suffix or None, kind)
_FIELDS: dict[str, tuple[Any, str | None, str]] = {
    "root_dir": (None, "DIR", "str"),
    "mode": ("online", "MODE", "str"),
    "project": (None, "PROJECT", "str"),
    "entity": (None, "ENTITY", "str"),
    "run_id": (None, "RUN_ID", "str"),
    "run_name": (None, "NAME", "str"),
    "run_notes": (None, "NOTES", "str"),
    "run_tags": (None, "TAGS", "list"),
    "run_group": (None, "RUN_GROUP", "str"),
    "run_job_type": (None, "JOB_TYPE", "str"),
    "resume": (None, "RESUME", "str"),
    "resume_from": (None, "RESUME_FROM", "str"),
    "fork_from": (None, "FORK_FROM", "str"),
    "reinit": (None, "REINIT", "str"),
    "anonymous": (None, "ANONYMOUS", "str"),
    "allow_val_change": (None, None, "bool"),
    "save_code": (None, "SAVE_CODE", "bool"),
    "disable_code": (False, "DISABLE_CODE", "bool"),
    "disable_git": (False, "DISABLE_GIT", "bool"),
    "git_root": (None, "GIT_ROOT", "str"),
    "git_remote": ("origin", "GIT_REMOTE", "str"),
    "config_paths": (None, "CONFIG_PATHS", "list"),
    "program": (None, "PROGRAM", "str"),
    "host": (None, "HOST", "str"),
    "silent": (False, "SILENT", "bool"),
    "quiet": (False, "QUIET", "bool"),
    "console": ("auto", "CONSOLE", "str"),
    "sync_tensorboard": (None, None, "bool"),
    "disable_stats": (False, "DISABLE_STATS", "bool"),
    "stats_sampling_interval": (10.0, "STATS_SAMPLING_INTERVAL", "float"),
    # runstore's own: make log() wait until its row is committed.
    "sync_writes": (False, "SYNC_WRITES", "bool"),
    # runstore's own: how many logged values (not rows) may wait for the writer before
    # log() waits. Unset, the bound follows the writer's pace (about 0.15 s of writing,
    # at most 40,000 values), which bounds what a SIGKILL can lose.
    "log_queue_size": (None, "LOG_QUEUE_SIZE", "int"),
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse_env(name: str, text: str, kind: str) -> Any:
    if kind == "str":
        return text
    if kind == "list":
        return [part.strip() for part in text.split(",") if part.strip()]
    if kind == "bool":
        if text.strip().lower() in _TRUE:
            return True
        if text.strip().lower() in _FALSE:
            return False
        raise UsageError(
            f"environment variable {name}={text!r} is not a boolean; use true or false"
        )
    if kind == "int":
        number = parse_int64(text.strip())
        if number is None:
            raise UsageError(f"environment variable {name}={text!r} is not a whole number "
                             "in the digits 0-9")
        return number
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"environment variable {name}={text!r} is not a number") from None


def env_value(field: str) -> Any:
    """A setting from RUNSTORE_<X>, else WANDB_<X>, else None."""
    _, suffix, kind = _FIELDS[field]
    if suffix is None:
        return None
    for prefix in ("RUNSTORE_", "WANDB_"):
        name = prefix + suffix
        if name in os.environ:
            return _parse_env(name, os.environ[name], kind)
    return None


class Settings:
    """Advanced settings for init(), as `runstore.Settings(...)` or a plain dict.

    Unknown names are a UsageError. Unset fields fall back to the environment
    and then to defaults when init() resolves them.
    """

    __slots__ = ("_frozen", "_values")

    def __init__(self, **kwargs: Any) -> None:
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "_frozen", False)
        self.update(kwargs)

    def update(self, values: Mapping[str, Any]) -> None:
        """Set several fields."""
        for key, value in values.items():
            setattr(self, key, value)

    def is_set(self, name: str) -> bool:
        return name in self._values

    def __getattr__(self, name: str) -> Any:
        if name not in _FIELDS:
            raise AttributeError(f"runstore.Settings has no field {name!r}")
        return self._values.get(name, _FIELDS[name][0])

    def __setattr__(self, name: str, value: Any) -> None:
        if self._frozen:
            raise UsageError("these settings are resolved and frozen; pass new ones to init()")
        if name not in _FIELDS:
            raise UsageError(
                f"unknown setting {name!r}; known settings: {', '.join(sorted(_FIELDS))}"
            )
        if value is not None:
            self._values[name] = value

    def __repr__(self) -> str:
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in sorted(self._values.items()))})"


def resolve(
    args: Mapping[str, Any], settings: Settings | Mapping[str, Any] | None
) -> Settings:
    """All settings for one init(): arguments > settings > RUNSTORE_* > WANDB_* > defaults."""
    if settings is None:
        given = Settings()
    elif isinstance(settings, Settings):
        given = settings
    elif isinstance(settings, Mapping):
        given = Settings(**settings)
    else:
        raise UsageError(
            f"settings must be a runstore.Settings or a dict, not {type(settings).__name__}"
        )
    out = Settings()
    for name in _FIELDS:
        value = args.get(name)
        if value is None and given.is_set(name):
            value = getattr(given, name)
        if value is None:
            value = env_value(name)
        if value is not None:
            setattr(out, name, value)
    object.__setattr__(out, "_frozen", True)
    return out


Settings.__module__ = "runstore"
