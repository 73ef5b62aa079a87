"""Build hook: compile runstore/_fastlog.c, log()'s common call in C (runstore/_fast.py).

Where no C compiler works, the build goes on with a warning and runstore logs every row
through its Python path: the same results, a slower log(). RUNSTORE_PURE_PYTHON=1 at run
time chooses that path with the extension built.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = "runstore/_fastlog.c"
MODULE = "runstore._fastlog"


def compile_extension(root: Path, out: Path) -> Path:
    """Build the extension module into `out`; returns its path."""
    from setuptools import Distribution, Extension

    dist = Distribution({"name": "runstore",
                         "ext_modules": [Extension(MODULE, [str(root / SOURCE)])]})
    command: Any = dist.get_command_obj("build_ext")
    command.build_lib = str(out / "lib")
    command.build_temp = str(out / "temp")
    command.ensure_finalized()
    command.run()
    return Path(command.get_ext_fullpath(MODULE))


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        work = Path(tempfile.mkdtemp(prefix="runstore-build-"))
        try:
            built = compile_extension(root, work)
            if version == "editable":
                # An editable install imports runstore from this tree: the module goes
                # beside its source (ignored by git). Unlinked first: a running process
                # may have the old one mapped.
                target = root / "runstore" / built.name
                target.unlink(missing_ok=True)
                shutil.copy2(built, target)
            else:
                target = Path(self.directory) / ".runstore-extension" / built.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(built, target)
                build_data["force_include"][str(target)] = f"runstore/{built.name}"
        except Exception as exc:  # any compiler failure: the Python path
            print(f"runstore: could not compile {SOURCE} ({exc}); log() will run in "
                  "Python alone", file=sys.stderr)
            return
        finally:
            shutil.rmtree(work, ignore_errors=True)
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
