"""wandb.sdk.wandb_settings: `Settings` is runstore.Settings."""

from runstore import Settings

__all__ = ["Settings"]
