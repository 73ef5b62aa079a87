"""wandb.sdk.lib: RunDisabled (wandb's empty compatibility class) and the modules below."""

from .disabled import RunDisabled

__all__ = ["RunDisabled"]
