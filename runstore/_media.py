"""Media for log(): runstore.Image, runstore.Histogram, runstore.Table, runstore.Video.

Each becomes a small JSON description stored as the history value (with a
`_type`, as wandb's exported history has); image and video bytes go to the store's blobs,
deduplicated by hash. Encoding happens in log(), on the caller's thread, as in wandb.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

from ._errors import UsageError
from ._values import JsonText, MediaText


class Media:
    """Base of the values log() stores as media."""

    _runstore_media = True  # how log() recognises media without importing this module

    def stored(self, key: str) -> JsonText:  # pragma: no cover - overridden
        raise NotImplementedError


def _png(pixels: Any) -> tuple[bytes, int, int]:
    """A numpy array (H x W, H x W x 1/3/4; uint8, or floats in 0..1) as PNG bytes."""
    import numpy as np

    array = np.asarray(pixels)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise UsageError(f"an image must be H x W, H x W x 3 or H x W x 4, not {array.shape}")
    if array.dtype != np.uint8:
        scale = 255.0 if array.size and float(np.nanmax(array)) <= 1.0 else 1.0
        array = np.clip(np.nan_to_num(array.astype(float) * scale), 0, 255).astype(np.uint8)
    height, width = array.shape[:2]
    color = 0 if array.ndim == 2 else (2 if array.shape[2] == 3 else 6)  # grey, RGB, RGBA
    raw = b"".join(b"\x00" + array[y].tobytes() for y in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
           + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
    return png, width, height


class Image(Media):
    """An image: a numpy array, a PIL image, or the path of an image file."""

    def __init__(self, data: Any, caption: str | None = None) -> None:
        self.caption = caption
        if isinstance(data, (str, Path)):
            path = Path(data)
            if not path.is_file():
                raise UsageError(f"image file {str(path)!r} does not exist")
            self._bytes, self._format = path.read_bytes(), path.suffix.lstrip(".").lower()
            self.width = self.height = None
        elif hasattr(data, "save") and hasattr(data, "size"):  # a PIL image
            buffer = io.BytesIO()
            data.save(buffer, format="PNG")
            self._bytes, self._format = buffer.getvalue(), "png"
            self.width, self.height = data.size
        else:
            self._bytes, self.width, self.height = _png(data)
            self._format = "png"

    def stored(self, key: str) -> JsonText:
        digest = hashlib.sha256(self._bytes).hexdigest()
        path = f"media/images/{digest[:16]}.{self._format or 'bin'}"
        description = {"_type": "image-file", "path": path, "sha256": digest,
                       "format": self._format, "width": self.width, "height": self.height,
                       "size": len(self._bytes)}
        if self.caption is not None:
            description["caption"] = self.caption
        return MediaText(json.dumps(description), self._bytes, path)


class Histogram(Media):
    """A histogram of values (a sequence or numpy array), or given as (counts, bin_edges)."""

    def __init__(self, sequence: Any = None, np_histogram: Any = None, num_bins: int = 64) -> None:
        import numpy as np

        if np_histogram is not None:
            counts, edges = np_histogram
        else:
            values = np.asarray(sequence, dtype=float).ravel()
            values = values[np.isfinite(values)]
            counts, edges = np.histogram(values, bins=max(1, min(int(num_bins), 512)))
        self.counts = [int(c) for c in counts]
        self.bins = [float(e) for e in edges]
        if len(self.bins) != len(self.counts) + 1:
            raise UsageError("a histogram needs one more bin edge than counts")

    def stored(self, key: str) -> JsonText:
        return JsonText(json.dumps({"_type": "histogram", "bins": self.bins,
                                    "values": self.counts}))


class Table(Media):
    """A table: column names and rows (lists), or a pandas DataFrame."""

    def __init__(self, columns: list[str] | None = None, data: list[list[Any]] | None = None,
                 dataframe: Any = None) -> None:
        if dataframe is not None:
            columns = [str(c) for c in dataframe.columns]
            data = dataframe.values.tolist()
        self.columns = [str(c) for c in (columns or [])]
        self.data = [list(row) for row in (data or [])]
        for row in self.data:
            if len(row) != len(self.columns):
                raise UsageError(f"a table row has {len(row)} values for "
                                 f"{len(self.columns)} columns")

    def add_data(self, *values: Any) -> None:
        """Append one row."""
        if len(values) != len(self.columns):
            raise UsageError(f"a table row needs {len(self.columns)} values, got {len(values)}")
        self.data.append(list(values))

    def stored(self, key: str) -> JsonText:
        return JsonText(json.dumps({"_type": "table", "columns": self.columns,
                                    "data": self.data}, default=str))


VIDEO_FORMATS = ("mp4", "webm", "gif", "ogg", "mov")


class Video(Media):
    """A video: the path of a video file, or its bytes (`format` says which kind).

    Stored as `{"_type": "video-file", "path": "media/videos/<sha16>.<format>",
    "sha256", "format", "size", "episode", "caption"}`; the bytes are a blob.
    """

    def __init__(self, data: str | os.PathLike[str] | bytes, format: str | None = None,
                 caption: str | None = None, episode: int | None = None) -> None:
        if isinstance(data, (bytes, bytearray, memoryview)):
            self._bytes = bytes(data)
            suffix = None
        elif isinstance(data, (str, os.PathLike)):
            path = Path(data)
            if not path.is_file():
                raise UsageError(f"video file {str(path)!r} does not exist")
            self._bytes = path.read_bytes()
            suffix = path.suffix.lstrip(".").lower() or None
        else:
            raise UsageError(f"Video takes a file path or bytes, not {type(data).__name__} "
                             "(write frames to a file first, e.g. with moviepy)")
        fmt = (format or suffix or "mp4").lower()
        if fmt not in VIDEO_FORMATS:
            raise UsageError(f"video format {fmt!r} is not one of {', '.join(VIDEO_FORMATS)}")
        self.format = fmt
        self.caption = caption
        self.episode = None if episode is None else int(episode)

    def stored(self, key: str) -> JsonText:
        digest = hashlib.sha256(self._bytes).hexdigest()
        path = f"media/videos/{digest[:16]}.{self.format}"
        description = {"_type": "video-file", "path": path, "sha256": digest,
                       "format": self.format, "size": len(self._bytes),
                       "episode": self.episode, "caption": self.caption}
        return MediaText(json.dumps(description), self._bytes, path)
