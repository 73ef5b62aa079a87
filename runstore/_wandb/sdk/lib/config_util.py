"""wandb.sdk.lib.config_util: ConfigError is what runstore's config raises when a value
changes without allow_val_change (runstore.UsageError)."""

from runstore._errors import UsageError as ConfigError

__all__ = ["ConfigError"]
