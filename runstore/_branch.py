"""Opening a run in the store: create, resume, rewind (resume_from) or fork (fork_from).

Each is one transaction: the checks, the history moved or copied, the summary
recomputed and the run row updated commit together or not at all.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any, NamedTuple

from . import _store
from ._config import Config
from ._errors import UsageError
from ._names import INT64_MAX, check_path_part, new_run_name, parse_int64
from ._store import RunRow
from ._summary import Summary, parse_ops
from ._values import warn_user

RESUME_FILE = "runstore-resume.json"
RESUME_MODES = {True: "auto", "auto": "auto", "allow": "allow", "must": "must", "never": "never"}
_MOMENT = re.compile(r"(?P<run>[^?]+)\?_step=(?P<step>[0-9]+)")  # not \d: "١٢" is 12


class Identity(NamedTuple):
    """Who a run is: where it lives in the store (entity/project/id) and what the user
    calls it. init() checks every field; a reopened run fills gaps from its row."""

    entity: str
    project: str
    id: str
    name: str | None  # None until create() names the run
    notes: str | None = None
    tags: tuple[str, ...] = ()
    group: str | None = None
    job_type: str | None = None


class Opened(NamedTuple):
    """What init() needs to build the Run for a row it opened."""

    run_key: int
    identity: Identity
    config: dict[str, Any]
    summary: dict[str, Any] | None = None
    aggregates: dict[str, dict[str, Any]] = {}  # never mutated: a fresh dict is passed
    metric_definitions: list[dict[str, Any]] = []  # never mutated: a fresh list is passed
    starting_step: int = 0
    runtime_offset: float = 0.0
    resumed: bool = False


def resume_mode(value: Any) -> str | None:
    """init's resume= as one of auto/allow/must/never, or None for a new run."""
    if value is None or value is False:
        return None
    mode = RESUME_MODES.get(value) if isinstance(value, (str, bool)) else None
    if mode is None:
        raise UsageError(f"resume={value!r} is not one of 'allow', 'must', 'never', 'auto', True")
    return mode


def parse_moment(argument: str, value: Any) -> tuple[str, int]:
    """`"{run_id}?_step={step}"` as (run_id, step); the step in ASCII digits."""
    match = _MOMENT.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise UsageError(
            f"{argument}={value!r} is not of the form '{{run_id}}?_step={{step}}' "
            "with a step that is an integer >= 0 in the digits 0-9, e.g. 'abc123?_step=200'"
        )
    digits = match["step"]
    step = parse_int64(digits)
    if step is None:
        shown = digits if len(digits) <= 30 else f"{digits[:20]}... ({len(digits)} digits)"
        raise UsageError(f"{argument}: step {shown} is beyond SQLite's integer range; a step "
                         f"is at most {INT64_MAX}")
    return check_path_part("run id", match["run"], max_len=64), step


