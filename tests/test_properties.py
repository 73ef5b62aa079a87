"""Property-based tests (hypothesis) of what log(), config, names, tags and notes accept.

Arbitrary Unicode keys and values, quotes and SQL fragments, huge and tiny floats,
NaN/inf, deep nesting, long strings and unserialisable objects go in through the
public API of a real run in a real store file (a fresh one per example); they must
never raise in the training loop, must read back equal through `runstore.Api` (or as
the documented conversion: bools and ints as floats, nested dicts as dotted keys,
what cannot be stored skipped with a warning), and must leave the store intact:
nothing is ever interpreted as SQL, or as HTML by the UI.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import runstore
from runstore import _lifecycle, _store
from runstore._values import MAX_JSON_CHARS, SUMMARY_MAX_CHARS, SUMMARY_PREVIEW_CHARS

SETTINGS = {"silent": True, "disable_git": True}
RESERVED = frozenset({"_step", "_runtime", "_timestamp"})
PROPERTY = settings(
    max_examples=50,
    deadline=None,
    database=None,  # no example database in the checkout; a failure prints its example
    # The autouse isolation fixture (environment, cwd) is the same for every example;
    # each example makes its own store directory.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SQL_AND_HTML = [
    "'; DROP TABLE runs; --",
    "Robert'); DROP TABLE history;--",
    "\" OR 1=1 --",
    "'", '"', "`", "\\", ";", "--", "/*", "*/", "?", ":name", "$.a", "%s", "*",
    "<script>alert(1)</script>",
    "</script><script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "&amp;", "&lt;", "{{ 7*7 }}", "{% raw %}",
    "/", "a/b", "/a/", ".", "a.b", "..", "a..b", "", " ", "\x00", "a\x00b", "\n", "\t",
    "NULL", "null", "NaN", "Infinity", "-Infinity", "true",
    "run_key", "history", "sqlite_master",
    "_step", "_runtime", "_timestamp",
]
# Strings with a special meaning somewhere in the stack (JSON tokens for non-finite
# floats, SQL, HTML): as values they must come back as the same strings.
TRICKY_STRINGS = SQL_AND_HTML + ["\U0001f600", "\u202e", "\ufeff", "\uffff", "\U0010ffff"]

# -- strategies --------------------------------------------------------------------------

# Any Unicode text: every code point except lone surrogates (which are not Unicode
# scalar values and cannot be encoded; see test_lone_surrogates_lose_nothing_else).
unicode_text = st.text(st.characters(codec="utf-8"), max_size=24)
keys = st.one_of(unicode_text, st.sampled_from(SQL_AND_HTML))
long_strings = st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=4),
                         st.integers(1_000, 150_000))
strings = st.one_of(unicode_text, st.sampled_from(TRICKY_STRINGS), long_strings)
floats = st.one_of(
    st.floats(),  # includes NaN, +-inf, subnormals
    st.sampled_from([5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
                     -1.7976931348623157e308, 1e-300, 1e300, -0.0, 0.1, 2.0**53 + 2]),
)
HUGE_INTS = [2**1024, -(2**1024), 10**400, -(10**400)]  # beyond a float's range
ints = st.one_of(
    st.integers(),
    st.sampled_from([0, 1, -1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 2**64, *HUGE_INTS]),
)


class Unserialisable:
    def __repr__(self) -> str:
        return "<Unserialisable>"


unserialisable = st.sampled_from([
    object(), Unserialisable(), {1, 2}, frozenset(), complex(1, 2), b"bytes", bytearray(b"x"),
    len, type, Ellipsis, range(3),
])
numpy_scalars = st.one_of(
    st.floats(width=32).map(np.float32),
    st.floats().map(np.float64),
    st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.booleans().map(np.bool_),
)
json_scalars = st.one_of(st.none(), st.booleans(), ints, floats, unicode_text,
                         st.sampled_from(TRICKY_STRINGS))
small_lists = st.one_of(
    st.lists(json_scalars, max_size=6),
    st.lists(st.lists(json_scalars, max_size=3), max_size=3),
    st.tuples(json_scalars, json_scalars),
    st.lists(st.one_of(json_scalars, unserialisable), min_size=1, max_size=4),
    st.builds(lambda n: list(range(n)), st.integers(20_000, 30_000)),  # too long: skipped
    st.lists(st.floats(allow_nan=False), max_size=5).map(np.array),
)
leaf_values = st.one_of(
    ints, floats, st.booleans(), st.none(), strings, small_lists, unserialisable, numpy_scalars,
)
# Non-string keys are skipped with a warning.
any_keys = st.one_of(keys, keys, keys, st.integers(), st.tuples(st.integers()))
log_values = st.recursive(
    leaf_values, lambda inner: st.dictionaries(any_keys, inner, max_size=4), max_leaves=12,
)
payloads = st.dictionaries(any_keys, log_values, max_size=8)


# -- the documented conversion, written independently of runstore/_values.py ---------------

SKIPPED = object()


def _stored(value: Any) -> Any:
    """What a logged value reads back as, SKIPPED if it is not stored: numbers keep
    their kind (bools, ints of any size, floats), as wandb keeps them."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.size == 1:
        return _stored(value.item())  # one-element arrays are scalars, as numpy's own
    if isinstance(value, (list, tuple, np.ndarray)):
        plain = value.tolist() if isinstance(value, np.ndarray) else value
        try:  # a list is kept as JSON (sets in it as lists), up to a size limit
            text = json.dumps(plain, ensure_ascii=False, default=_set_as_list)
        except (TypeError, ValueError):
            return SKIPPED
        return SKIPPED if len(text) > MAX_JSON_CHARS else json.loads(text)
    return SKIPPED


