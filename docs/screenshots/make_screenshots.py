"""Re-make the README's screenshots of the UI (workspace, run page, compare view).

    .venv/bin/python docs/screenshots/make_screenshots.py [--store /tmp/shots/store]

Builds a demo store (11 runs in project "demo": two groups, configs, noisy
`train/loss`, `val/loss`, `val/acc` over 2,000 steps, Markdown notes, tags, one failed
run and one run forked at step 1000), starts `runstore ui` on a free loopback port,
signs in with its one-time link, and saves `workspace.png`, `run.png` and `compare.png`
beside this file, from Debian's Chromium (`/usr/bin/chromium`, or $RUNSTORE_CHROMIUM)
driven by Playwright at 1440x900. An existing store directory is deleted first.
Needs the test extras (numpy, playwright) and a chromium binary; never downloads one.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import runstore

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("RUNSTORE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
VIEWPORT = {"width": 1440, "height": 900}
STEPS = 2000
MAX_BYTES = 400_000

# (name, group, optimizer, lr, batch_size, tags)
RUNS = [
    ("resnet18-adam-3e-4", "resnet18", "adam", 3e-4, 128, ["baseline"]),
    ("resnet18-adam-1e-3", "resnet18", "adam", 1e-3, 128, []),
    ("resnet18-sgd-0.1", "resnet18", "sgd", 0.1, 256, ["sgd"]),
    ("resnet18-sgd-0.03", "resnet18", "sgd", 0.03, 256, ["sgd"]),
    ("resnet18-adamw-1e-3", "resnet18", "adamw", 1e-3, 64, ["best"]),
    ("vit-tiny-adamw-3e-4", "vit-tiny", "adamw", 3e-4, 128, ["baseline"]),
    ("vit-tiny-adamw-1e-3", "vit-tiny", "adamw", 1e-3, 128, []),
    ("vit-tiny-adam-1e-4", "vit-tiny", "adam", 1e-4, 256, []),
    ("vit-tiny-sgd-0.05", "vit-tiny", "sgd", 0.05, 64, ["sgd"]),
]

NOTES = """**{name}** on CIFAR-10, `{optimizer}` with lr `{lr:g}`, batch size {batch_size}.

