"""wandb.integration: runstore's versions of wandb's own integrations (sb3, keras)."""
