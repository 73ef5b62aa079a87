"""The writer's column-wise path for packed rows stores exactly what was logged: the
same steps, history, blocks and summary as the row-by-row path, whatever the mix of
layouts, pickled rows, special floats, summary rules and failures in a batch."""

from __future__ import annotations

import math
import pickle
import time
from pathlib import Path
from typing import Any

import pytest

from runstore import _store
from runstore._ring import PACKED, Ring
from runstore._summary import Summary, parse_ops
from runstore._values import storable_text
from runstore._writer import BATCH_POINTS, Barrier, Stop, SummaryChange, Writer

BAD_KEY = "bad\udcff"


class Logged:
    """A ring with a run behind it, and what was handed to it, for the reference."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = tmp_path / "runstore.db"
        conn = _store.connect(self.db)
        self.run_key = _store.insert_run(conn, {
            "entity": "e", "project": "p", "id": "r", "name": "r",
            "created_at": "2026-01-01T00:00:00"})
        conn.close()
        self.ring = Ring(tmp_path / "r.ring", create=True, capacity=64 << 20)
        self.layouts: dict[tuple[str, ...], Any] = {}
        # Rows (step, timestamp, runtime, values) and rules (name, ops), in order.
        self.events: list[tuple] = []

    def packed(self, step: int, row: dict[str, float]) -> None:
        keys = tuple(row)
        if keys not in self.layouts:
            self.layouts[keys] = self.ring.add_layout(keys)
        number, pack = self.layouts[keys]
        self.ring.put(pack(PACKED, number, step, 1e9 + step, step / 10, *row.values()),
                      lambda _: None)
        self.events.append((step, 1e9 + step, step / 10, row))

    def pickled(self, step: int, row: dict[str, Any]) -> None:
        plain = all(type(v) in (int, float) for v in row.values())
        self.put((step, 2e9 + step, step / 5, row, plain))
        self.events.append((step, 2e9 + step, step / 5, row))

    def rule(self, name: str, summary: str) -> None:
        ops = parse_ops(summary)
        self.put(SummaryChange("rule", (name, ops)))
        self.events.append((name, ops))

    def put(self, item: Any) -> None:
        self.ring.put(pickle.dumps(item, 5), lambda _: None)

    def drain(self, salvaged: bool = False) -> None:
        """Write it all; a salvage, which writes the rows again one by one, would hide
        a fault of the column-wise path: only where the test asks for one."""
        self.put(Stop())
        writer = Writer(_store.connect(self.db), self.ring, self.run_key, lambda: {})
        salvages = []
        salvage = writer._salvage
        writer._salvage = lambda batch: (salvages.append(batch), salvage(batch))
        writer.serve(lambda: True)
        assert writer.stopped and self.ring.drained()
        assert bool(salvages) == salvaged


def _stored(conn, run_key: int) -> dict[str, Any]:
    history = sorted(
        (key, step, repr(value), value_json) for key, step, value, value_json in conn.execute(
            "SELECT k.key, h.step, h.value, h.value_json FROM history h"
            " JOIN metric_keys k USING (key_id) WHERE h.run_key = ?", (run_key,)))
    steps = conn.execute("SELECT step, timestamp, runtime FROM steps WHERE run_key = ?"
                         " ORDER BY step", (run_key,)).fetchall()
    blocks = conn.execute("SELECT * FROM history_blocks WHERE run_key = ?"
                          " ORDER BY key_id, block", (run_key,)).fetchall()
    return {"history": history, "steps": steps, "blocks": blocks}


def check(logged: Logged) -> None:
    """What the store holds is what the rows say, value by value; the blocks are what a
    rebuild from the stored history makes; the summary is the rows' replayed one by one."""
    history: dict[tuple[str, int], tuple[str, str | None]] = {}
    steps: dict[int, tuple[float, float]] = {}
    summary = Summary()
    for event in logged.events:
        if len(event) == 2:
            summary.add_rule(*event)
            continue
        step, ts, runtime, row = event
        steps[step] = (ts, runtime)
        summary.add_row(row, True)  # an unstorable key too, as the row-by-row path did
        row = {k: v for k, v in row.items() if storable_text(k)}
        for key, value in row.items():
            if type(value) is bool:
                history[(key, step)] = (repr(int(value)), "true" if value else "false")
            elif type(value) is float and math.isnan(value):
                history[(key, step)] = ("None", "NaN")
            else:
                history[(key, step)] = (repr(value), None)
    conn = _store.connect(logged.db)
    stored = _stored(conn, logged.run_key)
    assert stored["history"] == sorted((k, s, *v) for (k, s), v in history.items())
    assert stored["steps"] == [(s, *steps[s]) for s in sorted(steps)]
    with _store.transaction(conn):
        _store.rebuild_blocks(conn, logged.run_key)
    assert stored["blocks"] == _stored(conn, logged.run_key)["blocks"]
    assert stored["blocks"]
    run = _store.get_run_by_key(conn, logged.run_key)
    assert run is not None
    expected = summary.as_dict()
    assert run["summary"].keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(run["summary"][key])
        else:
            assert run["summary"][key] == value, key
    conn.close()


