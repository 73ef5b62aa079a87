"""run.summary and define_metric(): what each key's summary value is."""

from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._errors import UsageError
from ._mapping import DictView
from ._values import (
    SUMMARY_MAX_CHARS,
    SUMMARY_PREVIEW_CHARS,
    JsonText,
    is_number,
    summary_value,
    truncated,
    warn,
)

SUMMARY_OPS = ("min", "max", "mean", "first", "last")


def parse_ops(summary: str | None, goal: str | None = None) -> tuple[str, ...] | None:
    """`"min,max"` -> ("min", "max"); "none" -> (); None -> None (keep the default: last)."""
    if summary is None:
        return None
    ops = []
    for op in (part.strip().lower() for part in summary.split(",")):
        if op == "none":
            return ()
        if op == "best":  # deprecated in wandb; min or max by goal
            if goal not in ("minimize", "maximize"):
                raise UsageError(
                    "define_metric(summary='best') needs goal='minimize' or 'maximize'"
                )
            op = "min" if goal == "minimize" else "max"
        if op not in SUMMARY_OPS:
            raise UsageError(
                f"define_metric summary {op!r} is not one of {', '.join(SUMMARY_OPS)} or 'none'"
            )
        ops.append(op)
    return tuple(dict.fromkeys(ops))


def check_metric_name(name: Any) -> str:
    """A define_metric name: a key, or a glob ending in a single '*'."""
    if not isinstance(name, str) or not name:
        raise UsageError(f"define_metric name must be a non-empty string, got {name!r}")
    if "*" in name[:-1]:
        raise UsageError(f"define_metric name {name!r}: '*' is only allowed at the end")
    return name


