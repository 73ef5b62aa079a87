"""Attacks on log()'s compiled common call (runstore/_fastlog.c): each test is a call or a
situation where the compiled path once did something the Python path (Run.log) does not."""

from __future__ import annotations

import pytest

import runstore


def _init(store_dir, **settings):
    return runstore.init(project="p", dir=store_dir,
                         settings={"disable_stats": True, "console": "off", **settings})


@pytest.mark.parametrize("call", [
    lambda run, row: run.log(row, stepp=None),  # a typo of step=
    lambda run, row: run.log(row, data=None),
    lambda run, row: run.log(row, None, step=None),
    lambda run, row: run.log(row, None, None, commit=None),
])
def test_a_call_run_log_refuses_is_refused_not_logged(store_dir, call):
    run = _init(store_dir)
    row = {"a": 1.0, "b": 2.0}
    run.log(row)
    run.log(row)  # the layout is known: the next such row may take the compiled path
    with pytest.raises(TypeError):
        call(run, {"a": 3.0, "b": 4.0})
    assert run.step == 2
    assert run.summary["a"] == 1.0
    run.finish()
