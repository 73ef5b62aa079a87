"""Keras 3 (torch backend) with wandb.integration.keras' WandbMetricsLogger and
WandbModelCheckpoint, turned on from inside the script with runstore.as_wandb()."""

from __future__ import annotations

import importlib.util

import pytest
from switched import GATED, column, history, only_run, run_switched

pytestmark = GATED

TRAIN = """
import os
os.environ["KERAS_BACKEND"] = "torch"
import runstore
runstore.as_wandb()  # as in a notebook: no environment variable

import keras
import numpy as np
import wandb
from wandb.integration.keras import WandbMetricsLogger, WandbModelCheckpoint

run = wandb.init(project="keras", config={"epochs": 2})
x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
model.fit(x, y, epochs=2, batch_size=8, validation_split=0.25, verbose=0,
          callbacks=[WandbMetricsLogger(), WandbModelCheckpoint("ckpt/model.keras")])
run.finish()
print("RUN", run.id)
"""


def test_keras_callbacks_log_epochs_and_checkpoints(tmp_path):
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed")
    result = run_switched(TRAIN, tmp_path, RUNSTORE_AS_WANDB="")
    run_id = result.stdout.split("RUN")[1].split()[0]
    run = only_run(tmp_path / "store", "keras")
    rows = history(run)
    assert column(rows, "epoch/epoch") == [0, 1]
    losses = column(rows, "epoch/loss")
    assert len(losses) == 2 and all(type(v) is float for v in losses)
    assert len(column(rows, "epoch/val_loss")) == 2
    assert column(rows, "epoch/learning_rate") == pytest.approx([0.01, 0.01])
    assert run.summary["epoch/epoch"] == 1
    from runstore._artifacts import load

    latest = load(tmp_path / "store", f"run_{run_id}_model:latest", run.entity, "keras")
    first = load(tmp_path / "store", f"run_{run_id}_model:epoch_0", run.entity, "keras")
    assert (first.version, latest.version) == ("v0", "v1")
    assert [e.path for e in latest.files()] == ["model.keras"]
