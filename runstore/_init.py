"""runstore.init(): resolve the arguments, open the store, create the run.

init() reads as its steps: the modes asked for (`_modes`); the run's config and
identity; the store and the run's row in it, created, resumed, rewound or forked
(`_open`, which falls back to an offline store); the Run on that row (`_make_run`); and
what runs beside it until it finishes (`_start_background`: git facts, console capture,
system metrics and the integrations asked for).
"""

from __future__ import annotations

import importlib
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from . import (
    _branch,
    _code,
    _config_sources,
    _console,
    _filesystems,
    _lifecycle,
    _offline,
    _provenance,
    _ring,
    _settings,
    _store,
    _system_stats,
    _threads,
    _writer_process,
)
from ._branch import Identity
from ._config import Config
from ._errors import CommError, UsageError
from ._handoff import Handoff
from ._names import check_name, check_notes, check_path_part, check_tags, check_text, new_run_id
from ._run import Run
from ._values import utc_now, warn_user

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


class Modes(NamedTuple):
    """How init() was asked to run, settled."""

    mode: str  # "online", "offline" or "disabled"
    reinit: str  # "finish_previous", "return_previous" or "create_new"
    resume: str | None  # "auto", "allow", "must" or "never"; None: a new run


class _Opened(NamedTuple):
    """Where a run is written: the store's connection and directory, and the run's
    row opened in it."""

    conn: sqlite3.Connection
    root: Path
    row: _branch.Opened
    offline: bool = False
    resume_file: Path | None = None  # recorded for resume="auto"


