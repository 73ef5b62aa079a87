"""Packed rows of floats (log() of a dict of floats alone) against what a careless or
hostile user does to the store while a run logs: the layouts' side file must never
let a row be read with another layout's keys."""

from __future__ import annotations

import shutil

import pytest

import runstore
from runstore._handoff import handoff_dir


def _steps(store_dir, run_id: str) -> dict[int, dict[str, float]]:
    rows = runstore.Api(store_dir).run(f"p/{run_id}").history()
    return {r["_step"]: {k: v for k, v in r.items() if not k.startswith("_")} for r in rows}


@pytest.mark.parametrize("writer_process", [False, True])
@pytest.mark.parametrize("how", ["emptied", "removed and made again"])
def test_handoff_folder_emptied_under_the_run_keeps_every_row_under_its_keys(
        store_dir, writer_process, how):
    # The ring itself lives on in its map when its file is deleted; a new layout's keys
    # written to a side file made anew at the old name were numbered from 0 there, so
    # the writer read "loss" rows as "val_loss" ones and lost the "val_loss" rows.
    run = runstore.init(project="p", dir=store_dir,
                        settings={"writer_process": writer_process})
    for i in range(3):
        run.log({"loss": 1.0 + i, "acc": 0.5 + i})
    assert run._writer.flush(timeout=30)  # the writer has read the first layout
    folder = handoff_dir(store_dir / "runstore.db")
    if how == "emptied":
        for path in folder.iterdir():
            path.unlink()
    else:
        shutil.rmtree(folder)
        runstore.init(project="other", dir=store_dir, reinit="create_new").finish()
    for i in range(3):
        run.log({"val_loss": 10.0 + i, "val_acc": 20.0 + i})
        run.log({"loss": 100.0 + i, "acc": 200.0 + i})
    run.finish()
    expected = {i: {"loss": 1.0 + i, "acc": 0.5 + i} for i in range(3)}
    for i in range(3):
        expected[3 + 2 * i] = {"val_loss": 10.0 + i, "val_acc": 20.0 + i}
        expected[4 + 2 * i] = {"loss": 100.0 + i, "acc": 200.0 + i}
    assert _steps(store_dir, run.id) == expected
