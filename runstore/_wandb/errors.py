"""wandb.errors: runstore's exceptions under wandb's names."""

from runstore._errors import CommError, Error, UsageError

__all__ = ["CommError", "Error", "UsageError"]
