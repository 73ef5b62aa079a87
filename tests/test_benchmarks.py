"""A smoke run of the benchmarks at tiny sizes, so they do not rot (no timing asserted)."""

from __future__ import annotations

import sys

from helpers import REPO

sys.path[:0] = [str(REPO / "benchmarks")]

import branching  # noqa: E402
import core  # noqa: E402
import log_cost  # noqa: E402


def test_benchmarks_run_and_report_every_row(capsys):
    rows = log_cost.measure(300, 1) + branching.measure(2_000, 1)
    rows.append(("bytes", core.read_back(500, 1)[2], "B", ""))
    names = [name for name, *_ in rows]
    assert len(names) == len(set(names)) == 31
    assert all(value > 0 for _, value, _, _ in rows)
    core.print_table(rows)
    assert "fork / raw copy speed" in capsys.readouterr().out
