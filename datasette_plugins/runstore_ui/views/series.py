"""The workspace charts' data: metrics of up to 100 runs in one request.

Route: ``/<db>/-/runstore/series.json?runs=<run_key>,<run_key>,...`` with

- ``metric=<key>`` (repeated; none: only the runs and their metric keys), or
  ``first=N``: the first N of the runs' metric keys (sorted; what the panel draws when
  no metric regex is set, so a first page load takes one request),
- ``points=`` (the most points per run and metric, M4-downsampled from the store's
  per-block summaries past it; default 400),
- ``x=step|runtime|time|metric`` and ``x_metric=<key>`` for metric-vs-metric.

Returns ``{"runs": [...], "keys": [...], "series": [...]}``: each run's name, state,
project, group, job type and flattened config and summary (scalar values only, keys
dotted as the run page shows them), every numeric metric key any of the runs logged,
and per run and metric its aligned ``x``, ``y`` and ``steps`` (`runstore._store`'s
`workspace_series`; y to 7 significant digits, the arrays' JSON kept with the cached
series). The charts panel (static/runstore_workspace.js) asks for it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from datasette.utils.asgi import BadRequest, Response

from runstore._store import JSONText, workspace_keys, workspace_series

from ..access import number_arg, points_arg, run_keys_arg, store_db
from ..format import flatten

MAX_RUNS = 100
DEFAULT_POINTS = 400
MAX_METRICS = 50  # runstore._store._workspace.MAX_METRICS
X_CHOICES = ("step", "runtime", "time", "metric")


def parse_runs(values: list[str]) -> list[int]:
    """run_keys from ``runs=`` (comma-separated, possibly repeated), without repeats;
    BadRequest past `MAX_RUNS` or for anything but digits."""
    keys = run_keys_arg(values)
    if len(keys) > MAX_RUNS:
        raise BadRequest(f"At most {MAX_RUNS} runs at once (got {len(keys)})")
    return keys


def _scalars(obj: Any) -> dict[str, Any]:
    """A config or summary as dotted keys -> JSON-safe scalars (numbers, strings, bools)."""
    if not isinstance(obj, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in flatten(obj):
        if isinstance(value, float) and not math.isfinite(value):
            continue
        if value is None or isinstance(value, (bool, int, float, str)):
            out[key] = value
    return out


async def series_view(datasette: Any, request: Any) -> Response:
    """Runs, metric keys and chart data of up to 100 runs as JSON."""
    db = await store_db(datasette, request)
    run_keys = parse_runs(request.args.getlist("runs"))
    metrics = [m for m in request.args.getlist("metric") if m]
    points = points_arg(request, DEFAULT_POINTS)
    x = request.args.get("x") or "step"
    if x not in X_CHOICES:
        raise BadRequest("x must be step, runtime, time or metric")
    x_metric = request.args.get("x_metric") or None
    if x == "metric" and not x_metric:
        raise BadRequest("x=metric needs x_metric=<a metric key>")

    first = number_arg(request, "first") or 0

    def read(conn: Any) -> dict[str, Any]:
        keys = workspace_keys(conn, run_keys) if run_keys else []
        wanted = metrics or [k for k in keys if k != x_metric][:max(0, min(first, MAX_METRICS))]
        data = workspace_series(conn, run_keys, wanted, points=points, x=x,
                                x_metric=x_metric, compact=True)
        data["keys"] = keys
        return data

    try:
        data = await db.execute_fn(read)
    except ValueError as error:
        raise BadRequest(str(error)) from None
    for run in data["runs"]:
        run["config"] = _scalars(run["config"])
        run["summary"] = _scalars(run["summary"])
    return Response(encode(data), content_type="application/json; charset=utf-8")


def encode(data: dict[str, Any]) -> str:
    """The response's JSON: the series' arrays come encoded (`JSONText`, kept with the
    store's cached series; y to 7 significant digits) and are spliced in as they are;
    everything else through json.dumps."""
    rest = {k: v for k, v in data.items() if k != "series"}
    parts = []
    for entry in data["series"]:
        plain = {k: v for k, v in entry.items() if not isinstance(v, JSONText)}
        text = json.dumps(plain, separators=(",", ":"))
        raw = "".join(f",{json.dumps(k)}:{v}" for k, v in entry.items()
                      if isinstance(v, JSONText))
        parts.append(text[:-1] + raw + "}")
    head = json.dumps(rest, separators=(",", ":"))
    return head[:-1] + (',' if rest else '') + '"series":[' + ",".join(parts) + "]}"
