"""runstore.init(): resolve the arguments, open the store, create the run."""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import (
    _branch,
    _code,
    _config_sources,
    _console,
    _lifecycle,
    _offline,
    _settings,
    _store,
    _system,
    _system_stats,
)
from ._config import Config
from ._errors import CommError, UsageError
from ._names import check_name, check_notes, check_path_part, check_tags, check_text, new_run_id
from ._run import Run
from ._writer import Writer, utc_now

DEFAULT_DIR = "runstore"
_MODES = {"online": "online", "run": "online", "disabled": "disabled",
          "offline": "offline", "dryrun": "offline"}
_REINIT = {True: "finish_previous", False: "return_previous", "default": "default",
           "finish_previous": "finish_previous", "return_previous": "return_previous",
           "create_new": "create_new"}
_ANONYMOUS = ("never", "allow", "must")


def in_notebook() -> bool:
    """True inside a Jupyter (IPython kernel) session."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = getattr(ipython, "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


def _say(settings: _settings.Settings, message: str) -> None:
    if not (settings.silent or settings.quiet):
        print(f"runstore: {message}", file=sys.stderr)


def init(
    entity: str | None = None,
    project: str | None = None,
    dir: str | os.PathLike | None = None,
    id: str | None = None,
    name: str | None = None,
    notes: str | None = None,
    tags: Sequence[str] | None = None,
    config: Any = None,
    config_exclude_keys: list[str] | None = None,
    config_include_keys: list[str] | None = None,
    allow_val_change: bool | None = None,
    group: str | None = None,
    job_type: str | None = None,
    mode: str | None = None,
    force: bool | None = None,
    anonymous: str | None = None,
    reinit: bool | str | None = None,
    resume: bool | str | None = None,
    resume_from: str | None = None,
    fork_from: str | None = None,
    save_code: bool | None = None,
    tensorboard: bool | None = None,
    sync_tensorboard: bool | None = None,
    monitor_gym: bool | None = None,
    settings: _settings.Settings | dict[str, Any] | None = None,
    magic: Any = None,
) -> Run:
    """Start a run, stored in `<dir>/runstore.db`; the arguments are wandb.init()'s."""
    s = _settings.resolve(
        {
            "entity": entity, "project": project,
            "root_dir": os.fspath(dir) if dir is not None else None,
            "run_id": id, "run_name": name, "run_notes": notes,
            "run_tags": tags, "run_group": group, "run_job_type": job_type,
            "mode": mode, "reinit": reinit, "anonymous": anonymous,
            "resume": resume,
            "resume_from": resume_from, "fork_from": fork_from,
            "save_code": save_code, "allow_val_change": allow_val_change,
            "sync_tensorboard": sync_tensorboard or tensorboard or None,
        },
        settings,
    )
    mode_name = _MODES.get(s.mode)
    if mode_name is None:
        raise UsageError(f"mode={s.mode!r} is not one of 'online', 'offline', 'disabled'")
    branching = [n for n in ("resume", "resume_from", "fork_from")
                 if getattr(s, n) not in (None, False)]
    if len(branching) > 1:
        raise UsageError(f"{branching[0]} and {branching[1]} are mutually exclusive; "
                         "pass only one of resume, resume_from and fork_from")
    resume_mode = _branch.resume_mode(s.resume)
    if mode_name == "offline" and (s.resume_from or s.fork_from):
        raise UsageError("resume_from and fork_from need the store that holds the source run; "
                         "use mode='online' for them")
    if mode_name == "offline" and resume_mode is not None:
        warnings.warn("runstore: resume is ignored offline (an offline run is a store of its "
                      "own); starting a new run", UserWarning, stacklevel=2)
        resume_mode = None
    if s.anonymous is not None and s.anonymous not in _ANONYMOUS:
        raise UsageError(f"anonymous={s.anonymous!r} is not one of {', '.join(_ANONYMOUS)}")
    reinit_mode = _REINIT.get(s.reinit if s.reinit is not None else "default")
    if reinit_mode is None:
        raise UsageError(f"reinit={s.reinit!r} is not one of True, False, "
                         "'default', 'finish_previous', 'return_previous', 'create_new'")
    if reinit_mode == "default":
        reinit_mode = "finish_previous" if in_notebook() else "return_previous"
    if tensorboard:
        warnings.warn("runstore: tensorboard=True is deprecated; use sync_tensorboard=True",
                      FutureWarning, stacklevel=2)
    if magic is not None and not _warned_magic:
        _warn_magic()

    previous = _lifecycle.global_run()
    if previous is not None and reinit_mode == "return_previous":
        _say(s, f"a run is already active ({previous.name}); returning it "
                "(pass reinit='finish_previous' to start a new one)")
        return previous
    cwd = Path.cwd()
    defaults, explicit = _config_sources.build(
        config, config_include_keys, config_exclude_keys, s.config_paths, cwd
    )
    allow_change = s.allow_val_change if s.allow_val_change is not None else in_notebook()
    # Explicit config overrides config-defaults.yaml, as wandb does.
    initial_config = Config().checked({**defaults, **explicit})
    repo_root = Path(s.git_root) if s.git_root else _system.find_git_root(cwd)
    identity = _identity(s, repo_root)
    # Only now, with the arguments checked, may the previous run end.
    if reinit_mode == "finish_previous":
        for run in _lifecycle.active_runs():
            run.finish()

    if mode_name == "disabled":
        run = Run(identity={**identity, "name": identity["name"] or f"dummy-{identity['id']}"},
                  settings=s, dir=None, allow_val_change=allow_change)
        run.config.load(initial_config)
        _lifecycle.activate(run, make_global=reinit_mode != "create_new")
        return run

    root = Path(s.root_dir or DEFAULT_DIR).expanduser().resolve()
    facts = _system.process_facts(host=s.host, program=s.program)
    now = utc_now()
    resume_file = None
    if mode_name == "online":
        try:
            conn, opened, resume_file = _open_online(
                root, s, resume_mode, identity, initial_config, facts, now, allow_change)
        except CommError as exc:
            if force:
                raise
            warnings.warn(f"runstore: {exc}; logging this run offline instead (merge it later "
                          "with `runstore sync`, or pass force=True to make this an error)",
                          UserWarning, stacklevel=2)
            mode_name = "offline"
    if mode_name == "offline":
        conn, path = _open_offline(root, identity["id"])
        root = path.parent
        opened = _branch.create(conn, identity, initial_config, facts, now)
    git_root = None if s.disable_git else repo_root
    if s.save_code and not s.disable_code:
        with _store.transaction(conn):
            for file_path, kind, content in _code.code_files(facts["program"], git_root, cwd,
                                                             with_diff=not s.disable_git):
                _store.save_file(conn, opened.run_key, file_path, kind, content, now)
    identity, run_key = opened.identity, opened.run_key
    max_points = None if s.log_queue_size is None else max(16, int(s.log_queue_size))
    run = Run(
        identity=identity, settings=s, dir=str(root), allow_val_change=allow_change,
        offline=mode_name == "offline",
        writer_factory=lambda heartbeat: Writer(conn, run_key, heartbeat, max_points,
                                                path=root / _store.STORE_FILENAME,
                                                run_id=identity["id"]),
        starting_step=opened.starting_step, runtime_offset=opened.runtime_offset,
        resumed=opened.resumed, resume_file=resume_file,
    )
    run.config.load(opened.config)
    for definition in opened.metric_definitions:
        run.define_metric(**definition)
    if opened.summary is not None:
        run.summary.restore(opened.aggregates, opened.summary)
    if git_root is not None:
        thread = threading.Thread(
            target=lambda: run.queue_run_fields(_system.git_facts(git_root, s.git_remote)),
            name="runstore-git", daemon=True,
        )
        thread.start()
        run.add_background(thread)
    _lifecycle.activate(run, make_global=reinit_mode != "create_new")
    how = "resumed" if opened.resumed else ("forked" if s.fork_from else "started")
    where = (f"offline to {root} (merge it into a store with: runstore sync {root})"
             if run.offline else f"to {root / _store.STORE_FILENAME}")
    _say(s, f"run {identity['name']} ({identity['project']}/{identity['id']}) {how}, "
            f"logging {where}")
    _start_extras(run, s, root, make_global=reinit_mode != "create_new")
    if s.sync_tensorboard:
        from . import _tensorboard

        stop_tensorboard = _tensorboard.start(run)  # None, after a warning, without writers
        if stop_tensorboard is not None:
            run.add_closer(stop_tensorboard)
    if monitor_gym:
        from . import _gym

        stop_gym = _gym.monitor(run)  # None, after a warning, without gymnasium
        if stop_gym is not None:
            run.add_closer(stop_gym)
    return run


