"""Settings: resolved in one place, afresh at each init().

Precedence, highest first: init() arguments, `settings=`, RUNSTORE_* variables,
WANDB_* variables, defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import UsageError
from ._names import parse_int64
from ._store import STORE_FILENAME

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
    setting = _FIELDS[field]
    if setting.env is None:
        return None
    for prefix in ("RUNSTORE_", "WANDB_"):
        name = prefix + setting.env
        if name in os.environ:
            return _parse_env(name, os.environ[name], setting.kind)
    return None


class _Field:
    """One field of Settings: its default, the suffix of the RUNSTORE_/WANDB_ variable
    that sets it (None: no variable) and how that variable's text is read."""

    __slots__ = ("default", "env", "kind", "name")

    def __init__(self, default: Any, env: str | None, kind: str) -> None:
        self.default, self.env, self.kind, self.name = default, env, kind, ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, settings: Settings | None, owner: type | None = None) -> Any:
        if settings is None:
            return self
        return settings._values.get(self.name, self.default)


def _field(default: Any, env: str | None, kind: str) -> Any:
    """A field of Settings; its annotation there is its type for readers and tools."""
    return _Field(default, env, kind)


class Settings:
    """Advanced settings for init(), as `runstore.Settings(...)` or a plain dict.

    Unknown names are a UsageError. Unset fields fall back to the environment
    and then to defaults when init() resolves them.
    """

    __slots__ = ("_frozen", "_values")
    _frozen: bool  # resolve() freezes what it returns
    _values: dict[str, Any]  # the fields set, none of them None

    root_dir: str | None = _field(None, "DIR", "str")
    mode: str = _field("online", "MODE", "str")
    project: str | None = _field(None, "PROJECT", "str")
    entity: str | None = _field(None, "ENTITY", "str")
    run_id: str | None = _field(None, "RUN_ID", "str")
    run_name: str | None = _field(None, "NAME", "str")
    run_notes: str | None = _field(None, "NOTES", "str")
    run_tags: Sequence[str] | None = _field(None, "TAGS", "list")
    run_group: str | None = _field(None, "RUN_GROUP", "str")
    run_job_type: str | None = _field(None, "JOB_TYPE", "str")
    resume: bool | str | None = _field(None, "RESUME", "str")
    resume_from: str | None = _field(None, "RESUME_FROM", "str")
    fork_from: str | None = _field(None, "FORK_FROM", "str")
    reinit: bool | str | None = _field(None, "REINIT", "str")
    anonymous: str | None = _field(None, "ANONYMOUS", "str")
    allow_val_change: bool | None = _field(None, None, "bool")
    save_code: bool | None = _field(None, "SAVE_CODE", "bool")
    disable_code: bool = _field(False, "DISABLE_CODE", "bool")
    disable_git: bool = _field(False, "DISABLE_GIT", "bool")
    git_root: str | None = _field(None, "GIT_ROOT", "str")
    git_remote: str = _field("origin", "GIT_REMOTE", "str")
    config_paths: Sequence[str] | None = _field(None, "CONFIG_PATHS", "list")
    program: str | None = _field(None, "PROGRAM", "str")
    host: str | None = _field(None, "HOST", "str")
    silent: bool = _field(False, "SILENT", "bool")
    quiet: bool = _field(False, "QUIET", "bool")
    console: str = _field("auto", "CONSOLE", "str")
    sync_tensorboard: bool | None = _field(None, None, "bool")
    disable_stats: bool = _field(False, "DISABLE_STATS", "bool")
    stats_sampling_interval: float = _field(10.0, "STATS_SAMPLING_INTERVAL", "float")
    # runstore's own: make log() wait until its row is committed.
    sync_writes: bool = _field(False, "SYNC_WRITES", "bool")
    # runstore's own: about how many logged values may wait for the writer before log()
    # waits (the hand-off ring's size, ~24 bytes a value; unset: 8 MiB). What waits is
    # already safe from the training process's death; this only bounds memory.
    log_queue_size: int | None = _field(None, "LOG_QUEUE_SIZE", "int")
    # runstore's own: the writer runs in a process of its own, which drains what log()
    # handed over even after the training process dies. Off (or where no process can
    # start): a thread of the training process, and the next init() on the store
    # replays what a killed process left.
    writer_process: bool = _field(True, "WRITER_PROCESS", "bool")
    # runstore's own (docs/SCALE-OUT.md): publish the run into this inbox directory (on a
    # shared filesystem) every publish_interval seconds and at finish, for a hub's
    # `runstore sync --watch`; the run itself is kept in a store of its own, as offline.
    publish_dir: str | None = _field(None, "PUBLISH_DIR", "str")
    publish_interval: float = _field(30.0, "PUBLISH_INTERVAL", "float")
    # runstore's own: SQLite must not be written over NFS, SMB, Lustre or GPFS, so a store
    # there is refused and the run logs offline to local disk instead; True: the user
    # knows this filesystem locks correctly.
    allow_network_filesystem: bool = _field(False, "ALLOW_NETWORK_FILESYSTEM", "bool")

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

    if not TYPE_CHECKING:  # for tools, a name that is not a field above is an error

        def __getattr__(self, name: str) -> Any:
            raise AttributeError(f"runstore.Settings has no field {name!r}")

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


# Every field, in the order it is declared (and resolved).
_FIELDS = {name: f for name, f in vars(Settings).items() if isinstance(f, _Field)}


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


# Where a store lives when neither dir= nor RUNSTORE_DIR (WANDB_DIR) says: ./runstore.
DEFAULT_DIR = "runstore"


def store_path(dir: str | os.PathLike[str] | None = None) -> Path:
    """The store file of `dir`: `<dir>/runstore.db`, `dir` defaulting as init()'s does
    (RUNSTORE_DIR, WANDB_DIR, ./runstore). A path to a `.db` file is the store itself."""
    if dir is not None:
        path = Path(dir).expanduser()
        if path.suffix == ".db" and not path.is_dir():
            return path.resolve()
    root = dir if dir is not None else (env_value("root_dir") or DEFAULT_DIR)
    return Path(root).expanduser().resolve() / STORE_FILENAME
