"""The chart's number formatting (static/runstore_charts.js), run in node: y tick labels
are formatted from the ticks (issue 13: 1.5e-4..4.5e-4 read `0`, 1,000,000..1,612,000
read `0,000`, 22.85..22.875 read `2.875`). For ranges from 1e-8 to 1e12, each label
reads back within 1% of a tick increment of its tick and no two ticks share a label."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

CHARTS_JS = (Path(__file__).parent.parent / "datasette_plugins" / "runstore_ui" / "static"
             / "runstore_charts.js")

# window is all the file touches when it loads; it registers window.RunstoreCharts.
RUNNER = """
global.window = {};
require(process.argv[1]);
const R = window.RunstoreCharts;
const cases = JSON.parse(require("fs").readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify({
  ticks: cases.ticks.map(([splits, incr]) => R.tickLabels(splits, incr)),
  values: cases.values.map((v) => R.valueText(v)),
}));
"""


def _ticks(lo: float, hi: float, n: int) -> tuple[list[float], float]:
    step = (hi - lo) / n
    return [lo + i * step for i in range(n + 1)], step


def _range_cases() -> list[tuple[float, float, int]]:
    cases = [(1.5e-4, 4.5e-4, 6), (1e6, 1.612e6, 6), (22.85, 22.875, 5), (0, 1, 5),
             (-1, 1, 4), (-2e-5, 2e-5, 4), (1000, 1000.0005, 5), (0, 2e8, 4)]
    for exponent in range(-8, 13):  # 1e-8 .. 1e12: [x, 5x] and a narrow band near x
        x = 10.0 ** exponent
        cases += [(x, 5 * x, 4), (x, x * 1.02, 4), (-3 * x, 3 * x, 6)]
    return cases


def _run(ticks: list[tuple[list[float], float]], values: list[float]) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    done = subprocess.run([node, "-e", RUNNER, str(CHARTS_JS)], check=True, text=True,
                          capture_output=True, timeout=30,
                          input=json.dumps({"ticks": ticks, "values": values}))
    return json.loads(done.stdout)


def test_tick_labels_from_1e_minus_8_to_1e12() -> None:
    cases = _range_cases()
    ticks = [_ticks(lo, hi, n) for lo, hi, n in cases]
    out = _run(ticks, [])
    for (lo, hi, _), (splits, step), labels in zip(cases, ticks, out["ticks"], strict=True):
        assert len(set(labels)) == len(labels), (lo, hi, labels)
        for value, label in zip(splits, labels, strict=True):
            assert abs(float(label.replace(",", "")) - value) <= step * 0.01 + 1e-300, (
                lo, hi, value, label)
            assert len(label) <= 16, label  # fits an axis
    by_range = {(lo, hi): labels for (lo, hi, _), labels in zip(cases, out["ticks"],
                                                                 strict=True)}
    assert by_range[(1.5e-4, 4.5e-4)] == ["1.5e-4", "2.0e-4", "2.5e-4", "3.0e-4", "3.5e-4",
                                          "4.0e-4", "4.5e-4"]
    assert by_range[(1e6, 1.612e6)][0] == "1,000,000"
    assert by_range[(1e6, 1.612e6)][-1] == "1,612,000"
    assert by_range[(22.85, 22.875)] == ["22.850", "22.855", "22.860", "22.865", "22.870",
                                         "22.875"]
    assert by_range[(-2e-5, 2e-5)][2] == "0"


def test_value_text() -> None:
    values = [0.000123456, 1234567.89, 22.875, 3, 1e12, -0.5, 1 / 3, 0, 2.5e-9]
    out = _run([], values)["values"]
    assert out == ["1.23456e-4", "1,234,570", "22.875", "3", "1e12", "-0.5", "0.333333",
                   "0", "2.5e-9"]
