"""wandb.sdk."""

from typing import Any

from runstore import Run
from runstore._artifacts import Artifact

from . import wandb_run as wandb_run  # read as an attribute too: wandb.sdk.wandb_run.Run
from .wandb_settings import Settings


def __getattr__(name: str) -> Any:
    if name == "init":  # wandb.init, defined by the package importing this one
        from .. import init

        return init
    raise AttributeError(f"runstore's wandb imitation has no wandb.sdk.{name}")


__all__ = ["Artifact", "Run", "Settings", "init"]
