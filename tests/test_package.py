"""The package: public surface, import cost discipline, schema shipped in the wheel."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile

import runstore
from helpers import REPO, run_script


def test_public_names_are_pinned():
    assert runstore.__all__ == sorted(runstore.__all__)
    assert set(runstore.__all__) == {
        "Api", "ApiRun", "Artifact", "CommError", "Error", "Histogram", "Image", "Run",
        "RunNotFound", "Settings", "Table", "UsageError", "Video",
        "agent", "as_wandb", "config", "define_metric", "finish", "init", "log", "run", "save",
        "summary", "sweep",
    }
    assert runstore.Run.__module__ == "runstore"
    assert runstore.UsageError.__module__ == "runstore"


def test_every_exported_class_reports_runstore_as_its_module():
    classes = [getattr(runstore, n) for n in runstore.__all__
               if isinstance(getattr(runstore, n), type)]
    assert len(classes) == 13
    assert {cls.__name__: cls.__module__ for cls in classes} == {
        cls.__name__: "runstore" for cls in classes}
    assert repr(runstore.Settings) == "<class 'runstore.Settings'>"


def test_a_run_shows_only_its_wandb_shaped_names():
    # init()'s plumbing (writer, closers, helper threads) is private: users see dir(run).
    assert {n for n in dir(runstore.Run) if not n.startswith("_")} == {
        "define_metric", "dir", "disabled", "entity", "finish", "group", "id", "job_type",
        "log", "name", "notes", "offline", "path", "project", "resumed", "runtime", "save",
        "start_time", "step", "tags", "url",
        # what training libraries call (runstore._run_compat; docs/WANDB_COMPAT.md)
        "alert", "log_artifact", "log_code", "log_model", "mark_preempting", "unwatch",
        "use_artifact", "use_model", "watch",
    }


def test_only_the_store_speaks_sql():
    outside = [p for p in (REPO / "runstore").rglob("*.py")
               if "_store" not in p.relative_to(REPO / "runstore").parts]
    calls = (".execute(", ".executemany(", ".executescript(")
    assert [p.name for p in outside if any(c in p.read_text() for c in calls)] == []


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
    assert "runstore_as_wandb.pth" in names  # RUNSTORE_AS_WANDB at start-up (_as_wandb.py)
    assert "runstore/py.typed" in names  # PEP 561: type checkers read our annotations
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


# The seams between the library and the Datasette plugin (`make lint` runs these: -k seam).

PLUGIN = REPO / "datasette_plugins" / "runstore_ui"


def _imports(path):
    """(module, names) of every import in the Python file `path`, relative ones resolved."""
    package = path.relative_to(REPO).with_suffix("").parts[:-1]
    if path.name == "__init__.py":
        package = path.relative_to(REPO).parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else ()
            module = ".".join([*base, *([node.module] if node.module else [])])
            yield module, [alias.name for alias in node.names]


def test_seam_plugin_imports_runstore_only_through_the_store_facade():
    from runstore import _store

    wrong = []
    for path in sorted(PLUGIN.rglob("*.py")):
        for module, names in _imports(path):
            where = f"{path.relative_to(REPO)}: {module}"
            if module == "runstore":
                wrong += [f"{where}.{n} (not public)" for n in names if n not in runstore.__all__]
            elif module == "runstore._store":
                wrong += [f"{where}.{n} (not in its __all__)" for n in names
                          if n not in _store.__all__]
            elif module.startswith("runstore."):
                wrong.append(f"{where} (import runstore._store or public runstore names)")
    assert wrong == []


def test_seam_runstore_imports_only_serve_from_the_plugin():
    reached = {(str(path.relative_to(REPO)), module)
               for path in sorted((REPO / "runstore").rglob("*.py"))
               for module, _ in _imports(path) if module.startswith("datasette_plugins")}
    assert reached == {("runstore/_cli.py", "datasette_plugins.runstore_ui.serve")}


def test_seam_store_facade_lists_the_library_then_the_plugin_sorted_and_lazy():
    from runstore import _store

    plugin_only = sorted(_store._LAZY)
    library = [n for n in _store.__all__ if n not in _store._LAZY]
    assert _store.__all__ == sorted(library) + plugin_only
    # What only the plugin needs is not loaded by `import runstore` (_json is: the
    # store's JSON columns).
    modules = sorted({"runstore._store" + m for m in _store._LAZY.values()} - {
        "runstore._store._json"})
    result = run_script("import sys, runstore\n"
                        f"print([m for m in {modules!r} if m in sys.modules])", cwd=REPO)
    assert result.stdout.strip() == "[]", result.stderr