def _set_as_list(value: Any) -> list:
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _flattened(data: Mapping, prefix: str = "", out: dict | None = None) -> dict[str, Any]:
    """A log() payload as the history row it should become."""
    out = {} if out is None else out
    for key, value in data.items():
        if not isinstance(key, str) or (not prefix and key in RESERVED):
            continue
        if isinstance(value, Mapping):
            _flattened(value, prefix + key + ".", out)
            continue
        stored = _stored(value)
        if stored is not SKIPPED:
            out[prefix + key] = stored
    return out


def same(expected: Any, got: Any) -> bool:
    """Equal, with exact types: floats bit-for-bit equal in value (NaN equals NaN)."""
    if type(expected) is not type(got):
        return False
    if isinstance(expected, float):
        # == : a logged -0.0 reads back as 0.0 (SQLite keeps integral REALs as integers)
        return (math.isnan(expected) and math.isnan(got)) or expected == got
    if isinstance(expected, list):
        return len(expected) == len(got) and all(map(same, expected, got))
    if isinstance(expected, dict):
        return expected.keys() == got.keys() and all(same(v, got[k]) for k, v in
                                                      expected.items())
    return expected == got


def _rows_same(expected: dict, got: dict) -> bool:
    return set(expected) == set(got) and all(same(expected[k], got[k]) for k in got)


# -- store checks ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> None:
    """The schema objects of a fresh store: a store must have exactly these afterwards."""
    root = tmp_path_factory.mktemp("baseline")
    runstore.init(project="p", dir=root, settings=SETTINGS).finish()
    BASELINE[:] = _schema(root)


BASELINE: list[tuple] = []
pytestmark = pytest.mark.usefixtures("baseline")


def _schema(root: Path) -> list[tuple]:
    conn = sqlite3.connect(root / "runstore.db")
    try:
        return conn.execute("SELECT type, name, tbl_name FROM sqlite_master ORDER BY name")\
            .fetchall()
    finally:
        conn.close()


