"""The logging loop as a user writes it, shared by log_cost.py and peers.py.

Each step does its work, builds its row in the loop (a dict of 10 floats), and calls
log(); only the log() call is timed. The work between calls is ~100 µs of one kind:

- `none`: nothing (a logging-only loop: the tracker's ingest rate);
- `sleep`: time.sleep (releases the GIL, as a step waiting on a GPU does);
- `numpy`: small matrix products (release the GIL inside BLAS);
- `python`: a pure-Python loop (holds the GIL: a writer thread competes with it).

Imports nothing of runstore, so the peers' virtualenv runs it too.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

KEYS = [f"metric_{i}" for i in range(10)]
WORK_KINDS = ("none", "sleep", "numpy", "python")
WORK_US = 100.0


def _python_work(n: int) -> Callable[[], Any]:
    def work() -> int:
        total = 0
        for i in range(n):
            total += i
        return total
    return work


def _numpy_work(n: int) -> Callable[[], Any]:
    import numpy as np

    a = np.random.default_rng(0).random((48, 48))

    def work() -> float:
        b = a
        for _ in range(n):
            b = a @ b
        return float(b[0, 0])
    return work


def _calibrated(make: Callable[[int], Callable[[], Any]]) -> Callable[[], Any]:
    """The work sized to take about WORK_US on this machine now."""
    n = 1
    while True:
        work = make(n)
        start = time.perf_counter()
        for _ in range(20):
            work()
        each = (time.perf_counter() - start) / 20 * 1e6
        if each >= WORK_US / 2 or n > 1 << 20:
            return make(max(1, round(n * WORK_US / each)))
        n *= 2


def make_work(kind: str) -> Callable[[], Any] | None:
    """The work one step does between log() calls (None: none)."""
    if kind == "none":
        return None
    if kind == "sleep":
        return lambda: time.sleep(WORK_US / 1e6)
    if kind == "numpy":
        return _calibrated(_numpy_work)
    if kind == "python":
        return _calibrated(_python_work)
    raise ValueError(kind)


def log_loop(log: Callable[[dict], Any], steps: int, work: Callable[[], Any] | None,
             ) -> tuple[list[int], float]:
    """Run the loop; (each log() call's ns, sorted; the loop's seconds)."""
    clock = time.perf_counter_ns
    keys = list(enumerate(KEYS))
    per_call: list[int] = []
    start = time.perf_counter()
    for i in range(steps):
        if work is not None:
            work()
        row = {k: i * 0.5 + j for j, k in keys}
        t0 = clock()
        log(row)
        per_call.append(clock() - t0)
    loop_s = time.perf_counter() - start
    per_call.sort()
    return per_call, loop_s


def mean_us(per_call: list[int]) -> float:
    return statistics.fmean(per_call) / 1000


def p99_us(per_call: list[int]) -> float:
    return per_call[int(len(per_call) * 0.99)] / 1000


def machine_speed() -> float:
    """ns per iteration of a bare Python loop: how fast this machine is right now (the
    same log() takes longer on a slower or busier machine)."""
    n = 2_000_000
    start = time.perf_counter_ns()
    total = 0
    for i in range(n):
        total += i
    return (time.perf_counter_ns() - start) / n
