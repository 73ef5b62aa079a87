"""Process-wide run bookkeeping: the active runs, the module globals, exit hooks.

Runs still active when the process exits are finished by an atexit hook with
the exit code the process is leaving with (sys.exit(n) -> n, an uncaught
exception -> 1, KeyboardInterrupt -> 255, SIGTERM -> 143).
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from ._run import Run

_lock = threading.RLock()
_active: list[Run] = []
_exit_code: int | None = None
_hooks_installed = False


class PreInit:
    """Stands in for runstore.config / runstore.summary before init()."""

    _name: str

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        from ._errors import Error

        raise Error(f"You must call runstore.init() before using runstore.{self._name}")

    __getattr__ = __setattr__ = __getitem__ = __setitem__ = __iter__ = __len__ = _fail

    def __repr__(self) -> str:
        return f"<runstore.{self._name} before init()>"


def global_run() -> Run | None:
    """The run behind runstore.run, or None."""
    pkg: Any = sys.modules["runstore"]
    return pkg.run


def _set_globals(run: Run | None) -> None:
    pkg: Any = sys.modules["runstore"]
    pkg.run = run
    pkg.config = run.config if run is not None else PreInit("config")
    pkg.summary = run.summary if run is not None else PreInit("summary")


def activate(run: Run, make_global: bool) -> None:
    """Register a new run (and point the module globals at it)."""
    install_hooks()
    with _lock:
        _active.append(run)
        if make_global:
            _set_globals(run)


def deactivate(run: Run) -> None:
    """Forget a finished run (and clear the module globals if they point at it)."""
    with _lock:
        if run in _active:
            _active.remove(run)
        if global_run() is run:
            _set_globals(None)


def _after_fork_in_child() -> None:
    """A thread of the parent that held a run's lock (one logging, say) is not in the
    child made by fork(): the child's first log() would wait for it for ever. Its runs
    drop what it logs (_handoff), so fresh locks lose nothing."""
    global _lock
    _lock = threading.RLock()
    for run in _active:
        run._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def active_runs() -> list[Run]:
    with _lock:
        return list(_active)


def _finish_all() -> None:
    code = 0 if _exit_code is None else _exit_code
    for run in reversed(active_runs()):
        try:
            run.finish(exit_code=code)
        except Exception as exc:  # never turn a clean exit into a traceback
            print(f"runstore: could not finish run {run.id}: {exc}", file=sys.stderr)


def _record_exit_code(code: Any) -> None:
    global _exit_code
    if code is None:
        _exit_code = 0
    elif isinstance(code, int):
        _exit_code = code
    else:  # sys.exit("message") exits with 1
        _exit_code = 1


def install_hooks() -> None:
    """Once per process: atexit, sys.exit, sys.excepthook and SIGTERM hooks."""
    global _hooks_installed
    with _lock:
        if _hooks_installed:
            return
        _hooks_installed = True
    atexit.register(_finish_all)

    original_exit = sys.exit

    def exit_hook(code: Any = None) -> NoReturn:
        _record_exit_code(code)
        original_exit(code)

    sys.exit = exit_hook

    original_excepthook = sys.excepthook

    def excepthook(exc_type: type, exc: BaseException, tb: Any) -> None:
        global _exit_code
        _exit_code = 255 if issubclass(exc_type, KeyboardInterrupt) else 1
        original_excepthook(exc_type, exc, tb)

    sys.excepthook = excepthook

    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):
            pass


def _on_sigterm(signum: int, frame: Any) -> None:
    # Unwind through `finally` blocks and atexit so everything logged is flushed.
    _record_exit_code(128 + signum)
    raise SystemExit(128 + signum)
