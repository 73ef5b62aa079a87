"""wandb.integration.sb3: WandbCallback for stable-baselines3, written for runstore.

Does what wandb's callback does: records the algorithm and the model's simple
attributes in the run's config (keys already set win), optionally watches the policy's
gradients (gradient_save_freq) and saves the model (model_save_path, every
model_save_freq calls and at the end) with the run's files. SB3's own metrics reach the
run through its TensorBoard logger, with init(sync_tensorboard=True), as with wandb.
"""

from __future__ import annotations

import os
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

import runstore
from runstore._errors import Error
from runstore._wandb._terminal import termwarn

_LOGS = ("gradients", "parameters", "all", None)


def _run() -> runstore.Run:
    if runstore.run is None:
        raise Error("You must call wandb.init() before WandbCallback()")
    return runstore.run


class WandbCallback(BaseCallback):
    """The arguments are wandb.integration.sb3.WandbCallback's."""

    def __init__(self, verbose: int = 0, model_save_path: str | None = None,
                 model_save_freq: int = 0, gradient_save_freq: int = 0,
                 log: str | None = "all") -> None:
        super().__init__(verbose)
        _run()
        if log not in _LOGS:
            termwarn("`log` must be one of None, 'gradients', 'parameters' or 'all'; "
                     "using 'all'")
            log = "all"
        if model_save_path is None and model_save_freq:
            raise Error("WandbCallback(model_save_freq=...) needs model_save_path")
        self.log = log
        self.model_save_path = model_save_path
        self.model_save_freq = model_save_freq
        self.gradient_save_freq = gradient_save_freq
        self.path: str | None = None
        if model_save_path is not None:
            os.makedirs(model_save_path, exist_ok=True)
            self.path = os.path.join(model_save_path, "model.zip")

    def _init_callback(self) -> None:
        run = _run()
        settings: dict[str, Any] = {"algo": type(self.model).__name__}
        for key, value in vars(self.model).items():
            if key in run.config:
                continue
            settings[key] = value if type(value) in (int, float, str) else str(value)
        if self.gradient_save_freq > 0:
            run.watch(self.model.policy, log=self.log, log_freq=self.gradient_save_freq)
        run.config.setdefaults(settings)

    def _on_step(self) -> bool:
        if self.model_save_freq > 0 and self.path and self.n_calls % self.model_save_freq == 0:
            self.save_model()
        return True

    def _on_training_end(self) -> None:
        if self.path is not None:
            self.save_model()

    def save_model(self) -> None:
        assert self.path is not None  # the callers check that there is a model_save_path
        self.model.save(self.path)
        _run().save(self.path, base_path=self.model_save_path, policy="now")
