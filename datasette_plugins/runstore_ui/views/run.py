"""The plugin's pages: one run, and the chart data of one of its metrics.

Routes (under the database's URL, so they follow `base_url` and database routes):

- ``/<db>/-/runstore/run/<run_key>``: the run page (header, notes, tags, config,
  summary, one chart per metric grouped by the prefix before the first `/`).
- ``/<db>/-/runstore/run/<run_key>/metric.json?key=<key>``: chart data, with optional
  ``min_step``/``max_step`` (zoom, and a live page's new points) and ``points`` (the
  most points to return; more are downsampled server-side with M4). With ``times=1``
  each point also comes with its step's ``timestamps`` (unix s) and ``runtimes`` (s),
  for a time x axis. With ``archived=1``: the points the newest rewind (not undone)
  archived instead, and its ``rewind_step``; the chart draws them faintly.
- ``/<db>/-/runstore/run/<run_key>/status.json``: state, liveness, last step and
  metric keys, which the page of a live run polls.
- ``/<db>/-/runstore/run/<run_key>/edit``: POST edits of name, tags, notes (`edit`).

The run's output beyond metrics (media, system metrics, console) has views of its own
(`run_output`); the route table is `routes.ROUTES`.
"""

from __future__ import annotations

from typing import Any, TypedDict, cast
from urllib.parse import urlencode

from datasette.utils.asgi import BadRequest, NotFound, Response

from runstore._store import get_run_by_key, metric_points, run_page, run_status

from .. import cells
from ..access import flag_arg, number_arg, points_arg, store_and_key
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
from ..markdown import render_notes
from ..security import can_edit, read_only
from . import run_output, sweep
from .media import blob_url

# The most points a chart asks metric.json for (the page's width decides below it):
# handed to static/runstore_charts.js in the page data as `maxPoints`.
DEFAULT_POINTS = 4000


class MetricData(TypedDict, total=False):
    """metric.json: one metric's points, M4-downsampled on the server past `points`.

    `steps` and `values` (and with times=1 `timestamps` and `runtimes`) are aligned;
    `total` counts the points in the requested step range."""

    key: str
    steps: list[int]
    values: list[float | int | None]
    total: int
    downsampled: bool
    rewind_step: int | None  # archived=1: the step the run was rewound to
    timestamps: list[float | None]  # times=1: unix s of each point's step
    runtimes: list[float | None]  # times=1: the run's runtime at each point's step


class Status(TypedDict):
    """status.json: what a live run page needs to go on polling, or stop."""

    run_key: int
    state: str | None  # running, finished, failed, crashed
    live: bool
    last_step: int | None
    runtime: float | None
    runtime_text: str
    metric_keys: list[str]
    step_count: int  # the header's "steps"
    summary: list[tuple[str, str]]  # (dotted key, value text), as the summary table


def _header(run: dict[str, Any], page: dict[str, Any], database_url: str) -> list[tuple]:
    """(label, text, href) rows for the run header; text is plain, escaped later."""
    filters = {"entity": run["entity"], "project": run["project"]}
    project_url = f"{database_url}/run_list?{urlencode(filters)}"
    dirty = run.get("git_dirty")
    commit = run.get("git_commit") or ""
    if commit and dirty:
        commit += " (dirty: uncommitted changes)"
    dirty_text = None if dirty is None else ("yes" if dirty else "no")
    rows = [
        ("id", run["id"], None),
        ("project", f"{run['entity']}/{run['project']}", project_url),
        ("group", run.get("run_group"), None),
        ("job type", run.get("job_type"), None),
        ("created", run.get("created_at"), None),
        ("finished", run.get("finished_at"), None),
        ("last heartbeat", run.get("heartbeat_at") if run.get("state") == "crashed" else None,
         None),
        ("runtime", duration_text(runtime_of(run)), None),
        ("exit code", run.get("exit_code"), None),
        ("steps", page["step_count"] or None, None),
        ("host", run.get("host"), None),
        ("user", run.get("os_user"), None),
        ("program", run.get("program"), None),
        ("args", " ".join(map(str, loads(run.get("args"), []) or [])), None),
        ("python", run.get("python_version"), None),
        ("git commit", commit, None),
        ("git branch", run.get("git_branch"), None),
        ("git remote", run.get("git_remote"), None),
        ("git dirty", dirty_text, None),
    ]
    return [(label, str(text), href) for label, text, href in rows if text not in (None, "")]


