"""Videos: runstore.Video, and init(monitor_gym=True) for gymnasium's RecordVideo.

While a run with monitor_gym=True is active, `RecordVideo.stop_recording` (the
method that writes each video file, in gymnasium >= 1) is wrapped at class level
(start_recording too, to note the episode a recording starts in):
after it has written `<video_folder>/<name>.mp4`, the file is read and logged to the
run as `{"videos": Video(...)}` with commit=False, so it lands at the run's current
step ("videos" is the key wandb's gym integration uses; a second video at the same step
is "videos_2", and so on). The original methods are put back when the last such run
finishes. gymnasium is imported only for monitor_gym.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import re
import threading
import warnings
from pathlib import Path
from typing import Any

from ._errors import UsageError
from ._media import Media
from ._values import JsonText, MediaText, warn

VIDEO_KEY = "videos"
FORMATS = ("mp4", "webm", "gif", "ogg", "mov")
INSTALL_HINT = "monitor_gym=True needs gymnasium>=1 and moviepy: pip install 'runstore[gym]'"
_RECORDERS = ("gymnasium.wrappers.rendering", "gymnasium.wrappers.vector.rendering")


class Video(Media):
    """A video: the path of a video file, or its bytes (`format` says which kind).

    Stored as `{"_type": "video-file", "path": "media/videos/<sha16>.<format>",
    "sha256", "format", "size", "episode", "caption"}`; the bytes are a blob.
    """

    def __init__(self, data: str | os.PathLike | bytes, format: str | None = None,
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
        if fmt not in FORMATS:
            raise UsageError(f"video format {fmt!r} is not one of {', '.join(FORMATS)}")
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


Video.__module__ = "runstore"

# -- monitor_gym ----------------------------------------------------------------------

_lock = threading.Lock()
_runs: list[Any] = []  # runs with monitor_gym=True, newest last; videos go to the newest
_counts: dict[int, tuple[int, int]] = {}  # id(run) -> (step, videos attached at that step)
# (class, originals, ours, live): live["on"] goes False when ours are taken out, so a
# wrapper someone else kept a reference to stops attaching videos.
_patched: list[tuple[type, dict[str, Any], dict[str, Any], dict[str, bool]]] = []


def _recorder_classes() -> list[type]:
    """gymnasium's RecordVideo classes (single and vector env), if they define
    start_recording and stop_recording (gymnasium >= 1)."""
    classes = []
    for module_name in _RECORDERS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        cls = getattr(module, "RecordVideo", None)
        if cls is not None and {"start_recording", "stop_recording"} <= set(vars(cls)):
            classes.append(cls)
    return classes


def _episode(wrapper: Any, name: str) -> int | None:
    """The episode a recording started in: as start_recording saw it, else from the name."""
    episode = wrapper.__dict__.get("_runstore_episode")
    if episode is not None:
        return episode
    match = re.search(r"-episode-([0-9]{1,18})$", name)  # RecordVideo's own ASCII digits
    return int(match.group(1)) if match else None


def _video_key(run: Any) -> str:
    """"videos" for the first video at the run's current step; "videos_2", "videos_3", ...
    for more recorded before the step advances, so none replaces another."""
    step = run.step
    last_step, count = _counts.get(id(run), (None, 0))
    count = count + 1 if last_step == step else 1
    _counts[id(run)] = (step, count)
    return VIDEO_KEY if count == 1 else f"{VIDEO_KEY}_{count}"


def _attach(path: str, name: str, episode: int | None) -> None:
    """Log a video RecordVideo has just written to the newest monitoring run."""
    with _lock:
        run = _runs[-1] if _runs else None
        key = _video_key(run) if run is not None and os.path.isfile(path) else None
    if key is None:
        return
    try:
        run.log({key: Video(path, caption=name, episode=episode)}, commit=False)
    except Exception as exc:  # never break the training loop; a finished run lands here
        warn(f"could not attach the gym video {path} to run {run.id}: {exc}")


def _wrap(originals: dict[str, Any], live: dict[str, bool]) -> dict[str, Any]:
    """Our start_recording and stop_recording around the class's own."""
    start_original, stop_original = originals["start_recording"], originals["stop_recording"]

    def start_recording(self: Any, video_name: str) -> Any:
        result = start_original(self, video_name)
        self._runstore_episode = getattr(self, "episode_id", None)
        return result

    def stop_recording(self: Any) -> Any:
        name = getattr(self, "_video_name", None)
        folder = getattr(self, "video_folder", None)
        frames = bool(getattr(self, "recorded_frames", None))
        episode = _episode(self, name or "")
        result = stop_original(self)
        self.__dict__.pop("_runstore_episode", None)
        if live["on"] and name and folder and frames:  # no frames: no file was written
            _attach(os.path.join(folder, f"{name}.mp4"), name, episode)
        return result

    ours = {"start_recording": start_recording, "stop_recording": stop_recording}
    for name, method in ours.items():
        original = originals[name]
        method.__qualname__ = getattr(original, "__qualname__", name)
        method.__doc__, method.__wrapped__ = original.__doc__, original
    return ours


def _patch(classes: list[type]) -> None:
    for cls in classes:
        originals = {name: vars(cls)[name] for name in ("start_recording", "stop_recording")}
        live = {"on": True}
        ours = _wrap(originals, live)
        for name, method in ours.items():
            setattr(cls, name, method)
        _patched.append((cls, originals, ours, live))


def _unpatch() -> None:
    while _patched:
        cls, originals, ours, live = _patched.pop()
        live["on"] = False
        for name, method in ours.items():
            if cls.__dict__.get(name) is method:  # else patched again on top: leave theirs
                setattr(cls, name, originals[name])


def monitor(run: Any) -> Any:
    """Attach RecordVideo's videos to `run` until the returned stop() is called;
    None (after a warning) when gymnasium or moviepy is missing."""
    try:
        importlib.import_module("gymnasium")
        classes = _recorder_classes()
    except Exception:  # not installed, or broken: the run goes on without videos
        classes = []
    if not classes:
        warnings.warn(f"runstore: gymnasium is not installed (or older than 1.0), so no videos "
                      f"will be attached; {INSTALL_HINT}", UserWarning, stacklevel=3)
        return None
    if importlib.util.find_spec("moviepy") is None:
        warnings.warn(f"runstore: moviepy is not installed, so RecordVideo cannot write videos; "
                      f"{INSTALL_HINT}", UserWarning, stacklevel=3)
    with _lock:
        if not _runs:
            _patch(classes)
        _runs.append(run)

    def stop() -> None:
        with _lock:
            if run in _runs:
                _runs.remove(run)
                _counts.pop(id(run), None)
                if not _runs:
                    _unpatch()

    return stop


def patched() -> bool:
    """True while RecordVideo is wrapped (some run has monitor_gym=True)."""
    with _lock:
        return bool(_patched)
