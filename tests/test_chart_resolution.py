"""The chart data honours the resolution asked for (issue 13): a 200k-step metric asked
for 4,000 points gets about 4,000 (M4 over the raw points when the 1024-step blocks
are coarser than the buckets), not one summary per block (781), and a spike survives."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from runstore import _store
from runstore._store import _chart

STEPS = 200_000
SPIKE = 123_457


def _wave(s: int) -> float:
    """A slow wave with noise, so a bucket's min and max lie inside it."""
    return math.sin(s / 3000) + (s * 7919 % 13) * 1e-3


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("resolution") / "runstore.db"
    conn = _store.connect(path)
    run_key = _store.insert_run(conn, {"entity": "me", "project": "p", "id": "r", "name": "r",
                                       "created_at": "2024-05-01T12:00:00"})
    ids: dict[str, int] = {}
    with _store.transaction(conn):
        _store.intern_keys(conn, ["loss"], ids)
        _store.insert_points(
            conn, [(run_key, s, 1.7e9 + s, float(s)) for s in range(STEPS)],
            [(run_key, ids["loss"], s, -50.0 if s == SPIKE else _wave(s), None)
             for s in range(STEPS)])
    conn.close()
    return {"path": path, "run_key": run_key}


def _points(run: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    conn = _store.connect(run["path"])
    try:
        return _store.metric_points(conn, run["run_key"], "loss", **kwargs)
    finally:
        conn.close()


@pytest.mark.parametrize("asked", [1600, 4000])
def test_overview_honours_the_requested_resolution(run: dict[str, Any], asked: int) -> None:
    assert STEPS > _chart.RAW_M4_LIMIT and STEPS // _store.BLOCK * 4 < asked * 0.95
    start = time.perf_counter()
    data = _points(run, max_points=asked)
    elapsed = time.perf_counter() - start
    assert data["downsampled"] and data["total"] == STEPS
    assert 0.7 * asked <= len(data["steps"]) <= asked
    assert data["steps"] == sorted(set(data["steps"]))
    assert data["steps"][0] == 0 and data["steps"][-1] == STEPS - 1
    assert [v for v in data["values"] if v < -2] == [-50.0]  # the spike, once
    assert data["steps"][data["values"].index(-50.0)] == SPIKE
    assert elapsed < 2.0, f"{elapsed:.2f} s"


def test_coarse_requests_still_come_from_blocks(run: dict[str, Any]) -> None:
    """Blocks fine enough for what is asked: no raw read."""
    conn = _store.connect(run["path"])
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    data = _store.metric_points(conn, run["run_key"], "loss", max_points=400)
    conn.close()
    assert len(statements) < 10 and len(data["steps"]) <= 400
    assert -50.0 in data["values"]


def test_refined_buckets_equal_a_brute_force_m4(run: dict[str, Any]) -> None:
    data = _points(run, max_points=4000, min_step=1000, max_step=150_000)
    width = -(-(150_000 - 1000 + 1) // 1000)
    expected: set[tuple[int, float]] = set()
    for b in range(1000):
        steps = range(1000 + b * width, min(1000 + (b + 1) * width, 150_001))
        if not steps:
            continue
        pts = [(s, -50.0 if s == SPIKE else _wave(s)) for s in steps]
        expected |= {pts[0], pts[-1], min(pts, key=lambda p: p[1]),
                     max(pts, key=lambda p: p[1])}
    got = set(zip(data["steps"], data["values"], strict=True))
    assert got == expected and min(v for _, v in got) == -50.0