# Header rows whose text is a timestamp: shown as local time (static/runstore_run.js).
TIME_LABELS = frozenset({"created", "finished", "last heartbeat"})
# Header rows shown in the compact header line; the others sit behind "details".
MAIN_LABELS = ("project", "group", "job type", "created", "runtime", "steps", "exit code",
               "last heartbeat", "sweep", "git commit")


def markers(run_key: int, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lineage markers for the charts (runstore_charts.js markersFor): the step this run
    was forked from its parent at, each fork made from it, each rewind of it."""
    out: list[dict[str, Any]] = []
    for event in events:
        step, relation = event.get("step"), event.get("relation")
        if step is None:
            continue
        if relation == "fork" and event["run_key"] == run_key:
            out.append({"step": step, "kind": "forked",
                        "label": f"forked from {event.get('parent_id') or '?'}"})
        elif relation == "fork":
            out.append({"step": step, "kind": "fork", "label": f"fork {event['run_id']}"})
        elif relation == "rewind" and event["run_key"] == run_key and not event.get("undone_at"):
            # An undone rewind changed nothing on the charts: the lineage table lists it.
            out.append({"step": step, "kind": "rewind", "label": "rewind"})
    unique = {(m["step"], m["label"]): m for m in out}
    return list(unique.values())


def _pairs(column: Any) -> list[tuple[str, str]]:
    obj = loads(column, {})
    if not isinstance(obj, dict):
        return []
    return [(key, value_text(value)) for key, value in flatten(obj)]


async def run_view(datasette: Any, request: Any) -> Response:
    """The run page."""
    db, run_key = await store_and_key(datasette, request)
    page = await db.execute_fn(lambda conn: run_page(conn, run_key))
    if page is None:
        raise NotFound(f"No run with run_key {run_key} in {db.name}")
    run = page["run"]
    database_url = datasette.urls.database(db.name)
    this_url = cells.run_url(database_url, run_key)
    tags = loads(run.get("tags"), [])
    groups = metric_groups(page["metric_keys"])
    state, live = live_state(run)
    rewinds = [e for e in page["lineage"] if e["relation"] == "rewind"
               and e["run_key"] == run_key and not e.get("undone_at")]
    editable = await can_edit(datasette, request, db)
    context = {
        "database": db.name,
        "state": state,
        "stderr_tail": page.get("stderr_tail") or [],
        "heartbeat_at": run.get("heartbeat_at"),
        "time_labels": TIME_LABELS,
        "main_labels": MAIN_LABELS,
        "can_unrewind": editable and bool(rewinds) and not live,
        "last_rewind": rewinds[-1] if rewinds else None,
        "unrewind_url": f"{this_url}/unrewind",
        "run": run,
        "run_key": run_key,
        "header": _header(run, page, database_url),
        "state_badge": cells.live_badge(state, live),
        "tags": cells.tag_chips(tags if isinstance(tags, list) else [],
                                 f"{database_url}/run_list"),
        "notes_html": render_notes(run.get("notes")),
        "tag_list": [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else [],
        "can_edit": editable,
        "read_only": read_only(datasette),
        "edit_url": f"{this_url}/edit",
        "config": _pairs(run.get("config")),
        "summary": _pairs(run.get("summary")),
        "groups": groups,
        "lineage": [
            {**event,
             "run_url": cells.run_url(database_url, event["run_key"]),
             "parent_url": cells.run_url(database_url, event["parent_run_key"])
             if event["parent_run_key"] is not None else None}
            for event in page["lineage"]
        ],
        "parent": page["parent"],
        "parent_url": cells.run_url(database_url, page["parent"]["run_key"])
        if page["parent"] else None,
        "parent_config": _pairs(page["parent"]["config"]) if page["parent"] else [],
        "files": [{**f, "url": blob_url(database_url, f["sha256"])} for f in page["files"]],
        "artifacts": {how: [{**version,
                             "logged_by_url": cells.run_url(database_url, version["logged_by_key"])
                             if version["logged_by_key"] is not None else None,
                             "users": [(run_id, cells.run_url(database_url, key)) for run_id, key
                                       in zip(version["used_by"], version["used_by_keys"],
                                              strict=True)]}
                            for version in versions]
                      for how, versions in page["artifacts"].items()},
        "page_data": {
            "runKey": run_key,
            "metricUrl": f"{this_url}/metric.json",
            "statusUrl": f"{this_url}/status.json",
            "keys": page["metric_keys"],
            "lastStep": page["last_step"],
            "live": live,
            # As recorded at the run's last sign of life: the page never counts it on.
            "runtime": runtime_of(run),
            "maxPoints": DEFAULT_POINTS,
            "markers": markers(run_key, page["lineage"]),
            "archived": bool(rewinds),  # a rewind's archived tail: drawn faintly
        },
        # runstore.css comes through the extra_css_urls hook, as on every store page.
        "css_urls": [static_url(datasette, f"uPlot-{UPLOT_VERSION}.min.css")],
        "js_urls": [
            static_url(datasette, f"uPlot-{UPLOT_VERSION}.iife.min.js"),
            static_url(datasette, "runstore_charts.js"),
            static_url(datasette, "runstore_run.js"),
        ],
    }
    context.update(await run_output.page_context(datasette, db, run_key, live))
    swept = await sweep.run_sweep_link(datasette, db, run_key)  # a sweep's trial: link it
    if swept is not None:
        context["header"].insert(2, ("sweep", swept["text"], swept["href"]))
    html = await datasette.render_template(
        "runstore_run.html", context, request=request, view_name="runstore_run"
    )
    return Response.html(html)


async def metric_view(datasette: Any, request: Any) -> Response:
    """Chart data of one metric as JSON: {key, steps, values, total, downsampled}, and
    {timestamps, runtimes} with times=1."""
    db, run_key = await store_and_key(datasette, request)
    key = request.args.get("key")
    if not key:
        raise BadRequest("key= is required")
    min_step, max_step = number_arg(request, "min_step"), number_arg(request, "max_step")
    points = points_arg(request, DEFAULT_POINTS)
    times = flag_arg(request, "times")
    archived = flag_arg(request, "archived")

    def read(conn: Any) -> MetricData | None:
        if get_run_by_key(conn, run_key) is None:
            return None
        return cast(MetricData, metric_points(
            conn, run_key, key, min_step=min_step, max_step=max_step, max_points=points,
            times=times, archived=archived,
        ))

    data = await db.execute_fn(read)
    if data is None:
        raise NotFound(f"No run with run_key {run_key} in {db.name}")
    return Response.json(data)


def status_payload(run_key: int, status: dict[str, Any]) -> Status:
    """status.json's body: what a live page needs to go on polling, or stop."""
    run = status["run"]
    state, live = live_state(run)
    return {
        "run_key": run_key,
        "state": state,
        "live": live,
        "last_step": status["last_step"],
        "runtime": runtime_of(run),
        "runtime_text": duration_text(runtime_of(run)),
        "metric_keys": status["metric_keys"],
        "step_count": status.get("step_count") or 0,
        "summary": _pairs(run.get("summary")),
    }


async def status_view(datasette: Any, request: Any) -> Response:
    """A run's state, liveness, last step and metric keys as JSON (polled while live)."""
    db, run_key = await store_and_key(datasette, request)
    status = await db.execute_fn(lambda conn: run_status(conn, run_key))
    if status is None:
        raise NotFound(f"No run with run_key {run_key} in {db.name}")
    return Response.json(status_payload(run_key, status))
