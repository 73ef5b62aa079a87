"""sync_tensorboard=True: scalars written to TensorBoard are also logged to the run.

`start(run)` patches tensorboardX's and (if torch is installed) torch's `SummaryWriter`
at the class level: `add_scalar(tag, value, global_step)` becomes also
`run.log({tag: value}, step=global_step)`, `add_scalars(main, {tag: value}, step)` logs
`main/tag`, and `__init__` notes every writer made during the run. The function it
returns unpatches and stores the event files those writers produced with the run, as
`tensorboard/<path>` files of kind "tensorboard". While several runs sync, scalars go
to the newest one.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._errors import UsageError

# (distribution to look for, module, class)
_WRITER_CLASSES = (
    ("tensorboardX", "tensorboardX.writer", "SummaryWriter"),
    ("torch", "torch.utils.tensorboard.writer", "SummaryWriter"),
)
# A file written this long before the run started may still hold the run's events
# (coarse file system clocks).
_MTIME_SLACK_S = 2.0

_lock = threading.Lock()
_syncs: list[_Sync] = []  # the runs syncing, newest last
_patched: list[tuple[type, str, Any]] = []  # (class, name, what its __dict__ held)
_local = threading.local()


class _Sync:
    """One run's side of the patch: the writers it saw and where they write."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self.started = time.time()
        self.writers: weakref.WeakSet = weakref.WeakSet()
        self.logdirs: set[str] = set()
        self.warned_old_step = False

    def see(self, writer: Any) -> None:
        if writer in self.writers:
            return
        self.writers.add(writer)
        logdir = getattr(writer, "logdir", None) or getattr(writer, "log_dir", None)
        if logdir:
            self.logdirs.add(os.path.abspath(os.fspath(logdir)))

    def event_files(self) -> list[tuple[str, Path]]:
        """(path to store, file) of the event files under the writers' log dirs written
        while the run was active; paths are relative to the log dirs' common parent."""
        try:
            base = os.path.commonpath([os.path.dirname(d) for d in self.logdirs])
        except ValueError:  # no log dirs, or on different Windows drives
            base = None
        found: dict[Path, str] = {}
        for logdir in sorted(self.logdirs):
            for root, _, names in os.walk(logdir):
                for name in names:
                    path = Path(root, name)
                    if "tfevents" in name and path not in found and self._fresh(path):
                        found[path] = os.path.relpath(path, base or os.path.dirname(logdir))
        return sorted((Path(rel).as_posix(), path) for path, rel in found.items())

    def _fresh(self, path: Path) -> bool:
        try:
            return path.stat().st_mtime >= self.started - _MTIME_SLACK_S
        except OSError:
            return False


def writer_classes() -> list[type]:
    """The SummaryWriter classes that can be imported here."""
    classes = []
    for dist, module, name in _WRITER_CLASSES:
        if importlib.util.find_spec(dist) is None:
            continue
        try:
            classes.append(getattr(importlib.import_module(module), name))
        except Exception:  # e.g. torch without the tensorboard package
            continue
    return classes


def start(run: Any) -> Callable[[], None] | None:
    """Sync TensorBoard scalars into `run`; returns the function that stops it."""
    classes = writer_classes()
    if not classes:
        warnings.warn("runstore: sync_tensorboard needs tensorboardX or torch's "
                      "torch.utils.tensorboard (pip install 'runstore[tensorboard]'); "
                      "nothing is synced", UserWarning, stacklevel=3)
        return None
    sync = _Sync(run)
    with _lock:
        if not _syncs:
            _patch(classes)
        _syncs.append(sync)
    return lambda: _stop(sync)


def _stop(sync: _Sync) -> None:
    with _lock:
        if sync in _syncs:
            _syncs.remove(sync)
        if not _syncs:
            _unpatch()
    writer = sync.run.writer
    for summary_writer in list(sync.writers):
        _flush(summary_writer)
    if writer is None:
        return
    for name, path in sync.event_files():
        try:
            content = path.read_bytes()
        except OSError:
            continue
        writer.put_file(f"tensorboard/{name}", "tensorboard", content)


