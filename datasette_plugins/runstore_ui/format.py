"""Turning stored run values into short display strings (plain text, escaped later)."""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

from runstore._store import decode_json, shown_state

STATES = ("running", "finished", "failed", "crashed")


def loads(value: Any, default: Any = None) -> Any:
    """A JSON column as Python: raw text is parsed (`default` if empty or not
    JSON); a value the store already decoded is returned as is."""
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        return value
    try:
        return decode_json(value)  # non-finite floats come back as floats
    except ValueError:
        return default


def value_text(value: Any) -> str:
    """A compact display form of one config or summary value."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        if not math.isfinite(value):  # spelled as the store's JSON spells them
            return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
        if value != 0 and not 1e-4 <= abs(value) < 1e6:
            return f"{value:.4g}"
        return f"{value:.6g}"
    if isinstance(value, (int, str)):
        return str(value)
    if is_media(value):
        return media_text(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def is_media(value: Any) -> bool:
    """True for a logged media description (image, video, histogram, table, ...)."""
    return isinstance(value, dict) and isinstance(value.get("_type"), str)


def media_text(value: dict[str, Any]) -> str:
    """A media description (a summary keeps the last one logged) in a few words; the
    run page shows the media themselves."""
    kind = value["_type"]
    if kind == "image-file":
        size = f" {value['width']}×{value['height']}" if value.get("width") else ""
        return f"image{size} {value.get('format') or ''}".strip()
    if kind == "video-file":
        episode = value.get("episode")
        return f"video {value.get('format') or ''}".strip() + (
            f" (episode {episode})" if episode is not None else "")
    if kind == "histogram":
        return f"histogram ({len(value.get('values') or [])} bins)"
    if kind == "table":
        rows, columns = len(value.get("data") or []), len(value.get("columns") or [])
        return f"table ({rows} row{'' if rows == 1 else 's'} × {columns} columns)"
    return kind


def flatten(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested dicts as dotted keys (optimizer.lr), as wandb's UI shows config; a media
    description stays one value."""
    if isinstance(obj, dict) and (obj or not prefix) and not (prefix and is_media(obj)):
        for key, value in obj.items():
            yield from flatten(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, obj


def duration_text(seconds: float | None) -> str:
    """Seconds as `1h 02m 03s`; empty for unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return ""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{seconds:.1f}s" if seconds < 10 else f"{secs}s"


def relative_time(iso: str, now: datetime.datetime | None = None) -> str:
    """An ISO-8601 UTC time as "12 s ago", "3 min ago", "5 h ago", "2 d ago" (else the
    date); the text itself when it is not a time."""
    try:
        when = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    seconds = (now - when).total_seconds()
    if seconds < 0:
        return when.strftime("%Y-%m-%d %H:%M")
    for limit, unit, size in ((60, "s", 1), (3600, "min", 60), (86400, "h", 3600),
                              (86400 * 60, "d", 86400)):
        if seconds < limit:
            return f"{int(seconds // size)} {unit} ago"
    return when.strftime("%Y-%m-%d")


def live_state(run: Mapping[str, Any]) -> tuple[str | None, bool]:
    """(state to show, live): the state every reader shows (the store's rule, which the
    `runs` view computes: a running run whose writer stopped beating 30 s ago is
    crashed); live while it is running. The UI is read-only: it records nothing, so a
    run whose process just died on this host reads as the `runs` view has it."""
    try:
        state = shown_state(run)
    except (TypeError, ValueError):  # a heartbeat that is not a time: as recorded
        state = run.get("state")
    return state, state == "running"


def runtime_of(run: Mapping[str, Any]) -> float | None:
    """The run's runtime as the `runs` view gives it: what its process last recorded
    (it never counts on past the run's last sign of life)."""
    return run.get("runtime")


def metric_groups(keys: list[str]) -> list[dict[str, Any]]:
    """Metric keys grouped by the prefix before the first `/`; ungrouped first."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        prefix, sep, _ = key.partition("/")
        groups.setdefault(prefix if sep else "", []).append(key)
    ordered = sorted(groups.items(), key=lambda item: (item[0] != "", item[0]))
    return [{"name": name or "charts", "keys": members} for name, members in ordered]