def _assert_intact(root: Path, runs: int = 1) -> None:
    conn = sqlite3.connect(root / "runstore.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (runs,)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()
    assert BASELINE and _schema(root) == BASELINE, "the schema changed: something was run as SQL"


def _init(root: Path, sync_writes: bool = False, **kwargs: Any) -> runstore.Run:
    """A new run in root; a run an earlier failing example left open is finished first."""
    for run in _lifecycle.active_runs():
        run.finish()
    return runstore.init(project="p", dir=root, settings={**SETTINGS, "sync_writes": sync_writes},
                         **kwargs)


def _read(root: Path, run_id: str) -> dict[str, Any]:
    api = runstore.Api(root)
    try:
        run = api.run(f"p/{run_id}")
        history = [(row.pop("_step"), {k: v for k, v in row.items()
                                       if k not in ("_runtime", "_timestamp")})
                   for row in run.history()]
        return {"history": history, "summary": run.summary, "config": run.config,
                "name": run.name, "tags": run.tags, "notes": run.notes, "state": run.state}
    finally:
        api.close()


# -- log() ------------------------------------------------------------------------------------

@PROPERTY
@given(batch=st.lists(payloads, min_size=1, max_size=5))
@example(batch=[{"": None, "0": [{1, 2}]}])  # a set in a list is kept as a list
@example(batch=[{"big": 10**400, "ok": 1.5}])
@example(batch=[{"act": "NaN", "inf": ["Infinity", "-Infinity"]}])  # strings, not floats
@example(batch=[{"'; DROP TABLE runs; --": "'; DROP TABLE history; --",
                 "a": {"b": {"c": float("nan")}}, "a.b": {"c": 2}, "": -0.0}])
def test_log_never_raises_and_reads_back(batch, tmp_path_factory):
    root = tmp_path_factory.mktemp("log")
    run = _init(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            for payload in batch:
                run.log(payload)  # must not raise, whatever the payload
        finally:
            run.finish()
    expected = [(step, _flattened(payload)) for step, payload in enumerate(batch)]
    expected = [(step, row) for step, row in expected if row]
    got = _read(root, run.id)
    assert got["state"] == "finished"
    history = dict(got["history"])
    assert len(history) == len(got["history"]), "a step was read back twice"
    # Every step with a storable value is there; no other step is.
    must = {step for step, row in expected if row}
    assert must <= set(history) <= {step for step, _ in expected}, (must, set(history))
    for step, want in expected:
        if step in history:
            assert _rows_same(want, history[step]), (step, want, history[step])
    _assert_summary(expected, got["summary"])
    _assert_intact(root)


def _assert_summary(expected_rows: list[tuple[int, dict]], summary: dict) -> None:
    """The summary keeps the last value of each key (a long one cut to a preview)."""
    last: dict[str, Any] = {}
    for _, row in expected_rows:
        last.update(row)
    for key, value in last.items():
        if isinstance(value, (str, list)):
            text = json.dumps(value, ensure_ascii=False)
            if len(text) > SUMMARY_MAX_CHARS:
                value = {"truncated": text[:SUMMARY_PREVIEW_CHARS], "chars": len(text)}
        assert key in summary, key
        assert same(value, summary[key]), (key, value, summary[key])


@PROPERTY
@given(keys=st.lists(keys, min_size=1, max_size=6, unique=True),
       steps=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_many_steps_of_hostile_keys_read_back_per_metric(keys, steps, seed, tmp_path_factory):
    """Per-metric reads (scan_history(keys=[k])) of keys that look like SQL, HTML, paths."""
    root = tmp_path_factory.mktemp("keys")
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((steps, len(keys))) * 10.0 ** rng.integers(-300, 300)
    names = [k for k in keys if k not in RESERVED]
    run = _init(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(steps):
            run.log({k: float(values[i, j]) for j, k in enumerate(keys)})
        run.finish()
    api = runstore.Api(root)
    try:
        stored = api.run(f"p/{run.id}")
        assert stored.metric_keys() == sorted(names)
        for j, key in enumerate(keys):
            if key in RESERVED:
                continue
            got = [(row["_step"], row[key]) for row in stored.scan_history(keys=[key])]
            assert got == [(i, float(values[i, j])) for i in range(steps)]
    finally:
        api.close()
    _assert_intact(root)


# Lone surrogates are valid Python strings (e.g. file names decoded with
# surrogateescape) but cannot be encoded as UTF-8 for SQLite.
surrogate_text = st.text(st.characters(categories=["Cs", "Ll"]), min_size=1, max_size=6)\
    .filter(lambda s: any(0xD800 <= ord(c) <= 0xDFFF for c in s))
LOGGED = {"value": lambda bad: {"x": bad}, "key": lambda bad: {bad: 1.0},
          "list": lambda bad: {"x": [bad]}, "nested key": lambda bad: {"n": {bad: 1.0}}}
SETTERS = {
    "summary": lambda run, bad: run.summary.__setitem__("s", bad),
    "name": lambda run, bad: setattr(run, "name", bad),
    "notes": lambda run, bad: setattr(run, "notes", bad),
    "tags": lambda run, bad: setattr(run, "tags", [bad]),
    "config": lambda run, bad: run.config.update({"c": bad}),
}


@PROPERTY
@given(bad=surrogate_text, where=st.sampled_from(sorted(LOGGED) + sorted(SETTERS)))
@example(bad="a\ud800b", where="value")
@example(bad="\udcff", where="summary")
@example(bad="\ud800\udc00", where="list")  # a surrogate pair: JSON would join the two
@example(bad="\ud800\udc00", where="value")
def test_lone_surrogates_lose_nothing_else(bad, where, tmp_path_factory):
    """A value (or key) that cannot be encoded is skipped with a warning, or stored
    exactly; a setter may refuse it with a UsageError. Every other point logged around
    it is kept and the run still finishes."""
    root = tmp_path_factory.mktemp("surrogate")
    run = _init(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            for i in range(20):
                run.log({"before": float(i)})
            run.log({"ok": 1.0, **(LOGGED[where](bad) if where in LOGGED else {})})
            if where in SETTERS:
                try:
                    SETTERS[where](run, bad)
                except runstore.UsageError:
                    pass
            for i in range(20):
                run.log({"after": float(i)})
        finally:
            run.finish()
    got = _read(root, run.id)
    history = dict(got["history"])
    assert [history.get(i, {}).get("before") for i in range(20)] == [float(i) for i in range(20)]
    assert history.get(20, {}).get("ok") == 1.0
    assert [history.get(21 + i, {}).get("after") for i in range(20)] == \
        [float(i) for i in range(20)]
    assert got["state"] == "finished"
    if where in ("value", "list") and "x" in history[20]:
        assert history[20]["x"] == ([bad] if where == "list" else bad)
    _assert_intact(root)


def test_one_unencodable_string_does_not_lose_the_rest_of_the_run(tmp_path):
    """Once logged, the string also sits in the summary, which goes out with every later
    batch: it must not take every later point (and the final state) down with it."""
    root = tmp_path / "store"
    run = _init(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            for i in range(100):
                run.log({"a": float(i)})
            run.save()  # committed
            run.log({"x": "bad\udc80"})
            for i in range(100, 1100):
                run.log({"a": float(i)})
                if i % 100 == 0:
                    time.sleep(0.01)  # several batches
        finally:
            run.finish()
    got = _read(root, run.id)
    assert [row.get("a") for _, row in got["history"] if "a" in row] == \
        [float(i) for i in range(1100)]
    assert got["state"] == "finished"


def test_a_failed_batch_does_not_relabel_later_points(tmp_path):
    """The writer interns a new key, then its transaction fails and rolls back (here on
    a string SQLite cannot take): the key's id must not outlive the rollback, or later
    points of that key are stored under an id the next new key gets."""
    root = tmp_path / "store"
    run = _init(root, sync_writes=True)  # one row per transaction
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            run.log({"x": "a\ud800b"})  # new key x, in a batch that fails
            run.log({"x": 1.0})
            run.log({"x": 2.0})
            run.log({"y": 100.0})
        finally:
            run.finish()
    history = dict(_read(root, run.id)["history"])
    assert {step: history[step] for step in (1, 2, 3)} == {
        1: {"x": 1.0}, 2: {"x": 2.0}, 3: {"y": 100.0}}
    assert history.get(0, {}) in ({}, {"x": "a\ud800b"})


@pytest.mark.parametrize("field", ["name", "notes", "tags", "config value", "config key"])
def test_init_with_unencodable_text_is_a_usage_error_or_works(field, tmp_path):
    """A lone surrogate given to init() is either stored exactly or refused with a
    UsageError that names the argument, never an encoding error from deep inside."""
    bad = "a\udc80"
    kwargs = {"name": {"name": bad}, "notes": {"notes": bad}, "tags": {"tags": [bad]},
              "config value": {"config": {"k": bad}},
              "config key": {"config": {bad: 1}}}[field]
    root = tmp_path / "store"
    try:
        run = _init(root, **kwargs)
    except runstore.UsageError as exc:
        assert field.split()[0].rstrip("s") in str(exc)
        return
    run.finish()
    got = _read(root, run.id)
    assert {"name": got["name"], "notes": got["notes"], "tags": got["tags"],
            "config value": got["config"], "config key": got["config"]}[field] == \
        {"name": bad, "notes": bad, "tags": [bad], "config value": {"k": bad},
         "config key": {bad: 1}}[field]


# -- config, name, tags, notes -------------------------------------------------------------

config_keys = st.one_of(unicode_text, st.sampled_from(SQL_AND_HTML)).filter(
    lambda k: "." not in k and k.strip("-") != "")
config_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), floats, unicode_text,
              st.sampled_from(TRICKY_STRINGS)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(unicode_text, inner, max_size=4)),
    max_leaves=10,
)
configs = st.dictionaries(config_keys, config_values, max_size=6).filter(
    lambda d: len({k.strip("-") for k in d}) == len(d))
# Names that are not only whitespace: the others are refused (runstore._names.check_name),
# by the setters as by the UI, which test_setters_and_the_ui_edit_accept_the_same_values
# checks.
names = st.one_of(st.text(st.characters(codec="utf-8"), min_size=1, max_size=80),
                  st.sampled_from([s for s in SQL_AND_HTML if s])).filter(str.strip)
tags = st.lists(st.one_of(st.text(st.characters(codec="utf-8"), min_size=1, max_size=64),
                          st.sampled_from([s for s in SQL_AND_HTML if s])), max_size=6)
notes = st.one_of(st.none(), st.text(st.characters(codec="utf-8"), max_size=200),
                  st.sampled_from(SQL_AND_HTML), long_strings)


def _config_expected(config: dict) -> dict:
    return {k.strip("-"): v for k, v in config.items()}


@PROPERTY
@given(first=st.tuples(configs, names, tags, notes), second=st.tuples(configs, names, tags, notes))
@example(first=({"act": "NaN", "x": "Infinity"}, "n", ["t"], None),
         second=({"y": "-Infinity"}, "m", [], ""))
def test_config_name_tags_notes_read_back(first, second, tmp_path_factory):
    root = tmp_path_factory.mktemp("meta")
    config, name, tag_list, note = first
    run = _init(root, config=config, name=name, tags=tag_list, notes=note)
    try:
        want = {"config": _config_expected(config), "name": name,
                "tags": list(dict.fromkeys(tag_list)), "notes": note}
        got = _read(root, run.id)
        for key in want:
            assert same(want[key], got[key]), (key, want[key], got[key])
        assert same(want["config"], dict(run.config))
        # ... and again through the setters of a live run.
        config2, name2, tags2, note2 = second
        run.config.update(config2, allow_val_change=True)
        run.name, run.tags, run.notes = name2, tags2, note2
        want = {"config": {**want["config"], **_config_expected(config2)}, "name": name2,
                "tags": list(dict.fromkeys(tags2)), "notes": note2}
        got = _read(root, run.id)
        for key in want:
            assert same(want[key], got[key]), (key, want[key], got[key])
    finally:
        run.finish()
    got = _read(root, run.id)
    for key in want:
        assert same(want[key], got[key]), (key, want[key], got[key])
    _assert_intact(root)


# -- one rule per field: the setters and the UI's edit agree --------------------------------

WHITESPACE = [" ", "   ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2028", "\x1c"]
LONE_SURROGATES = ["\ud800", "a\udfffb", "\udc80x"]
tricky_text = st.sampled_from(["", *WHITESPACE, *LONE_SURROGATES, *SQL_AND_HTML,
                               "x" * 64, "x" * 65])
field_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), tricky_text,
    st.text(st.characters(codec="utf-8"), max_size=30),
    st.lists(st.one_of(tricky_text, st.text(max_size=70), st.integers()), max_size=3),
)


@PROPERTY
@given(name=field_values, notes=field_values, tags=field_values)
@example(name="   ", notes=42, tags=["\ud800"])
def test_setters_and_the_ui_edit_accept_the_same_values(name, notes, tags, tmp_path_factory):
    root = tmp_path_factory.mktemp("rules")
    run = _init(root, name="before", notes="before", tags=["before"])
    ui = _store.connect(root / "ui.db")  # the UI's edit, on a store of its own
    key = _store.insert_run(ui, {"entity": "me", "project": "p", "id": "ui", "name": "before",
                                 "created_at": "2024-05-01T12:00:00+00:00"})
    try:
        for field, value in (("name", name), ("notes", notes), ("tags", tags)):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                setattr(run, field, value)  # a setter warns and keeps the old value
            refused = [str(w.message) for w in caught if "not updated" in str(w.message)]
            try:
                edited = _store.set_run_fields(ui, key, **{field: value})
            except runstore.UsageError as exc:  # the UI's edit raises
                assert refused, (field, value, "the UI refused it, the setter took it", exc)
                assert str(exc) in refused[0]
                continue
            assert not refused, (field, value, "the setter refused it, the UI took it", refused)
            assert same(_read(root, run.id)[field], edited[field]), (field, value)
    finally:
        run.finish()
        ui.close()


# -- nothing is HTML in the UI ---------------------------------------------------------------

MARKERS = ["<script>alert(1)</script>", "</script><script>alert(2)</script>",
           "<img src=x onerror=alert(3)>"]


@pytest.mark.ui
@settings(max_examples=10, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=unicode_text, marker=st.sampled_from(MARKERS))
def test_ui_shows_hostile_text_escaped(text, marker, tmp_path_factory):
    from ui_helpers import run_url, ui_get

    root = tmp_path_factory.mktemp("ui")
    evil = text + marker
    run = _init(root, name=evil, tags=[evil[:64]], notes=evil,
                config={"k" + evil.replace(".", ""): evil, "nested": {evil: evil}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(3):
            run.log({evil: float(i), "text": evil, f"{evil}/x": [evil]})
    run.summary[evil] = evil
    run.finish()
    conn = sqlite3.connect(root / "runstore.db")
    (run_key,) = conn.execute("SELECT run_key FROM runs").fetchone()
    conn.close()

    responses = ui_get(root / "runstore.db", "/runstore/run_list", "/runstore/runs",
                       run_url(run_key), run_url(run_key) + "/metric.json?key=text")
    for response in responses:
        assert response.status_code == 200, response.url
        assert marker not in response.text, response.url
