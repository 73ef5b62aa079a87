"""The hand-off from log() to the writer process: forks, signals, a writer that dies,
the thread fallback and its recovery, warnings, and records bigger than the ring."""

from __future__ import annotations

import enum
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import pytest

import runstore
from helpers import query, wait_drained


def _gone(pid: int, timeout: float) -> bool:
    """Whether the process ends (or is a zombie nobody reaped yet) within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.02)
    return False


def _spawn(code: str, cwd: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def _counting_child(store_dir: Path, run_id: str, cwd: Path, settings: dict | None = None,
                    mode: str = "online", **popen) -> subprocess.Popen:
    """A child that logs {"i": i} and prints i, for i = 0, 1, ... until it is stopped."""
    return _spawn(f"""
        import runstore
        with runstore.init(project="p", id={run_id!r}, dir={str(store_dir)!r}, mode={mode!r},
                           settings={settings or {}!r}) as run:
            i = 0
            while True:
                run.log({{"i": i}})
                print(i, flush=True)
                i += 1
    """, cwd, **popen)


def _printed(proc: subprocess.Popen, before: int) -> int:
    """How many steps the child printed: `before` read already, the rest once it ended."""
    out, _ = proc.communicate(timeout=60)
    return before + len(out.split())


def _read_until(proc: subprocess.Popen, count: int) -> list[str]:
    lines = []
    while len(lines) < count:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        lines.append(line.strip())
    return lines


def test_a_forked_child_never_writes_into_the_parents_ring(tmp_path, store_dir):
    code = f"""
        import os, warnings, runstore
        run = runstore.init(project="p", id="parent", dir={str(store_dir)!r})
        run.log({{"who": 0.0}})
        pid = os.fork()
        if pid == 0:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for _ in range(50):
                    print("the child prints too (the console capture was bound before)")
                    run.log({{"who": 1.0}})
                run.summary["child"] = 1
                run.finish()
            print("child warned:", any("fork()" in str(w.message) for w in caught), flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        for _ in range(3):
            print("the parent prints")
            run.log({{"who": 0.0}})
        run.finish()
        print("parent done", flush=True)
    """
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "child warned: True" in out.stdout and "parent done" in out.stdout
    run = runstore.Api(store_dir).run("p/parent")
    assert [row["who"] for row in run.history()] == [0.0] * 4
    assert run.state == "finished" and "child" not in run.summary
    lines = [line for (line,) in query(store_dir, "SELECT line FROM console_lines")]
    assert "the parent prints" in lines and not any("child" in line for line in lines)


def test_the_writer_process_stops_soon_after_its_run_dies(tmp_path, store_dir):
    proc = _spawn(f"""
        import time, runstore
        run = runstore.init(project="p", id="victim", dir={str(store_dir)!r})
        run.log({{"x": 1.0}})
        run._writer.flush()
        print(run._writer._ring.consumer_pid(), flush=True)
        while True:
            run.log({{"x": 2.0}})
            time.sleep(0.001)
    """, tmp_path)
    writer_pid = int(_read_until(proc, 1)[0])
    assert writer_pid not in (0, proc.pid)
    proc.kill()
    proc.wait(timeout=30)
    assert _gone(writer_pid, timeout=15), "the writer process outlived its run"
    assert wait_drained(store_dir, timeout=5)
    assert query(store_dir, "SELECT state FROM run_records") == [("crashed",)]


def test_ctrl_c_reaches_the_trainer_and_not_its_writer(tmp_path, store_dir):
    # Ctrl+C in a terminal signals the whole foreground process group.
    proc = _counting_child(store_dir, "interrupted", tmp_path, start_new_session=True)
    _read_until(proc, 200)
    os.killpg(proc.pid, signal.SIGINT)
    printed = _printed(proc, 200)
    run = runstore.Api(store_dir).run("p/interrupted")
    assert run.state == "failed"  # exit code 255, as wandb records a KeyboardInterrupt
    assert len(run.history()) >= printed


def test_a_writer_process_that_dies_is_taken_over_by_a_thread(store_dir):
    run = runstore.init(project="p", id="orphan", dir=store_dir)
    for i in range(100):
        run.log({"x": float(i)})
    assert run._writer.flush()
    os.kill(run._writer._ring.consumer_pid(), signal.SIGKILL)
    with pytest.warns(RuntimeWarning, match="writer process ended early"):
        for i in range(100, 20_000):
            run.log({"x": float(i)})
        run.finish()
    api_run = runstore.Api(store_dir).run("p/orphan")
    assert [row["x"] for row in api_run.scan_history()] == [float(i) for i in range(20_000)]
    assert api_run.state == "finished"


def test_with_a_writer_thread_the_next_init_recovers_what_a_killed_trainer_left(
        tmp_path, store_dir):
    proc = _counting_child(store_dir, "victim", tmp_path, {"writer_process": False})
    _read_until(proc, 2000)
    proc.kill()
    printed = _printed(proc, 2000)
    assert list((store_dir / "runstore.db-handoff").glob("*.ring")), "no ring was left"
    runstore.init(project="p", id="next", dir=store_dir).finish()
    victim = runstore.Api(store_dir).run("p/victim")
    assert [row["i"] for row in victim.scan_history()][:printed] == list(range(printed))
    assert victim.state == "crashed"
    assert not list((store_dir / "runstore.db-handoff").iterdir())


def test_the_writer_process_s_warnings_reach_the_training_process(store_dir):
    run = runstore.init(project="p", id="warned", dir=store_dir)
    run.log({"ok": 1.0, "bad\udcff": 2.0})  # a key SQLite cannot store, seen by the writer
    with pytest.warns(RuntimeWarning, match="not storable text"):
        run.finish()
    assert [row["ok"] for row in runstore.Api(store_dir).run("p/warned").history()] == [1.0]


def test_records_bigger_than_the_ring_go_through_a_side_file(tmp_path, store_dir):
    big = os.urandom(300_000)
    (tmp_path / "big.bin").write_bytes(big)
    run = runstore.init(project="p", id="big", dir=store_dir,
                        settings={"log_queue_size": 16})  # the smallest ring, 64 KiB
    run.save(str(tmp_path / "big.bin"), base_path=str(tmp_path), policy="now")
    for i in range(5_000):
        run.log({"x": float(i), "y": float(i)})
    run.finish()
    api_run = runstore.Api(store_dir).run("p/big")
    assert len(api_run.history()) == 5_000
    assert query(store_dir, "SELECT b.content FROM run_files f JOIN blobs b"
                            " ON b.sha256 = f.sha256 WHERE f.path = 'big.bin'") == [(big,)]
    assert not list((store_dir / "runstore.db-handoff").iterdir())


def test_what_reaches_a_finished_run_is_dropped_with_a_warning(store_dir):
    run = runstore.init(project="p", id="late", dir=store_dir)
    run.log({"x": 1.0})
    stop = threading.Event()

    def keep_setting() -> None:  # a thread still busy with the run when it finishes
        i = 0
        while not stop.is_set():
            run.summary["eval_best"] = i
            i += 1

    thread = threading.Thread(target=keep_setting)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        thread.start()
        time.sleep(0.05)
        run.finish()  # returned: before, it could wait forever for the thread's records
        stop.set()
        thread.join()
        run.summary["after"] = 1  # a warning, not an error from a closed file
        run.config.update({"after": 1})
        run.define_metric("x", summary="max")
    assert any("is finished" in str(w.message) for w in caught)
    assert runstore.Api(store_dir).run("p/late").state == "finished"


class Optimizer(str, enum.Enum):
    ADAM = "adam"


def test_str_and_number_subclasses_reach_the_writer_process_as_plain_values(store_dir):
    np = pytest.importorskip("numpy")
    run = runstore.init(project="p", id="enums", dir=store_dir,
                        config={"optimizer": Optimizer.ADAM, "arch": np.array(["resnet"])[0],
                                "lr": np.float64(0.1)})
    run.summary["best_optimizer"] = Optimizer.ADAM
    run.finish()
    stored = runstore.Api(store_dir).run("p/enums")
    assert dict(stored.config) == {"optimizer": "adam", "arch": "resnet", "lr": 0.1}
    assert stored.summary["best_optimizer"] == "adam"


def test_a_thread_taking_over_keeps_the_summary_and_its_rules(store_dir):
    run = runstore.init(project="p", id="rules", dir=store_dir)
    run.define_metric("loss", summary="min")
    for i in range(50):
        run.log({"loss": 10.0 - i if i < 40 else 50.0, "a": float(i)})
    run.summary["best"] = "kept"
    assert run._writer.flush()
    os.kill(run._writer._ring.consumer_pid(), signal.SIGKILL)
    with pytest.warns(RuntimeWarning, match="ended early"):
        for i in range(50, 60):
            run.log({"b": float(i)})
        run.finish()
    summary = runstore.Api(store_dir).run("p/rules").summary
    assert summary["loss"] == {"min": -29.0} and summary["a"] == 49.0
    assert summary["best"] == "kept" and summary["b"] == 59.0


def test_runstore_sync_replays_what_a_killed_offline_run_left_in_its_ring(tmp_path, store_dir):
    from click.testing import CliRunner

    from runstore._cli import main as cli

    proc = _counting_child(store_dir, "away", tmp_path, {"writer_process": False}, "offline")
    _read_until(proc, 2000)
    proc.kill()
    printed = _printed(proc, 2000)
    result = CliRunner().invoke(cli, ["sync", "--dir", str(store_dir)])
    assert result.exit_code == 0, result.output
    away = runstore.Api(store_dir).run("p/away")
    assert [row["i"] for row in away.scan_history()][:printed] == list(range(printed))
    assert away.state == "crashed"


def test_nothing_installed_beside_runstore_shadows_the_writer_s_standard_library(
        tmp_path, store_dir, monkeypatch):
    # As in a site-packages holding a backport named like a standard module.
    from runstore import _handoff

    site = tmp_path / "site-packages"
    site.mkdir()
    (site / "runstore").symlink_to(Path(runstore.__file__).parent)
    (site / "pathlib.py").write_text("raise ImportError('a backport shadowed pathlib')\n")
    monkeypatch.setattr(_handoff, "_PACKAGE_PARENT", str(site))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a writer process that died would warn
        run = runstore.init(project="p", id="shadowed", dir=store_dir)
        for i in range(100):
            run.log({"x": float(i)})
        assert run._writer.flush()
        assert run._writer._process is not None and run._writer._process.poll() is None
        run.finish()
    assert len(runstore.Api(store_dir).run("p/shadowed").history()) == 100


def _layout_row(i: int) -> dict:
    """Rows of floats in three layouts (packed), and every fifth with an int (pickled)."""
    if i % 5 == 4:
        return {"loss": i * 0.5, "n": i}
    return {"loss": i * 0.5, "acc": i / 7} if i % 2 else {"loss": i * 0.5, f"k{i % 3}": -i * 1.5}


def test_packed_rows_of_changing_layouts_survive_a_kill_and_a_replay(tmp_path, store_dir):
    """The keys of packed rows are in the side file, so the next init() replays rows
    whose layout the killed trainer's writer had already read and committed past."""
    proc = _spawn(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import runstore
        from test_handoff import _layout_row
        run = runstore.init(project="p", id="layouts", dir={str(store_dir)!r},
                            settings={{"writer_process": False}})
        i = 0
        while True:
            run.log(_layout_row(i))
            print(i, flush=True)
            i += 1
    """, tmp_path)
    _read_until(proc, 3000)
    proc.kill()
    printed = _printed(proc, 3000)
    layouts = list((store_dir / "runstore.db-handoff").glob("*.ring.layouts"))
    assert layouts, "packed rows left no layouts beside the ring"
    runstore.init(project="p", id="next", dir=store_dir).finish()
    rows = runstore.Api(store_dir).run("p/layouts").scan_history()
    stored = {row["_step"]: {k: v for k, v in row.items() if not k.startswith("_")}
              for row in rows}
    for i in range(printed):
        assert stored[i] == _layout_row(i), i
    assert type(stored[4]["n"]) is int and type(stored[5]["acc"]) is float
    assert query(store_dir, "PRAGMA integrity_check") == [("ok",)]


def test_a_packed_row_bigger_than_the_ring_goes_through_a_side_file(store_dir):
    keys = [f"layer{j}/grad_norm" for j in range(3000)]  # ~24 kB packed: over 64 KiB / 4
    run = runstore.init(project="p", id="wide", dir=store_dir, settings={"log_queue_size": 16})
    for i in range(20):
        run.log({k: i + j / 8 for j, k in enumerate(keys)})
    run.finish()
    rows = runstore.Api(store_dir).run("p/wide").history()
    assert len(rows) == 20
    assert [rows[i][keys[2999]] for i in range(20)] == [i + 2999 / 8 for i in range(20)]
    assert not list((store_dir / "runstore.db-handoff").iterdir())


def test_past_the_layouts_a_ring_numbers_rows_are_pickled_and_kept(store_dir, monkeypatch):
    from runstore import _ring

    monkeypatch.setattr(_ring, "MAX_LAYOUTS", 3)
    run = runstore.init(project="p", id="many", dir=store_dir)
    for i in range(50):
        run.log({f"metric_{i % 10}": float(i), "loss": i / 3})
    run.finish()
    rows = runstore.Api(store_dir).run("p/many").history()
    assert [(r[f"metric_{i % 10}"], r["loss"]) for i, r in enumerate(rows)] == [
        (float(i), i / 3) for i in range(50)]