def read_resume_file(root: Path) -> str | None:
    """The run id recorded for resume='auto' in this store directory, if any."""
    try:
        data = json.loads((root / RESUME_FILE).read_text())
        return str(data["run_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_resume_file(root: Path, run_id: str) -> Path:
    path = root / RESUME_FILE
    path.write_text(json.dumps({"run_id": run_id}))
    return path


def _reopenable(conn: sqlite3.Connection, row: RunRow, what: str) -> None:
    """Refuse to take over a run another process still holds (`_store.is_live`: on this
    host, whatever its heartbeat's age); record a run whose process is gone as crashed
    before it is reopened."""
    _store.check_not_live(row, what)
    _store.settle_runs(conn, [row])


def summary_from(aggregates: dict[str, Any],
                 definitions: list[dict[str, Any]]) -> dict[str, Any]:
    summary = Summary()
    for d in definitions:
        summary.add_rule(d["name"], parse_ops(d.get("summary"), d.get("goal")))
    summary.restore(aggregates, None)
    return summary.as_dict()


def _merged_config(stored: dict[str, Any], given: dict[str, Any], allow: bool) -> dict[str, Any]:
    config = Config(allow_val_change=allow)
    config.load(stored)
    config.update(given)
    return config.as_dict()


def _require_source(conn: sqlite3.Connection, identity: Identity, run_id: str,
                    argument: str) -> RunRow:
    row = _store.get_run(conn, identity.project, run_id, identity.entity)
    if row is None:
        raise UsageError(f"{argument}: there is no run {run_id!r} in project "
                         f"{identity.entity}/{identity.project}")
    return row


def _check_step(conn: sqlite3.Connection, row: RunRow, step: int, argument: str) -> None:
    last = _store.last_step(conn, row["run_key"])
    if last is None or step > last:
        raise UsageError(
            f"{argument}: step {step} is beyond the last step of run {row['id']!r} "
            f"({'it has no history' if last is None else f'its last step is {last}'})"
        )


def _identity_from(row: RunRow, given: Identity) -> Identity:
    """A reopened run's identity: values given to init() win, else the stored ones."""
    return Identity(
        entity=row["entity"], project=row["project"], id=row["id"],
        name=given.name or row["name"], notes=given.notes or row["notes"],
        tags=given.tags or tuple(row["tags"]), group=given.group or row["run_group"],
        job_type=given.job_type or row["job_type"],
    )


def _named_fields(identity: Identity) -> dict[str, Any]:
    """The run columns a user names a run by."""
    return {"name": identity.name, "notes": identity.notes, "tags": list(identity.tags),
            "run_group": identity.group, "job_type": identity.job_type}


def _reopened_fields(identity: Identity, config: dict[str, Any], facts: dict[str, Any],
                     now: str) -> dict[str, Any]:
    return {
        "state": "running", "finished_at": None, "exit_code": None, "heartbeat_at": now,
        **_named_fields(identity), "config": config, **facts,
    }


def create(conn: sqlite3.Connection, identity: Identity, config: dict[str, Any],
           facts: dict[str, Any], now: str, **lineage: Any) -> Opened:
    """Insert a new run row."""
    with _store.transaction(conn):
        if not identity.name:
            number = _store.count_runs(conn, identity.entity, identity.project) + 1
            identity = identity._replace(name=new_run_name(number))
        row = {
            "entity": identity.entity, "project": identity.project, "id": identity.id,
            "state": "running", **_named_fields(identity), "config": config,
            "created_at": now, "heartbeat_at": now, **facts, **lineage,
        }
        run_key = _store.insert_run(conn, row)
    return Opened(run_key, identity, config)


def resume(conn: sqlite3.Connection, mode: str, identity: Identity, config: dict[str, Any],
           facts: dict[str, Any], now: str, allow_change: bool) -> Opened:
    """resume='allow' / 'must' / 'never' / 'auto' for identity's id."""
    with _store.transaction(conn):
        row = _store.get_run(conn, identity.project, identity.id, identity.entity)
        where = f"run {identity.id!r} in project {identity.entity}/{identity.project}"
        if row is None:
            if mode == "must":
                raise UsageError(f"resume='must' but there is no {where}; pass resume='allow' "
                                 "to create it, or check the id and project")
            return create(conn, identity, config, facts, now)
        if mode == "never":
            raise UsageError(f"resume='never' but {where} already exists; choose another id "
                             "or pass resume='allow' to continue it")
        _reopenable(conn, row, "resume")
        run_key = row["run_key"]
        identity = _identity_from(row, identity)
        merged = _merged_config(row["config"], config, allow_change)
        last = _store.last_step(conn, run_key)
        _store.update_run(conn, run_key, _reopened_fields(identity, merged, facts, now))
        _store.mark_resumed(conn, run_key)
        _store.add_event(conn, run_key, "resume", run_key, last, now)
        return Opened(
            run_key, identity, merged, summary=row["summary"],
            aggregates=_store.metric_aggregates(conn, run_key),
            metric_definitions=_store.metric_definitions(row),
            starting_step=0 if last is None else last + 1,
            runtime_offset=row["runtime"] or (_store.step_runtime(conn, run_key, last) or 0.0
                                              if last is not None else 0.0),
            resumed=True,
        )


def rewind(conn: sqlite3.Connection, moment: str, identity: Identity, config: dict[str, Any],
           facts: dict[str, Any], now: str, allow_change: bool, id_given: bool) -> Opened:
    """resume_from='{run_id}?_step={step}': archive the history after step and continue."""
    run_id, step = parse_moment("resume_from", moment)
    if id_given and identity.id != run_id:
        warn_user(f"runstore: both id={identity.id!r} and resume_from={moment!r} were "
                  f"given; resume_from takes precedence")
    with _store.transaction(conn):
        row = _require_source(conn, identity, run_id, "resume_from")
        _check_step(conn, row, step, "resume_from")
        _reopenable(conn, row, "rewind")
        run_key = row["run_key"]
        identity = _identity_from(row, identity)
        merged = _merged_config(row["config"], config, allow_change)
        _store.rewind(conn, run_key, step, now)
        aggregates = _store.metric_aggregates(conn, run_key)
        definitions = _store.metric_definitions(row)
        summary = summary_from(aggregates, definitions)
        _store.update_run(conn, run_key, {
            **_reopened_fields(identity, merged, facts, now), "summary": summary})
        return Opened(
            run_key, identity, merged, summary=summary, aggregates=aggregates,
            metric_definitions=definitions, starting_step=step + 1,
            runtime_offset=_store.step_runtime(conn, run_key, step) or 0.0, resumed=True,
        )


def fork(conn: sqlite3.Connection, moment: str, identity: Identity, config: dict[str, Any],
         facts: dict[str, Any], now: str) -> Opened:
    """fork_from='{run_id}?_step={step}': a new run starting with the source's history."""
    source_id, step = parse_moment("fork_from", moment)
    if identity.id == source_id:
        raise UsageError(f"fork_from: the new run's id {source_id!r} is the source's id; "
                         "a fork needs an id of its own (leave id unset to generate one)")
    with _store.transaction(conn):
        source = _require_source(conn, identity, source_id, "fork_from")
        _check_step(conn, source, step, "fork_from")
        opened = create(conn, identity, config, facts, now,
                        parent_run_key=source["run_key"], fork_step=step)
        copied = _store.copy_history(conn, source["run_key"], opened.run_key, step)
        _store.add_event(conn, opened.run_key, "fork", source["run_key"], step, now, copied)
        aggregates = _store.metric_aggregates(conn, opened.run_key)
        definitions = _store.metric_definitions(source)
        summary = summary_from(aggregates, definitions)
        _store.update_run(conn, opened.run_key,
                          {"summary": summary, "metric_definitions": definitions})
    return opened._replace(
        summary=summary, aggregates=aggregates, metric_definitions=definitions,
        starting_step=step + 1,
        runtime_offset=_store.step_runtime(conn, opened.run_key, step) or 0.0)
