"""The workspace's runs table, fast (schema 013): sorting a project view by a key indexes
the key (an expression index the view's column matches), search on run_list walks the
created_at index, and the table cells stay one line (tags as chips, no `[]`; notes as one
line of plain text). Real stores and a real Datasette app."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from runstore import _store
from runstore._store import _runs_table, _schema
from ui_helpers import add_run, ui_get

pytestmark = pytest.mark.ui

VIEW = "/runstore/runs~2Fmnist"


def _rows(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text[:500]
    data = response.json()
    return [row if isinstance(row, dict) else dict(zip(data["columns"], row, strict=True))
            for row in data["rows"]]


def _plan(conn: sqlite3.Connection, sql: str) -> str:
    return " | ".join(str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql))


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    path = tmp_path / "runstore.db"
    conn = _store.connect(path)
    for i, acc in enumerate([0.5, 0.9, 10, 9.5, 0.1]):
        add_run(conn, "mnist", f"r{i}", f"run{i}", summary={"val/acc": {"max": acc}},
                config={"lr": 10.0 ** -i, "name": f"n{i}"}, tags=[] if i else ["keep"],
                notes="# Heading **bold**\nsecond line" if i == 0 else None,
                created_at=f"2024-05-0{i + 1}T12:00:00+00:00")
    add_run(conn, "other", "o", "other run", summary={"val/acc": {"max": 1.0}})
    conn.close()
    return path


def _index_names(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE ?",
            (_runs_table.KEY_INDEX_PREFIX + "%",))]
    finally:
        conn.close()


def test_sorting_by_a_key_indexes_it_and_the_sort_uses_the_index(store: Path) -> None:
    assert _index_names(store) == []
    (sorted_,) = ui_get(store, f"{VIEW}.json?_sort_desc=summary.val/acc.max")
    assert [r["name"] for r in _rows(sorted_)] == ["run2", "run3", "run1", "run0", "run4"]
    assert len(_index_names(store)) == 1
    conn = _store.connect(store)
    assert _runs_table.key_indexes(conn, "mnist") == ["summary.val/acc.max"]
    plan = _plan(conn, 'SELECT * FROM "runs/mnist" ORDER BY "summary.val/acc.max" DESC LIMIT 3')
    assert "runs_key_index_" in plan and "TEMP B-TREE" not in plan, plan
    # the other project's runs are not in it (partial), and a second sort makes no other
    assert not _runs_table.ensure_key_index(conn, "mnist", "summary.val/acc.max")
    assert conn.execute(
        f'SELECT count(*) FROM run_records INDEXED BY "{_index_names(store)[0]}"'
        " WHERE project = 'mnist'").fetchone()[0] == 5
    conn.close()
    # ascending reads the same index; a run column or an unknown column makes none
    (asc, by_name, unknown) = ui_get(store, f"{VIEW}.json?_sort=summary.val/acc.max",
                                     f"{VIEW}.json?_sort=name",
                                     f"{VIEW}.json?_sort=summary.nope")
    assert [r["name"] for r in _rows(asc)][:2] == ["run4", "run0"]
    assert by_name.status_code == 200
    assert len(_index_names(store)) == 1


def test_a_write_keeps_the_index_current_and_malformed_json_never_fails_it(store: Path) -> None:
    conn = _store.connect(store)
    _store.refresh_workspace_views(conn)
    assert _runs_table.ensure_key_index(conn, "mnist", "summary.val/acc.max")
    key = add_run(conn, "mnist", "new", "newest", summary={"val/acc": {"max": 99}})
    top = 'SELECT name FROM "runs/mnist" ORDER BY "summary.val/acc.max" DESC LIMIT 1'
    assert conn.execute(top).fetchone()[0] == "newest"
    _store.update_run(conn, key, {"summary": {"val/acc": {"max": -1}}})
    assert conn.execute(top).fetchone()[0] == "run2"
    # hand-written SQL may store anything: the write succeeds, the key reads as no value
    conn.execute("UPDATE run_records SET summary = '{not json' WHERE run_key = ?", (key,))
    assert conn.execute('SELECT "summary.val/acc.max" FROM "runs/mnist" WHERE run_key = ?',
                        (key,)).fetchone()[0] is None
    conn.close()


def test_a_rebuilt_view_drops_an_index_its_column_no_longer_matches(store: Path) -> None:
    conn = _store.connect(store)
    _store.refresh_workspace_views(conn)
    assert _runs_table.ensure_key_index(conn, "mnist", "config.lr")
    assert _runs_table.key_indexes(conn, "mnist") == ["config.lr"]
    add_run(conn, "mnist", "t", "text lr", config={"lr": "auto"})  # no longer numeric
    _store.refresh_workspace_views(conn)
    assert _runs_table.key_indexes(conn, "mnist") == []
    assert _index_names(store) == []
    rows = conn.execute('SELECT name FROM "runs/mnist" ORDER BY "config.lr" LIMIT 1').fetchall()
    assert rows
    conn.close()


def test_at_most_a_few_indexes_per_project(tmp_path: Path) -> None:
    path = tmp_path / "runstore.db"
    conn = _store.connect(path)
    n = _runs_table.MAX_KEY_INDEXES + 2
    add_run(conn, "p", "a", "a", summary={f"m{i}": float(i) for i in range(n)})
    _store.refresh_workspace_views(conn)
    for i in range(n):
        assert _runs_table.ensure_key_index(conn, "p", f"summary.m{i}")
    assert _runs_table.key_indexes(conn, "p") == [f"summary.m{i}" for i in range(2, n)]
    assert len(_index_names(path)) == _runs_table.MAX_KEY_INDEXES
    # a key spelled with '"' is read through subqueries, which no index can hold
    add_run(conn, "p", "b", "b", summary={'q"uote': 1.0})
    _store.refresh_workspace_views(conn)
    assert not _runs_table.ensure_key_index(conn, "p", 'summary.q"uote')
    # a project with no runs left loses its view and its indexes
    conn.execute("DELETE FROM run_records WHERE project = 'p'")
    _store.refresh_workspace_views(conn)
    assert _index_names(path) == [] and _runs_table.key_indexes(conn, "p") == []
    conn.close()


def test_search_on_run_list_walks_the_created_index(store: Path) -> None:
    conn = _store.connect(store)
    plan = _plan(conn, "SELECT * FROM run_list WHERE run_key IN (SELECT rowid FROM"
                       " run_records_fts WHERE run_records_fts MATCH 'run1')"
                       " ORDER BY created_at DESC LIMIT 51")
    assert "runs_created" in plan and "TEMP B-TREE" not in plan, plan
    # run_key keeps its integer affinity: Datasette's filters send text
    assert conn.execute("SELECT name FROM run_list WHERE run_key = '2'").fetchone() == ("run1",)
    conn.close()
    found, filtered = ui_get(store, "/runstore/run_list.json?_search=run1&_nofacet=1",
                             "/runstore/run_list.json?run_key=2&_nofacet=1")
    assert [r["name"] for r in _rows(found)] == ["run1"]
    assert [r["name"] for r in _rows(filtered)] == ["run1"]


def test_a_version_12_store_migrates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "runstore.db"
    known = _schema.migrations()
    monkeypatch.setattr(_schema, "migrations", lambda: [m for m in known if m[0] <= 12])
    conn = _store.connect(path)
    add_run(conn, "mnist", "a", "alpha", summary={"acc": 0.5})
    _store.refresh_workspace_views(conn)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 12
    conn.close()
    monkeypatch.setattr(_schema, "migrations", lambda: known)
    conn = _store.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 13
    assert conn.execute("SELECT count(*) FROM project_key_indexes").fetchone()[0] == 0
    # the project view is rebuilt (run_key as an expression), run_list redefined
    assert _store.stale_projects(conn) == ["mnist"]
    _store.refresh_workspace_views(conn)
    view = conn.execute(
        "SELECT sql FROM sqlite_master WHERE name IN ('runs/mnist', 'run_list')").fetchall()
    assert all("CAST(r.run_key AS INTEGER)" in sql or "CAST(run_key AS INTEGER)" in sql
               for (sql,) in view), view
    assert conn.execute("SELECT run_key, name FROM run_list").fetchall() == [(1, "alpha")]
    assert _runs_table.ensure_key_index(conn, "mnist", "summary.acc")
    conn.close()


# --- cells ------------------------------------------------------------------------------

def test_tags_show_as_chips_and_no_tags_as_nothing(store: Path) -> None:
    view, run_list = ui_get(store, f"{VIEW}?_sort=name", "/runstore/run_list?_sort=name")
    for page in (view, run_list):
        assert page.status_code == 200
        cells = re.findall(r'<td class="col-tags[^"]*"[^>]*>(.*?)</td>', page.text, re.S)
        assert len(cells) >= 5, page.text[:2000]
        assert all("[]" not in cell for cell in cells), cells
        assert sum('class="runstore-tag"' in cell and ">keep<" in cell for cell in cells) == 1
        empty = [c for c in cells if "runstore-tag\"" not in c]
        assert empty and all(re.sub(r"<[^>]+>", "", c).strip() == "" for c in empty)


def test_notes_show_one_escaped_line_of_plain_text(tmp_path: Path) -> None:
    path = tmp_path / "runstore.db"
    conn = _store.connect(path)
    notes = ("## Sweep **winner** <script>alert(1)</script>\n\n- [link](http://x) item\n"
             "more `code`")
    add_run(conn, "p", "a", "a", notes=notes)
    add_run(conn, "p", "b", "b", notes="x" * 200)
    conn.close()
    view, run_list = ui_get(path, "/runstore/runs~2Fp?_sort=name", "/runstore/run_list?_sort=name")
    for page in (view, run_list):
        assert page.status_code == 200
        cells = re.findall(r'<td class="col-notes[^"]*"[^>]*>(.*?)</td>', page.text, re.S)
        assert len(cells) == 2
        first = re.search(r'<span class="runstore-note" title="([^"]*)">([^<]*)</span>',
                          cells[0], re.S)
        assert first, cells[0]
        assert first.group(2) == "Sweep winner alert(1)\u2026"  # one line, Markdown gone
        assert "<script>alert" not in page.text and "<script>" not in cells[0]
        assert "&lt;script&gt;" in first.group(1) and "**winner**" in first.group(1)
        assert "\n" in first.group(1)  # the full text in the title
        long = re.search(r'<span class="runstore-note" title="x{200}">(x+)\u2026</span>', cells[1])
        assert long and len(long.group(1)) == 80


def test_run_list_and_runs_suggest_no_facets(store: Path) -> None:
    """Their facets are declared; Datasette's suggestions (a query per column, ~0.5 s at
    10,000 runs) are asked off, as on the project views. Other tables keep them."""
    responses = ui_get(store, *(f"/runstore/{t}.json?_extra=suggested_facets"
                                for t in ("run_list", "runs", "run_records")))
    run_list, runs, records = (r.json() for r in responses)
    assert run_list["suggested_facets"] == [] and runs["suggested_facets"] == []
    assert records["suggested_facets"], "a table the store does not declare lost them"