def _start_extras(run: Run, s: _settings.Settings, root: Path, make_global: bool) -> None:
    """Console capture (for the process's main run) and the system monitor."""
    writer = run.writer
    if make_global and s.console not in ("off", None):
        capture = _console.Capture(writer.put_console)
        run.add_closer(capture.stop)
    if not s.disable_stats:
        monitor = _system_stats.start(writer.put_system, s.stats_sampling_interval, str(root))
        if monitor is not None:
            run.add_closer(monitor.stop)


def _open_online(
    root: Path, s: _settings.Settings, resume_mode: str | None, identity: dict[str, Any],
    config: dict[str, Any], facts: dict[str, Any], now: str, allow_change: bool,
) -> tuple[sqlite3.Connection, _branch.Opened, Path | None]:
    """Open the store and create, resume, rewind or fork the run row in it.

    Any failure to write the store is a CommError; argument errors stay UsageErrors.
    """
    path = root / _store.STORE_FILENAME
    conn = _store.connect(path)
    if resume_mode == "auto":
        # The run a crashed or failed process left behind in this directory.
        recorded = _branch.read_resume_file(root)
        if recorded is not None and s.run_id is not None and recorded != s.run_id:
            warnings.warn(f"runstore: ignoring run id {recorded!r} from {_branch.RESUME_FILE} "
                          f"because id={s.run_id!r} was given", UserWarning, stacklevel=3)
        elif recorded is not None:
            identity = {**identity, "id": recorded}
    try:
        if s.resume_from is not None:
            opened = _branch.rewind(conn, s.resume_from, identity, config, facts, now,
                                    allow_change, id_given=s.run_id is not None)
        elif s.fork_from is not None:
            opened = _branch.fork(conn, s.fork_from, identity, config, facts, now)
        elif resume_mode is not None:
            opened = _branch.resume(conn, resume_mode, identity, config, facts, now,
                                    allow_change)
        else:
            opened = _branch.create(conn, identity, config, facts, now)
    except sqlite3.Error as exc:
        conn.close()
        raise CommError(f"cannot write the store {path}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    resume_file = None
    if resume_mode == "auto":
        try:
            resume_file = _branch.write_resume_file(root, opened.identity["id"])
        except OSError as exc:
            warnings.warn(f"runstore: cannot record the run for resume='auto': {exc}",
                          UserWarning, stacklevel=3)
    return conn, opened, resume_file


def _open_offline(root: Path, run_id: str) -> tuple[sqlite3.Connection, Path]:
    """A self-contained store for one offline run (see _offline)."""
    path = _offline.new_offline_store(root, run_id)
    return _store.connect(path), path


_warned_magic = False


def _warn_magic() -> None:
    global _warned_magic
    _warned_magic = True
    warnings.warn("runstore: magic= does nothing (wandb removed it)", UserWarning, stacklevel=3)


def _identity(s: _settings.Settings, repo_root: Path | None) -> dict[str, Any]:
    entity = "anonymous" if s.anonymous == "must" else (s.entity or _system.os_user())
    check_path_part("entity", entity)
    project = s.project or _infer_project(repo_root, s)
    check_path_part("project", project)
    run_id = s.run_id if s.run_id is not None else new_run_id()
    check_path_part("run id", run_id, max_len=64)
    # No name (None or "", as in wandb) means one is generated; any other must be a name.
    unnamed = s.run_name is None or (isinstance(s.run_name, str) and not s.run_name)
    return {
        "entity": entity, "project": project, "id": run_id,
        "name": None if unnamed else check_name(s.run_name),
        "notes": check_notes(s.run_notes),
        "tags": check_tags(s.run_tags), "run_group": check_text("group", s.run_group),
        "job_type": check_text("job_type", s.run_job_type),
    }


def _infer_project(repo_root: Path | None, s: _settings.Settings) -> str:
    """The git repository's name, else the program's file stem, else "uncategorized"."""
    if repo_root is not None:
        return repo_root.name
    program = s.program or (None if in_notebook() else _system.program_path())
    if program:
        return Path(program).stem
    return "uncategorized"
