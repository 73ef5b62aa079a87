"""`wandb`, as runstore imitates it while RUNSTORE_AS_WANDB is on (see runstore._as_wandb).

This subpackage mirrors wandb's module paths (`wandb.sdk.lib.config_util`,
`wandb.wandb_run`, `wandb.integration.sb3`, ...) so that code written against wandb,
training libraries included, finds what it imports. Every name here is listed, with what
runstore does and how it differs from wandb, in docs/WANDB_COMPAT.md. Names wandb has and
runstore does not imitate raise AttributeError saying so.
"""

from __future__ import annotations

import sys
from typing import Any

import runstore as _runstore
from runstore import (
    Error,
    Histogram,
    Image,
    Run,
    Table,
    Video,
    define_metric,
    finish,
    log,
)
from runstore._artifacts import Artifact
from runstore._as_wandb import WANDB_VERSION

from . import errors, util
from . import wandb_run as wandb_run  # read as an attribute too: wandb.wandb_run.Run
from ._terminal import termerror, termlog, termwarn
from .apis import Api
from .sdk.wandb_settings import Settings, settings_for_runstore

__version__ = WANDB_VERSION

# The integrations wandb has patched in ("tensorboard", "keras", "gym"); some code reads it.
patched: dict[str, list[Any]] = {"tensorboard": [], "keras": [], "gym": []}

# These follow runstore's module globals (rebound by init() and finish()).
_FOLLOWED = ("run", "config", "summary")


def __getattr__(name: str) -> Any:
    if name in _FOLLOWED:
        return getattr(_runstore, name)
    raise AttributeError(
        f"runstore's wandb imitation (RUNSTORE_AS_WANDB) has no wandb.{name}; what it has "
        "is listed in docs/WANDB_COMPAT.md")


def init(*, settings: Any = None, **kwargs: Any) -> Run:
    """runstore.init (every argument of wandb.init, by keyword), taking wandb's settings:
    those runstore does not have are ignored, said once each."""
    return _runstore.init(settings=settings_for_runstore(settings), **kwargs)


def _current(what: str) -> Run:
    run = _runstore.run
    if run is None:
        raise Error(f"You must call wandb.init() before wandb.{what}()")
    return run


def save(glob_str: Any = None, base_path: Any = None, policy: str = "live") -> Any:
    """Keep files with the current run (see runstore.Run.save)."""
    return _current("save").save(glob_str, base_path=base_path, policy=policy)


def watch(models: Any, criterion: Any = None, log: str | None = "gradients",
          log_freq: int = 1000, idx: int | None = None, log_graph: bool = False) -> None:
    """Histograms of a torch model's gradients/parameters (see runstore.Run.watch)."""
    return _current("watch").watch(models, criterion=criterion, log=log, log_freq=log_freq,
                                   idx=idx, log_graph=log_graph)


def unwatch(models: Any = None) -> None:
    return _current("unwatch").unwatch(models)


def log_artifact(artifact_or_path: Any, name: str | None = None, type: str | None = None,
                 aliases: list[str] | None = None, tags: list[str] | None = None) -> Any:
    return _current("log_artifact").log_artifact(artifact_or_path, name=name, type=type,
                                                 aliases=aliases, tags=tags)


def use_artifact(artifact_or_name: Any, type: str | None = None,
                 aliases: list[str] | None = None, use_as: str | None = None) -> Any:
    return _current("use_artifact").use_artifact(artifact_or_name, type=type,
                                                 aliases=aliases, use_as=use_as)


def log_model(path: Any, name: str | None = None, aliases: list[str] | None = None) -> Any:
    return _current("log_model").log_model(path, name=name, aliases=aliases)


def use_model(name: str) -> str:
    return _current("use_model").use_model(name)


def log_code(root: Any = ".", name: str | None = None, include_fn: Any = None,
             exclude_fn: Any = None) -> Any:
    return _current("log_code").log_code(root, name=name, include_fn=include_fn,
                                         exclude_fn=exclude_fn)


def alert(title: str, text: str, level: Any = None, wait_duration: Any = None) -> None:
    return _current("alert").alert(title, text, level=level, wait_duration=wait_duration)


def mark_preempting() -> None:
    return _current("mark_preempting").mark_preempting()


_said_login = False


def login(anonymous: Any = None, key: str | None = None, relogin: bool | None = None,
          host: str | None = None, force: bool | None = None, timeout: Any = None,
          verify: bool = False, **_: Any) -> bool:
    """Nothing to log in to: runs are written to a local store. Says so once."""
    global _said_login
    if not _said_login:
        _said_login = True
        termlog("login() does nothing: runstore keeps runs in a local SQLite store "
                "(no account, no key)")
    return True


def setup(settings: Any = None) -> None:
    """wandb starts its service process here; runstore has none."""


def teardown(exit_code: int | None = None) -> None:
    """Finish the current run, if any (wandb also stops its service)."""
    finish(exit_code=exit_code)


def require(requirement: Any = None, experiment: Any = None) -> None:
    """wandb turns on optional features ("service", "core"); runstore has them all on."""


def _attach(attach_id: str | None = None, run_id: str | None = None, **_: Any) -> Any:
    """wandb attaches a second process to a run; runstore returns this process's run."""
    return _runstore.run


__all__ = [
    "Api", "Artifact", "Error", "Histogram", "Image", "Run", "Settings", "Table", "Video",
    "alert", "define_metric", "errors", "finish", "init", "log", "log_artifact",
    "log_code", "log_model", "login", "mark_preempting", "patched", "require", "save",
    "setup", "teardown", "termerror", "termlog", "termwarn", "unwatch", "use_artifact",
    "use_model", "util", "watch",
]

assert sys.modules.get("runstore") is _runstore
