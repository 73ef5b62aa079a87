"""wandb.integration.keras: Keras 3 callbacks, written for runstore.

* WandbMetricsLogger(log_freq="epoch" | "batch" | N): Keras' logs as `epoch/<name>` at the
  end of each epoch (with `epoch/epoch` and `epoch/learning_rate`), or `batch/<name>`
  every N batches (with `batch/batch_step`), as wandb's callback logs them.
* WandbModelCheckpoint(filepath, ...): Keras' ModelCheckpoint, and each file written to
  its folder while it runs logged, at each epoch's end, as a version of the artifact
  `run_<run id>_model` (type "model").
"""

from __future__ import annotations

import os
import time
from typing import Any

import keras

import runstore
from runstore._artifacts import Artifact
from runstore._errors import Error
from runstore._wandb._terminal import termerror


def _run() -> Any:
    if runstore.run is None:
        raise Error("You must call wandb.init() before using the Keras callbacks")
    return runstore.run


def _number(value: Any) -> Any:
    try:
        return float(value) if not isinstance(value, (int, float)) else value
    except (TypeError, ValueError):
        return value


class WandbMetricsLogger(keras.callbacks.Callback):
    def __init__(self, log_freq: str | int = "epoch", initial_global_step: int = 0,
                 *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        run = _run()
        if log_freq == "batch":
            log_freq = 1
        self.log_freq = log_freq if isinstance(log_freq, int) else None
        self.logging_batch_wise = self.log_freq is not None
        self.global_batch = 0
        self.global_step = initial_global_step
        if self.logging_batch_wise:
            run.define_metric("batch/batch_step")
            run.define_metric("batch/*", step_metric="batch/batch_step")
        else:
            run.define_metric("epoch/epoch")
            run.define_metric("epoch/*", step_metric="epoch/epoch")

    def _learning_rate(self) -> float | None:
        optimizer = getattr(self.model, "optimizer", None)
        rate = getattr(optimizer, "learning_rate", None)
        if rate is None:
            return None
        try:
            if callable(rate):
                rate = rate(self.global_step)
            return float(keras.ops.convert_to_numpy(rate))
        except Exception as exc:
            termerror(f"Unable to log learning rate: {exc}", repeat=False)
            return None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        row = {f"epoch/{k}": _number(v) for k, v in (logs or {}).items()}
        row["epoch/epoch"] = epoch
        rate = self._learning_rate()
        if rate is not None:
            row["epoch/learning_rate"] = rate
        _run().log(row)

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.global_step += 1
        if self.log_freq is not None and batch % self.log_freq == 0:
            row = {f"batch/{k}": _number(v) for k, v in (logs or {}).items()}
            row["batch/batch_step"] = self.global_batch
            rate = self._learning_rate()
            if rate is not None:
                row["batch/learning_rate"] = rate
            _run().log(row)
            self.global_batch += self.log_freq

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.on_batch_end(batch, logs)


class WandbModelCheckpoint(keras.callbacks.ModelCheckpoint):
    def __init__(self, filepath: str, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False,
                 mode: str = "auto", save_freq: str | int = "epoch",
                 initial_value_threshold: float | None = None, **kwargs: Any) -> None:
        super().__init__(filepath=filepath, monitor=monitor, verbose=verbose,
                         save_best_only=save_best_only, save_weights_only=save_weights_only,
                         mode=mode, save_freq=save_freq,
                         initial_value_threshold=initial_value_threshold, **kwargs)
        _run()
        self._logged: dict[str, float] = {}
        self._since = time.time() - 1.0  # files older than the callback are not its own

    def _log_new_files(self, aliases: list[str]) -> None:
        folder = os.path.dirname(os.path.abspath(self.filepath)) or "."
        run = _run()
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                continue
            stamp = os.path.getmtime(path)
            if stamp < self._since or self._logged.get(path) == stamp:
                continue
            self._logged[path] = stamp
            artifact = Artifact(f"run_{run.id}_model", type="model")
            artifact.add_file(path)
            run.log_artifact(artifact, aliases=aliases)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        super().on_epoch_end(epoch, logs)
        self._log_new_files(["latest", f"epoch_{epoch}"])