def test_packed_rows_of_two_layouts_and_pickled_rows_in_one_batch(tmp_path):
    logged = Logged(tmp_path)
    for step in range(300):
        if step % 7 == 3:
            logged.pickled(step, {"loss": step * 3, "flag": step % 2 == 0, "acc": 0.5 + step})
        elif step % 2:
            logged.packed(step, {"loss": step * 1.5 + 0.25, "acc": -step / 3})
        else:
            logged.packed(step, {"loss": step * 2.5 + 0.125, "lr": 1 / (step + 1)})
    logged.drain()
    check(logged)


def test_nan_and_infinities_in_packed_rows(tmp_path):
    logged = Logged(tmp_path)
    for step in range(200):
        logged.packed(step, {
            "nan_some": math.nan if step % 13 == 0 else step + 0.5,
            "nan_all": math.nan,
            "inf": math.inf if step == 50 else -step - 0.5,
            "both": (math.inf, -math.inf, step + 0.25)[step % 3],
            "big": 1e308 * (1 + step % 2 / 2),  # finite, but their sum overflows
        })
    logged.drain()
    check(logged)


def test_rows_spanning_batches_and_blocks(tmp_path):
    logged = Logged(tmp_path)
    keys = [f"m{j}" for j in range(10)]
    steps = 2 * BATCH_POINTS // len(keys) + 500
    for step in range(steps):
        logged.packed(step, {k: math.sin(step * (j + 1)) + step * 1e-6 for j, k in enumerate(keys)})
    logged.drain()
    check(logged)


def test_a_define_metric_rule_sees_every_packed_row(tmp_path):
    logged = Logged(tmp_path)
    logged.rule("loss", "min,max,mean,first")
    logged.rule("acc*", "none")
    for step in range(100):
        logged.packed(step, {"loss": (step * 37 % 101) + 0.5, "acc/top1": step / 7,
                             "other": step + 0.5})
        if step == 60:
            logged.rule("other", "min")
    logged.drain()
    check(logged)


def test_a_packed_key_that_is_not_storable_is_dropped_alone(tmp_path):
    logged = Logged(tmp_path)
    for step in range(50):
        logged.packed(step, {"good": step + 0.5, BAD_KEY: step + 0.25})
    with pytest.warns(RuntimeWarning, match="not storable"):
        logged.drain()
    check(logged)


def test_a_batch_the_store_refuses_is_written_again_row_by_row(tmp_path, monkeypatch):
    logged = Logged(tmp_path)
    for step in range(100):
        logged.packed(step, {"a": step + 0.5, "b": -step - 0.5})
        if step % 10 == 0:
            logged.pickled(step, {"c": step})
    real = _store.insert_points
    calls = []

    def refuse_once(*args: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("refused once")
        real(*args)

    monkeypatch.setattr(_store, "insert_points", refuse_once)
    logged.drain(salvaged=True)
    assert len(calls) > 100  # row by row
    check(logged)


def test_barriers_are_acknowledged_and_unreadable_records_skipped(tmp_path):
    logged = Logged(tmp_path)
    logged.packed(0, {"a": 0.5})
    logged.ring.put(b"\x50garbage", lambda _: None)
    logged.packed(1, {"a": 1.5})
    logged.put(Barrier(7))
    logged.packed(2, {"a": 2.5})
    with pytest.warns(RuntimeWarning, match="could not be read"):
        logged.drain()
    assert logged.ring.acked() == 7
    check(logged)


def test_a_backlog_is_drained_without_napping_between_full_batches(tmp_path, monkeypatch):
    logged = Logged(tmp_path)
    for step in range(5 * BATCH_POINTS):
        logged.packed(step, {"a": step + 0.5})
    naps = []
    monkeypatch.setattr(time, "sleep", lambda s: naps.append(s))
    logged.drain()
    assert naps == []
    check(logged)
