"""What the training process's death loses: a child logs at full speed, dies, and the
store is read once the writer has drained what the child handed over.

    .venv/bin/python benchmarks/crash_loss.py [--keys 10 100] [--deaths kill abort segv]
                                              [--repeats 3] [--run-for 1.5]

The child builds each row in its loop, calls log(), and after each log() returns
writes the step's wall-clock time into a shared memory map (cheaper than printing,
and it survives the death). --run-for seconds after its first log() the child dies:
`kill` is a SIGKILL from the parent; `abort` and `segv` are the child's own os.abort()
and a read of address 0 (ctypes.string_at(0)), done when the parent raises a flag in
the map. Every step whose log() returned but that the store lacks is lost; its age at
the death is how far back the loss reaches. Prints medians over --repeats deaths;
tests/test_crash_loss.py runs the same harness.
"""

from __future__ import annotations

import argparse
import mmap
import signal
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).parent)]

SLOTS = 4_000_000  # steps the memory map can record (8 bytes each)
FLAG = 8 * SLOTS  # one byte after the slots: the parent's "die now" for abort / segv
DEATHS = ("kill", "abort", "segv")

_CHILD = textwrap.dedent("""
    import ctypes, mmap, os, resource, struct, sys, time, runstore
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core files from abort / segv
    store, stamps, keys, death, flag = (sys.argv[1], sys.argv[2], int(sys.argv[3]),
                                        sys.argv[4], int(sys.argv[5]))
    names = [f"m{j}" for j in range(keys - 1)]
    with open(stamps, "r+b") as f:
        stamps = mmap.mmap(f.fileno(), 0)
    run = runstore.init(project="p", id="victim", dir=store, settings={"silent": True})
    pack, clock, i = struct.pack_into, time.time, 0
    while True:
        row = {name: i * 0.5 + j for j, name in enumerate(names)}
        row["step_value"] = float(i)  # floats alone: the common row, log()'s compiled path
        run.log(row)
        pack("d", stamps, 8 * i, clock())
        i += 1
        if stamps[flag]:
            os.abort() if death == "abort" else ctypes.string_at(0)
""")


def _drained(store: Path, timeout: float = 120.0) -> float:
    """Wait until the writer has emptied and removed the run's ring; when that was."""
    start = time.time()
    folder = store / "runstore.db-handoff"
    while any(folder.glob("*.ring")) and time.time() - start < timeout:
        time.sleep(0.005)
    return time.time()


def kill_and_measure(work: Path, keys: int, run_for: float, death: str = "kill"
                     ) -> dict[str, Any]:
    """Run the child, make it die `run_for` s after its first log(); what was logged,
    kept and lost."""
    store, stamps = work / "store", work / "stamps.bin"
    stamps.write_bytes(b"\0" * (FLAG + 8))
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(store), str(stamps), str(keys),
                             death, str(FLAG)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # Count from the first log() (a loaded machine may take a while to start
        # Python), so every death lands in steady logging.
        with open(stamps, "r+b") as f, mmap.mmap(f.fileno(), 0) as view:
            deadline = time.time() + 120
            while view[:8] == b"\0" * 8 and proc.poll() is None and time.time() < deadline:
                time.sleep(0.01)
            time.sleep(run_for)
            killed_at = time.time()
            if death == "kill":
                proc.send_signal(signal.SIGKILL)
            else:
                view[FLAG] = 1
            code = proc.wait(timeout=60)
    finally:
        proc.kill()
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
    state_at_once = _state(store)
    drain_s = _drained(store) - killed_at
    with open(stamps, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
        logged = []
        for (at,) in struct.iter_unpack("d", view[:FLAG]):
            if at == 0.0:
                break
            logged.append(at)
    conn = sqlite3.connect(store / "runstore.db")
    try:
        stored = [s for (s,) in conn.execute("SELECT step FROM steps ORDER BY step")]
        points = conn.execute("SELECT count(*) FROM history").fetchone()[0]
        summary = conn.execute("SELECT json_extract(summary, '$.step_value') FROM runs")\
            .fetchone()[0]
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        state = conn.execute("SELECT state FROM runs").fetchone()[0]
    finally:
        conn.close()
    kept = len(stored)
    lost_ages = [killed_at - at for at in logged[kept:]]
    return {
        "keys": keys, "death": death, "exit_code": code, "logged": len(logged), "kept": kept,
        "points": points, "prefix": stored == list(range(kept)), "lost": len(lost_ages),
        "oldest_lost_s": max(lost_ages, default=0.0), "summary_step_value": summary,
        "integrity": integrity, "stderr": stderr, "rate": len(logged) / run_for,
        "state_at_once": state_at_once, "state": state, "drain_s": drain_s,
    }


def _state(store: Path) -> str | None:
    """The run's state as the read API shows it right after the death."""
    import runstore

    runs = runstore.Api(dir=str(store)).runs()
    return runs[0].state if runs else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--deaths", nargs="+", choices=DEATHS, default=list(DEATHS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run-for", type=float, default=1.5)
    args = parser.parse_args()
    print(f"{'keys/step':>9} {'death':>6} {'logged':>9} {'kept':>9} {'lost steps':>10} "
          f"{'oldest lost (ms)':>17} {'drain (ms)':>10} {'state at once':>13} "
          f"{'summary ok':>10}")
    for keys in args.keys:
        for death in args.deaths:
            results = []
            for _ in range(args.repeats):
                with tempfile.TemporaryDirectory() as tmp:
                    results.append(kill_and_measure(Path(tmp), keys, args.run_for, death))
            ok = all(r["summary_step_value"] in (None, r["kept"] - 1) for r in results)
            states = sorted({str(r["state_at_once"]) for r in results})
            print(f"{keys:>9} {death:>6} "
                  f"{statistics.median(r['logged'] for r in results):>9,.0f} "
                  f"{statistics.median(r['kept'] for r in results):>9,.0f} "
                  f"{max(r['lost'] for r in results):>10,.0f} "
                  f"{1000 * max(r['oldest_lost_s'] for r in results):>17.0f} "
                  f"{1000 * statistics.median(r['drain_s'] for r in results):>10.0f} "
                  f"{'/'.join(states):>13} {'yes' if ok else 'NO':>10}")
    print("lost steps and oldest lost: the worst of the repeats; the rest: medians")


if __name__ == "__main__":
    main()
