"""The Run methods that training libraries call beyond logging (wandb's names).

`Run` inherits them from `RunLibraryMethods`: saving files (`save`), artifacts
(`log_artifact`, `use_artifact`, `log_model`, `use_model`, `log_code`), model watching
(`watch`, `unwatch`), `define_metric(step_metric=, step_sync=True)`'s filling in of the
step metric, and `_label` (wandb's telemetry labels, kept in memory only). They live here
so `_run.py` stays about the run's life and its history.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import UsageError
from ._values import warn

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._handoff import Handoff
    from ._settings import Settings

_POLICIES = ("live", "now", "end")
# Directories log_code never descends into.
_CODE_SKIP = {".git", "wandb", ".wandb", "runstore", "__pycache__", ".venv", "venv",
              "node_modules", ".tox", "artifacts"}


class RunLibraryMethods:
    """Mixed into runstore.Run; see the module docstring."""

    _cursor: Any  # Run's (runstore._fast)
    _step_syncs: tuple[tuple[str, str], ...] = ()  # (glob, step metric), step_sync=True
    _step_values: dict[str, Any]
    _saved: dict[str, tuple[Path, str, str | None]]  # stored path -> (file, policy, sha)
    _labels: dict[str, Any]
    _watchers: list[Any]

    if TYPE_CHECKING:  # what Run defines and these methods use
        _writer: Handoff | None
        _finished: bool
        _closers: list[Callable[[], None]]
        _settings: Settings

        @property
        def id(self) -> str: ...
        @property
        def project(self) -> str: ...
        @property
        def dir(self) -> str | None: ...
        def _check_open(self, what: str) -> None: ...

    # -- define_metric(step_sync=True) ----------------------------------------------

    def _add_step_sync(self, name: str, step_metric: str | None, step_sync: bool | None) -> None:
        """Note define_metric(name, step_metric=..., step_sync=...): rows with a key
        matching `name` but no `step_metric` get its last logged value (wandb's
        step_sync, on by default when step_metric is given)."""
        if step_metric is None or step_sync is False:
            return
        if "_step_values" not in self.__dict__:
            self._step_values = {}
        rules = [r for r in self._step_syncs if r[0] != name]
        self._step_syncs = (*rules, (name, step_metric))
        self._cursor.open = False  # rows get step values: Run.log's Python path

    def _sync_steps(self, row: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """`row` with the step metrics it lacks filled in; and whether it changed."""
        values = self._step_values
        for _, metric in self._step_syncs:
            if metric in row:
                values[metric] = row[metric]
        added = {}
        for pattern, metric in self._step_syncs:
            if metric in row or metric in added or metric not in values:
                continue
            if any(key != metric and _matches(pattern, key) for key in row):
                added[metric] = values[metric]
        if not added:
            return row, False
        return {**row, **added}, True

    # -- files ------------------------------------------------------------------------

    def save(self, glob_str: str | os.PathLike | None = None,
             base_path: str | os.PathLike | None = None, policy: str = "live") -> Any:
        """Keep files with the run, in the store (deduplicated by content): the files
        `glob_str` matches now, stored as their path relative to `base_path` (default:
        as given when relative; the file's folder and name when absolute). policy "now"
        stores them now, "end" at finish(), "live" now and again at finish() if they
        changed. Returns the stored paths (False for a disabled run). With no argument,
        commits everything logged so far."""
        writer = self._writer
        if glob_str is None:
            if writer is not None and not self._finished:
                writer.flush()
            return False
        if policy not in _POLICIES:
            raise UsageError(f"save policy must be one of {', '.join(_POLICIES)}, got {policy!r}")
        self._check_open("save files")
        if writer is None:  # a disabled run keeps nothing
            return False
        pattern = os.fspath(glob_str)
        if "://" in pattern:
            raise UsageError(f"save() takes a local path or glob, not a URL: {pattern!r}")
        if base_path is not None:
            base = Path(base_path)
        elif Path(pattern).is_absolute():
            base = Path(pattern).parent.parent  # keep the file's folder, as wandb does
        else:
            base = None
        import glob as globlib

        matches = sorted(p for p in globlib.glob(pattern, recursive=True) if Path(p).is_file())
        if not matches:
            warn(f"save({os.fspath(glob_str)!r}) matched no file; nothing saved")
            return []
        if "_saved" not in self.__dict__:
            self._saved = {}
            self._closers.append(self._save_at_end)
        stored = []
        for match in matches:
            path = Path(match)
            try:
                rel = path.resolve().relative_to(base.resolve()) if base else path
            except ValueError:
                rel = Path(path.name)
            name = rel.as_posix().lstrip("/")
            if name.startswith("../") or not name:
                name = path.name
            sha = None
            if policy != "end":
                sha = self._store_saved(name, path)
            self._saved[name] = (path, policy, sha)
            stored.append(name)
        return stored

    def _store_saved(self, name: str, path: Path) -> str | None:
        import hashlib

        try:
            content = path.read_bytes()
        except OSError as exc:
            warn(f"could not save {path}: {exc}")
            return None
        writer = self._writer
        assert writer is not None  # save() stores nothing for a disabled run
        writer.put_file(name, "save", content)
        return hashlib.sha256(content).hexdigest()

    def _save_at_end(self) -> None:
        """At finish: store files saved with policy "end", and "live" ones that changed."""
        import hashlib

        for name, (path, policy, sha) in list(self._saved.items()):
            if policy == "now" or not path.is_file():
                continue
            if policy == "live" and sha is not None:
                try:
                    if hashlib.sha256(path.read_bytes()).hexdigest() == sha:
                        continue
                except OSError:
                    continue
            self._store_saved(name, path)

    # -- artifacts ----------------------------------------------------------------------

    def log_artifact(self, artifact_or_path: Any, name: str | None = None,
                     type: str | None = None, aliases: list[str] | None = None,
                     tags: list[str] | None = None) -> Any:
        """Store an Artifact (or a file or directory path) as its next version, logged by
        this run; `latest` and `aliases` point at it. Returns the Artifact."""
        from . import _artifacts

        self._check_open("log an artifact")
        return _artifacts.log_artifact(self, artifact_or_path, name=name, type=type,
                                       aliases=aliases, tags=tags)

    def use_artifact(self, artifact_or_name: Any, type: str | None = None,
                     aliases: list[str] | None = None, use_as: str | None = None) -> Any:
        """The stored artifact version "name[:alias or vN]" (or an Artifact logged
        before), recorded as used by this run; call .download() on it for its files."""
        from . import _artifacts

        self._check_open("use an artifact")
        return _artifacts.use_artifact(self, artifact_or_name, type=type, aliases=aliases,
                                       use_as=use_as)

    def log_model(self, path: str | os.PathLike, name: str | None = None,
                  aliases: list[str] | None = None) -> Any:
        """Log a model file or directory as an artifact of type "model"."""
        return self.log_artifact(path, name=name or f"run-{self.id}-model", type="model",
                                 aliases=aliases)

    def use_model(self, name: str) -> str:
        """Download a model artifact; returns the local path."""
        return self.use_artifact(name).download()

    def log_code(self, root: str | os.PathLike | None = ".", name: str | None = None,
                 include_fn: Any = None, exclude_fn: Any = None) -> Any:
        """Keep the source files under `root` (".py" files unless include_fn says
        otherwise) as an artifact of type "code" named source-<name>; returns it."""
        from ._artifacts import Artifact

        self._check_open("log code")
        base = Path(root or ".").resolve()
        include = include_fn or (lambda path, root=None: path.endswith(".py"))
        exclude = exclude_fn or (lambda path, root=None: False)
        program = Path(getattr(self._settings, "program", None) or "code").stem
        artifact = Artifact(f"source-{name or f'{self.project}-{program}'}", "code")
        count = 0
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d not in _CODE_SKIP
                                 and not d.startswith(".") and d != Path(self.dir or "").name)
            for filename in sorted(filenames):
                path = os.path.join(dirpath, filename)
                if _call(include, path, str(base)) and not _call(exclude, path, str(base)):
                    artifact.add_file(path, name=os.path.relpath(path, base))
                    count += 1
        if not count:
            warn(f"log_code found no files to keep under {base}")
            return None
        return self.log_artifact(artifact)

    # -- watch ------------------------------------------------------------------------

    def watch(self, models: Any, criterion: Any = None, log: str | None = "gradients",
              log_freq: int = 1000, idx: int | None = None, log_graph: bool = False) -> None:
        """Log histograms of a torch model's gradients and/or parameters every
        `log_freq` backward / forward passes (log="gradients", "parameters", "all" or
        None), as `gradients/<name>` and `parameters/<name>`."""
        from . import _watch

        self._check_open("watch a model")
        if "_watchers" not in self.__dict__:
            self._watchers = []
            self._closers.append(self.unwatch)  # no hook outlives the run
        self._watchers.extend(_watch.watch(self, models, log, log_freq))

    def unwatch(self, models: Any = None) -> None:
        """Stop watching `models` (default: all)."""
        from . import _watch

        self._watchers = _watch.unwatch(self.__dict__.get("_watchers", []), models)

    # -- odds and ends ----------------------------------------------------------------

    def _label(self, code: str | None = None, repo: str | None = None,
               code_version: str | None = None, **kwargs: Any) -> None:
        """wandb's telemetry labels (which integration made the run): kept in memory."""
        if "_labels" not in self.__dict__:
            self._labels = {}
        self._labels.update({k: v for k, v in dict(code=code, repo=repo,
                                                   code_version=code_version,
                                                   **kwargs).items() if v is not None})

    def alert(self, title: str, text: str, level: Any = None, wait_duration: Any = None) -> None:
        """wandb sends an alert; runstore prints it (there is no one else to tell)."""
        warn(f"alert: {title}: {text}")

    def mark_preempting(self) -> None:
        """Nothing to do locally: a run that dies is resumable anyway."""


def _matches(pattern: str, key: str) -> bool:
    return key == pattern or (pattern.endswith("*") and fnmatch.fnmatchcase(key, pattern))


def _call(fn: Any, path: str, root: str) -> bool:
    try:
        return bool(fn(path, root))
    except TypeError:
        return bool(fn(path))
