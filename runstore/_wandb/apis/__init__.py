"""wandb.apis / wandb.Api: runstore's read API, plus artifact() as wandb's has it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import runstore
from runstore import _artifacts


class Api(runstore.Api):
    """`wandb.Api()`: reads the store RUNSTORE_DIR / WANDB_DIR names (default ./runstore).
    `overrides` may give "entity" and "project" for artifact names without them."""

    def __init__(self, overrides: dict[str, Any] | None = None, timeout: Any = None,
                 api_key: str | None = None, dir: str | os.PathLike | None = None) -> None:
        super().__init__(dir)
        self._overrides = dict(overrides or {})

    def artifact(self, name: str, type: str | None = None) -> Any:
        """A stored artifact version by "[entity/]project/name[:alias]"."""
        import getpass

        env = os.environ.get
        entity = (self._overrides.get("entity") or env("RUNSTORE_ENTITY")
                  or env("WANDB_ENTITY") or getpass.getuser())
        project = (self._overrides.get("project") or env("RUNSTORE_PROJECT")
                   or env("WANDB_PROJECT") or "uncategorized")
        return _artifacts.load(Path(self._path).parent, name, entity, project, type)


__all__ = ["Api"]
