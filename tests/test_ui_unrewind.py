"""The run page's unrewind button (issue 13): POST /<db>/-/runstore/run/<key>/unrewind
with Datasette's CSRF protection and the runstore-edit permission, through the store's
`unrewind_run` (the code of `Api.unrewind` and `runstore unrewind`). On both Datasette
lines; the browser test (test_browser_run_page.py) clicks the button itself."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from datasette.app import Datasette

import runstore
from helpers import db_rows
from ui_helpers import run_url

pytestmark = pytest.mark.ui

ROOT = {"id": "root"}


@pytest.fixture
def store(tmp_path: Path) -> dict[str, Any]:
    """`src` logged 0..99, rewound to 50 and logged 51..59; `plain` never rewound."""
    store_dir = tmp_path / "store"
    with runstore.init(dir=store_dir, project="p", id="src") as run:
        for step in range(100):
            run.log({"loss": float(step)}, step=step)
    with runstore.init(dir=store_dir, project="p", id="src", resume_from="src?_step=50") as run:
        for step in range(51, 60):
            run.log({"loss": -1.0}, step=step)
    runstore.init(dir=store_dir, project="p", id="plain").finish()
    path = store_dir / "runstore.db"
    keys = dict(db_rows(path, "SELECT id, run_key FROM runs"))
    return {"path": path, "dir": store_dir, "src": keys["src"], "plain": keys["plain"]}


def _go(path: Path, go: Any, plugin_config: dict | None = None) -> Any:
    metadata = {"plugins": {"runstore": plugin_config}} if plugin_config else None

    async def run() -> Any:
        return await go(Datasette([str(path)], metadata=metadata))

    return asyncio.run(run())


async def _post(ds: Datasette, run_key: int, *, actor: dict | None = ROOT,
                as_json: bool = False) -> httpx.Response:
    cookies = {"ds_csrftoken": ds.sign("secret-ish", "csrftoken")}
    if actor is not None:
        cookies["ds_actor"] = ds.sign({"a": actor}, "actor")
    return await ds.client.post(
        run_url(run_key) + "/unrewind", data={"csrftoken": cookies["ds_csrftoken"]},
        cookies=cookies, headers={"accept": "application/json"} if as_json else {})


def _last_step(store: dict[str, Any]) -> int:
    return db_rows(store["path"], "SELECT max(step) FROM history WHERE run_key = ?",
                   (store["src"],))[0][0]


def test_root_undoes_the_rewind_through_the_page(store: dict[str, Any]) -> None:
    archive_url = run_url(store["src"]) + "/metric.json?key=loss&archived=1"

    async def go(ds: Datasette) -> list[httpx.Response]:
        page = await ds.client.get(run_url(store["src"]),
                                   cookies={"ds_actor": ds.sign({"a": ROOT}, "actor")})
        before = await ds.client.get(archive_url)
        done = await _post(ds, store["src"])
        return [page, done, before, await ds.client.get(archive_url)]

    assert _last_step(store) == 59
    page, done, before, after = _go(store["path"], go)
    # The archived tail, for the chart to draw faintly: 51..99 before, and after the
    # undo what had been logged since the rewind (51..59, archived in turn).
    assert before.json()["steps"] == list(range(51, 100))
    assert before.json()["rewind_step"] == 50 and before.json()["total"] == 49
    assert after.json()["steps"] == list(range(51, 60))
    assert set(after.json()["values"]) == {-1.0}
    assert page.status_code == 200
    assert 'class="runstore-unrewind"' in page.text and 'name="csrftoken"' in page.text
    assert "Rewound to step 50" in page.text
    data = re.search(r'id="runstore-page-data">(.*?)</script>', page.text, re.S)
    assert data and json.loads(data.group(1))["markers"] == [
        {"step": 50, "kind": "rewind", "label": "rewind"}]
    assert json.loads(data.group(1))["archived"] is True
    assert done.status_code == 302 and done.headers["location"] == run_url(store["src"])
    assert _last_step(store) == 99  # the archived tail is back
    undone = db_rows(store["path"], "SELECT undone_at FROM run_events WHERE run_key = ?"
                     " AND relation = 'rewind' ORDER BY event_id", (store["src"],))
    assert undone[0][0] is not None
    with runstore.Api(store["dir"]) as api:  # the summary follows the history
        assert api.run("p/src").summary["loss"] == 99.0


def test_unrewind_is_refused_without_the_permission_or_a_rewind(store: dict[str, Any]) -> None:
    async def go(ds: Datasette) -> list[httpx.Response]:
        page = await ds.client.get(run_url(store["src"]))
        return [page, await _post(ds, store["src"], actor=None),
                await _post(ds, store["plain"], as_json=True),
                await ds.client.get(run_url(store["src"]) + "/unrewind")]

    page, anonymous, nothing, get = _go(store["path"], go)
    assert 'class="runstore-unrewind"' not in page.text  # no button for anonymous
    assert anonymous.status_code == 403
    assert nothing.status_code == 400 and nothing.json()["ok"] is False
    assert "no rewind to undo" in nothing.json()["error"]
    assert get.status_code == 405
    assert _last_step(store) == 59  # nothing changed


def test_unrewind_is_refused_read_only(store: dict[str, Any]) -> None:
    async def go(ds: Datasette) -> httpx.Response:
        return await _post(ds, store["src"])

    assert _go(store["path"], go, {"read_only": True}).status_code == 403
    assert _last_step(store) == 59


def test_lineage_markers() -> None:
    from datasette_plugins.runstore_ui.views.run import markers

    def event(relation: str, run_key: int, step: int, **more: Any) -> dict[str, Any]:
        return {"relation": relation, "run_key": run_key, "run_id": f"r{run_key}",
                "parent_id": "src", "step": step, "undone_at": None, **more}

    events = [event("fork", 1, 10), event("fork", 2, 20), event("resume", 1, 30),
              event("rewind", 1, 40, undone_at="2026-01-01T00:00:00"), event("rewind", 1, 40),
              event("rewind", 1, 50)]
    assert markers(1, events) == [
        {"step": 10, "kind": "forked", "label": "forked from src"},
        {"step": 20, "kind": "fork", "label": "fork r2"},
        {"step": 40, "kind": "rewind", "label": "rewind"},
        {"step": 50, "kind": "rewind", "label": "rewind"},
    ]
