"""init(): arguments, identity, settings, reinit, disabled mode and git facts."""

from __future__ import annotations

import json
import re
import subprocess
import warnings

import pytest

import runstore
from helpers import git_repo, query
from runstore import _store


def run_row(store_dir, run_id):
    cols = ("entity", "project", "id", "name", "notes", "tags", "run_group", "job_type",
            "state", "host", "pid", "os_user", "program", "args", "python_version",
            "git_commit", "git_remote", "git_branch", "git_dirty", "created_at")
    (row,) = query(store_dir, f"SELECT {', '.join(cols)} FROM runs WHERE id = ?", (run_id,))
    return dict(zip(cols, row, strict=True))


def test_run_row_records_identity_and_process(new_run, store_dir):
    run = new_run(entity="me", name="first", notes="why", tags=["a", "b"], group="g",
                  job_type="train", id="abc123")
    assert (run.id, run.name, run.notes, run.tags, run.group, run.job_type) == (
        "abc123", "first", "why", ("a", "b"), "g", "train")
    assert run.path == "me/proj/abc123"
    row = run_row(store_dir, "abc123")
    assert row["entity"] == "me" and row["project"] == "proj" and row["state"] == "running"
    assert json.loads(row["tags"]) == ["a", "b"] and row["run_group"] == "g"
    assert row["pid"] > 0 and row["host"] and row["os_user"] and row["python_version"]
    assert re.match(r"\d{4}-\d\d-\d\dT", row["created_at"])
    assert query(store_dir, "PRAGMA journal_mode") == [("wal",)]


def test_defaults_generate_id_and_name(new_run, store_dir):
    run = new_run()
    assert re.fullmatch(r"[a-z0-9]{8}", run.id)
    assert re.fullmatch(r"[a-z]+-[a-z]+-1", run.name)
    run.finish()
    run2 = new_run()
    assert run2.name.endswith("-2") and run2.id != run.id


def test_default_dir_is_runstore_in_cwd_and_env_overrides(tmp_path, monkeypatch):
    run = runstore.init(project="p")
    run.finish()
    assert (tmp_path / "work" / "runstore" / "runstore.db").exists()
    monkeypatch.setenv("RUNSTORE_DIR", str(tmp_path / "elsewhere"))
    runstore.init(project="p").finish()
    assert (tmp_path / "elsewhere" / "runstore.db").exists()


@pytest.mark.parametrize("bad", ["a/b", "a\\b", "a#b", "a?b", "a%b", "a:b", "", " x"])
def test_forbidden_id_characters(new_run, bad):
    with pytest.raises(runstore.UsageError, match="run id"):
        new_run(id=bad)


def test_forbidden_project_characters(new_run):
    with pytest.raises(runstore.UsageError, match="project"):
        new_run(project="a/b")


def test_reusing_an_id_without_resume_is_a_usage_error(new_run, store_dir):
    new_run(id="same").finish()
    with pytest.raises(runstore.UsageError, match="resume="):
        new_run(id="same")
    assert isinstance(runstore.UsageError("x"), ValueError)
    # Another project may use the same id.
    new_run(id="same", project="other").finish()
    assert query(store_dir, "SELECT count(*) FROM runs") == [(2,)]


def test_bad_tags(new_run):
    with pytest.raises(runstore.UsageError, match="1 to 64"):
        new_run(tags=["x" * 65])
    with pytest.raises(runstore.UsageError, match="1 to 64"):
        new_run(tags=[""])


def test_single_string_tag(new_run):
    assert new_run(tags="solo").tags == ("solo",)


def test_setters_persist_at_once(new_run, store_dir):
    run = new_run(tags=["a"])
    run.name = "renamed"
    run.notes = "new notes"
    run.tags += ("b",)
    row = run_row(store_dir, run.id)
    assert (row["name"], row["notes"], json.loads(row["tags"])) == (
        "renamed", "new notes", ["a", "b"])
    with pytest.warns(RuntimeWarning, match="tags not updated"):
        run.tags = ["y" * 100]
    assert run.tags == ("a", "b")
    assert query(store_dir, "SELECT tag FROM run_tags ORDER BY tag") == [("a",), ("b",)]


