"""wandb.sdk.wandb_settings: `Settings`, runstore's settings taking wandb's too.

A setting runstore has works as in runstore.Settings (wandb's `x_` and legacy `_` forms of
its names too: `x_disable_stats`, `_disable_stats`). One it does not have
(`start_method`, `_disable_stats`, `x_label`, ...; wandb has about two hundred) is
accepted and ignored, said once per name: a script that runs on wandb has only names
wandb knows, so none of them is a misspelling runstore should stop it for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import runstore
from runstore._settings import _FIELDS

from .._terminal import termwarn


class Settings(runstore.Settings):
    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        bare = name[2:] if name.startswith("x_") else name.lstrip("_")
        if name not in _FIELDS and bare in _FIELDS:  # x_disable_stats, _disable_stats
            name = bare
        if name not in _FIELDS:
            termwarn(f"runstore ignores the wandb setting {name!r} (it has no such setting)",
                     repeat=False)
            return
        super().__setattr__(name, value)


def settings_for_runstore(settings: Any) -> Any:
    """wandb.init(settings=...) as runstore.init takes it: a dict becomes Settings."""
    if isinstance(settings, Mapping):
        return Settings(**settings)
    return settings


__all__ = ["Settings"]
