"""`runstore sync`: merge offline runs into a store, one transaction per run, idempotently."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import _store, _writer_process
from ._errors import UsageError
from ._store import _artifacts as stored_artifacts

SYNCED_MARKER = ".synced"
LARGE_RUN = 200_000  # points; above this, progress is reported as keys are copied


def offline_store(path: str | Path) -> Path:
    """The store file of an offline run directory (or the file itself)."""
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        path = path / _store.STORE_FILENAME
    if not path.is_file():
        raise UsageError(f"{path} is not an offline run: it has no {_store.STORE_FILENAME}")
    return path


def find_offline_runs(root: str | Path) -> list[Path]:
    """The offline run directories under a store directory, oldest first."""
    return sorted(p for p in Path(root).glob("offline-run-*") if p.is_dir())


def sync(
    paths: Sequence[str | Path],
    store: Path,
    *,
    project: str | None = None,
    entity: str | None = None,
    include_synced: bool = False,
    clean: bool = False,
    say: Callable[[str], None] = print,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> int:
    """Merge the runs of each offline store in `paths` into `store`; returns runs merged.

    A run whose process died while it was running is merged as `crashed`. Syncing
    the same offline run again replaces the earlier copy, so the result is the same.
    """
    sources = [offline_store(p) for p in paths]
    conn = _store.connect(store)
    merged = 0
    try:
        for source in sources:
            marker = source.parent / SYNCED_MARKER
            if marker.exists() and not include_synced:
                say(f"{source.parent}: already synced (pass --include-synced to sync again)")
                continue
            _store.connect(source).close()  # bring an older offline store to this schema
            # What a killed offline run left in its hand-off ring goes in first.
            _writer_process.recover(source)
            merged += _sync_one(conn, source, store.parent, project, entity, say,
                                progress)
            marker.touch()
            if clean:
                shutil.rmtree(source.parent)
                say(f"{source.parent}: removed")
    finally:
        conn.close()
    return merged


def _copy_artifact_files(conn: Any, source_key: int, source_dir: Path, store_dir: Path) -> None:
    """The large artifact files an offline run keeps beside its store, copied beside the
    store it is merged into (before the merge's transaction names them)."""
    for location in stored_artifacts.external_locations(conn, source_key):
        target = store_dir / location
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source_dir / location, target.with_name(target.name + ".part"))
            target.with_name(target.name + ".part").replace(target)


def _sync_one(conn: Any, source: Path, store_dir: Path, project: str | None,
              entity: str | None,
              say: Callable[[str], None],
              progress: Callable[[str, int], Callable[[int], None]] | None) -> int:
    merged = 0
    with _store.attached(conn, source) as rows:
        for row in rows:
            if _store.is_live(row):  # on this host: its process exists, even if paused
                say(f"{row['id']}: still being written by process {row['pid']}; skipped")
                continue
            stored: dict[str, Any] = dict(row)
            fields = {k: stored[k] for k in _store.RUN_COLUMNS if k in stored}
            fields.update(parent_run_key=None, synced_from=str(source.parent))
            if project:
                fields["project"] = project
            if entity:
                fields["entity"] = entity
            if fields["state"] == "running":  # not live: its process is gone, it crashed
                fields["state"] = "crashed"
            existing = _store.get_run(conn, fields["project"], fields["id"], fields["entity"])
            if existing is not None and existing.get("synced_from") != str(source.parent):
                raise UsageError(
                    f"run {fields['id']!r} already exists in {fields['entity']}/"
                    f"{fields['project']} and did not come from {source.parent}; "
                    "pass --project or --entity to sync it elsewhere"
                )
            total = _store.count_points(conn, row["run_key"])
            tick = progress(row["id"], total) if progress and total >= LARGE_RUN else None
            _copy_artifact_files(conn, row["run_key"], source.parent, store_dir)
            with _store.transaction(conn):
                points = _store.merge_run(conn, row["run_key"], fields, tick)
                target = _store.find_run_key(conn, fields["entity"], fields["project"],
                                             fields["id"])
                assert target is not None  # merge_run has just written it
                stored_artifacts.merge_artifacts(conn, row["run_key"], target,
                                                 fields["entity"], fields["project"])
            say(f"{fields['entity']}/{fields['project']}/{fields['id']}: synced "
                f"{points} points ({fields['state']}) from {source.parent}")
            merged += 1
    return merged


