"""wandb.wandb_run: `Run` is runstore.Run, so isinstance checks pass."""

from runstore import Run

__all__ = ["Run"]