def _flush(summary_writer: Any) -> None:
    """Get a writer's events onto disk without closing it. tensorboardX hands events to
    a thread of its own; stopping that thread (as close() does) writes everything queued
    before it, and a fresh thread then carries on with the same queue and file."""
    for file_writer in list((getattr(summary_writer, "all_writers", None) or {}).values()):
        events = getattr(file_writer, "event_writer", None)
        worker = getattr(events, "_worker", None)
        if worker is None or getattr(events, "_closed", True):
            continue
        try:
            worker.stop()
            fresh = type(worker)(events._event_queue, events._ev_writer, worker._flush_secs)
            fresh.start()
            events._worker = fresh
        except Exception:  # another tensorboardX layout: flush() below is the best we have
            pass
    try:
        summary_writer.flush()
    except Exception:
        pass


# -- the patch ------------------------------------------------------------------------


def _scalar_row(tag: str, scalar_value: Any, global_step: Any = None, *_: Any,
                **__: Any) -> tuple[dict[str, Any], Any]:
    return {tag: scalar_value}, global_step


def _scalars_row(main_tag: str, tag_scalar_dict: Any, global_step: Any = None, *_: Any,
                 **__: Any) -> tuple[dict[str, Any], Any]:
    return {f"{main_tag}/{tag}": v for tag, v in tag_scalar_dict.items()}, global_step


def _wrap(original: Callable, rows: Callable | None) -> Callable:
    """`original`, then its scalars to the syncing run (not from nested patched calls)."""
    @functools.wraps(original)
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        outer = not getattr(_local, "busy", False)
        _local.busy = True
        try:
            result = original(self, *args, **kwargs)
        finally:
            if outer:
                _local.busy = False
        if outer and _syncs:
            _forward(self, rows, args, kwargs)
        return result

    patched._runstore_patch = True
    return patched


def _forward(writer: Any, rows: Callable | None, args: tuple, kwargs: dict) -> None:
    """Note the writer and log what it wrote (`rows` reads it from the call's arguments)
    to the newest syncing run; a problem is a warning, never an exception."""
    try:
        sync = _syncs[-1]
    except IndexError:
        return
    run, row = sync.run, {}
    try:
        sync.see(writer)
        if rows is None:
            return
        row, step = rows(*args, **kwargs)
        if step is None:
            run.log(row)
            return
        try:
            step = int(step)  # as TensorBoard stores it
        except (TypeError, ValueError):
            pass
        if isinstance(step, int) and 0 <= step < run.step:
            if not sync.warned_old_step:
                sync.warned_old_step = True
                warnings.warn(f"runstore: TensorBoard scalars {list(row)} at step {step} are "
                              f"older than run {run.id}'s step {run.step}; steps must not go "
                              "back, so they (and any later ones like them) are not logged to "
                              "the run", RuntimeWarning, stacklevel=3)
            return
        run.log(row, step=step)
    except UsageError:  # the run is finishing
        pass
    except Exception as exc:  # never break the training loop
        warnings.warn(f"runstore: could not log TensorBoard scalars {list(row)} to run "
                      f"{run.id}: {exc!r}", RuntimeWarning, stacklevel=3)


def _patch(classes: list[type]) -> None:
    for cls in classes:
        for name, rows in (("__init__", None), ("add_scalar", _scalar_row),
                           ("add_scalars", _scalars_row)):
            original = getattr(cls, name)
            if getattr(original, "_runstore_patch", False):
                continue
            _patched.append((cls, name, cls.__dict__.get(name)))
            setattr(cls, name, _wrap(original, rows))


def _unpatch() -> None:
    while _patched:
        cls, name, held = _patched.pop()
        if held is None:
            delattr(cls, name)
        else:
            setattr(cls, name, held)


def is_patched(cls: type) -> bool:
    """True while `cls.add_scalar` is runstore's."""
    return getattr(cls.add_scalar, "_runstore_patch", False)
