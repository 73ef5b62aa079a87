"""Media on the run page: logged images, videos, histograms and tables, and the blob route.

- ``/<db>/-/runstore/blob/<sha256>``: the bytes of a blob that a run of the store
  references in ``run_files`` (images and videos logged with `log()`, saved code),
  to an actor who may view the store's runs. The content type comes from the bytes'
  own signature, never from stored names: image/png, image/jpeg, image/gif,
  video/mp4 and video/webm are served inline; anything else is
  application/octet-stream with ``Content-Disposition: attachment``. Always
  ``X-Content-Type-Options: nosniff`` and a sandboxing CSP. Single byte ranges are
  honoured (video seeking).

`shape` turns a stored media description into what the page and ``media.json``
show: blob URLs for files, tables cut to their first rows, histograms as edges and
counts. Run-supplied text stays text: templates escape it, the JS sets textContent.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypedDict

from datasette.utils.asgi import NotFound, Response

from runstore._store import blob_range, referenced_blob

from ..access import int64, store_db
from ..format import value_text

TABLE_ROWS = 50
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
INLINE_TYPES = ("image/png", "image/jpeg", "image/gif", "video/mp4", "video/webm")


class MediaItem(TypedDict, total=False):
    """A media description as the page and media.json show it (`shape`): type, step and
    caption always, then the fields of its type."""

    type: str  # image-file, video-file, histogram, table, ...; "unknown" without one
    step: int | None
    caption: str | None
    # image-file, video-file
    url: str | None  # the blob route
    format: str
    width: int | None
    height: int | None
    episode: int | None
    size: int | None
    # histogram: len(edges) == len(counts) + 1 (both empty when the stored ones were not)
    edges: list[float | None]
    counts: list[float]
    total: float
    range_text: str
    # table: the first rows, every cell as text
    columns: list[str]
    rows: list[list[str]]
    total_rows: int
    # any other type: its JSON, cut at 2000 characters
    text: str


class Unsatisfiable(Exception):
    """A Range header no byte of the blob satisfies (416)."""


def blob_url(database_url: str, sha256: Any) -> str | None:
    """The blob route of `sha256`, or None when it is not a SHA-256 hex digest."""
    if isinstance(sha256, str) and _SHA256.match(sha256):
        return f"{database_url}/-/runstore/blob/{sha256}"
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else value_text(value)


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def shape(description: dict[str, Any], database_url: str,
          table_rows: int = TABLE_ROWS) -> MediaItem:
    """A media description as the page shows it: {type, step, caption, ...}.

    image-file/video-file: url, format, width/height or episode; histogram: edges
    and counts; table: columns, rows (first `table_rows`, cells as text) and
    total_rows; any other type: its JSON, as text."""
    kind = description.get("_type")
    caption = description.get("caption")
    out: MediaItem = {
        "type": kind if isinstance(kind, str) else "unknown",
        "step": description.get("step"),
        "caption": caption if isinstance(caption, str) else None,
    }
    if kind in ("image-file", "video-file"):
        out["url"] = blob_url(database_url, description.get("sha256"))
        out["format"] = str(description.get("format") or "")
        out["width"] = _int_or_none(description.get("width"))
        out["height"] = _int_or_none(description.get("height"))
        out["episode"] = _int_or_none(description.get("episode"))
        out["size"] = _int_or_none(description.get("size"))
    elif kind == "histogram":
        edges = [_number(v) for v in description.get("bins") or []]
        counts = [_number(v) for v in description.get("values") or []]
        if len(edges) != len(counts) + 1 or None in edges:
            edges, counts = [], []
        out["edges"] = edges
        out["counts"] = [int(c) if c is not None and c.is_integer() else (c or 0)
                         for c in counts]
        out["total"] = sum(out["counts"])
        out["range_text"] = f"{value_text(edges[0])} to {value_text(edges[-1])}" if edges else ""
    elif kind == "table":
        columns = description.get("columns") or []
        rows = description.get("data") or []
        out["columns"] = [_cell(c) for c in columns] if isinstance(columns, list) else []
        rows = rows if isinstance(rows, list) else []
        out["rows"] = [[_cell(v) for v in row] if isinstance(row, list) else [_cell(row)]
                       for row in rows[:table_rows]]
        out["total_rows"] = len(rows)
    else:
        text = json.dumps({k: v for k, v in description.items() if k != "step"},
                          ensure_ascii=False, default=str)
        out["text"] = text if len(text) <= 2000 else text[:2000] + "…"
    return out


def content_type(head: bytes) -> str:
    """The type of a blob from its first bytes; application/octet-stream unless it is
    one of the formats served inline."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in head:
        return "video/webm"
    return "application/octet-stream"


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single-range `Range` header; None to send it all.
    Raises Unsatisfiable when no byte of the blob is in the range."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if not match or match.groups() == ("", ""):
        return None  # not one byte range: ignored, as RFC 9110 allows
    first, last = match.groups()
    # int64() is None for a position beyond SQLite's integer range: beyond any blob.
    if first == "":  # the last N bytes
        length = int64(last)
        if length == 0 or size == 0:
            raise Unsatisfiable
        return (0 if length is None else max(0, size - length)), size - 1
    start = int64(first)
    stop = int64(last) if last else None
    end = size - 1 if stop is None else min(stop, size - 1)
    if start is None or start >= size or end < start:
        raise Unsatisfiable
    return start, end


async def blob_view(datasette: Any, request: Any) -> Response:
    """One blob, to an actor who may view the store's runs, if a run references it."""
    db = await store_db(datasette, request)
    sha256 = request.url_vars["sha256"]
    info = await db.execute_fn(lambda conn: referenced_blob(conn, sha256))
    if info is None:
        raise NotFound("No such file in this store")
    size = info["size"]
    kind = content_type(info["head"])
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Cache-Control": "private, max-age=86400",
        "ETag": f'"{sha256}"',
        "Accept-Ranges": "bytes",
    }
    if kind not in INLINE_TYPES:
        name = _SAFE_NAME.sub("_", info["paths"][0].rsplit("/", 1)[-1]).strip("._") or sha256
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    try:
        span = _byte_range(request.headers.get("range"), size)
    except Unsatisfiable:
        headers["Content-Range"] = f"bytes */{size}"
        return Response(b"", status=416, headers=headers, content_type=kind)
    if span is None:
        body = await db.execute_fn(lambda conn: blob_range(conn, sha256))
        return Response(body, status=200, headers=headers, content_type=kind)
    start, end = span
    body = await db.execute_fn(lambda conn: blob_range(conn, sha256, start, end - start + 1))
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return Response(body, status=206, headers=headers, content_type=kind)
