"""wandb.sdk.lib.disabled."""

from __future__ import annotations


class RunDisabled:
    """wandb kept this class, empty, for code that checks isinstance(run, RunDisabled).
    A disabled runstore run is a runstore.Run (as wandb's is a Run), never one of these."""
