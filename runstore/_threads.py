"""runstore's own threads (git facts, the system monitor, the publisher, the writer's
fallback thread, a sweep agent's monitor) start with SIGINT and SIGTERM blocked.

A signal sent to the process goes to any one of its threads that does not block it, and
CPython runs the Python handler in the main thread only: one of ours that caught a
SIGTERM (a cluster's time limit) left the main thread asleep in time.sleep() for the
rest of the sleep, its run unfinished (about 1 time in 50 with a publisher and a system
monitor running). With ours blocking them, the kernel hands them to the main thread.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def start(target: Callable[..., Any], name: str, *args: Any) -> threading.Thread:
    """A daemon thread running `target(*args)`, with SIGINT and SIGTERM blocked in it
    (where the platform has pthread_sigmask)."""
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    if not hasattr(signal, "pthread_sigmask"):  # Windows: signals reach the main thread
        thread.start()
        return thread
    # A new thread inherits its creator's mask: block here, start, restore. A signal
    # arriving meanwhile waits, then goes to a thread that takes it.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return thread
