"""The switch that makes `import wandb` mean runstore, for a process and its children.

Three ways to turn it on, all ending in `install()`:

* `RUNSTORE_AS_WANDB=1` in the environment of any Python of an environment where runstore
  is installed: the one-line `runstore_as_wandb.pth` that runstore's wheel puts into
  site-packages calls `install_from_env()` at start-up (when the variable is unset that
  line reads one variable and does nothing else);
* `runstore run -- python train.py ...` sets the variable and runs the command;
* `runstore.as_wandb()` in a notebook or a script.

While on, a finder placed first on `sys.meta_path` answers for `wandb` and every
`wandb.<submodule>` with runstore's imitation in `runstore._wandb` (whose module paths
mirror wandb's), and `importlib.metadata` finds a distribution named `wandb` (so version
checks such as Lightning's `RequirementCache("wandb>=0.12.10")` pass). Nothing named wandb
is installed. If the real wandb is installed, the switch still wins, and says so once.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Iterator
from typing import Any

ENV = "RUNSTORE_AS_WANDB"
# The wandb release whose surface runstore imitates (what version checks see); the local
# label says it is runstore's imitation.
WANDB_VERSION = "0.28.2"
DIST_VERSION = f"{WANDB_VERSION}+runstore"
_PACKAGE = "runstore._wandb"
_OFF = ("", "0", "false", "no", "off")


def env_on(environ: Any = None) -> bool:
    """True when RUNSTORE_AS_WANDB asks for the switch."""
    value = (os.environ if environ is None else environ).get(ENV, "")
    return value.strip().lower() not in _OFF


class _Loader(importlib.abc.Loader):
    """Hands out runstore's module for a wandb name."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return importlib.import_module(self.target)

    def exec_module(self, module: Any) -> None:
        pass  # runstore's module is already executed


class _Metadata(importlib.metadata.Distribution):
    """The distribution `wandb`, as importlib.metadata sees it while the switch is on."""

    def read_text(self, filename: str) -> str | None:
        if filename == "METADATA":
            return (f"Metadata-Version: 2.1\nName: wandb\nVersion: {DIST_VERSION}\n"
                    "Summary: runstore's imitation of wandb (RUNSTORE_AS_WANDB)\n")
        if filename == "top_level.txt":
            return "wandb\n"
        return None

    def locate_file(self, path: Any) -> Any:
        import pathlib

        return pathlib.Path(__file__).parent / "_wandb" / path


class Finder(importlib.abc.MetaPathFinder):
    """`wandb` and `wandb.*` -> `runstore._wandb` and `runstore._wandb.*`."""

    def __init__(self) -> None:
        self._told = False

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "wandb" and not fullname.startswith("wandb."):
            return None
        if fullname == "wandb":
            self._tell_if_real_wandb()
        ours = _PACKAGE + fullname[len("wandb"):]
        try:
            found = importlib.util.find_spec(ours)
        except ModuleNotFoundError:
            found = None
        if found is None:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: runstore's wandb imitation "
                f"(RUNSTORE_AS_WANDB) has no {fullname} (what it has is listed in "
                "docs/WANDB_COMPAT.md)", name=fullname)
        locations = found.submodule_search_locations
        spec = importlib.machinery.ModuleSpec(fullname, _Loader(ours),
                                              is_package=locations is not None)
        if locations is not None:
            spec.submodule_search_locations = list(locations)
        return spec

    def find_distributions(self, context: Any = None) -> Iterator[importlib.metadata.Distribution]:
        path = getattr(context, "path", sys.path)
        if path is not sys.path and path != sys.path:
            return  # a search of given folders (as pip makes): nothing of ours is there
        name = getattr(context, "name", None)
        if name is None or name.lower().replace("_", "-") == "wandb":
            yield _Metadata()

    def _tell_if_real_wandb(self) -> None:
        """Say once that an installed wandb is being shadowed."""
        if self._told:
            return
        self._told = True
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            try:
                spec = finder.find_spec("wandb", None)
            except Exception:
                continue
            if spec is not None:
                where = getattr(spec, "origin", None) or "site-packages"
                print(f"runstore: {ENV} is on, so `import wandb` gives runstore's imitation, "
                      f"not the wandb installed at {where}", file=sys.stderr)
                return


def installed() -> bool:
    """True while the switch is on in this process."""
    return any(isinstance(f, Finder) for f in sys.meta_path)


def install(children: bool = True) -> None:
    """Turn the switch on: `import wandb` (and its submodules and metadata) mean runstore.

    A real wandb imported before is dropped from sys.modules, so the next import gets
    runstore. With `children`, RUNSTORE_AS_WANDB=1 is set for processes started later.
    """
    if children:
        os.environ[ENV] = "1"
    if installed():
        return
    stale = [name for name, module in sys.modules.items()
             if (name == "wandb" or name.startswith("wandb."))
             and not getattr(module, "__name__", "").startswith(_PACKAGE)]
    for name in stale:
        del sys.modules[name]
    if stale:
        print(f"runstore: {ENV} is on; the wandb imported before is replaced by runstore's "
              "imitation for later imports (objects taken from it earlier stay wandb's)",
              file=sys.stderr)
    sys.meta_path.insert(0, Finder())
    importlib.invalidate_caches()


def install_from_env() -> None:
    """Called by runstore_as_wandb.pth at interpreter start-up when the switch is on."""
    if env_on():
        install(children=False)