def init(
    entity: str | None = None,
    project: str | None = None,
    dir: str | os.PathLike[str] | None = None,
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
    trial = _sweep_trial()
    if trial is not None:  # a sweep agent's run: its store, project and id, as in wandb
        for what, given, used in (("project", project, trial.project),
                                  ("entity", entity, trial.entity), ("id", id, trial.run_id)):
            if given is not None and given != used:
                warn_user(f"runstore: ignoring {what}={given!r}: this run is configuration "
                          f"{trial.seq} of sweep {trial.sweep_id} ({trial.project}/"
                          f"{trial.run_id})")
        project, entity, id, dir = trial.project, trial.entity, trial.run_id, trial.root
        resume = resume_from = fork_from = None
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
    modes = _modes(s)
    if trial is not None and modes.reinit == "return_previous":
        # A configuration's init() always starts its own run (a run left open ends).
        modes = modes._replace(reinit="finish_previous")
    if tensorboard:
        warn_user("runstore: tensorboard=True is deprecated; use sync_tensorboard=True",
                  FutureWarning)
    if magic is not None and not _warned_magic:
        _warn_magic()

    previous = _lifecycle.global_run()
    if previous is not None and modes.reinit == "return_previous":
        _say(s, f"a run is already active ({previous.name}); returning it "
                "(pass reinit='finish_previous' to start a new one)")
        return previous
    cwd = Path.cwd()
    initial_config = _initial_config(config, config_include_keys, config_exclude_keys, s, cwd)
    if trial is not None:
        from ._sweep import merged_config

        initial_config = merged_config(initial_config, trial.params)
    allow_change = s.allow_val_change if s.allow_val_change is not None else in_notebook()
    repo_root = Path(s.git_root) if s.git_root else _provenance.find_git_root(cwd)
    identity = _identity(s, repo_root)
    # Only now, with the arguments checked, may the previous run end.
    if modes.reinit == "finish_previous":
        for active in _lifecycle.active_runs():
            active.finish()
    main_run = modes.reinit != "create_new"  # the one runstore.run / log / config mean

    if modes.mode == "disabled":
        run = _disabled_run(identity, s, initial_config, allow_change, main_run)
        if trial is not None:
            run.config.lock(trial.params, "sweep")
        return run

    # The run's hand-off file is made meanwhile, by a thread (see _ring.Prepared).
    prepared = _ring.Prepared(_ring.file_size(_ring_capacity(s)))
    try:
        root = Path(s.root_dir or _settings.DEFAULT_DIR).expanduser().resolve()
        facts = _provenance.process_facts(host=s.host, program=s.program)
        now = utc_now()
        opened = _open(root, s, modes, bool(force), identity, initial_config, facts, now,
                       allow_change)
        git_root = None if s.disable_git else repo_root
        if s.save_code and not s.disable_code:
            _save_code(opened, facts["program"], git_root, cwd, with_diff=not s.disable_git,
                       now=now)
        run = _make_run(opened, s, allow_change, prepared)
    finally:
        prepared.discard()  # not taken: init() failed, or the ring is on disk
    if trial is not None:  # later config updates of these keys are ignored, as in wandb
        run.config.lock(trial.params, "sweep")
    _lifecycle.activate(run, make_global=main_run)
    _say_started(run, s, opened)
    _start_background(run, s, opened.root, git_root, main_run=main_run,
                      monitor_gym=bool(monitor_gym))
    return run


def _sweep_trial() -> Any:
    """The sweep trial this init() becomes, if a sweep agent started this process or is
    running a function in it (runstore._sweep loads only then: import stays light)."""
    if "runstore._sweep" in sys.modules or "RUNSTORE_SWEEP_PARAM_PATH" in os.environ:
        from ._sweep import take_trial

        return take_trial()
    return None


def _initial_config(config: Any, include_keys: list[str] | None,
                    exclude_keys: list[str] | None, s: _settings.Settings,
                    cwd: Path) -> dict[str, Any]:
    """config= (a dict, argparse Namespace, YAML path, ...) over config-defaults.yaml and
    config_paths, as wandb does, filtered by the include/exclude keys and checked."""
    defaults, explicit = _config_sources.build(config, include_keys, exclude_keys,
                                               s.config_paths, cwd)
    return Config().checked({**defaults, **explicit})


def _disabled_run(identity: Identity, s: _settings.Settings, config: dict[str, Any],
                  allow_change: bool, main_run: bool) -> Run:
    """mode="disabled": a Run whose methods all work and which writes nothing."""
    run = Run(identity=identity._replace(name=identity.name or f"dummy-{identity.id}"),
              settings=s, dir=None, allow_val_change=allow_change)
    run.config.load(config)
    _lifecycle.activate(run, make_global=main_run)
    return run


def _modes(s: _settings.Settings) -> Modes:
    """The mode, reinit and resume asked for, checked (a UsageError names the wrong one)
    and settled: "dryrun" is offline, reinit="default" depends on being in a notebook,
    and resume is dropped offline, with a warning. anonymous= is checked here too."""
    mode = _MODES.get(s.mode)
    if mode is None:
        raise UsageError(f"mode={s.mode!r} is not one of 'online', 'offline', 'disabled'")
    branching = [n for n in ("resume", "resume_from", "fork_from")
                 if getattr(s, n) not in (None, False)]
    if len(branching) > 1:
        raise UsageError(f"{branching[0]} and {branching[1]} are mutually exclusive; "
                         "pass only one of resume, resume_from and fork_from")
    resume = _branch.resume_mode(s.resume)
    if mode == "offline" and (s.resume_from or s.fork_from):
        raise UsageError("resume_from and fork_from need the store that holds the source run; "
                         "use mode='online' for them")
    if mode == "offline" and resume is not None:
        warn_user("runstore: resume is ignored offline (an offline run is a store of its "
                  "own); starting a new run")
        resume = None
    if s.anonymous is not None and s.anonymous not in _ANONYMOUS:
        raise UsageError(f"anonymous={s.anonymous!r} is not one of {', '.join(_ANONYMOUS)}")
    reinit = _REINIT.get(s.reinit if s.reinit is not None else "default")
    if reinit is None:
        raise UsageError(f"reinit={s.reinit!r} is not one of True, False, "
                         "'default', 'finish_previous', 'return_previous', 'create_new'")
    if reinit == "default":
        reinit = "finish_previous" if in_notebook() else "return_previous"
    return Modes(mode, reinit, resume)


def _open(
    root: Path, s: _settings.Settings, modes: Modes, force: bool, identity: Identity,
    config: dict[str, Any], facts: dict[str, Any], now: str, allow_change: bool,
) -> _Opened:
    """The store and the run's row in it. Online, a store that cannot be written means
    an offline store of the run's own, with a warning (with force=True, a CommError)."""
    local = _local_root(root, s, modes)
    if modes.mode == "online" and local is None:
        try:
            return _open_online(root, s, modes.resume, identity, config, facts, now,
                                allow_change)
        except CommError as exc:
            if force:
                raise
            warn_user(f"runstore: {exc}; logging this run offline instead (merge it later "
                      "with `runstore sync`, or pass force=True to make this an error)")
    path = _offline.new_offline_store(local or root, identity.id)  # see _offline
    conn = _store.connect(path)
    return _Opened(conn, path.parent, _branch.create(conn, identity, config, facts, now),
                   offline=True)


def _local_root(root: Path, s: _settings.Settings, modes: Modes) -> Path | None:
    """Where the run keeps a store of its own instead of joining `root`'s: on local disk
    when `root` is on a network filesystem (never SQLite over NFS), beside `root` when the
    run publishes itself to a hub. None: the store at `root`, as asked."""
    if s.publish_dir:
        _publish_interval(s)  # checked before the run exists
    network = None if s.allow_network_filesystem else _filesystems.network_filesystem(root)
    if network is None and not s.publish_dir:
        return None
    if modes.resume is not None:
        warn_user("runstore: resume is ignored for a run kept in a store of its own (on "
                  "local disk or published to a hub); starting a new run")
    if network is None:
        return root
    local = _filesystems.local_dir()
    how = (f"it is published to {s.publish_dir} for the hub to merge" if s.publish_dir
           else "publish it to a hub with RUNSTORE_PUBLISH_DIR=<inbox> (docs/SCALE-OUT.md), "
                "or merge it later with `runstore sync` on a machine whose disk holds the "
                "store" + (" (SLURM deletes $SLURM_TMPDIR when the job ends: publish or "
                           "copy the run before)" if os.environ.get("SLURM_TMPDIR") else ""))
    warn_user(f"runstore: {root} is on {network}, a network filesystem, where SQLite must "
              f"not be written (its locks need one host); this run is logged to local disk "
              f"under {local} instead, and {how}. Set RUNSTORE_ALLOW_NETWORK_FILESYSTEM=true "
              "if this filesystem's locks are known to work")
    return local


def _open_online(
    root: Path, s: _settings.Settings, resume_mode: str | None, identity: Identity,
    config: dict[str, Any], facts: dict[str, Any], now: str, allow_change: bool,
) -> _Opened:
    """Open the store and create, resume, rewind or fork the run row in it.

    Any failure to write the store is a CommError; argument errors stay UsageErrors.
    """
    path = root / _store.STORE_FILENAME
    conn = _store.connect(path)
    # What runs killed together with their writer process left in their rings goes
    # into the store first, so a resume sees all of it.
    _writer_process.recover(path)
    if resume_mode == "auto":
        # The run a crashed or failed process left behind in this directory.
        recorded = _branch.read_resume_file(root)
        if recorded is not None and s.run_id is not None and recorded != s.run_id:
            warn_user(f"runstore: ignoring run id {recorded!r} from {_branch.RESUME_FILE} "
                      f"because id={s.run_id!r} was given")
        elif recorded is not None:
            identity = identity._replace(id=recorded)
    try:
        if s.resume_from is not None:
            row = _branch.rewind(conn, s.resume_from, identity, config, facts, now,
                                 allow_change, id_given=s.run_id is not None)
        elif s.fork_from is not None:
            row = _branch.fork(conn, s.fork_from, identity, config, facts, now)
        elif resume_mode is not None:
            row = _branch.resume(conn, resume_mode, identity, config, facts, now, allow_change)
        else:
            row = _branch.create(conn, identity, config, facts, now)
    except sqlite3.Error as exc:
        conn.close()
        raise CommError(f"cannot write the store {path}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    opened = _Opened(conn, root, row)
    if resume_mode == "auto":
        try:
            opened = opened._replace(
                resume_file=_branch.write_resume_file(root, row.identity.id))
        except OSError as exc:
            warn_user(f"runstore: cannot record the run for resume='auto': {exc}")
    return opened


def _save_code(opened: _Opened, program: str | None, git_root: Path | None, cwd: Path,
               with_diff: bool, now: str) -> None:
    """save_code=True: the program (or notebook) and the git diff, kept with the run."""
    with _store.transaction(opened.conn):
        for file_path, kind, content in _code.code_files(program, git_root, cwd,
                                                         with_diff=with_diff):
            _store.save_file(opened.conn, opened.row.run_key, file_path, kind, content, now)


def _ring_capacity(s: _settings.Settings) -> int:
    # log_queue_size counts values; the ring holds them as bytes (about 24 each).
    if s.log_queue_size is None:
        return _ring.DEFAULT_CAPACITY
    return max(16, int(s.log_queue_size)) * 24


def _make_run(opened: _Opened, s: _settings.Settings, allow_change: bool,
              prepared: _ring.Prepared) -> Run:
    """The Run on the opened row: its writer, and the config, metric definitions and
    summary the row holds."""
    row, path = opened.row, opened.root / _store.STORE_FILENAME
    capacity = _ring_capacity(s)
    opened.conn.close()  # the writer has its own connection

    def writer(t0: float) -> Handoff:
        if s.publish_dir:
            from ._publish import PublishingHandoff

            return PublishingHandoff(path, row.run_key, row.identity.id, t0,
                                     row.runtime_offset, Path(s.publish_dir).expanduser(),
                                     _publish_interval(s), capacity=capacity,
                                     use_process=s.writer_process, prepared=prepared)
        return Handoff(path, row.run_key, row.identity.id, t0, row.runtime_offset,
                       capacity=capacity, use_process=s.writer_process, prepared=prepared)

    run = Run(
        identity=row.identity, settings=s, dir=str(opened.root), allow_val_change=allow_change,
        offline=opened.offline, writer_factory=writer,
        starting_step=row.starting_step, runtime_offset=row.runtime_offset,
        resumed=row.resumed, resume_file=opened.resume_file,
    )
    run.config.load(row.config)
    for definition in row.metric_definitions:
        run.define_metric(**definition)
    if row.summary is not None:
        run.summary.restore(row.aggregates, row.summary)
    return run


def _publish_interval(s: _settings.Settings) -> float:
    interval = s.publish_interval
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
        raise UsageError(f"publish_interval must be a number of seconds > 0, got {interval!r}")
    return float(interval)


def _say_started(run: Run, s: _settings.Settings, opened: _Opened) -> None:
    how = "resumed" if opened.row.resumed else ("forked" if s.fork_from else "started")
    where = (f"offline to {opened.root} (merge it into a store with: runstore sync "
             f"{opened.root})" if opened.offline
             else f"to {opened.root / _store.STORE_FILENAME}")
    _say(s, f"run {run.name} ({run.project}/{run.id}) {how}, logging {where}")


def _start_background(run: Run, s: _settings.Settings, root: Path, git_root: Path | None,
                      main_run: bool, monitor_gym: bool) -> None:
    """What runs beside the run until it finishes: reading git facts, console capture
    (for the process's main run), the system monitor and the integrations asked for.
    Each has its stop (or thread) registered with the run, which finish() ends first."""
    writer = run._writer
    assert writer is not None  # only a disabled run has none
    if git_root is not None:
        remote = s.git_remote
        thread = _threads.start(
            lambda: run._queue_run_fields(_provenance.git_facts(git_root, remote)),
            "runstore-git")
        run._add_background(thread)
    if main_run and s.console not in ("off", None):
        run._add_closer(_console.Capture(writer.put_console).stop)
    if not s.disable_stats:
        monitor = _system_stats.start(writer.put_system, s.stats_sampling_interval, str(root))
        if monitor is not None:
            run._add_closer(monitor.stop)
    # Each integration (a module of _integrations, imported only when asked for) has
    # start(run) -> stop | None; None, after a warning, when its library is missing.
    for name, wanted in (("tensorboard", s.sync_tensorboard), ("gym", monitor_gym)):
        if wanted:
            stop = importlib.import_module(f"._integrations.{name}", __package__).start(run)
            if stop is not None:
                run._add_closer(stop)


_warned_magic = False


def _warn_magic() -> None:
    global _warned_magic
    _warned_magic = True
    warn_user("runstore: magic= does nothing (wandb removed it)")


def _identity(s: _settings.Settings, repo_root: Path | None) -> Identity:
    entity = "anonymous" if s.anonymous == "must" else (s.entity or _provenance.os_user())
    check_path_part("entity", entity)
    project = s.project or _infer_project(repo_root, s)
    check_path_part("project", project)
    run_id = s.run_id if s.run_id is not None else new_run_id()
    check_path_part("run id", run_id, max_len=64)
    # No name (None or "", as in wandb) means one is generated; any other must be a name.
    unnamed = s.run_name is None or (isinstance(s.run_name, str) and not s.run_name)
    return Identity(
        entity=entity, project=project, id=run_id,
        name=None if unnamed else check_name(s.run_name), notes=check_notes(s.run_notes),
        tags=check_tags(s.run_tags), group=check_text("group", s.run_group),
        job_type=check_text("job_type", s.run_job_type),
    )


def _infer_project(repo_root: Path | None, s: _settings.Settings) -> str:
    """The git repository's name, else the program's file stem, else "uncategorized"."""
    if repo_root is not None:
        return repo_root.name
    program = s.program or (None if in_notebook() else _provenance.program_path())
    if program:
        return Path(program).stem
    return "uncategorized"