def test_names_and_notes_follow_one_rule_in_init_setters_and_the_ui(new_run, store_dir):
    for bad in ("   ", "\t\n", "\u3000"):
        with pytest.raises(runstore.UsageError, match="name must be non-empty"):
            new_run(name=bad)
    with pytest.raises(runstore.UsageError, match="notes must be a string, got int"):
        new_run(notes=42)
    assert not (store_dir / "runstore.db").exists()  # refused before the store is opened
    run = new_run(name="", notes=None)  # "" asks for a generated name, as in wandb
    named = run.name
    assert re.fullmatch(r"[a-z]+-[a-z]+-1", named)
    with pytest.warns(RuntimeWarning, match="name must be non-empty.*; name not updated"):
        run.name = "   "
    with pytest.warns(RuntimeWarning, match="name must be non-empty.*; name not updated"):
        run.name = 42
    with pytest.warns(RuntimeWarning, match="notes must be a string, got int; notes not updated"):
        run.notes = 42
    assert (run.name, run.notes) == (named, None)
    row = run_row(store_dir, run.id)
    assert (row["name"], row["notes"]) == (named, None)
    # The UI's edit refuses the same values with the same words.
    ((run_key,),) = query(store_dir, "SELECT run_key FROM runs WHERE id = ?", (run.id,))
    conn = _store.connect(store_dir / "runstore.db")
    for field, value, words in (("name", "   ", "name must be non-empty"),
                                ("notes", 42, "notes must be a string, got int")):
        with pytest.raises(runstore.UsageError, match=words):
            _store.set_run_fields(conn, run_key, **{field: value})
    conn.close()
    run.finish()


def test_settings_object_dict_and_unknown_keys(new_run):
    with pytest.raises(runstore.UsageError, match="unknown setting 'bogus'"):
        new_run(settings={"bogus": 1})
    with pytest.raises(runstore.UsageError, match="unknown setting 'bogus'"):
        runstore.Settings(bogus=1)
    with pytest.raises(runstore.UsageError, match="must be a runstore.Settings or a dict"):
        new_run(settings=3)
    run = new_run(settings=runstore.Settings(run_name="from-settings"))
    assert run.name == "from-settings"


def test_precedence_args_settings_env(new_run, monkeypatch):
    monkeypatch.setenv("WANDB_NAME", "wandb-env")
    assert new_run().name == "wandb-env"
    runstore.finish()
    monkeypatch.setenv("RUNSTORE_NAME", "runstore-env")
    assert new_run().name == "runstore-env"
    runstore.finish()
    assert new_run(settings={"run_name": "settings"}).name == "settings"
    runstore.finish()
    assert new_run(name="arg", settings={"run_name": "settings"}).name == "arg"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "sideways"}, "mode='sideways'"),
        ({"resume": "allow", "fork_from": "x?_step=1"}, "mutually exclusive"),
        ({"resume": "must"}, "there is no run"),
        ({"resume": "sometimes"}, "resume='sometimes'"),
        ({"resume_from": "x?_step=1"}, "there is no run 'x'"),
        ({"anonymous": "sometimes"}, "anonymous="),
        ({"reinit": "maybe"}, "reinit="),
    ],
)
def test_argument_errors(new_run, kwargs, match):
    with pytest.raises(runstore.UsageError, match=match):
        new_run(**kwargs)


def test_unsupported_arguments_warn_clearly(new_run):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        new_run(tensorboard=True)
    text = " ".join(str(w.message) for w in caught)
    assert "tensorboard" in text


def test_anonymous_must_records_anonymous_entity(new_run):
    assert new_run(anonymous="must", entity="me").entity == "anonymous"


