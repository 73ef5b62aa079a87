"""Console capture: what the run's process prints to stdout/stderr, kept line by line.

The streams are wrapped, not redirected: every write goes to the original stream
first, unchanged, so the terminal shows exactly what it would without runstore.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

Sink = Callable[[str, float, str], None]


class _Tee:
    """A text stream that writes through to `original` and hands complete lines to `sink`."""

    def __init__(self, name: str, original: Any, sink: Sink) -> None:
        self._name = name
        self._original = original
        self._sink = sink
        self._partial = ""

    def write(self, text: str) -> int:
        written = self._original.write(text)
        if text == "\n":  # print() ends every line with a write of its own
            self._sink(self._name, time.time(), self._partial)
            self._partial = ""
        elif "\n" in text:
            *lines, self._partial = (self._partial + text).split("\n")
            at = time.time()
            for line in lines:
                self._sink(self._name, at, line)
        else:
            self._partial += text
        return written

    def flush_partial(self) -> None:
        if self._partial:
            self._sink(self._name, time.time(), self._partial)
            self._partial = ""

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, flush, ...
        return getattr(self._original, name)


class Capture:
    """stdout and stderr captured into `sink` until stop()."""

    def __init__(self, sink: Sink) -> None:
        self._tees = {}
        for name in ("stdout", "stderr"):
            original = getattr(sys, name)
            if original is None:
                continue
            tee = _Tee(name, original, sink)
            self._tees[name] = (tee, original)
            setattr(sys, name, tee)

    def stop(self) -> None:
        """Keep any unfinished last line and put the original streams back (unless
        something else has replaced them since)."""
        for name, (tee, original) in self._tees.items():
            tee.flush_partial()
            if getattr(sys, name) is tee:
                setattr(sys, name, original)
        self._tees = {}
