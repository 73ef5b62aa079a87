"""Nothing log() accepted is lost when the training process dies at full logging speed:
SIGKILL, os.abort() or a segfault, 10 and 100 keys a step (harness shared with
benchmarks/crash_loss.py)."""

from __future__ import annotations

import importlib.util

import pytest

from helpers import REPO

_spec = importlib.util.spec_from_file_location("crash_loss", REPO / "benchmarks" / "crash_loss.py")
crash_loss = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(crash_loss)


@pytest.mark.parametrize("death", crash_loss.DEATHS)
@pytest.mark.parametrize("keys", [10, 100])
def test_a_dying_trainer_loses_nothing_log_accepted(tmp_path, keys, death):
    result = crash_loss.kill_and_measure(tmp_path, keys, run_for=1.0, death=death)
    assert result["exit_code"] < 0, "the child did not die of a signal"
    assert result["logged"] > 100, result["stderr"]
    # The read API shows the run crashed as soon as the process is gone.
    assert result["state_at_once"] == "crashed"
    assert result["integrity"] == "ok"
    assert result["lost"] == 0, (
        f"{result['lost']} of {result['logged']} steps whose log() returned are not in the "
        f"store (the oldest logged {result['oldest_lost_s']:.3f} s before the death)")
    assert result["prefix"], "the stored steps are not the steps logged"
    assert result["points"] == result["kept"] * keys, "a step was stored half-written"
    # The committed summary describes exactly the committed history.
    assert result["summary_step_value"] == result["kept"] - 1
    assert result["state"] == "crashed"