def test_reinit_false_returns_the_active_run_and_true_replaces_it(new_run, store_dir):
    first = new_run()
    assert new_run(name="ignored") is first
    assert runstore.run is first
    second = new_run(reinit=True)
    assert second is not first and runstore.run is second
    states = dict(query(store_dir, "SELECT id, state FROM runs"))
    assert states == {first.id: "finished", second.id: "running"}


def test_reinit_create_new_keeps_globals_and_logs_independently(new_run, store_dir):
    main = new_run()
    extra = new_run(reinit="create_new")
    assert runstore.run is main and extra is not main
    main.log({"a": 1})
    extra.log({"a": 2})
    extra.log({"a": 3})
    main.finish()
    extra.finish()
    counts = dict(query(store_dir, "SELECT run_key, count(*) FROM history GROUP BY run_key"))
    assert sorted(counts.values()) == [1, 2]


def test_module_globals_follow_the_run(new_run, store_dir):
    run = new_run(config={"lr": 1})
    assert runstore.run is run and runstore.config.lr == 1
    runstore.log({"x": 1})
    runstore.summary["best"] = 5
    runstore.finish()
    assert runstore.run is None
    with pytest.raises(runstore.Error):
        runstore.summary["best"]
    assert runstore.Api(store_dir).run(f"proj/{run.id}").summary == {"x": 1.0, "best": 5}


def test_disabled_mode_works_and_writes_nothing(tmp_path):
    before = set(tmp_path.rglob("*"))
    run = runstore.init(mode="disabled", config={"lr": 1}, dir=tmp_path / "nostore")
    assert run.disabled and run.name.startswith("dummy-")
    run.log({"loss": 0.5})
    run.log({"loss": 0.25})
    assert run.summary["loss"] == 0.25
    with pytest.raises(runstore.UsageError):
        run.config.lr = 2
    run.tags = ("x",)
    run.notes = "n"
    run.define_metric("loss", summary="min")
    run.save()
    run.finish()
    assert set(tmp_path.rglob("*")) == before


def test_context_manager_finishes_and_marks_failures(new_run, store_dir):
    with new_run(id="ok") as run:
        run.log({"a": 1})
    with pytest.raises(RuntimeError), new_run(id="bad"):
        raise RuntimeError("boom")
    rows = dict((r[0], r[1:]) for r in query(store_dir, "SELECT id, state, exit_code FROM runs"))
    assert rows == {"ok": ("finished", 0), "bad": ("failed", 1)}


def test_finish_exit_code_and_runtime(new_run, store_dir):
    run = new_run()
    run.finish(exit_code=3)
    run.finish()  # idempotent
    ((state, code, runtime, finished),) = query(
        store_dir, "SELECT state, exit_code, runtime, finished_at FROM runs")
    assert (state, code) == ("failed", 3) and runtime >= 0 and finished


def test_git_facts_recorded_in_a_repository(tmp_path, monkeypatch, store_dir):
    repo = git_repo(tmp_path / "repo", "https://user:secret@example.com/me/repo.git",
                    "print(1)\n")
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                         text=True, check=True).stdout.strip()
    monkeypatch.chdir(repo)
    run = runstore.init(dir=store_dir)
    assert run.project == "repo"  # inferred from the repository's name
    run.finish()
    row = run_row(store_dir, run.id)
    assert row["git_commit"] == sha and row["git_branch"] == "main"
    assert row["git_remote"] == "https://example.com/me/repo.git" and row["git_dirty"] == 0
    (repo / "train.py").write_text("print(2)\n")
    run2 = runstore.init(dir=store_dir)
    run2.finish()
    assert run_row(store_dir, run2.id)["git_dirty"] == 1
    monkeypatch.setenv("RUNSTORE_DISABLE_GIT", "true")
    run3 = runstore.init(dir=store_dir, project="repo")
    run3.finish()
    assert run_row(store_dir, run3.id)["git_commit"] is None


def test_no_git_outside_a_repository(new_run, store_dir):
    run = new_run()
    run.finish()
    row = run_row(store_dir, run.id)
    assert row["git_commit"] is None and row["git_remote"] is None