- cosine schedule, 5 warm-up epochs
- augmentation: random crop + flip
- see [the sweep notes](https://example.com/notes) for why this lr
"""


def curves(seed: int, lr: float, optimizer: str, vit: bool) -> dict[str, np.ndarray]:
    """Noisy but plausible train/val loss and val accuracy for STEPS steps."""
    rng = np.random.default_rng(seed)
    step = np.arange(STEPS)
    speed = {"adam": 1.0, "adamw": 1.15, "sgd": 0.8}[optimizer] * (1 + 40 * min(lr, 0.02))
    floor = (0.32 if vit else 0.25) + 0.08 * abs(math.log10(lr) + 3) / 2 + rng.uniform(0, 0.05)
    base = floor + (2.3 - floor) * np.exp(-step * speed / 450)
    train = base * (1 + rng.normal(0, 0.06, STEPS)) - 0.05 * step / STEPS
    val = base + 0.04 + 0.08 * (step / STEPS) ** 2 * (1 if vit else 0.5)
    val = val * (1 + rng.normal(0, 0.02, STEPS))
    acc = np.clip(1.0 - val / 2.6 + rng.normal(0, 0.006, STEPS), 0, 1)
    return {"train/loss": train, "val/loss": val, "val/acc": acc}


def build_store(store: Path) -> None:
    if store.exists():
        shutil.rmtree(store)
    store.mkdir(parents=True)
    ids = {}
    for seed, (name, group, optimizer, lr, batch_size, tags) in enumerate(RUNS):
        config = {"lr": lr, "optimizer": optimizer, "batch_size": batch_size,
                  "model": group, "epochs": 40, "seed": seed}
        with runstore.init(dir=str(store), project="demo", name=name, group=group,
                           job_type="train", config=config, tags=tags,
                           notes=NOTES.format(name=name, **config)) as run:
            runstore.define_metric("val/acc", summary="max,last")
            runstore.define_metric("val/loss", summary="min,last")
            series = curves(seed, lr, optimizer, group == "vit-tiny")
            for s in range(STEPS):
                row = {"train/loss": float(series["train/loss"][s])}
                if s % 20 == 0 or s == STEPS - 1:
                    row["val/loss"] = float(series["val/loss"][s])
                    row["val/acc"] = float(series["val/acc"][s])
                run.log(row, step=s)
            ids[name] = run.id

    # A run that dies half-way: its state is "failed".
    try:
        with runstore.init(dir=str(store), project="demo", name="vit-tiny-sgd-0.5-diverged",
                           group="vit-tiny", job_type="train", tags=["sgd"],
                           config={"lr": 0.5, "optimizer": "sgd", "batch_size": 256,
                                   "model": "vit-tiny", "epochs": 40, "seed": 99},
                           notes="lr **0.5** is too high: the loss blows up.") as run:
            rng = np.random.default_rng(99)
            for s in range(700):
                loss = (2.3 - 0.8 * math.sin(s / 230) + max(0, s - 550) / 60) * (
                    1 + rng.normal(0, 0.08))
                run.log({"train/loss": loss}, step=s)
            raise FloatingPointError("loss is nan at step 700")
    except FloatingPointError:
        pass

    # A fork of the best run at step 1000, with the lr halved from there on.
    parent = "resnet18-adamw-1e-3"
    with runstore.init(dir=str(store), project="demo", name=parent + "-fork-lr5e-4",
                       group="resnet18", job_type="train", tags=["fork"],
                       fork_from=f"{ids[parent]}?_step=1000",
                       config={"lr": 5e-4, "optimizer": "adamw", "batch_size": 64,
                               "model": "resnet18", "epochs": 40, "seed": 4},
                       notes=f"Forked from `{parent}` at step 1000; lr halved.") as run:
        series = curves(4, 1e-3, "adamw", False)
        for s in range(1001, STEPS):
            gain = 1 - 0.06 * (s - 1000) / 1000
            row = {"train/loss": float(series["train/loss"][s]) * gain}
            if s % 20 == 0 or s == STEPS - 1:
                row["val/loss"] = float(series["val/loss"][s]) * gain
                row["val/acc"] = min(1.0, float(series["val/acc"][s]) + 0.01 * (s - 1000) / 1000)
            run.log(row, step=s)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_ui(store: Path, port: int) -> tuple[subprocess.Popen, str]:
    """`runstore ui STORE --port PORT` in its own process group, and its sign-in link."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from runstore._cli import main; main()",
         "ui", str(store), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        match = re.search(r"(http://\S+/-/auth-token\?token=[0-9a-f]+)", line)
        if match:
            break
    else:
        raise SystemExit("runstore ui printed no sign-in link")
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, match.group(1)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def stop_ui(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def save(page, name: str, full_page: bool = False, clip: dict | None = None) -> Path:
    """A PNG, or a JPEG (quality 80) under the same stem when the PNG is too big."""
    for old in (HERE / f"{name}.png", HERE / f"{name}.jpg"):
        old.unlink(missing_ok=True)
    path = HERE / f"{name}.png"
    full_page = full_page or clip is not None
    page.screenshot(path=str(path), type="png", full_page=full_page, clip=clip)
    if path.stat().st_size > MAX_BYTES:
        path.unlink()
        path = HERE / f"{name}.jpg"
        page.screenshot(path=str(path), type="jpeg", quality=80, full_page=full_page,
                        clip=clip)
    print(f"{path} ({path.stat().st_size // 1024} KB)")
    return path


# Every chart drew n series (charts load when scrolled near: scroll down first).
CHARTS_READY = """(n) => {
  const figs = Array.from(document.querySelectorAll("figure.runstore-chart"));
  return figs.length > 0 && figs.every((fig) => {
    const canvas = fig.querySelector(".uplot canvas");
    return canvas && canvas.width > 0 && fig.querySelectorAll(".u-legend .u-series").length
      >= n + 1;
  });
}"""

WORKSPACE_DRAWN = """() => { const p = document.querySelector('.runstore-workspace');
  return p && Number(p.dataset.drawn || 0) > 0; }"""


def run_link(page, name: str):
    return page.locator("a.runstore-run-link", has_text=re.compile(f"^{re.escape(name)}$"))


def scroll_through(page) -> None:
    """Scroll to the bottom and back, so every lazily loaded chart starts loading."""
    height = page.evaluate("() => document.body.scrollHeight")
    for y in range(0, height + 900, 600):
        page.evaluate(f"() => window.scrollTo(0, {y})")
        page.wait_for_timeout(150)
    page.evaluate("() => window.scrollTo(0, 0)")


def shoot(store: Path) -> None:
    from playwright.sync_api import sync_playwright

    port = free_port()
    proc, login = start_ui(store, port)
    base = f"http://127.0.0.1:{port}/runstore"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(20_000)
            page.goto(login)

            # The workspace: charts, parallel coordinates and the runs table (down to
            # its last row; the view's SQL below it is left out).
            page.goto(f"{base}/-/runstore/workspace?project=demo")
            page.wait_for_function(WORKSPACE_DRAWN)
            page.select_option(".runstore-ws-metric", "val/acc.max")
            page.select_option(".runstore-ws-scatter-x", "lr")
            page.wait_for_timeout(1500)
            bottom = page.evaluate("() => document.querySelector('table.rows-and-columns')"
                                   ".getBoundingClientRect().bottom + window.scrollY + 16")
            save(page, "workspace", clip={"x": 0, "y": 0, "width": VIEWPORT["width"],
                                          "height": bottom})

            # The forked run: its page shows the fork point, lineage and parent's config.
            page.goto(f"{base}/run_list")
            run_link(page, "resnet18-adamw-1e-3-fork-lr5e-4").click()
            page.wait_for_url(re.compile(r"/-/runstore/run/[0-9]+$"))
            scroll_through(page)
            page.wait_for_function(CHARTS_READY, arg=1)
            page.wait_for_timeout(1500)
            save(page, "run", full_page=True)

            page.goto(f"{base}/run_list")
            for name in ["resnet18-adamw-1e-3", "resnet18-sgd-0.1", "vit-tiny-adamw-3e-4",
                         "resnet18-adamw-1e-3-fork-lr5e-4"]:
                row = page.locator("tr", has=run_link(page, name))
                row.locator("input.runstore-pick").check()
            page.locator("button.runstore-compare-button").click()
            page.wait_for_url(re.compile(r"/-/runstore/compare\?runs="))
            scroll_through(page)
            page.wait_for_function(CHARTS_READY, arg=4)
            page.wait_for_timeout(1500)
            save(page, "compare", full_page=True)
            browser.close()
    finally:
        stop_ui(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=Path("/tmp/shots/store"))
    parser.add_argument("--no-build", action="store_true", help="reuse an existing store")
    args = parser.parse_args()
    if not args.no_build:
        build_store(args.store)
    shoot(args.store)


if __name__ == "__main__":
    main()
