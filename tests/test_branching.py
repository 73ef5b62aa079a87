"""resume, resume_from (rewind) and fork_from: the table of cases, restores, lineage."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

import runstore
from helpers import query
from runstore._cli import main as cli


def logged(store_dir, run_id, project="proj"):
    return runstore.Api(store_dir).run(f"{project}/{run_id}")


def make_source(new_run, run_id="src", steps=10, **kwargs):
    run = new_run(id=run_id, config={"lr": 0.1}, tags=["t1"], notes="orig", **kwargs)
    run.define_metric("acc", summary="max")
    for i in range(steps):
        run.log({"loss": float(steps - i), "acc": float(i)})
    return run


# -- resume ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["allow", "must", "auto", True])
def test_resume_existing_run_continues_it(new_run, store_dir, mode):
    make_source(new_run).finish(exit_code=1)
    run = new_run(id="src", resume=mode)
    assert run.resumed and run.step == 10
    assert run.summary["acc"] == {"max": 9.0} and run.summary["loss"] == 1.0
    assert run.config.lr == 0.1 and run.tags == ("t1",) and run.notes == "orig"
    run.log({"loss": 0.5, "acc": 20.0})
    run.finish()
    api_run = logged(store_dir, "src")
    assert api_run.state == "finished" and api_run.summary["acc"] == {"max": 20.0}
    assert [r["_step"] for r in api_run.history(keys=["loss"])] == list(range(11))
    assert query(store_dir, "SELECT resume_count FROM runs") == [(1,)]
    assert [e["relation"] for e in api_run.lineage()] == ["resume"]


@pytest.mark.parametrize("mode", ["allow", "auto", "never", True])
def test_resume_missing_run_creates_it(new_run, store_dir, mode):
    run = new_run(id="fresh", resume=mode)
    assert not run.resumed and run.step == 0
    run.finish()
    assert logged(store_dir, "fresh").state == "finished"


def test_resume_must_missing_and_never_existing_are_errors(new_run):
    with pytest.raises(runstore.UsageError, match="no run 'ghost' in project .*proj"):
        new_run(id="ghost", resume="must")
    new_run(id="here").finish()
    with pytest.raises(runstore.UsageError, match="'here' in project .*proj already exists"):
        new_run(id="here", resume="never")
    with pytest.raises(runstore.UsageError, match="resume="):
        new_run(id="here")


def test_resume_merges_config_and_replaces_tags(new_run, store_dir):
    make_source(new_run).finish()
    with pytest.raises(runstore.UsageError, match="allow_val_change"):
        new_run(id="src", resume="allow", config={"lr": 0.5})
    run = new_run(id="src", resume="allow", config={"batch": 8}, tags=["t2"], name="renamed")
    assert dict(run.config.items()) == {"lr": 0.1, "batch": 8}
    assert run.tags == ("t2",) and run.name == "renamed"
    run.finish()
    run = new_run(id="src", resume="allow", config={"lr": 0.5}, allow_val_change=True)
    assert run.config.lr == 0.5
    run.finish()
    assert logged(store_dir, "src").config == {"lr": 0.5, "batch": 8}


def test_resume_auto_picks_up_a_failed_run_only(new_run, store_dir):
    first = new_run(resume="auto")
    assert json.loads((store_dir / "runstore-resume.json").read_text()) == {"run_id": first.id}
    first.finish(exit_code=1)
    again = new_run(resume="auto")
    assert again.id == first.id and again.resumed
    again.finish()
    assert not (store_dir / "runstore-resume.json").exists()
    fresh = new_run(resume="auto")
    assert fresh.id != first.id
    fresh.finish(exit_code=2)
    with pytest.warns(UserWarning, match="ignoring run id"):
        explicit = new_run(resume="auto", id="mine")
    assert explicit.id == "mine"


def test_resume_from_env_var(new_run, monkeypatch):
    make_source(new_run).finish()
    monkeypatch.setenv("RUNSTORE_RESUME", "must")
    assert new_run(id="src").resumed
    runstore.finish()
    with pytest.raises(runstore.UsageError, match="mutually exclusive"):
        new_run(fork_from="src?_step=1")


def test_resuming_a_live_run_is_refused(new_run):
    make_source(new_run)  # still running, in this very process
    with pytest.raises(runstore.UsageError, match="live in process"):
        new_run(id="src", resume="allow", reinit="create_new")


# -- rewind ------------------------------------------------------------------------------


def test_rewind_archives_the_tail_and_continues(new_run, store_dir):
    make_source(new_run).finish()
    run = new_run(resume_from="src?_step=4")
    assert run.id == "src" and run.step == 5
    assert run.summary["acc"] == {"max": 4.0} and run.summary["loss"] == 6.0
    run.log({"loss": 100.0, "acc": -1.0})
    run.finish()
    api_run = logged(store_dir, "src")
    rows = api_run.history(keys=["loss"])
    assert [(r["_step"], r["loss"]) for r in rows] == [
        (i, 10.0 - i) for i in range(5)] + [(5, 100.0)]
    assert api_run.summary["acc"] == {"max": 4.0} and api_run.summary["loss"] == 100.0
    assert query(store_dir, "SELECT count(*), min(step), max(step) FROM history_archive") == [
        (10, 5, 9)]
    (rewind,) = api_run.rewinds
    assert (rewind["step"], rewind["rows_moved"], rewind["undone_at"]) == (4, 10, None)
    assert query(store_dir, "SELECT relation, run_id, parent_id, step FROM run_lineage") == [
        ("rewind", "src", "src", 4)]


def test_unrewind_restores_the_tail_and_keeps_what_came_after(new_run, store_dir):
    make_source(new_run).finish()
    run = new_run(resume_from="src?_step=4")
    run.log({"loss": 100.0})
    run.finish()
    restored = runstore.Api(store_dir).unrewind("proj/src")
    assert [r["_step"] for r in restored.history(keys=["loss"])] == list(range(10))
    assert restored.summary["loss"] == 1.0 and restored.summary["acc"] == {"max": 9.0}
    assert restored.rewinds[0]["undone_at"] is not None
    # The point logged after the rewind is archived, not lost: undo again brings it back.
    assert query(store_dir, "SELECT step, value FROM history_archive") == [(5, 100.0)]
    result = CliRunner().invoke(cli, ["unrewind", "proj/src", "--dir", str(store_dir)])
    assert result.exit_code == 0, result.output
    assert [r["loss"] for r in logged(store_dir, "src").history(keys=["loss"])] == [
        10.0, 9.0, 8.0, 7.0, 6.0, 100.0]
    result = CliRunner().invoke(cli, ["unrewind", "proj/nope", "--dir", str(store_dir)])
    assert result.exit_code == 1 and "no run" in result.output


def test_unrewind_with_nothing_logged_since_adds_no_empty_rewind(new_run, store_dir):
    make_source(new_run).finish()
    new_run(resume_from="src?_step=4").finish()
    restored = runstore.Api(store_dir).unrewind("proj/src")
    assert len(restored.history()) == 10
    assert [r["undone_at"] is not None for r in restored.rewinds] == [True]
    with pytest.raises(runstore.UsageError, match="no rewind to undo"):
        runstore.Api(store_dir).unrewind("proj/src")


def test_unrewind_of_a_run_deleted_meanwhile_is_run_not_found(new_run, store_dir, monkeypatch):
    make_source(new_run).finish()
    new_run(resume_from="src?_step=4").finish()
    api = runstore.Api(store_dir)
    read_before = api.run("proj/src")
    with sqlite3.connect(store_dir / "runstore.db") as conn:  # commits
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("DELETE FROM run_records WHERE id = 'src'")
    # As if another process deleted the run between unrewind's read and its transaction.
    monkeypatch.setattr(api, "run", lambda path: read_before)
    with pytest.raises(runstore.RunNotFound, match="no run 'proj/src'"):
        api.unrewind("proj/src")
    api.close()


def test_rewind_with_a_different_id_warns_and_wins(new_run):
    make_source(new_run).finish()
    with pytest.warns(UserWarning, match="resume_from takes precedence"):
        run = new_run(resume_from="src?_step=2", id="other")
    assert run.id == "src" and run.step == 3


@pytest.mark.parametrize(
    ("moment", "match"),
    [
        ("src", "is not of the form"),
        ("src?_step=-1", "is not of the form"),
        ("src?_step=1.5", "is not of the form"),
        ("src?step=1", "is not of the form"),
        ("src?_step=1&x=2", "is not of the form"),
        ("src?_step=99", "its last step is 9"),
        ("nope?_step=1", "no run 'nope'"),
    ],
)
@pytest.mark.parametrize("argument", ["resume_from", "fork_from"])
def test_moment_errors(new_run, store_dir, moment, match, argument):
    make_source(new_run).finish()
    with pytest.raises(runstore.UsageError, match=match):
        new_run(**{argument: moment})
    assert query(store_dir, "SELECT count(*) FROM runs") == [(1,)]
    assert query(store_dir, "SELECT count(*) FROM history") == [(20,)]


@pytest.mark.parametrize(
    ("step", "match"),
    [
        ("١٢", "is not of the form"),  # Arabic-Indic 12: int() and \d take it
        ("²", "is not of the form"),
        ("1_0", "is not of the form"),
        (" 1", "is not of the form"),
        ("1\n", "is not of the form"),
        (str(2**63), "beyond SQLite's integer range"),
        ("9" * 30, "beyond SQLite's integer range"),
        ("9" * 5000, r"99999\.\.\. \(5000 digits\) is beyond"),  # int() raises ValueError
    ],
)
@pytest.mark.parametrize("argument", ["resume_from", "fork_from"])
def test_moment_steps_are_ascii_digits_within_int64(new_run, store_dir, step, match, argument):
    make_source(new_run, steps=20).finish()
    with pytest.raises(runstore.UsageError, match=match):
        new_run(**{argument: f"src?_step={step}"})
    assert query(store_dir, "SELECT count(*) FROM runs") == [(1,)]
    assert len(logged(store_dir, "src").history()) == 20
    run = new_run(resume_from="src?_step=0012")  # leading zeros are still digits
    assert run.step == 13


def test_rewind_in_another_project_is_refused(new_run):
    make_source(new_run).finish()
    with pytest.raises(runstore.UsageError, match="no run 'src' in project .*/other"):
        new_run(resume_from="src?_step=1", project="other")


# -- fork --------------------------------------------------------------------------------


def test_fork_copies_steps_up_to_and_including_the_fork_step(new_run, store_dir):
    make_source(new_run).finish()
    fork = new_run(fork_from="src?_step=6", config={"lr": 0.01})
    assert fork.id != "src" and fork.step == 7 and not fork.resumed
    assert fork.summary["acc"] == {"max": 6.0}
    fork.log({"loss": 0.0, "acc": 1.0})
    fork.finish()
    api_fork = logged(store_dir, fork.id)
    rows = api_fork.history()
    assert [r["_step"] for r in rows] == list(range(8))
    source_rows = logged(store_dir, "src").history()
    for copied, original in zip(rows[:7], source_rows[:7], strict=True):
        assert copied == original  # values, _runtime and _timestamp copied exactly
    assert api_fork.config == {"lr": 0.01}  # the fork's own config, as wandb
    assert (api_fork.forked_from, api_fork.fork_step) == ("src", 6)
    assert logged(store_dir, "src").history(keys=["loss"])[-1]["_step"] == 9  # untouched
    assert [(e["relation"], e["run_id"]) for e in logged(store_dir, "src").lineage()] == [
        ("fork", fork.id)]


def test_fork_of_a_fork_is_a_tree(new_run, store_dir):
    make_source(new_run).finish()
    child = new_run(fork_from="src?_step=6", id="child")
    child.log({"loss": 0.0})
    child.finish()
    grandchild = new_run(fork_from="child?_step=7", id="grandchild")
    grandchild.finish()
    assert logged(store_dir, "grandchild").forked_from == "child"
    assert len(logged(store_dir, "grandchild").history()) == 8
    lineage = query(store_dir, "SELECT run_id, parent_id, step FROM run_lineage "
                               "WHERE relation = 'fork' ORDER BY event_id")
    assert lineage == [("child", "src", 6), ("grandchild", "child", 7)]


def test_fork_with_the_source_id_is_an_error(new_run):
    make_source(new_run).finish()
    with pytest.raises(runstore.UsageError, match="source's id"):
        new_run(fork_from="src?_step=1", id="src")


def test_branching_arguments_are_mutually_exclusive(new_run):
    make_source(new_run).finish()
    with pytest.raises(runstore.UsageError, match="resume_from and fork_from"):
        new_run(resume_from="src?_step=1", fork_from="src?_step=1")
    with pytest.raises(runstore.UsageError, match="resume and resume_from"):
        new_run(resume="allow", resume_from="src?_step=1")
