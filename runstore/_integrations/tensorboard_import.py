"""`runstore import-tensorboard`: existing TensorBoard event files as finished runs.

One run per run directory (a directory that directly holds event files), read with
TensorBoard's own reader, so its rules apply (file order, purged steps after a
restart, TF2 tensor summaries). Scalars keep their tags, steps and wall times. A run's
id is derived from its directory's absolute path, so importing again skips the runs
already imported and adds only new ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import _provenance, _store
from .._names import check_path_part, check_text
from .._values import RESERVED_KEYS

CHUNK = 10_000
# tag -> [(step, wall_time, value)] in step order
Scalars = dict[str, list[tuple[int, float, float]]]


def run_dirs(logdir: Path) -> list[Path]:
    """The run directories under `logdir` (itself included), as TensorBoard finds them."""
    from tensorboard.backend.event_processing import io_wrapper

    return sorted(Path(d) for d in io_wrapper.GetLogdirSubdirectories(str(logdir)))


def read_scalars(run_dir: Path, advance: Callable[[int], None] = lambda _: None) -> Scalars:
    """Every scalar of one run directory, each tag's points in step order (for a step
    written more than once, the last write; negative steps are left out). `advance`
    is told the bytes read as reading goes."""
    from tensorboard.backend.event_processing import event_accumulator

    reader = event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={event_accumulator.SCALARS: 0})  # 0: keep every point
    _reload(reader, advance)
    out = {tag: _by_step((e.step, e.wall_time, e.value) for e in reader.Scalars(tag))
           for tag in reader.Tags()[event_accumulator.SCALARS]}
    # TF2's tf.summary.scalar writes tensors: the plugin reader migrates and keeps them all.
    tensors = [tag for tag in reader.Tags()[event_accumulator.TENSORS]
               if reader.SummaryMetadata(tag).plugin_data.plugin_name == "scalars"]
    if tensors:
        out.update(_tensor_scalars(run_dir, tensors, advance))
    return {tag: points for tag, points in out.items() if points}


def _tensor_scalars(run_dir: Path, tags: list[str],
                    advance: Callable[[int], None]) -> Scalars:
    from tensorboard.backend.event_processing import plugin_event_accumulator
    from tensorboard.util import tensor_util

    reader = plugin_event_accumulator.EventAccumulator(
        str(run_dir), tensor_size_guidance={"scalars": 0})
    _reload(reader, advance)
    out: Scalars = {}
    for tag in tags:
        points = []
        for event in reader.Tensors(tag):
            array = tensor_util.make_ndarray(event.tensor_proto)
            if array.size == 1:
                points.append((event.step, event.wall_time, float(array.item())))
        out[tag] = _by_step(points)
    return out


def _by_step(points: Iterable[tuple[int, float, float]]) -> list[tuple[int, float, float]]:
    latest = {point[0]: point for point in points if point[0] >= 0}
    return [latest[step] for step in sorted(latest)]


def _reload(reader: Any, advance: Callable[[int], None]) -> None:
    """reader.Reload(), telling `advance` the bytes read (each record is its event and
    16 bytes of framing) about every megabyte."""
    source = getattr(reader, "_generator", None)
    load: Any = getattr(source, "Load", None)
    if load is None:
        reader.Reload()
        return

    class Counting:
        def Load(self) -> Iterator[Any]:  # TensorBoard's name
            pending = 0
            for event in load():
                pending += event.ByteSize() + 16
                if pending >= 1 << 20:
                    advance(pending)
                    pending = 0
                yield event
            advance(pending)

    reader._generator = Counting()
    try:
        reader.Reload()
    finally:
        reader._generator = source


def _size(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 1e6 else f"{n / 1e3:,.1f} kB"


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="microseconds")


@contextlib.contextmanager
def _no_bar(length: int, label: str) -> Iterator[Any]:
    class Bar:
        def update(self, n: int) -> None:
            pass

    yield Bar()


def import_logdir(
    logdir: Path,
    store: Path,
    project: str | None = None,
    say: Callable[[str], None] = lambda _: None,
    bar: Callable[..., Any] = _no_bar,
) -> int:
    """Import every run directory under `logdir` into `store`; returns how many runs
    were imported. `bar(length=, label=)` is a progress bar (click.progressbar)."""
    logdir = logdir.resolve()
    project = check_path_part("project", project or logdir.name)
    entity = _provenance.os_user()
    dirs = run_dirs(logdir)
    if not dirs:
        say(f"no TensorBoard event files under {logdir}")
        return 0
    conn = _store.connect(store)
    try:
        return sum(_import_run(conn, logdir, run_dir, entity, project, say, bar)
                   for run_dir in dirs)
    finally:
        conn.close()


def _import_run(conn: sqlite3.Connection, logdir: Path, run_dir: Path, entity: str,
                project: str, say: Callable[[str], None], bar: Callable[..., Any]) -> bool:
    name = run_dir.relative_to(logdir).as_posix()
    name = check_text("name", logdir.name if name == "." else name)
    run_id = hashlib.sha1(str(run_dir).encode()).hexdigest()[:8]
    where = f"{entity}/{project}/{run_id}"
    if _store.find_run_key(conn, entity, project, run_id) is not None:
        say(f"{name}: already imported as {where}; skipped")
        return False
    size = sum(p.stat().st_size for p in run_dir.iterdir()
               if p.is_file() and "tfevents" in p.name)
    with bar(length=size, label=f"{name}: reading {_size(size)}") as progress:
        scalars = {tag: points for tag, points in read_scalars(run_dir, progress.update).items()
                   if tag not in RESERVED_KEYS}
    if not scalars:
        say(f"{name}: no scalars; skipped")
        return False
    for tag, points in scalars.items():
        say(f"  {tag}: {len(points):,} points, steps {points[0][0]}..{points[-1][0]}")
    total = sum(len(points) for points in scalars.values())
    with bar(length=total, label=f"{name}: writing {total:,} points to {where}") as progress:
        write_run(conn, {"entity": entity, "project": project, "id": run_id, "name": name,
                         "notes": f"Imported from TensorBoard event files in {run_dir}"},
                  scalars, progress.update)
    return True


def write_run(conn: sqlite3.Connection, identity: dict[str, Any], scalars: Scalars,
              advance: Callable[[int], None]) -> int:
    """One finished run holding `scalars`, in one transaction; returns its run_key. A step's
    timestamp is the earliest wall time logged at it, its runtime counts from the first."""
    stamps: dict[int, float] = {}
    for points in scalars.values():
        for step, wall_time, _ in points:
            if wall_time < stamps.get(step, math.inf):
                stamps[step] = wall_time
    first = min(stamps.values())
    last = max(wall_time for points in scalars.values() for _, wall_time, _ in points)
    summary = {tag: points[-1][2] for tag, points in scalars.items()}
    with _store.transaction(conn):
        run_key = _store.insert_run(conn, {
            **identity, "state": "finished", "exit_code": 0, "config": {}, "tags": [],
            "summary": summary, "created_at": _utc(first), "heartbeat_at": _utc(last),
            "finished_at": _utc(last), "runtime": last - first,
        })
        _store.insert_points(conn, [(run_key, step, ts, ts - first)
                                    for step, ts in sorted(stamps.items())], [])
        keys: dict[str, int] = {}
        _store.intern_keys(conn, sorted(scalars), keys)
        for tag, points in scalars.items():
            rows: list[tuple[int, int, int, float | None, str | None]] = [
                (run_key, keys[tag], step, value, None) if value == value
                else (run_key, keys[tag], step, None, "NaN")
                for step, _, value in points]
            for start in range(0, len(rows), CHUNK):
                _store.insert_points(conn, [], rows[start:start + CHUNK])
                advance(len(rows[start:start + CHUNK]))
    return run_key
