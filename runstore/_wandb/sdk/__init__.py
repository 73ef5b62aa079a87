"""wandb.sdk."""

from runstore import Run, Settings, init
from runstore._artifacts import Artifact

__all__ = ["Artifact", "Run", "Settings", "init"]
