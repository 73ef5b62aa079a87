"""A SIGKILL at full logging speed loses only the last moments, and the store never
claims more than it holds (harness shared with benchmarks/crash_loss.py)."""

from __future__ import annotations

import importlib.util

import pytest

from helpers import REPO

_spec = importlib.util.spec_from_file_location("crash_loss", REPO / "benchmarks" / "crash_loss.py")
crash_loss = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(crash_loss)

LOSS_BOUND_S = 0.5  # docs/RELIABILITY.md states this bound


@pytest.mark.parametrize("keys", [10, 100])
def test_sigkill_at_full_speed_loses_at_most_half_a_second(tmp_path, keys):
    result = crash_loss.kill_and_measure(tmp_path, keys, run_for=1.5)
    assert result["kept"] > 0, result["stderr"]
    assert result["integrity"] == "ok"
    assert result["prefix"], "the stored steps are not a prefix of what was logged"
    assert result["points"] == result["kept"] * keys, "a step was stored half-written"
    assert result["oldest_lost_s"] <= LOSS_BOUND_S, (
        f"{result['lost']} steps lost, the oldest logged {result['oldest_lost_s']:.3f} s "
        "before the kill")
    # The committed summary describes exactly the committed history.
    assert result["summary_step_value"] == result["kept"] - 1
