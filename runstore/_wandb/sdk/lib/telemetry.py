"""wandb.sdk.lib.telemetry: integrations record which features they use; runstore accepts
the record and keeps nothing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


class _Record:
    """Takes any attribute, at any depth (tel.feature.sb3 = True)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        child = _Record()
        object.__setattr__(self, name, child)
        return child


@contextlib.contextmanager
def context(run: Any = None, obj: Any = None) -> Iterator[Any]:
    yield _Record()
