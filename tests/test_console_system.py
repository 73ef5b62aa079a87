"""Console capture and system metrics, in real processes and real stores."""

from __future__ import annotations

import sys
import time

import runstore
from helpers import query, run_script
from runstore import _store

CHILD = """
import sys, runstore
run = runstore.init(project="p", id="talk", dir={store!r}, settings={settings})
print("hello <script>")
print("partial", end="")
print(" line")
sys.stderr.write("warning: careful\\n")
for i in range(3):
    runstore.log({{"x": i}})
sys.stdout.write("no newline at the end")
"""


def test_console_is_captured_line_by_line_and_still_printed(tmp_path, store_dir):
    result = run_script(CHILD.format(store=str(store_dir), settings={}), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # What the user sees is unchanged ...
    assert result.stdout == "hello <script>\npartial line\nno newline at the end"
    assert "warning: careful\n" in result.stderr
    # ... and the run keeps it, with times.
    conn = _store.connect(store_dir / "runstore.db")
    run_key = _store.find_run_key(conn, runstore._provenance.os_user(), "p", "talk")
    lines = _store.console_lines(conn, run_key)
    conn.close()
    assert [(stream, line) for stream, _, line in lines] == [
        ("stdout", "hello <script>"), ("stdout", "partial line"),
        ("stderr", "warning: careful"), ("stdout", "no newline at the end")]
    assert all(at > 1e9 for _, at, _ in lines)
    assert query(store_dir, "SELECT count(*) FROM console WHERE run_id = 'talk'") == [(4,)]


def test_console_off_captures_nothing(tmp_path, store_dir):
    result = run_script(CHILD.format(store=str(store_dir), settings={"console": "off"}),
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert query(store_dir, "SELECT count(*) FROM console_lines") == [(0,)]


def test_console_capture_restores_the_streams(new_run):
    before = sys.stdout
    run = new_run()
    assert sys.stdout is not before
    run.finish()
    assert sys.stdout is before


def test_system_metrics_are_sampled_in_the_background(new_run, store_dir):
    run = new_run(settings={"stats_sampling_interval": 0.1})
    deadline = time.time() + 10
    while time.time() < deadline:
        run.save()
        if query(store_dir, "SELECT count(DISTINCT at) FROM system_metrics")[0][0] >= 3:
            break
        time.sleep(0.1)
    run.log({"x": 1})
    run.finish()
    conn = _store.connect(store_dir / "runstore.db")
    samples = _store.system_samples(conn, 1)
    conn.close()
    assert {"system/cpu_percent", "system/memory_percent", "system/disk_percent",
            "system/process_rss_mb"} <= set(samples)
    assert len(samples["system/memory_percent"]) >= 3
    assert all(0 <= v <= 100 for _, v in samples["system/memory_percent"])
    # System metrics do not touch the run's steps or history.
    assert query(store_dir, "SELECT count(*) FROM history") == [(1,)]


def test_disable_stats_samples_nothing(new_run, store_dir):
    run = new_run(settings={"stats_sampling_interval": 0.05, "disable_stats": True})
    time.sleep(0.3)
    run.finish()
    assert query(store_dir, "SELECT count(*) FROM system_metrics") == [(0,)]
