"""The common log() call in compiled code (runstore/_fastlog.c), where the install built it.

A run's step and its ring's producer state (head, tail as last seen, records handed over)
live in a Cursor that both paths share: Run.log's Python path reads and writes them as
attributes, and the compiled Cursor.put() logs the common row (floats alone, keys the
hand-off has packed before, no step= or commit=) in one C call: the checks, the packed
record into the ring, the step and the summary. put() does that row exactly as the Python
path would, or changes nothing and returns False. Without the extension (no compiler at
install, a big-endian machine) or with RUNSTORE_PURE_PYTHON set, the Cursor is a plain
object and every row takes the Python path.
"""

from __future__ import annotations

import os
from typing import Any

try:
    from ._fastlog import Cursor as _CompiledCursor
except ImportError:
    _CompiledCursor = None  # type: ignore[assignment,misc]


class _PlainCursor:
    """The Cursor's shared state, for the Python path alone."""

    __slots__ = ("head", "open", "puts", "step", "tail_seen")

    def __init__(self) -> None:
        self.step = 0
        self.head = self.tail_seen = self.puts = 0
        self.open = False

    def unbind(self) -> None:
        self.open = False


def compiled() -> bool:
    """True when log()'s common call runs in C in this process."""
    return _CompiledCursor is not None and not os.environ.get("RUNSTORE_PURE_PYTHON")


def new_cursor() -> Any:
    """A Cursor: compiled (bind() opens its put()) or plain."""
    return _CompiledCursor() if compiled() else _PlainCursor()
