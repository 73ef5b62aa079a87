"""The compare page: 2-10 runs side by side.

Route: ``/<db>/-/runstore/compare?runs=<run_key>,<run_key>,...`` (``runs=`` may also
be repeated). One chart per metric key present in any of the runs, one series per
run (drawn by static/runstore_compare.js from each run's chart-data route), a table
of the runs, and the config keys whose values differ between them. Run tables get
checkboxes (see `pick_box`) and a "Compare selected" button (static/runstore_pick.js).
"""

from __future__ import annotations

import json
from typing import Any

from datasette.utils.asgi import BadRequest, Response
from markupsafe import Markup

from runstore._store import compare_runs

from .. import cells, detect
from ..access import run_keys_arg, store_db
from ..assets import UPLOT_VERSION, static_url
from ..format import (
    duration_text,
    flatten,
    live_state,
    loads,
    metric_groups,
    runtime_of,
    value_text,
)
from .run import DEFAULT_POINTS

MIN_RUNS, MAX_RUNS = 2, 10
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
          "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_MISSING = object()


def compare_url(database_url: str) -> str:
    """The compare page under a database URL (without the query string)."""
    return f"{database_url}/-/runstore/compare"


def pick_box(database_url: str, run_key: Any) -> Markup:
    """The checkbox that selects a run for the compare page (read by runstore_pick.js)."""
    return Markup(
        '<input type="checkbox" class="runstore-pick" value="{}" data-compare-url="{}"'
        ' title="Select to compare" aria-label="Select run {} to compare">'
    ).format(int(run_key), compare_url(database_url), int(run_key))


def parse_run_keys(values: list[str]) -> list[int]:
    """run_keys from `runs=` values (comma-separated, possibly repeated), in order,
    without repeats; BadRequest unless there are 2-10 valid ones."""
    keys = run_keys_arg(values)
    if not MIN_RUNS <= len(keys) <= MAX_RUNS:
        raise BadRequest(f"Choose {MIN_RUNS} to {MAX_RUNS} runs to compare "
                         f"(got {len(keys)}), e.g. ?runs=3,7")
    return keys


def _canonical(value: Any) -> str:
    if value is _MISSING:
        return "\0missing"
    return json.dumps(value, sort_keys=True, default=str)


def _flat_columns(runs: list[dict[str, Any]], column: str) -> list[dict[str, Any]]:
    """Each run's JSON object `column` (config, summary) as {dotted key: value}."""
    flats = []
    for run in runs:
        obj = loads(run.get(column), {})
        flats.append(dict(flatten(obj)) if isinstance(obj, dict) else {})
    return flats


def config_differences(runs: list[dict[str, Any]]) -> list[tuple[str, list[str | None]]]:
    """(dotted key, display value per run, None where the run lacks it) for every
    config key whose value is not the same in all the runs, sorted by key."""
    flats = _flat_columns(runs, "config")
    keys = sorted({key for flat in flats for key in flat})
    rows = []
    for key in keys:
        values = [flat.get(key, _MISSING) for flat in flats]
        if len({_canonical(v) for v in values}) > 1:
            rows.append((key, [None if v is _MISSING else value_text(v) for v in values]))
    return rows


def _summary_rows(runs: list[dict[str, Any]]) -> list[tuple[str, list[str | None]]]:
    flats = _flat_columns(runs, "summary")
    keys = sorted({key for flat in flats for key in flat})
    return [(key, [value_text(f[key]) if key in f else None for f in flats]) for key in keys]


async def compare_view(datasette: Any, request: Any) -> Response:
    """The compare page."""
    db = await store_db(datasette, request)
    run_keys = parse_run_keys(request.args.getlist("runs"))
    found = await db.execute_fn(lambda conn: compare_runs(conn, run_keys))
    if found["missing"]:
        missing = ", ".join(str(k) for k in found["missing"])
        raise BadRequest(f"No run with run_key {missing} in {db.name}")
    database_url = datasette.urls.database(db.name)
    runs = []
    for index, run in enumerate(found["runs"]):
        run_key = run["run_key"]
        url = cells.run_url(database_url, run_key)
        state, live = live_state(run)
        runs.append({
            "run": run,
            "url": url,
            "live": live,
            "color": COLORS[index % len(COLORS)],
            "state_badge": cells.live_badge(state, live),
            "runtime": duration_text(runtime_of(run)),
            "keys": found["metric_keys"][run_key],
        })
    all_keys = sorted({key for item in runs for key in item["keys"]})
    context = {
        "database": db.name,
        "runs": runs,
        "config_diff": config_differences(found["runs"]),
        "summary": _summary_rows(found["runs"]),
        "groups": metric_groups(all_keys),
        "page_data": {
            "runs": [
                {"runKey": item["run"]["run_key"], "name": item["run"]["name"],
                 "color": item["color"], "metricUrl": item["url"] + "/metric.json",
                 "statusUrl": item["url"] + "/status.json", "live": item["live"],
                 "keys": item["keys"]}
                for item in runs
            ],
            "maxPoints": DEFAULT_POINTS,
        },
        # runstore.css and runstore_compare.css come through the extra_css_urls hook.
        "css_urls": [static_url(datasette, f"uPlot-{UPLOT_VERSION}.min.css")],
        "js_urls": [static_url(datasette, f"uPlot-{UPLOT_VERSION}.iife.min.js"),
                    static_url(datasette, "runstore_charts.js"),
                    static_url(datasette, "runstore_compare.js")],
    }
    html = await datasette.render_template(
        "runstore_compare.html", context, request=request, view_name="runstore_compare"
    )
    return Response.html(html)


def query_run_link(datasette: Any, database: str, run_key: int) -> Any:
    """render_cell for a run_key column of a query's results (the canned queries):
    a link to the run page, on stores only."""

    async def inner() -> Markup | None:
        if not await detect.is_store(datasette, database):
            return None
        return cells.run_link(datasette.urls.database(database), run_key, run_key)

    return inner
