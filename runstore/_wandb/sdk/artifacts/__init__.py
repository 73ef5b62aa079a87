"""wandb.sdk.artifacts."""
