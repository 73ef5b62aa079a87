"""wandb.termlog / termwarn / termerror: messages on stderr, prefixed "runstore:"."""

from __future__ import annotations

import os
import sys

_said: set[str] = set()


def _quiet() -> bool:
    return any(os.environ.get(name, "").lower() in ("1", "true")
               for name in ("RUNSTORE_SILENT", "WANDB_SILENT", "RUNSTORE_QUIET", "WANDB_QUIET"))


def _say(kind: str, string: str, newline: bool, repeat: bool, prefix: bool) -> None:
    if not repeat:
        if string in _said:
            return
        _said.add(string)
    if _quiet() and kind != "ERROR":
        return
    head = ("runstore: " if prefix else "") + (f"{kind}: " if kind else "")
    print(head + str(string), end="\n" if newline else "", file=sys.stderr)


def termlog(string: str = "", newline: bool = True, repeat: bool = True,
            prefix: bool = True) -> None:
    _say("", string, newline, repeat, prefix)


def termwarn(string: str, newline: bool = True, repeat: bool = True,
             prefix: bool = True) -> None:
    _say("WARNING", string, newline, repeat, prefix)


def termerror(string: str, newline: bool = True, repeat: bool = True,
              prefix: bool = True) -> None:
    _say("ERROR", string, newline, repeat, prefix)
