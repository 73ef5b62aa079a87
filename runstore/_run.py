"""The Run: what init() returns and the training loop talks to."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import _lifecycle
from ._config import Config
from ._errors import UsageError
from ._fast import new_cursor
from ._handoff import Handoff
from ._names import check_name, check_notes, check_tags
from ._run_compat import RunLibraryMethods
from ._summary import Summary, check_metric_name, parse_ops
from ._values import INT64_MAX, FloatKeys, flatten, plain_numbers, utc_now, warn

if TYPE_CHECKING:
    from ._branch import Identity
    from ._settings import Settings


class Metric:
    """What define_metric() returns."""

    def __init__(self, name: str, summary: str | None, step_metric: str | None) -> None:
        self.name = name
        self.summary = summary
        self.step_metric = step_metric

    def __repr__(self) -> str:
        return f"Metric(name={self.name!r}, summary={self.summary!r})"


class Run(RunLibraryMethods):
    """One experiment run. Create it with `runstore.init()`."""

    def __init__(
        self,
        *,
        identity: Identity,
        settings: Settings,
        dir: str | None,
        allow_val_change: bool,
        writer_factory: Callable[[float], Handoff] | None = None,
        starting_step: int = 0,
        runtime_offset: float = 0.0,
        resumed: bool = False,
        resume_file: Path | None = None,
        offline: bool = False,
    ) -> None:
        self._entity = identity.entity
        self._project = identity.project
        self._id = identity.id
        assert identity.name is not None, "init() names every run it makes"
        self._name = identity.name
        self._notes = identity.notes
        self._tags = identity.tags
        self._group = identity.group
        self._job_type = identity.job_type
        self._settings = settings
        self._dir = dir
        self._resumed = resumed
        self._resume_file = resume_file
        self._offline = offline
        self._lock = threading.Lock()
        self._finished = False
        # One dict for the run's life (cleared, never replaced): the compiled log() looks
        # at it to leave a pending row to the Python path.
        self._pending: dict[str, Any] = {}
        self._pending_ts: float | None = None
        self._t0 = time.time()
        self._runtime_offset = runtime_offset
        self._sync = bool(settings.sync_writes)
        self._metric_definitions: dict[str, dict[str, Any]] = {}
        self._writer: Handoff | None = None
        self._background: list[threading.Thread] = []
        self._closers: list[Callable[[], None]] = []
        self.config = Config(allow_val_change, on_change=self._config_changed)
        self.summary = Summary(on_change=self._summary_changed, lock=lambda: self._lock)
        if writer_factory is not None:
            self._writer = writer_factory(self._t0)
        # The step lives in the hand-off's Cursor, which the compiled log() moves too.
        self._cursor = self._writer.cursor if self._writer is not None else new_cursor()
        self._step = starting_step
        if self._writer is not None and not self._sync:
            # run.log becomes the compiled log(): its common call (a row of floats) is one
            # C call, no Python frame; it calls this class's log() for every other.
            compiled = self._writer.bind_cursor(self.log, self._lock, self._t0,
                                                self._runtime_offset, self._pending,
                                                self.summary)
            if compiled is not None:
                self.__dict__["log"] = compiled

    # -- identity -------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._id

    @property
    def entity(self) -> str:
        return self._entity

    @property
    def project(self) -> str:
        return self._project

    @property
    def path(self) -> str:
        """entity/project/id, as Api().run() takes it."""
        return f"{self._entity}/{self._project}/{self._id}"

    @property
    def dir(self) -> str | None:
        """The store directory (None for a disabled run)."""
        return self._dir

    @property
    def group(self) -> str | None:
        return self._group

    @property
    def job_type(self) -> str | None:
        return self._job_type

    @property
    def resumed(self) -> bool:
        return self._resumed

    @property
    def disabled(self) -> bool:
        return self._writer is None

    @property
    def offline(self) -> bool:
        """True for a run written to its own offline store (merge it with `runstore sync`)."""
        return self._offline

    @property
    def url(self) -> None:
        return None

    @property
    def start_time(self) -> float:
        return self._t0

    @property
    def step(self) -> int:
        """The step the next log() without `step` writes to."""
        return self._cursor.step

    @property
    def _step(self) -> int:
        return self._cursor.step

    @_step.setter
    def _step(self, value: int) -> None:
        self._cursor.step = value

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._check_open("set name")
        try:  # the rule is _names.check_name's; a training loop gets a warning, not a crash
            self._name = check_name(value)
        except UsageError as exc:
            warn(f"{exc}; name not updated")
            return
        self._persist({"name": self._name}, wait=True)

    @property
    def notes(self) -> str | None:
        return self._notes

    @notes.setter
    def notes(self, value: str | None) -> None:
        self._check_open("set notes")
        try:
            self._notes = check_notes(value)
        except UsageError as exc:
            warn(f"{exc}; notes not updated")
            return
        self._persist({"notes": self._notes}, wait=True)

    @property
    def tags(self) -> tuple[str, ...]:
        return self._tags

    @tags.setter
    def tags(self, value: Any) -> None:
        self._check_open("set tags")
        try:
            tags = check_tags(value)
        except UsageError as exc:
            warn(f"{exc}; tags not updated")
            return
        self._tags = tags
        self._persist({"tags": list(tags)}, wait=True)

    def __repr__(self) -> str:
        return f"<runstore.Run {self.path} ({self._name})>"

    # -- persistence -------------------------------------------------------------------

    def _check_open(self, what: str) -> None:
        if self._finished:
            raise UsageError(f"run {self._id} is finished; cannot {what}")

    def _persist(self, fields: dict[str, Any], wait: bool = False) -> None:
        if self._writer is not None:
            self._writer.put_run(fields)
            if wait:
                self._writer.flush()

    def _config_changed(self, items: dict[str, Any]) -> None:
        self._persist({"config": items}, wait=True)

    def _summary_changed(self, operation: str, args: tuple) -> None:
        # The writer replays the change on the summary it commits, in order with the
        # rows, so the stored summary never describes history that is not stored.
        if self._writer is not None:
            self._writer.put_summary(operation, args)

    def runtime(self) -> float:
        return time.time() - self._t0 + self._runtime_offset

    # -- plumbing for init() and the integrations (private: dir(run) is wandb-shaped) --

    def _add_background(self, thread: threading.Thread) -> None:
        """A helper thread (e.g. reading git facts) that finish() waits for."""
        self._background.append(thread)

    def _add_closer(self, close: Callable[[], None]) -> None:
        """Something to stop when the run finishes, before its last write (console
        capture, the system monitor, an integration)."""
        self._closers.append(close)

    def _queue_run_fields(self, fields: dict[str, Any]) -> None:
        """Persist run columns from a helper thread."""
        self._persist(fields)

    # -- logging -------------------------------------------------------------------------

    def log(
        self, data: Mapping[str, Any], step: int | None = None, commit: bool | None = None
    ) -> None:
        """Log a dict of metrics at the current step (wandb's step rules)."""
        if self._finished:
            raise UsageError(f"run {self._id} is finished; the call to log() was ignored")
        if type(data) is not dict and not isinstance(data, Mapping):
            warn(f"log() takes a dict, got {type(data).__name__}; nothing logged")
            return
        try:
            # A copy (a C-level clone, cheap), checked and handed over whole: another
            # thread may change the caller's dict while this one waits for the lock, and
            # a packed row's values are stored under the keys plain_numbers checked.
            if type(data) is dict:
                data = data.copy()
            plain = type(data) is dict and plain_numbers(data)
            row: dict[str, Any] = data if plain else flatten(data)  # type: ignore[assignment]
            if self._step_syncs:  # define_metric(step_metric=..., step_sync=True)
                row, synced = self._sync_steps(row)
                plain = plain and (not synced or plain_numbers(row))
        except RuntimeError as exc:  # another thread changed the dict while it was read
            warn(f"the dict given to log() changed while it was read ({exc}); nothing logged")
            return
        with self._lock:
            if step is None and commit is None and not self._pending:
                # The common case, one whole row per call: no pending row to merge. The
                # step moves first, as in the compiled log(): a warning made an error on
                # the way (a writer's notice) is raised after the row is handed over,
                # and the next row must not take its step.
                step = self._step
                self._step = step + 1
                if row:
                    self._emit(step, time.time(), row, plain)
            elif step is not None:
                if isinstance(step, bool) or not hasattr(step, "__index__") or step < 0:
                    warn(f"step must be a non-negative integer, got {step!r}; nothing logged")
                    return
                step = int(step)
                if step > INT64_MAX:
                    warn(f"step {step} is beyond the largest step the store can hold "
                         f"({INT64_MAX}); nothing logged")
                    return
                if step < self._step:
                    warn(f"tried to log to step {step}, less than the current step "
                         f"{self._step}; steps must increase, so this data is ignored")
                    return
                if step > self._step:
                    if self._pending:
                        self._commit()
                    self._step = step
                self._merge(row)
                if commit:
                    self._commit()
            else:
                self._merge(row)
                if commit is None or commit:
                    self._commit()

    def _merge(self, row: dict[str, Any]) -> None:
        if self._pending_ts is None:
            self._pending_ts = time.time()
        self._pending.update(row)

    def _commit(self) -> None:
        step = self._step
        self._step = step + 1  # first, as in log()
        try:
            if self._pending:
                self._emit(step, self._pending_ts or time.time(), self._pending)
        finally:  # _emit copied it (the summary) or encoded it (the hand-off)
            self._pending.clear()
            self._pending_ts = None

    def _emit(self, step: int, ts: float, row: dict[str, Any],
              plain: bool | FloatKeys = False) -> None:
        """A committed row: into the summary and onto the writer's queue (`plain`: what
        plain_numbers said of it)."""
        if step > INT64_MAX:
            warn(f"step {step} is beyond the largest step the store can hold ({INT64_MAX}); "
                 "nothing logged")
            return
        self.summary.add_row(row, plain)
        writer = self._writer
        if writer is not None:
            runtime = ts - self._t0 + self._runtime_offset
            if type(plain) is tuple:  # floats alone: packed, not pickled
                writer.put_floats(step, ts, runtime, row, plain)
            else:
                writer.put((step, ts, runtime, row, bool(plain)))
            if self._sync:
                writer.flush()

    def define_metric(
        self,
        name: str,
        step_metric: str | None = None,
        step_sync: bool | None = None,
        hidden: bool | None = None,
        summary: str | None = None,
        goal: str | None = None,
        overwrite: bool | None = None,
    ) -> Metric:
        """Choose what the summary keeps for `name` (or a glob like "val/*"):
        summary="min", "max", "mean", "first", "last", a comma list, or "none"."""
        name = check_metric_name(name)
        if goal is not None and goal not in ("minimize", "maximize"):
            raise UsageError(f"define_metric goal must be 'minimize' or 'maximize', got {goal!r}")
        ops = parse_ops(summary, goal)
        self.summary.add_rule(name, ops)
        definition = {"name": name, "summary": summary, "goal": goal,
                      "step_metric": step_metric, "hidden": hidden}
        self._metric_definitions[name] = {k: v for k, v in definition.items() if v is not None}
        self._add_step_sync(name, step_metric, step_sync)
        self._persist({"metric_definitions": list(self._metric_definitions.values())})
        return Metric(name, summary, step_metric)

    # -- the end -----------------------------------------------------------------------

    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        """End the run: state finished (exit code 0) or failed, everything flushed."""
        with self._lock:
            if self._finished:
                return
            if self._pending:
                self._commit()
            self._cursor.open = False
            self._finished = True
        code = 0 if exit_code is None else int(exit_code)
        for close in self._closers:
            close()
        for thread in self._background:
            thread.join()
        if self._writer is not None:
            self._writer.put_run({
                "state": "finished" if code == 0 else "failed",
                "exit_code": code,
                "finished_at": utc_now(),
                "runtime": self.runtime(),
            })
            self._writer.close()
        if code == 0 and self._resume_file is not None:
            # Only a run that failed or crashed is picked up by the next resume="auto".
            self._resume_file.unlink(missing_ok=True)
        _lifecycle.deactivate(self)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: Any) -> Literal[False]:
        if exc_type is None:
            code = 0
        elif issubclass(exc_type, KeyboardInterrupt):
            code = 255
        else:
            code = 1
        self.finish(exit_code=code)
        return False
