"""The package: public surface, import cost discipline, schema shipped in the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import runstore
from conftest import REPO, run_script


def test_public_names_are_pinned():
    assert runstore.__all__ == sorted(runstore.__all__)
    assert set(runstore.__all__) == {
        "Api", "ApiRun", "CommError", "Error", "Histogram", "Image", "Run", "RunNotFound",
        "Settings", "Table", "UsageError", "Video",
        "config", "define_metric", "finish", "init", "log", "run", "save", "summary",
    }
    assert runstore.Run.__module__ == "runstore"
    assert runstore.UsageError.__module__ == "runstore"


def test_import_does_not_load_heavy_dependencies(tmp_path):
    result = run_script(
        "import sys, runstore\n"
        "heavy = [m for m in ('sqlite_utils', 'git', 'yaml', 'datasette', 'numpy')"
        " if m in sys.modules]\n"
        "print(heavy)\n",
        cwd=tmp_path,
    )
    assert result.stdout.strip() == "[]", result.stderr


def test_wheel_ships_schema_and_works_from_another_directory(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(REPO)],
        check=True, capture_output=True,
    )
    (wheel,) = dist.glob("runstore-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "runstore/schema/001_initial.sql" in names
    assert any(n.startswith("datasette_plugins/runstore_ui/") for n in names)
    assert "datasette_plugins/__init__.py" not in names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_script(
        "import runstore\n"
        f"assert runstore.__file__.startswith({str(target)!r}), runstore.__file__\n"
        "run = runstore.init(project='p', id='w')\n"
        "run.log({'a': 1})\n"
        "run.finish()\n"
        "print(runstore.Api().run('p/w').history())\n",
        cwd=elsewhere, env={"PYTHONPATH": str(target)},
    )
    assert result.returncode == 0, result.stderr
    assert "'a': 1}" in result.stdout  # an int logged reads back as an int


def test_every_cli_command_is_documented_in_the_readme():
    from runstore._cli import main

    readme = (REPO / "README.md").read_text()
    for name in main.commands:
        assert f"runstore {name}" in readme, f"`runstore {name}` is not in README.md"
