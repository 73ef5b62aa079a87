"""sync_tensorboard=True: scalars written to TensorBoard are also logged to the run.

`start(run)` patches tensorboardX's and (if torch is installed) torch's `SummaryWriter`
at the class level: `add_scalar(tag, value, global_step)` logs `{tag: value}` to the
run, `add_scalars(main, {tag: value}, step)` logs `main/tag`, `add_text(tag, text, step)`
logs the text, and `__init__` notes every writer made during the run. The function it
returns unpatches and stores the event files those writers produced with the run, as
`tensorboard/<path>` files of kind "tensorboard". While several runs sync, scalars go
to the newest one (the patch rules are _patching's).

Steps, as wandb does them. wandb never drops TensorBoard data: its sync
(wandb/integration/tensorboard/log.py `_log`, fed by wandb/sdk/internal/tb_watcher.py)
merges each event into the current history row with commit=False, records the event's
step in the row as `global_step`, and starts a new row only when the step goes up; so a
scalar whose TensorBoard step is older than the run's lands in a row of its own, and
`_step` counts rows. runstore keeps every value the same way, with one change so charts
read as TensorBoard's: while the TensorBoard step goes forward it is the run's step.

- Every synced row carries `global_step`, the TensorBoard step of its values.
- A TensorBoard step ahead of the run's step is logged at that step (values of the same
  step share a row).
- A TensorBoard step the run has passed (CleanRL's evaluation at steps 0..9 after
  training), or a tag written again at a step it already has, goes to the run's next row,
  never dropped. A scalar without a step joins the current row unless its tag is there.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import UsageError
from .._values import warn_user
from ._patching import ClassPatches, Method

if TYPE_CHECKING:
    from .._run import Run

# (distribution to look for, module, class)
_WRITER_CLASSES = (
    ("tensorboardX", "tensorboardX.writer", "SummaryWriter"),
    ("torch", "torch.utils.tensorboard.writer", "SummaryWriter"),
)
# A file written this long before the run started may still hold the run's events
# (coarse file system clocks).
_MTIME_SLACK_S = 2.0

_local = threading.local()


class _Sync:
    """One run's side of the patch: the writers it saw and where they write."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.started = time.time()
        self.writers: weakref.WeakSet[Any] = weakref.WeakSet()
        self.logdirs: set[str] = set()
        self.lock = threading.Lock()
        # The row synced scalars last went to: its run step, TensorBoard step and tags.
        self.row_step: int | None = None
        self.row_global: int | None = None
        self.row_tags: set[str] = set()

    def target(self, step: int | None, tags: set[str]) -> int:
        """The run step scalars of TensorBoard step `step` (None: none given) go to."""
        current = self.run.step
        ours = self.row_step == current  # the run's pending row is the one we last wrote
        if step is not None and step > current:
            return step
        if ours and not (tags & self.row_tags) and self._fits(step, current):
            return current
        return current + 1 if ours else current

    def _fits(self, step: int | None, at: int) -> bool:
        """Can values of TensorBoard step `step` join our row at run step `at`?"""
        if step is None or step == self.row_global:
            return True
        return self.row_global is None and step == at  # a row of values given no step

    def wrote(self, target: int, step: int | None, tags: set[str]) -> None:
        if target == self.row_step and self._fits(step, target):
            self.row_tags |= tags
            if step is not None:
                self.row_global = step
        else:
            self.row_tags = set(tags)
            self.row_global = step
        self.row_step = target

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


_patches: ClassPatches[_Sync] = ClassPatches()


def start(run: Run) -> Callable[[], None] | None:
    """Sync TensorBoard scalars into `run`; returns the function that stops it."""
    classes = writer_classes()
    if not classes:
        warn_user("runstore: sync_tensorboard needs tensorboardX or torch's "
                  "torch.utils.tensorboard (pip install 'runstore[tensorboard]'); "
                  "nothing is synced")
        return None
    sync = _Sync(run)
    _patches.add(sync, [(cls, name, _wrapper(rows)) for cls in classes
                        for name, rows in (("__init__", None), ("add_scalar", _scalar_row),
                                           ("add_scalars", _scalars_row),
                                           ("add_text", _text_row))
                        if hasattr(cls, name)])
    return lambda: _stop(sync)


def _stop(sync: _Sync) -> None:
    _patches.remove(sync)
    writer = sync.run._writer
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
        events: Any = getattr(file_writer, "event_writer", None)
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


def _text_row(tag: str, text_string: Any, global_step: Any = None, *_: Any,
              **__: Any) -> tuple[dict[str, Any], Any]:
    return {tag: str(text_string)}, global_step


Rows = Callable[..., tuple[dict[str, Any], Any]]


def _wrapper(rows: Rows | None) -> Callable[[Method, Callable[[], _Sync | None]], Method]:
    """How to wrap a writer method: `original`, then its scalars (read from the call's
    arguments by `rows`) to the syncing run, but not from nested patched calls."""
    def wrap(original: Method, serving: Callable[[], _Sync | None]) -> Method:
        def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
            outer = not getattr(_local, "busy", False)
            _local.busy = True
            try:
                result = original(self, *args, **kwargs)
            finally:
                if outer:
                    _local.busy = False
            sync = serving() if outer else None
            if sync is not None:
                _forward(sync, self, rows, args, kwargs)
            return result

        return patched

    return wrap


def _forward(sync: _Sync, writer: Any, rows: Rows | None, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> None:
    """Note the writer and log what it wrote to the syncing run; a problem is a warning,
    never an exception."""
    run, row = sync.run, dict[str, Any]()
    try:
        sync.see(writer)
        if rows is None:
            return
        row, step = rows(*args, **kwargs)
        if step is not None:
            try:
                step = int(step)  # as TensorBoard stores it
            except (TypeError, ValueError):
                step = None
        if step is not None and step < 0:
            step = None
        tags = set(row)
        with sync.lock:  # the rule is the module docstring's
            target = sync.target(step, tags)
            run.log(row if step is None else {**row, "global_step": step}, step=target)
            sync.wrote(target, step, tags)
    except UsageError:  # the run is finishing
        pass
    except Exception as exc:  # never break the training loop
        warnings.warn(f"runstore: could not log TensorBoard scalars {list(row)} to run "
                      f"{run.id}: {exc!r}", RuntimeWarning, stacklevel=3)


def is_patched(cls: type) -> bool:
    """True while `cls.add_scalar` is runstore's."""
    return _patches.is_ours(getattr(cls, "add_scalar", None))
