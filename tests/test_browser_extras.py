"""A real browser on the run page's console, system metrics and media (`runstore ui` and
headless Chromium, as in test_browser.py, whose helpers this reuses; every request to
another host is blocked and recorded).

The run prints (stdout, stderr, a `<script>` that must stay text), samples system metrics
fast and logs images, a histogram, a table and (when imageio-ffmpeg can encode one) a real
MP4. The page must show the image (decoded: naturalWidth > 0), draw the histogram and one
chart per system key, play the video's metadata, keep the console as text, and move to
another step with a slider. The screenshot goes to /tmp/runstore-browser-extras.png.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_browser import _browser, _chromium, _playwright, _Server

import runstore
from helpers import free_port
from runstore import Video

pytestmark = pytest.mark.ui  # builds a Datasette or starts `runstore ui`

SCREENSHOT = Path("/tmp/runstore-browser-extras.png")

PAGE_JS = r"""
() => ({
  images: Array.from(document.querySelectorAll("img.runstore-thumb"))
    .map((img) => [img.complete, img.naturalWidth, img.naturalHeight]),
  histograms: document.querySelectorAll(".runstore-hist-plot .uplot canvas").length,
  system: Array.from(document.querySelectorAll(".runstore-syschart")).map((fig) =>
    [fig.dataset.key, !!fig.querySelector(".uplot canvas")]),
  console: Array.from(document.querySelectorAll(".runstore-console .runstore-line")).map(
    (line) => [line.classList.contains("runstore-stderr") ? "stderr" : "stdout",
               line.querySelector(".runstore-text").textContent]),
  tableCells: Array.from(document.querySelectorAll(".runstore-media-table td"))
    .map((td) => td.textContent),
  injected: document.querySelectorAll(".runstore-page script:not([type]):not([src])").length,
  pwned: window.__pwned === true,
})
"""


@pytest.fixture
def tools() -> tuple[Any, str]:
    """Playwright and Chromium, or a skip naming what is missing (test_browser's checks)."""
    return _playwright(), _chromium()


def _mp4(path: Path) -> Path | None:
    """A real 64x48, 8-frame H.264 video, or None when no encoder is at hand."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    frames = imageio_ffmpeg.write_frames(str(path), (64, 48), fps=8, codec="libx264",
                                         pix_fmt_out="yuv420p", macro_block_size=16)
    frames.send(None)
    for i in range(8):
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[:, : 8 * (i + 1), 1] = 200
        frames.send(frame.tobytes())
    frames.close()
    return path


def _make_store(store_dir: Path, tmp: Path) -> int:
    pixels = np.zeros((32, 48, 3), np.uint8)
    pixels[:, :24, 0] = 255
    pixels[:, 24:, 2] = 255
    video = _mp4(tmp / "episode.mp4")
    with runstore.init(dir=store_dir, project="vision", name="media run",
                       settings={"stats_sampling_interval": 0.1}) as run:
        print("epoch 1 <script>window.__pwned = true</script>")
        print("warning: careful", file=sys.stderr)
        for step in range(3):
            run.log({"loss": 1.0 / (step + 1),
                     "samples": runstore.Image(np.roll(pixels, 8 * step, axis=1),
                                               caption=f"step {step}"),
                     "weights": runstore.Histogram(np.random.default_rng(step).normal(
                         step, 1, 2000)),
                     "preds": runstore.Table(columns=["id", "label"],
                                             data=[[step, "<b>not bold</b>"]])}, step=step)
        if video is not None:
            run.log({"videos": Video(video, episode=0)}, step=3)
        deadline = time.time() + 20
        while time.time() < deadline:  # a few system samples
            run.save()
            conn = sqlite3.connect(store_dir / "runstore.db")
            try:
                (n,) = conn.execute("SELECT count(DISTINCT at) FROM system_metrics").fetchone()
            finally:
                conn.close()
            if n >= 3:
                break
            time.sleep(0.1)
        run_id = run.id
    conn = sqlite3.connect(store_dir / "runstore.db")
    try:
        return conn.execute("SELECT run_key FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
    finally:
        conn.close()


def test_browser_console_system_media(tools: tuple[Any, str], tmp_path: Path) -> None:
    sync_playwright, executable = tools
    store_dir = tmp_path / "store"
    run_key = _make_store(store_dir, tmp_path)
    has_video = (tmp_path / "episode.mp4").exists()
    port = free_port()
    server = _Server(store_dir, port)
    try:
        login = server.login_url()
        server.wait_listening(port)
        with _browser(sync_playwright, executable, tmp_path, height=1200) as (_, page):
            page.goto(login)
            page.goto(f"http://127.0.0.1:{port}/runstore/-/runstore/run/{run_key}")
            page.locator(".runstore-media-section").scroll_into_view_if_needed()
            page.wait_for_function(
                "() => { const imgs = document.querySelectorAll('img.runstore-thumb');"
                " return imgs.length > 0 && Array.from(imgs).every("
                "(i) => i.complete && i.naturalWidth > 0); }")
            page.wait_for_function(
                "() => document.querySelectorAll('.runstore-syschart').length > 0 &&"
                " Array.from(document.querySelectorAll('.runstore-syschart')).every("
                "(f) => f.querySelector('.uplot canvas')) &&"
                " document.querySelector('.runstore-hist-plot .uplot canvas')")
            state = page.evaluate(PAGE_JS)
            assert state["images"] == [[True, 48, 32]], state
            assert state["histograms"] == 1, state
            keys = {key for key, drawn in state["system"] if drawn}
            assert {"system/cpu_percent", "system/memory_percent"} <= keys, state
            assert len(keys) == len(state["system"]), state
            assert state["console"][:2] == [
                ["stdout", "epoch 1 <script>window.__pwned = true</script>"],
                ["stderr", "warning: careful"]], state
            assert not state["pwned"] and state["injected"] == 0, state
            assert state["tableCells"] == ["2", "<b>not bold</b>"], state
            if has_video:
                page.locator("video.runstore-video").scroll_into_view_if_needed()
                page.wait_for_function(
                    "() => { const v = document.querySelector('video.runstore-video');"
                    " return v && v.readyState >= 1 && v.videoWidth === 64; }")
            page.locator(".runstore-media-section").scroll_into_view_if_needed()
            page.screenshot(path=str(tmp_path / "extras.png"), full_page=True)
            shutil.copyfile(tmp_path / "extras.png", SCREENSHOT)

            # The image slider: step 0 comes from media.json and is displayed.
            figure = page.locator("figure.runstore-media[data-key=samples]")
            figure.locator("input[type=range]").evaluate(
                "(el) => { el.value = 0; el.dispatchEvent(new Event('input')); }")
            page.wait_for_function(
                "() => { const f = document.querySelector("
                "'figure.runstore-media[data-key=samples]'); const img = f.querySelector("
                "'img.runstore-thumb'); return f.querySelector('.runstore-media-step')"
                ".textContent === 'step 0' && img.complete && img.naturalWidth === 48; }")
            assert figure.locator(".runstore-media-caption").inner_text() == "step 0"
    finally:
        server.stop()
