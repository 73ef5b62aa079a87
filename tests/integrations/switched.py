"""The training libraries themselves (transformers, Lightning, SB3, Keras, CleanRL-style
torch + gymnasium) running unchanged under RUNSTORE_AS_WANDB (issue 14).

Each test writes the script a user would, runs it in a child Python with the switch on, and
reads what reached the store. They need torch and the libraries, which `make
test-integrations` installs (and `make test` calls); it sets RUNSTORE_INTEGRATION_TESTS=1.
Without it these tests are skipped, saying where they run (`pytestmark = GATED` in each
file; no conftest.py here, so `from conftest import ...` in tests/ stays unambiguous).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import runstore

GATE = "RUNSTORE_INTEGRATION_TESTS"


GATED = pytest.mark.skipif(
    os.environ.get(GATE) != "1",
    reason=f"needs the training libraries: run by `make test-integrations` ({GATE}=1)")


def run_switched(script: str, cwd: Path, *, args: tuple[str, ...] = (),
                 timeout: float = 600, via_cli: bool = False,
                 **env: str) -> subprocess.CompletedProcess:
    """Write `script` to cwd/train.py and run it with `import wandb` meaning runstore:
    RUNSTORE_AS_WANDB=1, or `runstore run -- python train.py` with via_cli. The store is
    cwd/store unless env says otherwise. Fails the test, with the child's output, when the
    script fails."""
    (cwd / "train.py").write_text(textwrap.dedent(script))
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("RUNSTORE_", "WANDB_"))}
    full_env.update({"RUNSTORE_DIR": str(cwd / "store"), "RUNSTORE_SILENT": "true",
                     "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false",
                     "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                     "KERAS_BACKEND": "torch", "OMP_NUM_THREADS": "1"})
    if not via_cli:
        full_env["RUNSTORE_AS_WANDB"] = "1"
    full_env.update(env)
    command = [sys.executable, "train.py", *args]
    if via_cli:
        command = [sys.executable, "-c", "from runstore._cli import main; main()", "run",
                   "--", *command]
    result = subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, (
        f"train.py failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


def only_run(store: Path, project: str) -> runstore.ApiRun:
    runs = runstore.Api(store).runs(project)
    assert len(runs) == 1, [r.id for r in runs]
    return runs[0]


def history(run: runstore.ApiRun) -> list[dict]:
    return list(run.scan_history())


def column(rows: list[dict], key: str) -> list:
    return [row[key] for row in rows if key in row]
