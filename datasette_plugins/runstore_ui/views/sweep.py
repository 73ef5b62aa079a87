"""The sweep pages: one sweep, and the list of a store's sweeps.

Routes (under the database's URL):

- ``/<db>/-/runstore/sweep/<sweep_id>``: the sweep page: name, id, method, state,
  metric and goal, created; its config as YAML; its agents; one row per trial (run
  linked, status, each swept parameter as a column by dotted name, the metric; sorted
  by clicking a header, numbers as numbers); a best-so-far chart of the metric in trial
  order (uPlot) and a parallel-coordinates plot of the parameters against the metric
  (SVG, drawn by static/runstore_sweep.js through static/runstore_parallel.js);
  parameter importance (`sweep_stats`).
- ``/<db>/-/runstore/sweeps?project=<project>``: the sweeps of a store (or a project),
  each linked to its page; the run list's actions menu links here (`sweep_actions`).
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any
from urllib.parse import quote, urlencode

from datasette.utils.asgi import NotFound, Response
from markupsafe import Markup

from runstore._store import run_sweep, store_sweeps, sweep_page

from .. import cells
from ..access import store_db
from ..assets import UPLOT_VERSION, static_url
from ..format import value_text
from ..sweep_stats import (
    best_so_far,
    category_key,
    correlations,
    is_categorical,
    optuna_importances,
)


def sweep_url(database_url: str, sweep_id: str) -> str:
    """The sweep page of `sweep_id` under a database URL."""
    return f"{database_url}/-/runstore/sweep/{quote(sweep_id, safe='')}"


def sweeps_url(database_url: str, project: str | None = None) -> str:
    """The list of a store's sweeps (of one project when given)."""
    query = f"?{urlencode({'project': project})}" if project else ""
    return f"{database_url}/-/runstore/sweeps{query}"


def _config_text(config: dict[str, Any]) -> str:
    """The sweep config as YAML (as wandb's sweep files are written), keys in the order
    given."""
    try:
        import yaml

        return str(yaml.safe_dump(config, sort_keys=False, allow_unicode=True,
                                  default_flow_style=False))
    except Exception:  # a value YAML cannot write: show the JSON
        return json.dumps(config, indent=2, ensure_ascii=False, default=str)


def _cell(value: Any) -> dict[str, Any]:
    """A table cell: its text and, for a number, the value it sorts by."""
    if value is None:
        return {"text": "", "num": None}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = f"{value:.6g}" if isinstance(value, float) else str(value)
        return {"text": text, "num": value}
    return {"text": value_text(value), "num": None}


def _axes(params: list[dict[str, Any]], trials: list[dict[str, Any]],
          metric: str | None) -> list[dict[str, Any]]:
    """The parallel-coordinates axes: each swept parameter (categorical ones with their
    categories in order, log ones marked), then the metric."""
    axes = []
    for param in params:
        values = [t["params"].get(param["name"]) for t in trials]
        if is_categorical(param, values):
            given = [category_key(v) for v in (param.get("values") or [])]
            seen = [category_key(v) for v in values if v is not None]
            axes.append({"name": param["name"], "type": "category",
                         "categories": list(dict.fromkeys(given + seen))})
        else:
            axes.append({"name": param["name"],
                         "type": "log" if param.get("log") else "linear"})
    axes.append({"name": metric or "metric", "type": "linear", "metric": True})
    return axes


