"""Real child processes: runs left open are finished at exit with the right state."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

import runstore
from helpers import query, run_script, wait_drained

LOOP = """
import runstore, sys
run = runstore.init(project="p", id="child", dir={store!r})
for i in range(1000):
    runstore.log({{"loss": i, "acc": i / 1000}})
"""


@pytest.mark.parametrize(
    ("ending", "state", "code", "returncode"),
    [
        ("", "finished", 0, 0),
        ("raise RuntimeError('boom')", "failed", 1, 1),
        ("sys.exit(3)", "failed", 3, 3),
        ("sys.exit(0)", "finished", 0, 0),
        # Python dies of SIGINT; wandb records 255 for Ctrl-C.
        ("raise KeyboardInterrupt", "failed", 255, -signal.SIGINT),
    ],
)
def test_exit_without_finish(tmp_path, store_dir, ending, state, code, returncode):
    result = run_script(LOOP.format(store=str(store_dir)) + ending + "\n", cwd=tmp_path)
    assert result.returncode == returncode, result.stderr
    assert query(store_dir, "SELECT state, exit_code FROM runs") == [(state, code)]
    assert query(store_dir, "SELECT count(*), max(step) FROM history") == [(2000, 999)]
    summary = runstore.Api(store_dir).run("p/child").summary
    assert summary == {"loss": 999.0, "acc": 0.999}


def test_sigterm_flushes_and_marks_failed(tmp_path, store_dir):
    code = LOOP.format(store=str(store_dir)) + textwrap.dedent("""
        print("ready", flush=True)
        import time
        while True:
            time.sleep(0.01)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    assert query(store_dir, "SELECT state, exit_code FROM runs") == [("failed", 143)]
    assert query(store_dir, "SELECT count(*) FROM history") == [(2000,)]


def test_sigkill_keeps_what_was_committed(tmp_path, store_dir):
    code = LOOP.format(store=str(store_dir)) + textwrap.dedent("""
        runstore.run.save()  # everything so far is committed
        print("ready", flush=True)
        import time
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.1)
    proc.kill()
    proc.wait(timeout=30)
    # The writer process sees its trainer die, drains what is left and records the run
    # crashed at once (it used to read `running` until its heartbeat went stale).
    assert wait_drained(store_dir)
    deadline = time.monotonic() + 30
    while query(store_dir, "SELECT state FROM runs") != [("crashed",)] \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert query(store_dir, "SELECT count(*) FROM history") == [(2000,)]
    assert query(store_dir, "SELECT state FROM runs") == [("crashed",)]
    assert query(store_dir, "PRAGMA integrity_check") == [("ok",)]


def _blocked(native_id: int) -> set[int]:
    """The signals a thread of this process blocks (Linux: SigBlk in /proc)."""
    with open(f"/proc/self/task/{native_id}/status") as status:
        mask = int(next(line for line in status if line.startswith("SigBlk:")).split()[1], 16)
    return {n for n in range(1, 65) if mask >> (n - 1) & 1}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_runstore_threads_leave_sigterm_and_sigint_to_the_main_thread(tmp_path, store_dir):
    """A SIGTERM caught by one of runstore's threads left the main thread asleep in
    time.sleep() with its run unfinished (1 in ~50 with a publisher and a monitor)."""
    import threading

    run = runstore.init(project="p", dir=store_dir, settings={
        "writer_process": False, "publish_dir": str(tmp_path / "inbox"),
        "stats_sampling_interval": 0.05})
    try:
        ours = [t for t in threading.enumerate() if t.name.startswith("runstore-")]
        assert {"runstore-writer", "runstore-publish", "runstore-stats"} <= {
            t.name for t in ours}
        for thread in ours:
            if thread.is_alive() and thread.native_id is not None:
                assert {signal.SIGINT, signal.SIGTERM} <= _blocked(thread.native_id), thread
        main = threading.main_thread().native_id
        assert main is not None and not {signal.SIGINT, signal.SIGTERM} & _blocked(main)
    finally:
        run.finish()
