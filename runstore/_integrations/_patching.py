"""One way for an integration to patch other libraries' classes.

While at least one run uses an integration, chosen methods of its classes are replaced
by wrappers of ours, and the wrappers serve the newest of those runs; when the last run
stops, the originals go back. The rules, kept here for every integration:

- a patch records what the class's own `__dict__` held (nothing, for an inherited
  method), so unpatching restores exactly that;
- a method that is already one of our wrappers (a subclass inheriting a patched base)
  is not wrapped again;
- if someone patched the class again on top of ours, unpatching leaves theirs in place
  (it may still call ours, which then serves no run);
- a wrapper asks `serving()` for the run to serve: the newest, or None once its patch
  has been taken out, so a wrapper someone kept a reference to never serves a later run.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Method = Callable[..., Any]
# wrap(original, serving) -> our method around `original`
Wrap = Callable[[Method, Callable[[], Any]], Method]

_NOTHING = object()  # what an inherited method's class __dict__ holds


class _Patch:
    """One method replaced: where, what the class held before, and our wrapper."""

    __slots__ = ("cls", "held", "name", "ours")

    def __init__(self, cls: type, name: str, held: Any, ours: Method) -> None:
        self.cls, self.name, self.held, self.ours = cls, name, held, ours


class ClassPatches(Generic[T]):
    """One integration's patches and its users (one per run), newest last."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: list[T] = []
        self._patches: list[_Patch] = []
        self._live = threading.Event()  # set while one patching is in place; each has its own

    def add(self, user: T, methods: Iterable[tuple[type, str, Wrap]]) -> None:
        """Serve `user` from now on; the first user patches `methods` (class, method name,
        how to wrap it)."""
        with self._lock:
            if not self._users:
                self._patch(methods)
            self._users.append(user)

    def remove(self, user: T) -> bool:
        """Stop serving `user` (False if it was not served); the last one unpatches."""
        with self._lock:
            if user not in self._users:
                return False
            self._users.remove(user)
            if not self._users:
                self._unpatch()
            return True

    def active(self) -> bool:
        """True while the patches are in place."""
        with self._lock:
            return bool(self._patches)

    def is_ours(self, method: Any) -> bool:
        """True if `method` is one of the wrappers in place now."""
        return any(patch.ours is method for patch in self._patches)

    def _patch(self, methods: Iterable[tuple[type, str, Wrap]]) -> None:
        live = self._live = threading.Event()
        live.set()
        users = self._users

        def serving() -> T | None:
            try:
                return users[-1] if live.is_set() else None
            except IndexError:  # the last user left meanwhile
                return None

        for cls, name, wrap in methods:
            original = getattr(cls, name)
            if self.is_ours(original):
                continue
            ours = functools.update_wrapper(wrap(original, serving), original)
            self._patches.append(_Patch(cls, name, cls.__dict__.get(name, _NOTHING), ours))
            setattr(cls, name, ours)

    def _unpatch(self) -> None:
        self._live.clear()
        while self._patches:
            patch = self._patches.pop()
            if patch.cls.__dict__.get(patch.name) is not patch.ours:
                continue  # patched again on top of ours: leave theirs
            if patch.held is _NOTHING:
                delattr(patch.cls, patch.name)
            else:
                setattr(patch.cls, patch.name, patch.held)
