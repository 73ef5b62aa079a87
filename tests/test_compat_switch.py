"""The switch that makes `import wandb` mean runstore (issue 14), without training libraries:
RUNSTORE_AS_WANDB=1, `runstore run -- ...`, runstore.as_wandb(); off, it changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import runstore

PROBE = """
import importlib.metadata, importlib.util, json, sys
out = {"spec": importlib.util.find_spec("wandb") is not None}
try:
    out["version"] = importlib.metadata.version("wandb")
except importlib.metadata.PackageNotFoundError:
    out["version"] = None
try:
    import wandb
    out["module"] = wandb.__name__
    out["file"] = wandb.__file__
except ImportError as exc:
    out["module"] = None
    out["error"] = str(exc)
print(json.dumps(out))
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNSTORE_", "WANDB_"))}
    env["RUNSTORE_SILENT"] = "true"
    env.update(extra)
    return env


def _python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd,
                          env=_env(**env), capture_output=True, text=True, timeout=120)


def _probe(cwd: Path, **env: str) -> dict:
    result = _python(PROBE, cwd, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_off_by_default_wandb_is_not_there(tmp_path):
    assert _probe(tmp_path) == {"spec": False, "version": None, "module": None,
                                "error": "No module named 'wandb'"}
    assert _probe(tmp_path, RUNSTORE_AS_WANDB="0")["module"] is None


def test_the_environment_variable_makes_wandb_runstore(tmp_path):
    found = _probe(tmp_path, RUNSTORE_AS_WANDB="1")
    assert found["spec"] is True
    assert found["version"].startswith("0.28.2+runstore")
    assert found["module"] == "runstore._wandb"


def test_wandb_submodules_and_names_libraries_import(tmp_path):
    result = _python("""
        import wandb
        import wandb.sdk.wandb_run, wandb.wandb_run, wandb.util, wandb.errors
        from wandb.sdk.lib import RunDisabled, telemetry
        from wandb.sdk.lib.config_util import ConfigError
        import runstore
        run = wandb.init(project="p", dir="store")
        assert wandb.run is run and runstore.run is run
        assert isinstance(run, wandb.wandb_run.Run) and isinstance(run, wandb.sdk.wandb_run.Run)
        assert isinstance(run, wandb.Run) and not isinstance(run, RunDisabled)
        with telemetry.context(run=run) as tel:
            tel.feature.sb3 = True
        run._label(code="transformers_trainer")
        wandb.config.update({"lr": 0.1})
        try:
            wandb.config.update({"lr": 0.2})
        except ConfigError:
            print("config-error")
        wandb.config.setdefaults({"lr": 9, "algo": "PPO"})
        wandb.termwarn("careful", repeat=False)
        wandb.termwarn("careful", repeat=False)
        wandb.require("service")
        wandb.login()
        wandb.log({"loss": 0.5})
        wandb.finish()
        assert wandb.run is None
        try:
            wandb.sweep
        except AttributeError as exc:
            print("no-sweep", "WANDB_COMPAT.md" in str(exc))
        try:
            import wandb.beta.workflows
        except ModuleNotFoundError as exc:
            print("no-module", "RUNSTORE_AS_WANDB" in str(exc))
    """, tmp_path, RUNSTORE_AS_WANDB="1", RUNSTORE_SILENT="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["config-error", "no-sweep", "True", "no-module", "True"]
    assert result.stderr.count("runstore: WARNING: careful") == 1
    assert "login() does nothing" in result.stderr
    run = runstore.Api(tmp_path / "store").runs("p")[0]
    assert run.config == {"lr": 0.1, "algo": "PPO"}
    assert [row["loss"] for row in run.scan_history()] == [0.5]


def test_wandb_run_is_an_attribute_after_a_plain_import(tmp_path):
    result = _python("""
        import wandb
        run = wandb.init(project="p", dir="store")
        print(isinstance(run, wandb.wandb_run.Run), isinstance(run, wandb.sdk.wandb_run.Run))
        wandb.finish()
    """, tmp_path, RUNSTORE_AS_WANDB="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]


def test_children_inherit_the_switch_from_as_wandb(tmp_path):
    result = _python(f"""
        import subprocess, sys, runstore
        runstore.as_wandb()
        import wandb
        print(wandb.__name__)
        subprocess.run([sys.executable, "-c", {PROBE!r}], check=True)
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.strip().splitlines()
    assert first == "runstore._wandb"
    assert json.loads(second)["module"] == "runstore._wandb"


def test_runstore_run_sets_the_switch_and_passes_the_exit_code(tmp_path):
    (tmp_path / "train.py").write_text(textwrap.dedent("""
        import sys, wandb
        run = wandb.init(project="cli", config={"argv": sys.argv[1:]})
        wandb.log({"x": 1})
        wandb.finish()
        sys.exit(3)
    """))
    command = [sys.executable, "-c", "from runstore._cli import main; main()"]
    result = subprocess.run([*command, "run", "--dir", "store", "--", sys.executable,
                             "train.py", "--lr", "0.1"],
                            cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr
    run = runstore.Api(tmp_path / "store").runs("cli")[0]
    assert run.config == {"argv": ["--lr", "0.1"]}
    assert [row["x"] for row in run.scan_history()] == [1]


def test_an_installed_wandb_is_shadowed_and_that_is_said_once(tmp_path):
    fake = tmp_path / "site" / "wandb"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("REAL = True\n")
    path = str(tmp_path / "site")
    off = _probe(tmp_path, PYTHONPATH=path)
    assert off["file"] == str(fake / "__init__.py")  # off: the installed one, untouched
    result = _python("import wandb, wandb\nprint(wandb.__name__, hasattr(wandb, 'REAL'))",
                     tmp_path, PYTHONPATH=path, RUNSTORE_AS_WANDB="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["runstore._wandb", "False"]
    assert result.stderr.count("not the wandb installed at") == 1


def test_switch_off_leaves_the_import_system_alone(tmp_path):
    result = _python("import sys, runstore\n"
                     "print(sorted(m for m in sys.modules if 'wandb' in m),"
                     " [type(f).__name__ for f in sys.meta_path"
                     " if 'runstore' in type(f).__module__])", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] []"


def test_wandb_settings_runstore_lacks_are_ignored_once_each(tmp_path):
    result = _python("""
        import wandb
        settings = wandb.Settings(start_method="thread", x_disable_stats=True, console="off")
        assert settings.disable_stats is True and settings.console == "off"
        run = wandb.init(project="p", dir="store", settings=settings)
        run.finish()
        run = wandb.init(project="p", dir="store", settings={"start_method": "fork"})
        run.finish()
        print("ok")
    """, tmp_path, RUNSTORE_AS_WANDB="1", RUNSTORE_SILENT="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ok"]
    assert result.stderr.count("ignores the wandb setting 'start_method'") == 1
