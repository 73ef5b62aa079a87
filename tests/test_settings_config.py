"""Issue 4: config sources and errors, allow_val_change in notebooks, the environment and
its precedence, project inference, anonymous, and a wandb script run unchanged."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import runstore
from helpers import query


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def run_count(store_dir) -> int:
    if not (store_dir / "runstore.db").exists():
        return 0
    return query(store_dir, "SELECT count(*) FROM runs")[0][0]


def stored(store_dir, run, column):
    (value,) = query(store_dir, f"SELECT {column} FROM runs WHERE project = ? AND id = ?",
                     (run.project, run.id))[0]
    return value


def _git(cwd, *args):
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                   cwd=cwd, check=True, capture_output=True)


def _child(cwd, *args, stdin=None, **env):
    """A real `python ARGS` process with only the given RUNSTORE_*/WANDB_* variables."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("RUNSTORE_", "WANDB_"))},
           **env}
    done = subprocess.run([sys.executable, *args], cwd=cwd, input=stdin, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done


# --- config sources ---------------------------------------------------------------------

EXPECTED = {"lr": 0.1, "epochs": 5, "opt": "adam"}


def _absl(tmp_path):
    from absl import flags

    fv = flags.FlagValues()
    flags.DEFINE_float("lr", 0.1, "learning rate", flag_values=fv)
    flags.DEFINE_integer("epochs", 3, "epochs", flag_values=fv)
    flags.DEFINE_string("opt", "adam", "optimizer", flag_values=fv)
    fv(["prog", "--epochs=5"])
    assert hasattr(fv, "flag_values_dict")
    return fv


def _yaml_file(text):
    return lambda tmp_path: str(write(tmp_path / "c.yaml", text))


SOURCES = {
    "dict": lambda tmp_path: dict(EXPECTED),
    "namespace": lambda tmp_path: argparse.Namespace(**EXPECTED),
    "absl": _absl,
    "wandb-yaml": _yaml_file("wandb_version: 1\nlr: {desc: learning rate, value: 0.1}\n"
                             "epochs: {value: 5}\nopt:\n  desc: null\n  value: adam\n"),
    "plain-yaml": _yaml_file("lr: 0.1\nepochs: 5\nopt: adam\n"),
}


@pytest.mark.parametrize("source", SOURCES)
def test_config_sources(new_run, store_dir, tmp_path, source):
    run = new_run(config=SOURCES[source](tmp_path))
    assert dict(run.config.items()) == EXPECTED
    run.finish()
    assert json.loads(stored(store_dir, run, "config")) == EXPECTED


def test_yaml_value_dicts_that_are_not_wandb_form_stay_nested(new_run, tmp_path):
    path = write(tmp_path / "c.yaml", "sched: {value: 3, kind: cos}\nempty: {}\n")
    assert dict(new_run(config=str(path)).config.items()) == {
        "sched": {"value": 3, "kind": "cos"}, "empty": {}}


def test_config_defaults_yaml_is_loaded_first_and_explicit_config_wins(new_run, store_dir):
    write(Path.cwd() / "config-defaults.yaml", """\
        wandb_version: 1
        lr: {value: 0.5, desc: from defaults}
        epochs: 10
        """)
    run = new_run(config={"lr": 0.1})  # overriding a default is not a "value change"
    assert dict(run.config.items()) == {"lr": 0.1, "epochs": 10}
    run.finish()
    assert new_run().config.epochs == 10


def test_config_paths_env_merges_yaml_files(new_run, tmp_path, monkeypatch):
    (tmp_path / "work" / "config-defaults.yaml").write_text("a: 0\nd: 0\n")
    first = write(tmp_path / "first.yaml", "a: 1\nb: 1\n")
    second = write(tmp_path / "second.yaml", "b: {value: 2}\nc: 2\n")
    monkeypatch.setenv("WANDB_CONFIG_PATHS", f"{first}, {second}")
    assert dict(new_run(reinit=True, config={"c": 3}).config.items()) == {
        "a": 1, "b": 2, "c": 3, "d": 0}
    monkeypatch.setenv("RUNSTORE_CONFIG_PATHS", str(second))  # wins over WANDB_CONFIG_PATHS
    assert dict(new_run(reinit=True).config.items()) == {"a": 0, "b": 2, "c": 2, "d": 0}


def test_include_and_exclude_keys_filter_the_given_config(new_run, tmp_path):
    (tmp_path / "work" / "config-defaults.yaml").write_text("seed: 7\n")
    path = str(write(tmp_path / "c.yaml", "lr: 0.1\nepochs: 5\ntoken: secret\n"))
    run = new_run(config=path, config_include_keys=["lr", "epochs"])
    assert dict(run.config.items()) == {"seed": 7, "lr": 0.1, "epochs": 5}  # as wandb does
    run.finish()
    run = new_run(config=argparse.Namespace(lr=1, token="s"), config_exclude_keys=["token"])
    assert dict(run.config.items()) == {"seed": 7, "lr": 1}


# --- config errors: UsageError naming the file or key, and no run created ----------------

CONFIG_ERRORS = {  # where the bad config comes from, its content, what the message names
    "missing file": ("config", None, "bad.yaml"),
    "malformed yaml": ("config", "lr: [1, 2\nepochs: 3\n", "bad.yaml"),
    "yaml list": ("config", "- 1\n- 2\n", "bad.yaml"),
    "yaml scalar": ("config", "just text\n", "bad.yaml"),
    "yaml int key": ("config", "1: 2\n", "bad.yaml"),
    "yaml dotted key": ("config", "a.b: 1\n", "'a.b'"),
    "bad config-defaults.yaml": ("defaults", "lr: [1, 2\n", "config-defaults.yaml"),
    "missing CONFIG_PATHS file": ("paths", None, "bad.yaml"),
    "bad CONFIG_PATHS file": ("paths", "[1, 2]\n", "bad.yaml"),
    "dotted key": ("value", {"opt.lr": 1}, "'opt.lr'"),
    "int key": ("value", {1: "x"}, "got 1"),
    "namespace dotted key": ("value", argparse.Namespace(**{"a.b": 1}), "'a.b'"),
}


@pytest.mark.parametrize("case", CONFIG_ERRORS)
def test_config_errors_name_the_culprit_and_create_no_run(
        new_run, store_dir, tmp_path, monkeypatch, case):
    where, content, culprit = CONFIG_ERRORS[case]
    path = tmp_path / ("work/config-defaults.yaml" if where == "defaults" else "bad.yaml")
    if where != "value" and content is not None:
        path.write_text(content)
    if where == "paths":
        monkeypatch.setenv("RUNSTORE_CONFIG_PATHS", str(path))
    kwargs = {"config": {"value": content, "config": str(path)}[where]} if where in (
        "value", "config") else {}
    with pytest.raises(runstore.UsageError) as info:
        new_run(**kwargs)
    assert culprit in str(info.value)
    assert run_count(store_dir) == 0
    assert runstore.run is None


# --- allow_val_change and reinit in notebooks ---------------------------------------------

def _fake_ipython(monkeypatch, shell_class_name):
    shell = type(shell_class_name, (), {})()
    module = types.ModuleType("IPython")
    module.get_ipython = lambda: shell
    monkeypatch.setitem(sys.modules, "IPython", module)


def test_script_default_forbids_config_changes(new_run, monkeypatch):
    _fake_ipython(monkeypatch, "TerminalInteractiveShell")  # IPython, but not a kernel
    run = new_run(config={"lr": 0.1})
    with pytest.raises(runstore.UsageError, match="allow_val_change"):
        run.config.lr = 0.2
    assert new_run() is run  # reinit "default" in a script: return_previous


def test_notebook_allows_config_changes_and_reinit_finishes_previous(
        new_run, store_dir, monkeypatch):
    _fake_ipython(monkeypatch, "ZMQInteractiveShell")
    first = new_run(config={"lr": 0.1})
    first.config.lr = 0.2
    first.config.update({"lr": 0.3})
    assert json.loads(stored(store_dir, first, "config")) == {"lr": 0.3}
    second = new_run(config={"lr": 1})
    assert second is not first and runstore.run is second
    assert stored(store_dir, first, "state") == "finished"
    assert stored(store_dir, second, "state") == "running"
    with pytest.raises(runstore.UsageError, match="allow_val_change"):
        new_run(config={"lr": 1}, allow_val_change=False).config.lr = 2


# --- environment ------------------------------------------------------------------------

@pytest.mark.parametrize(("suffix", "arg", "column"), [
    ("PROJECT", "project", "project"), ("ENTITY", "entity", "entity"),
    ("RUN_ID", "id", "id"), ("NAME", "name", "name"), ("NOTES", "notes", "notes"),
    ("RUN_GROUP", "group", "run_group"), ("JOB_TYPE", "job_type", "job_type"),
])
def test_env_string_variables_and_precedence(store_dir, monkeypatch, suffix, arg, column):
    def start(**kwargs):
        run = runstore.init(dir=store_dir, **kwargs)
        run.finish()
        assert getattr(run, arg) == stored(store_dir, run, column)
        return getattr(run, arg)
    monkeypatch.setenv(f"WANDB_{suffix}", "from-wandb")
    assert start() == "from-wandb"
    monkeypatch.setenv(f"RUNSTORE_{suffix}", "from-runstore")
    assert start() == "from-runstore"
    assert start(**{arg: "from-arg"}) == "from-arg"


def test_env_tags(new_run, store_dir, monkeypatch):
    monkeypatch.setenv("WANDB_TAGS", "w")
    assert new_run(reinit=True).tags == ("w",)
    monkeypatch.setenv("RUNSTORE_TAGS", " a, b,,c ")
    run = new_run(reinit=True)
    assert run.tags == ("a", "b", "c")
    assert json.loads(stored(store_dir, run, "tags")) == ["a", "b", "c"]
    assert new_run(reinit=True, tags=["x"]).tags == ("x",)


def test_env_dir(tmp_path, monkeypatch):
    for var, kwargs in [("WANDB_DIR", {}), ("RUNSTORE_DIR", {}), (None, {"dir": tmp_path / "a"})]:
        if var:
            monkeypatch.setenv(var, str(tmp_path / var))
        runstore.init(project="p", **kwargs).finish()
    for name in ("WANDB_DIR", "RUNSTORE_DIR", "a"):
        assert run_count(tmp_path / name) == 1


def test_env_disable_git(tmp_path, monkeypatch, store_dir):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "init")
    monkeypatch.chdir(repo)

    def commit(**settings):
        run = runstore.init(dir=store_dir, project="p", settings=settings)
        run.finish()
        return stored(store_dir, run, "git_commit")
    assert commit() is not None
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    assert commit() is None
    monkeypatch.setenv("RUNSTORE_DISABLE_GIT", "false")
    assert commit() is not None
    assert commit(disable_git=True) is None


