"""wandb.sdk.wandb_run: `Run` is runstore.Run."""

from runstore import Run

__all__ = ["Run"]
