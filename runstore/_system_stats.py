"""System metrics sampled in the background: CPU, memory, disk, and GPUs when pynvml is
there. Needs psutil (`pip install runstore[system]`); without it nothing is sampled."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from . import _threads

Sink = Callable[[float, dict[str, float]], None]


def _gpu_sample() -> dict[str, float]:
    try:
        import pynvml
    except ImportError:
        return {}
    out: dict[str, float] = {}
    try:
        pynvml.nvmlInit()
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            util = pynvml.nvmlDeviceGetUtilizationRates(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            out[f"system/gpu.{i}.util_percent"] = float(util.gpu)
            out[f"system/gpu.{i}.memory_percent"] = 100.0 * memory.used / memory.total
            out[f"system/gpu.{i}.temp_c"] = float(pynvml.nvmlDeviceGetTemperature(handle, 0))
    except Exception:  # no driver, no device: no GPU metrics
        return {}
    return out


def sample(psutil: Any, process: Any, disk_path: str) -> dict[str, float]:
    """One sample of this machine's and this process's utilisation."""
    memory = psutil.virtual_memory()
    values = {
        "system/cpu_percent": float(psutil.cpu_percent(interval=None)),
        "system/memory_percent": float(memory.percent),
        "system/memory_used_gb": memory.used / 1e9,
        "system/disk_percent": float(psutil.disk_usage(disk_path).percent),
        "system/process_rss_mb": process.memory_info().rss / 1e6,
        "system/process_cpu_percent": float(process.cpu_percent(interval=None)),
    }
    values.update(_gpu_sample())
    return values


class Monitor:
    """A daemon thread that hands a sample to `sink` every `interval` seconds."""

    def __init__(self, sink: Sink, interval: float, disk_path: str) -> None:
        import psutil

        self._psutil = psutil
        self._process = psutil.Process(os.getpid())
        self._sink = sink
        self._interval = max(0.1, float(interval))
        self._disk_path = disk_path
        self._stop = threading.Event()
        psutil.cpu_percent(interval=None)  # the first call only primes the counters
        self._process.cpu_percent(interval=None)
        self._thread = _threads.start(self._loop, "runstore-stats")

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._sink(time.time(), sample(self._psutil, self._process, self._disk_path))
            except Exception:  # a failing sensor must not end the run
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def start(sink: Sink, interval: float, disk_path: str) -> Monitor | None:
    """A running monitor, or None when psutil is not installed."""
    try:
        return Monitor(sink, interval, disk_path)
    except ImportError:
        return None
