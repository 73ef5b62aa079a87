"""wandb.sdk.artifacts.artifact: `Artifact` is runstore's."""

from runstore._artifacts import Artifact

__all__ = ["Artifact"]