def _axis_value(axis: dict[str, Any], value: Any) -> Any:
    """A trial's value on a parallel-coordinates axis: a category's label, a number, or
    None (drawn as missing)."""
    if value is None:
        return None
    if axis["type"] == "category":
        return category_key(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


async def sweep_view(datasette: Any, request: Any) -> Response:
    """The sweep page."""
    db = await store_db(datasette, request)
    sweep_id = request.url_vars["sweep_id"]
    page = await db.execute_fn(lambda conn: sweep_page(conn, sweep_id))
    if page is None:
        raise NotFound(f"No sweep {sweep_id[:40]} in {db.name}")
    database_url = datasette.urls.database(db.name)
    sweep, params, trials, goal = page["sweep"], page["params"], page["trials"], page["goal"]
    names = [p["name"] for p in params]
    best = best_so_far(trials, goal)
    axes = _axes(params, trials, page["metric"])
    loop = asyncio.get_running_loop()
    importances, optuna_how = await loop.run_in_executor(
        None, optuna_importances, params, trials, goal)
    rows = []
    for index, trial in enumerate(trials):
        rows.append({
            "trial": trial,
            "index": index,
            "url": cells.run_url(database_url, trial["run_key"])
            if trial["run_key"] is not None else None,
            "status_badge": cells.state_badge(trial["status"]),
            "cells": [_cell(trial["params"].get(name)) for name in names],
            "metric": _cell(trial["metric"]),
        })
    project_url = f"{database_url}/run_list?" + urlencode(
        {"entity": sweep["entity"], "project": sweep["project"]})
    context = {
        "database": db.name,
        "sweep": sweep,
        "title": sweep["name"] or sweep["id"],
        "metric": page["metric"],
        "goal": goal,
        "params": params,
        "rows": rows,
        "agents": page["agents"],
        "config_text": _config_text(sweep["config"]),
        "project_url": project_url,
        "sweeps_url": sweeps_url(database_url, sweep["project"]),
        "correlations": correlations(params, trials),
        "importances": importances,
        "optuna_how": optuna_how,
        "scored": sum(1 for t in trials if t["metric"] is not None),
        "page_data": {
            "metric": page["metric"],
            "goal": goal,
            "axes": axes,
            "trials": [
                {"index": index, "seq": t["seq"], "name": t["run_name"] or t["run_id"],
                 "status": t["status"], "metric": t["metric"], "best": best[index],
                 "values": [_axis_value(axis, t["params"].get(axis["name"]))
                            for axis in axes[:-1]]}
                for index, t in enumerate(trials)
            ],
        },
        "state_badge": cells.state_badge(sweep["state"]),
        "css_urls": [static_url(datasette, f"uPlot-{UPLOT_VERSION}.min.css"),
                     static_url(datasette, "runstore_sweep.css")],
        "js_urls": [static_url(datasette, f"uPlot-{UPLOT_VERSION}.iife.min.js"),
                    static_url(datasette, "runstore_parallel.js"),
                    static_url(datasette, "runstore_sweep.js")],
    }
    html = await datasette.render_template(
        "runstore_sweep.html", context, request=request, view_name="runstore_sweep")
    return Response.html(html)


async def sweeps_view(datasette: Any, request: Any) -> Response:
    """The sweeps of a store, or of one project (``?project=``)."""
    db = await store_db(datasette, request)
    project = request.args.get("project") or None
    sweeps = await db.execute_fn(lambda conn: store_sweeps(conn, project))
    database_url = datasette.urls.database(db.name)
    context = {
        "database": db.name,
        "project": project,
        "sweeps": [{**s, "url": sweep_url(database_url, s["id"]),
                    "best_text": _cell(s["best"])["text"]} for s in sweeps],
        "all_url": sweeps_url(database_url) if project else None,
        "page_data": {},
        "css_urls": [static_url(datasette, "runstore_sweep.css")],
        "js_urls": [],
    }
    html = await datasette.render_template(
        "runstore_sweeps.html", context, request=request, view_name="runstore_sweeps")
    return Response.html(html)


MAX_ACTION_SWEEPS = 10


async def sweep_actions(datasette: Any, database: str, request: Any) -> list[dict[str, str]]:
    """The run list's actions menu: a link to each sweep (of the project the list is
    filtered to, newest first, at most `MAX_ACTION_SWEEPS`) and to the list of them all;
    nothing when the store has no sweeps."""
    project = request.args.get("project") if request is not None else None
    db = datasette.get_database(database)
    sweeps = await db.execute_fn(lambda conn: store_sweeps(conn, project or None))
    if not sweeps:
        return []
    database_url = datasette.urls.database(database)
    links = [{"href": sweep_url(database_url, s["id"]),
              "label": f"Sweep {s['name'] or s['id']} ({s['method']}, {s['trials']} trials)"}
             for s in sweeps[:MAX_ACTION_SWEEPS]]
    where = f" of {project}" if project else ""
    return [*links, {"href": sweeps_url(database_url, project or None),
                     "label": f"All sweeps{where} ({len(sweeps)})"}]


async def sweeps_box(datasette: Any, database: str, request: Any) -> str:
    """The run list's sweeps as links above the table (Datasette 1.0's top_table slot;
    0.65 has no such slot, and shows them in the actions menu only): "" when none."""
    links = await sweep_actions(datasette, database, request)
    if not links:
        return ""
    items = Markup("").join(Markup('<li><a class="runstore-sweep-link" href="{}">{}</a></li>')
                            .format(link["href"], link["label"]) for link in links)
    return str(Markup('<nav class="runstore-sweeps-box"><strong>Sweeps</strong>'
                      "<ul>{}</ul></nav>").format(items))


async def run_sweep_link(datasette: Any, db: Any, run_key: int) -> dict[str, str] | None:
    """The sweep a run was a trial of, for its run page: {text, href}, or None."""
    found = await db.execute_fn(lambda conn: run_sweep(conn, run_key))
    if found is None:
        return None
    return {"text": f"{found['name'] or found['id']} (trial {found['seq']})",
            "href": sweep_url(datasette.urls.database(db.name), found["id"])}