class _Agg:
    __slots__ = ("count", "first", "last", "max", "min", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.first = self.last = self.min = self.max = None

    def add(self, value: Any) -> None:
        if self.count == 0 and self.first is None:
            self.first = value
        self.last = value
        if is_number(value):
            self.count += 1
            self.total += value
            self.min = value if self.min is None or value < self.min else self.min
            self.max = value if self.max is None or value > self.max else self.max

    def view(self, ops: tuple[str, ...]) -> dict[str, Any]:
        out = {}
        for op in ops:
            if op == "mean":
                out[op] = self.total / self.count if self.count else None
            else:
                out[op] = getattr(self, op)
        return out


class Summary(DictView):
    """The last value of each logged key, or what define_metric asked for.

    Last write wins: assigning a key overrides its value (and its aggregate)
    until the key is logged again, when its rule applies again. Every change
    other than a logged row is also handed to `on_change` as (operation, args),
    so the writer can replay it on the summary it commits (`apply`).
    """

    def __init__(self, on_change: Callable[[str, tuple], None] | None = None,
                 lock: Callable[[], contextlib.AbstractContextManager] | None = None) -> None:
        object.__setattr__(self, "_values", {})  # read through _data
        object.__setattr__(self, "_fold", None)
        object.__setattr__(self, "_rules", [])  # [(pattern, ops)], newest last
        object.__setattr__(self, "_ops", {})  # key -> ops or None, resolved once
        object.__setattr__(self, "_aggs", {})
        object.__setattr__(self, "_on_change", on_change)
        # The run's lock (`lock()`: a fork() child's run has a new one), held by log()
        # from a row's summary to its hand-over: a change made here holds it from the
        # change to its record too, so run.summary and the writer's replay see changes
        # and rows in the same order.
        object.__setattr__(self, "_lock", lock or contextlib.nullcontext)
        # A box, not an attribute: a plain assignment would be __setattr__'s (a key), and
        # object.__setattr__ per logged row costs the training loop more than this.
        object.__setattr__(self, "_version", [0])

    def parts_for_cursor(self, fold: Callable[[], None]) -> dict[str, Any]:
        """What the compiled log() updates (runstore._fast): the values, and the version
        box; the rules it only looks at (it leaves a run with rules to Run.log). It keeps
        the newest values itself until `fold` puts them in, before any use of _data."""
        object.__setattr__(self, "_fold", fold)
        return {"summary_data": self._values, "summary_rules": self._rules,
                "summary_version": self._version}

    @property
    def _data(self) -> dict[str, Any]:  # type: ignore[override]
        if self._fold is not None:
            self._fold()
        return self._values

    @property
    def version(self) -> int:
        """Counts the changes: the writer saves the summary when it moved."""
        return self._version[0]

    def apply(self, operation: str, args: tuple) -> None:
        """Replay a change another Summary reported to its `on_change`."""
        getattr(self, "_" + operation)(*args)
        self._version[0] += 1

    def _changed(self, operation: str, *args: Any) -> None:
        self._version[0] += 1
        if self._on_change is not None:
            self._on_change(operation, args)

    # -- rules ------------------------------------------------------------------

    def add_rule(self, name: str, ops: tuple[str, ...] | None) -> None:
        with self._lock():
            self._rule(name, ops)
            self._changed("rule", name, ops)

    def _rule(self, name: str, ops: tuple[str, ...] | None) -> None:
        self._rules.append((name, ops))
        self._ops.clear()

    def _ops_for(self, key: str) -> tuple[str, ...] | None:
        try:
            return self._ops[key]
        except KeyError:
            pass
        found = None
        for pattern, ops in reversed(self._rules):
            if pattern == key or (pattern.endswith("*") and fnmatch.fnmatchcase(key, pattern)):
                found = ops
                break
        self._ops[key] = found
        return found

    def restore(
        self, aggregates: Mapping[str, Mapping[str, Any]], values: Mapping[str, Any] | None
    ) -> None:
        """Continue from stored history: per-key aggregates as the store computes them,
        and the values to show (a resumed run's stored summary; None recomputes them)."""
        with self._lock():
            self._restore(aggregates, values)
            self._changed("restore", aggregates, values)

    def _restore(
        self, aggregates: Mapping[str, Mapping[str, Any]], values: Mapping[str, Any] | None
    ) -> None:
        for key, stored in aggregates.items():
            agg = self._aggs[key] = _Agg()
            agg.first, agg.last = stored["first"], stored["last"]
            agg.min, agg.max = stored["min"], stored["max"]
            agg.total, agg.count = stored["sum"], stored["count"]
        if values is not None:
            self._data.update(values)
        else:
            for key, agg in self._aggs.items():
                ops = self._ops_for(key)
                if ops is None:
                    self._data[key] = agg.last
                elif ops:
                    self._data[key] = agg.view(ops)

    # -- fed by log() -------------------------------------------------------------

    def add_row(self, row: Mapping[str, Any], plain: object = False) -> None:
        """Fold one committed history row into the summary (`plain`: only numbers)."""
        values, rules = self._data, self._rules
        if plain and not rules:
            values.update(row)
            self._version[0] += 1
            return
        for key, value in row.items():
            if isinstance(value, JsonText):
                value = (value.decode() if len(value) <= SUMMARY_MAX_CHARS
                         else truncated(value))
            if rules:
                ops = self._ops_for(key)
                if ops is not None:
                    agg = self._aggs.get(key)
                    if agg is None:
                        agg = self._aggs[key] = _Agg()
                    agg.add(value)
                    if ops:
                        values[key] = agg.view(ops)
                    else:
                        values.pop(key, None)
                    continue
            values[key] = value
        self._version[0] += 1

    def add_rows(self, keys: tuple[str, ...], rows: Sequence[Sequence[float]]) -> None:
        """Fold rows of numbers, each the values of `keys` in their order. Without rules
        each row's values replace the ones before, so the last row alone tells them."""
        for values in rows if self._rules else rows[-1:]:
            self.add_row(dict(zip(keys, values, strict=True)), True)

    # -- the dict a user sees -------------------------------------------------------

    def _set(self, key: str, value: Any) -> None:
        self._data[key] = value

    def _delete(self, key: str) -> None:
        self._data.pop(key, None)

    def _update(self, values: Mapping[str, Any]) -> None:
        self._data.update(values)

    def _converted(self, key: Any, value: Any) -> tuple[bool, Any]:
        """(True, the value as kept) or, after a warning, (False, None)."""
        if not isinstance(key, str):
            warn(f"summary keys must be strings, got {key!r}; not set")
            return False, None
        try:
            kept = summary_value(value)
        except ValueError as exc:
            warn(f"summary value for {key!r} cannot be stored ({exc}); not set "
                 "(use numbers, strings, lists or dicts of them)")
            return False, None
        if isinstance(kept, dict) and kept.keys() == {"truncated", "chars"}:
            warn(f"the summary value of {key!r} is {kept['chars']:,} characters of JSON, "
                 f"over {SUMMARY_MAX_CHARS:,}: the summary keeps its first "
                 f"{SUMMARY_PREVIEW_CHARS} (log it instead to keep it whole in the history)")
        return True, kept

    def __setitem__(self, key: str, value: Any) -> None:
        ok, value = self._converted(key, value)
        if ok:
            with self._lock():
                self._set(key, value)
                self._changed("set", key, value)

    def __delitem__(self, key: str) -> None:
        with self._lock():
            del self._data[key]
            self._changed("delete", key)

    def update(self, d: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        """Set several keys explicitly."""
        values = {}
        for key, value in {**(d or {}), **kwargs}.items():
            ok, value = self._converted(key, value)
            if ok:
                values[key] = value
        if values:
            with self._lock():
                self._update(values)
                self._changed("update", values)

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value
