"""init(monitor_gym=True): the videos gymnasium's RecordVideo writes, logged to the run.

While a run with monitor_gym=True is active, `RecordVideo.stop_recording` (the
method that writes each video file, in gymnasium >= 1) is wrapped at class level
(start_recording too, to note the episode a recording starts in); on gymnasium 0.26 to
0.29 (CleanRL pins 0.29), where RecordVideo hands each video to
`gymnasium.wrappers.monitoring.video_recorder.VideoRecorder`, its `close` is wrapped, as
wandb's gym integration does. Either way, once a video file is written it is read and
logged to the run as `{"videos": Video(...)}` with commit=False, so it lands at the run's
current step ("videos" is the key wandb's gym integration uses; a second video at the
same step is "videos_2", and so on). The original methods are put back when the last such run
finishes (the patch rules are _patching's). gymnasium is imported only for monitor_gym.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._media import Video
from .._values import warn, warn_user
from ._patching import ClassPatches, Method

if TYPE_CHECKING:
    from .._run import Run

VIDEO_KEY = "videos"
INSTALL_HINT = ("monitor_gym=True needs gymnasium (1.x, or 0.26 to 0.29) and moviepy: "
                "pip install 'runstore[gym]'")
_RECORDERS = ("gymnasium.wrappers.rendering", "gymnasium.wrappers.vector.rendering")
_LEGACY_RECORDER = "gymnasium.wrappers.monitoring.video_recorder"  # gymnasium 0.26 to 0.29


class _Monitor:
    """One run's side of the patch: the videos attached at its current step."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self._lock = threading.Lock()
        self._step: int | None = None
        self._count = 0

    def _key(self) -> str:
        """"videos" for the first video at the run's current step; "videos_2",
        "videos_3", ... for more recorded before the step advances, so none replaces
        another."""
        with self._lock:
            step = self.run.step
            self._count = self._count + 1 if self._step == step else 1
            self._step = step
            return VIDEO_KEY if self._count == 1 else f"{VIDEO_KEY}_{self._count}"

    def attach(self, path: str, name: str, episode: int | None) -> None:
        """Log a video RecordVideo has just written."""
        if not os.path.isfile(path):
            return
        try:
            self.run.log({self._key(): Video(path, caption=name, episode=episode)},
                         commit=False)
        except Exception as exc:  # never break the training loop; a finished run lands here
            warn(f"could not attach the gym video {path} to run {self.run.id}: {exc}")


_patches: ClassPatches[_Monitor] = ClassPatches()


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


def _legacy_recorder_classes() -> list[type]:
    """gymnasium 0.26-0.29's VideoRecorder (RecordVideo's encoder there), if present."""
    try:
        module = importlib.import_module(_LEGACY_RECORDER)
    except ImportError:
        return []
    cls = getattr(module, "VideoRecorder", None)
    return [cls] if cls is not None and "close" in vars(cls) else []


def _legacy_close(original: Method, serving: Callable[[], _Monitor | None]) -> Method:
    """VideoRecorder.close (gymnasium 0.26-0.29), then the video it wrote to the newest
    monitoring run."""
    def close(self: Any) -> Any:
        writes = (getattr(self, "enabled", False) and not getattr(self, "_closed", True)
                  and bool(getattr(self, "recorded_frames", None)))
        path = getattr(self, "path", None)
        episode = (getattr(self, "metadata", None) or {}).get("episode_id")
        result = original(self)
        monitor = serving()
        if monitor is not None and writes and path:
            name = os.path.splitext(os.path.basename(path))[0]
            monitor.attach(path, name, episode if isinstance(episode, int) else None)
        return result

    return close


def _episode(wrapper: Any, name: str) -> int | None:
    """The episode a recording started in: as start_recording saw it, else from the name."""
    episode = wrapper.__dict__.get("_runstore_episode")
    if episode is not None:
        return episode
    match = re.search(r"-episode-([0-9]{1,18})$", name)  # RecordVideo's own ASCII digits
    return int(match.group(1)) if match else None


def _start_recording(original: Method, serving: Callable[[], _Monitor | None]) -> Method:
    """RecordVideo.start_recording, noting the episode the recording starts in."""
    def start_recording(self: Any, video_name: str) -> Any:
        result = original(self, video_name)
        self._runstore_episode = getattr(self, "episode_id", None)
        return result

    return start_recording


def _stop_recording(original: Method, serving: Callable[[], _Monitor | None]) -> Method:
    """RecordVideo.stop_recording, then the video it wrote to the newest monitoring run."""
    def stop_recording(self: Any) -> Any:
        name = getattr(self, "_video_name", None)
        folder = getattr(self, "video_folder", None)
        frames = bool(getattr(self, "recorded_frames", None))
        episode = _episode(self, name or "")
        result = original(self)
        self.__dict__.pop("_runstore_episode", None)
        monitor = serving()
        if monitor is not None and name and folder and frames:  # no frames: no file
            monitor.attach(os.path.join(folder, f"{name}.mp4"), name, episode)
        return result

    return stop_recording


def start(run: Run) -> Callable[[], None] | None:
    """Attach RecordVideo's videos to `run` until the returned stop() is called;
    None (after a warning) when gymnasium or moviepy is missing."""
    version = None
    try:
        version = getattr(importlib.import_module("gymnasium"), "__version__", "?")
        methods = [(cls, name, wrap) for cls in _recorder_classes() for name, wrap in (
            ("start_recording", _start_recording), ("stop_recording", _stop_recording))]
        methods += [(cls, "close", _legacy_close) for cls in _legacy_recorder_classes()]
    except Exception:  # not installed, or broken: the run goes on without videos
        methods = []
    if not methods:
        found = ("gymnasium is not installed" if version is None else
                 f"gymnasium {version} has no RecordVideo runstore can attach to")
        warn_user(f"runstore: {found}, so no videos will be attached; {INSTALL_HINT}")
        return None
    if importlib.util.find_spec("moviepy") is None:
        warn_user(f"runstore: moviepy is not installed, so RecordVideo cannot write videos; "
                  f"{INSTALL_HINT}")
    monitor = _Monitor(run)
    _patches.add(monitor, methods)

    def stop() -> None:
        _patches.remove(monitor)

    return stop


def patched() -> bool:
    """True while RecordVideo is wrapped (some run has monitor_gym=True)."""
    return _patches.active()
