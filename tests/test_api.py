"""The read API and the raw SQL views agree with what was logged."""

from __future__ import annotations

import sqlite3

import pytest

import runstore
from helpers import query


def make_runs(new_run):
    first = new_run(id="r1", name="one", config={"lr": 0.01}, tags=["base"], notes="n",
                    group="g", job_type="train")
    for i in range(10):
        first.log({"loss": 10 - i, "acc": i / 10})
    first.finish()
    second = new_run(id="r2", name="two", config={"lr": 0.1})
    second.log({"loss": 1})
    second.finish(exit_code=1)
    return first, second


def test_run_round_trip(new_run, store_dir):
    make_runs(new_run)
    api = runstore.Api(store_dir)
    run = api.run("proj/r1")
    assert (run.id, run.name, run.state, run.tags, run.notes, run.group, run.job_type) == (
        "r1", "one", "finished", ["base"], "n", "g", "train")
    assert run.config == {"lr": 0.01} and run.summary == {"loss": 1.0, "acc": 0.9}
    assert run.created_at and run.commit is None and run.exit_code == 0
    assert api.run(run.path).id == "r1"
    assert run.metric_keys() == ["acc", "loss"]
    rows = list(run.scan_history())
    assert [r["_step"] for r in rows] == list(range(10))
    assert {"_step", "_runtime", "_timestamp", "loss", "acc"} == set(rows[0])
    assert run.history(keys=["loss"]) == [{"_step": i, "loss": 10.0 - i} for i in range(10)]
    assert list(run.scan_history(keys=["loss", "missing"])) == []


def test_runs_newest_first_and_by_project(new_run, store_dir):
    make_runs(new_run)
    new_run(id="elsewhere", project="other").finish()
    api = runstore.Api(store_dir)
    assert [r.id for r in api.runs("proj")] == ["r2", "r1"]
    assert {r.id for r in api.runs()} == {"r1", "r2", "elsewhere"}
    assert api.runs("proj")[0].state == "failed"


def test_unknown_runs_and_stores_are_clear_errors(new_run, store_dir, tmp_path):
    make_runs(new_run)
    api = runstore.Api(store_dir)
    with pytest.raises(runstore.RunNotFound, match="proj/nope"):
        api.run("proj/nope")
    with pytest.raises(runstore.UsageError, match="project/id"):
        api.run("just-an-id")
    with pytest.raises(runstore.RunNotFound, match="no runstore at"):
        runstore.Api(tmp_path / "empty")
    assert issubclass(runstore.RunNotFound, runstore.Error)


def test_history_pandas(new_run, store_dir):
    pd = pytest.importorskip("pandas")
    make_runs(new_run)
    frame = runstore.Api(store_dir).run("proj/r1").history(pandas=True)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 10


def test_sql_views_answer_the_common_questions(new_run, store_dir):
    make_runs(new_run)
    assert query(store_dir, "SELECT id FROM runs WHERE json_extract(config, '$.lr') = 0.01") == [
        ("r1",)]
    best = query(store_dir, "SELECT run_id, min(value) FROM metrics WHERE key = 'loss' "
                            "GROUP BY run_id ORDER BY run_id")
    assert best == [("r1", 1.0), ("r2", 1.0)]
    assert query(store_dir, "SELECT name, state FROM run_list ORDER BY name") == [
        ("one", "finished"), ("two", "failed")]
    assert query(store_dir, "SELECT run_id, tag FROM run_tags") == [("r1", "base")]
    assert ("r2", "lr", 0.1) in query(store_dir, "SELECT run_id, key, value FROM config_values")
    assert ("r1", "acc", 0.9) in query(store_dir, "SELECT run_id, key, value FROM summary_values")
    plan = " ".join(str(r) for r in query(
        store_dir, "EXPLAIN QUERY PLAN SELECT step, value FROM history "
                   "WHERE run_key = 1 AND key_id = 1 ORDER BY step"))
    assert "PRIMARY KEY" in plan and "TEMP B-TREE" not in plan


def test_a_first_version_store_upgrades_in_place(tmp_path):
    import sqlite3

    from runstore._store import _schema

    path = tmp_path / "old" / "runstore.db"
    path.parent.mkdir()
    conn = sqlite3.connect(path)
    first = _schema.migrations()[0][1]
    conn.executescript(first.read_text() + "\nPRAGMA user_version = 1;")
    conn.execute("INSERT INTO runs (entity, project, id, name, created_at, summary) VALUES "
                 "('e', 'p', 'old', 'old-run', '2025-01-01T00:00:00+00:00', '{\"x\": 1}')")
    conn.commit()
    conn.close()
    run = runstore.Api(path.parent).run("p/old")
    assert (run.name, run.summary, run.lineage()) == ("old-run", {"x": 1}, [])
    assert query(path.parent, "PRAGMA user_version") == [(_schema.latest_version(),)]
    assert query(path.parent, "SELECT resume_count FROM runs") == [(0,)]


def test_run_rows_have_the_columns_their_type_declares(new_run, store_dir):
    from runstore import _store

    make_runs(new_run)
    conn = _store.connect(store_dir / "runstore.db")
    try:
        row = _store.get_run(conn, "proj", "r1")
        listed = _store.list_runs(conn, "proj")
    finally:
        conn.close()
    declared = set(_store.RunRow.__annotations__)
    assert set(row) == declared and all(set(r) == declared for r in listed)
    assert declared == {*_store.RUN_COLUMNS, "run_key", "resume_count", "recorded_state"}


def test_api_is_a_context_manager_and_opens_a_store_by_its_db_file(new_run, store_dir):
    run = new_run(id="cm")
    run.log({"a": 1})
    run.finish()
    with runstore.Api(store_dir / "runstore.db") as api:  # the file, or its directory
        assert api.run("proj/cm").history() == runstore.Api(store_dir).run("proj/cm").history()
    with pytest.raises(sqlite3.ProgrammingError):  # closed on leaving the block
        api.runs()


def test_cli_reports_library_errors_in_one_line_and_closes_its_api(new_run, store_dir,
                                                                  monkeypatch):
    from click.testing import CliRunner

    from runstore import _api
    from runstore._cli import main

    new_run(id="x").finish()
    closed = []
    close = _api.Api.close
    monkeypatch.setattr(_api.Api, "close", lambda self: closed.append(close(self)))
    listed = CliRunner().invoke(main, ["ls", str(store_dir)])
    assert listed.exit_code == 0 and "x" in listed.output and len(closed) == 1
    refused = CliRunner().invoke(main, ["ls", str(store_dir), "--project", "a/b/c"])
    assert refused.exit_code == 1 and len(closed) == 2
    assert refused.output == ("Error: runs path 'a/b/c' must be 'project' or "
                              "'entity/project'\n")
    missing = CliRunner().invoke(main, ["unrewind", "proj/nope", "--dir", str(store_dir)])
    assert missing.exit_code == 1 and missing.output.startswith("Error: no run 'proj/nope'")
    assert len(closed) == 3