def test_env_silent(new_run, monkeypatch, capsys):
    def says(**settings):
        new_run(reinit=True, settings=settings).finish()
        return "runstore:" in capsys.readouterr().err
    monkeypatch.delenv("RUNSTORE_SILENT")
    assert says()
    monkeypatch.setenv("WANDB_SILENT", "true")
    assert not says()
    monkeypatch.setenv("RUNSTORE_SILENT", "false")
    assert says()
    assert not says(silent=True)


def test_env_mode_disabled(new_run, store_dir, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert new_run().disabled
    runstore.finish()
    assert not store_dir.exists()
    monkeypatch.setenv("RUNSTORE_MODE", "online")
    new_run().finish()
    assert run_count(store_dir) == 1
    monkeypatch.setenv("RUNSTORE_MODE", "disabled")
    assert new_run().disabled
    runstore.finish()
    new_run(mode="online").finish()
    assert run_count(store_dir) == 2


@pytest.mark.parametrize("name", ["RUNSTORE_DISABLE_GIT", "WANDB_DISABLE_GIT", "RUNSTORE_SILENT",
                                  "WANDB_DISABLE_CODE"])
def test_non_boolean_env_value_names_the_variable(new_run, store_dir, monkeypatch, name):
    monkeypatch.delenv("RUNSTORE_SILENT")
    monkeypatch.setenv(name, "maybe")
    with pytest.raises(runstore.UsageError, match=f"{name}='maybe'"):
        new_run()
    assert run_count(store_dir) == 0


@pytest.mark.parametrize("value", ["١٢٠", "1_000", "9" * 5000, "12.5", str(2**63)])
def test_whole_number_env_values_are_ascii_digits(new_run, store_dir, monkeypatch, value):
    monkeypatch.setenv("RUNSTORE_LOG_QUEUE_SIZE", value)
    with pytest.raises(runstore.UsageError, match="RUNSTORE_LOG_QUEUE_SIZE=.* whole number"):
        new_run()
    assert run_count(store_dir) == 0
    monkeypatch.setenv("RUNSTORE_LOG_QUEUE_SIZE", " 120 ")
    new_run().finish()
    assert run_count(store_dir) == 1


def test_explicit_resume_false_wins_over_env_resume(new_run, store_dir, monkeypatch):
    # BUG: init() maps resume=False to None, so RUNSTORE_RESUME / WANDB_RESUME fill it in
    # and an explicit "do not resume" resumes the run anyway.
    new_run(id="abc").finish()
    monkeypatch.setenv("RUNSTORE_RESUME", "allow")
    with pytest.raises(runstore.UsageError, match="resume="):
        new_run(id="abc", resume=False)  # same as passing no resume: the id is taken


def test_environment_is_read_afresh_at_each_init(store_dir, monkeypatch):
    monkeypatch.setenv("RUNSTORE_PROJECT", "first")
    monkeypatch.setenv("RUNSTORE_TAGS", "a")
    one = runstore.init(dir=store_dir)
    one.finish()
    monkeypatch.setenv("RUNSTORE_PROJECT", "second")
    monkeypatch.delenv("RUNSTORE_TAGS")
    monkeypatch.setenv("RUNSTORE_NAME", "named")
    two = runstore.init(dir=store_dir)
    two.finish()
    assert (one.project, one.tags, two.project, two.tags, two.name) == (
        "first", ("a",), "second", (), "named")
    assert query(store_dir, "SELECT project FROM runs ORDER BY run_key") == [
        ("first",), ("second",)]


# --- project inference and anonymous ------------------------------------------------------

def test_project_is_the_git_root_name_from_a_subdirectory(tmp_path, monkeypatch, store_dir):
    sub = tmp_path / "my-repo" / "src" / "deep"
    sub.mkdir(parents=True)
    _git(tmp_path / "my-repo", "init", "-q")
    monkeypatch.chdir(sub)
    run = runstore.init(dir=store_dir)
    run.finish()
    assert run.project == stored(store_dir, run, "project") == "my-repo"


def test_project_outside_a_repo_is_the_program_stem(tmp_path, store_dir):
    (tmp_path / "myscript.py").write_text("import runstore\nrunstore.init().finish()\n")
    _child(tmp_path, "myscript.py", RUNSTORE_DIR=str(store_dir))
    _child(tmp_path, "-c", "import runstore; runstore.init().finish()",
           RUNSTORE_DIR=str(store_dir))
    assert query(store_dir, "SELECT project, program FROM runs ORDER BY run_key") == [
        ("myscript", str(tmp_path / "myscript.py")), ("uncategorized", None)]


def test_program_read_from_stdin_is_not_a_program_file(tmp_path, store_dir):
    # BUG: `python -` (script piped on stdin) records project "<stdin>" and program
    # "<cwd>/<stdin>"; like `python -c`, there is no program file, so "uncategorized".
    _child(tmp_path, "-", stdin="import runstore\nrunstore.init().finish()\n",
           RUNSTORE_DIR=str(store_dir))
    assert query(store_dir, "SELECT project, program FROM runs") == [("uncategorized", None)]


@pytest.mark.parametrize(("anonymous", "entity"), [
    ("never", "me"), ("allow", "me"), ("must", "anonymous"), (None, "me"),
    ("Must", None), ("", None), ("true", None), (True, None)])
def test_anonymous(new_run, store_dir, anonymous, entity):
    if entity is None:
        with pytest.raises(runstore.UsageError, match="anonymous="):
            new_run(anonymous=anonymous, entity="me")
        assert run_count(store_dir) == 0
        return
    run = new_run(anonymous=anonymous, entity="me")
    run.finish()
    assert run.entity == stored(store_dir, run, "entity") == entity


# --- a wandb script, unchanged ----------------------------------------------------------

WANDB_SCRIPT = """\
    import argparse

    import runstore as wandb

    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--project", default=None)
    args = parser.parse_args()

    wandb.init(project=args.project, config=args, config_exclude_keys=["project"],
               tags=["baseline", "cnn"], group="sweep-1", job_type="train")
    wandb.config.update({"optimizer": "adam"})
    wandb.define_metric("val/acc", summary="max")
    accs = [0.5, 0.8, 0.7, 0.75]
    for epoch in range(wandb.config.epochs):
        wandb.log({"train/loss": 1.0 / (epoch + 1)}, step=epoch, commit=False)
        wandb.log({"val/acc": accs[epoch], "lr": wandb.config.lr}, step=epoch)
    wandb.summary["best"] = max(accs)
    print(wandb.run.id, wandb.run.name)
    wandb.finish()
    """


def test_wandb_script_runs_unchanged(tmp_path, store_dir):
    outside = tmp_path / "job"
    outside.mkdir()
    write(outside / "train.py", WANDB_SCRIPT)
    done = _child(outside, "train.py", "--lr", "0.02", WANDB_PROJECT="env-proj",
                  WANDB_DIR=str(store_dir), WANDB_SILENT="true")
    run_id, name = done.stdout.split()
    run = runstore.Api(store_dir).run(f"env-proj/{run_id}")
    assert (run.name, run.state, run.exit_code) == (name, "finished", 0)
    assert (run.tags, run.group, run.job_type) == (["baseline", "cnn"], "sweep-1", "train")
    assert run.config == {"lr": 0.02, "epochs": 4, "optimizer": "adam"}
    assert run.summary["val/acc"] == {"max": 0.8} and run.summary["best"] == 0.8
    assert run.summary["train/loss"] == 0.25
    rows = list(run.scan_history())
    assert [r["_step"] for r in rows] == [0, 1, 2, 3]
    assert rows[1]["train/loss"] == 0.5 and rows[1]["val/acc"] == 0.8 and rows[3]["lr"] == 0.02
    assert query(store_dir, "SELECT step, value FROM metrics WHERE key = 'val/acc' "
                 "AND run_id = ? ORDER BY step", (run_id,)) == [
        (0, 0.5), (1, 0.8), (2, 0.7), (3, 0.75)]
    assert query(store_dir, "SELECT project, run_group, job_type, program FROM runs") == [
        ("env-proj", "sweep-1", "train", str((outside / "train.py").resolve()))]
