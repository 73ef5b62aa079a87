"""What a SIGKILL loses: a child logs at full speed, is killed, and the store is read.

    .venv/bin/python benchmarks/crash_loss.py [--keys 10 100] [--repeats 3] [--run-for 1.5]

The child builds each row in its loop, calls log(), and after each log() returns
writes the step's wall-clock time into a shared memory map (cheaper than printing,
and it survives the kill). The parent kills it with SIGKILL --run-for seconds after
its first log() and compares: every step whose log() returned but that the store
lacks is lost; its age at the kill is how far back the loss reaches. Prints medians
over --repeats kills; tests/test_crash_loss.py runs the same harness.
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

_CHILD = textwrap.dedent("""
    import mmap, struct, sys, time, runstore
    store, stamps, keys = sys.argv[1], sys.argv[2], int(sys.argv[3])
    names = [f"m{j}" for j in range(keys - 1)]
    with open(stamps, "r+b") as f:
        stamps = mmap.mmap(f.fileno(), 0)
    run = runstore.init(project="p", id="victim", dir=store, settings={"silent": True})
    pack, clock, i = struct.pack_into, time.time, 0
    while True:
        row = {name: i * 0.5 + j for j, name in enumerate(names)}
        row["step_value"] = i
        run.log(row)
        pack("d", stamps, 8 * i, clock())
        i += 1
""")


def kill_and_measure(work: Path, keys: int, run_for: float) -> dict[str, Any]:
    """Run the child, SIGKILL it `run_for` s after its first log(); what was logged, kept
    and lost."""
    store, stamps = work / "store", work / "stamps.bin"
    stamps.write_bytes(b"\0" * 8 * SLOTS)
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(store), str(stamps), str(keys)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # Count from the first log() (a loaded machine may take a while to start
        # Python), so every kill lands in steady logging.
        with open(stamps, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
            deadline = time.time() + 120
            while view[:8] == b"\0" * 8 and proc.poll() is None and time.time() < deadline:
                time.sleep(0.01)
        time.sleep(run_for)
        killed_at = time.time()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
    with open(stamps, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
        logged = []
        for (at,) in struct.iter_unpack("d", view):
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
    finally:
        conn.close()
    kept = len(stored)
    lost_ages = [killed_at - at for at in logged[kept:]]
    return {
        "keys": keys, "logged": len(logged), "kept": kept, "points": points,
        "prefix": stored == list(range(kept)), "lost": len(lost_ages),
        "oldest_lost_s": max(lost_ages, default=0.0), "summary_step_value": summary,
        "integrity": integrity, "stderr": stderr,
        "rate": len(logged) / run_for,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run-for", type=float, default=1.5)
    args = parser.parse_args()
    print(f"{'keys/step':>9} {'logged':>9} {'kept':>9} {'lost steps':>10} "
          f"{'oldest lost (ms)':>17} {'summary ok':>10}")
    for keys in args.keys:
        results = []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                results.append(kill_and_measure(Path(tmp), keys, args.run_for))
        ok = all(r["summary_step_value"] in (None, r["kept"] - 1) for r in results)
        print(f"{keys:>9} {statistics.median(r['logged'] for r in results):>9,.0f} "
              f"{statistics.median(r['kept'] for r in results):>9,.0f} "
              f"{statistics.median(r['lost'] for r in results):>10,.0f} "
              f"{1000 * statistics.median(r['oldest_lost_s'] for r in results):>17.0f} "
              f"{'yes' if ok else 'NO':>10}")
        print(f"{'':>9} worst oldest lost: "
              f"{1000 * max(r['oldest_lost_s'] for r in results):.0f} ms")


if __name__ == "__main__":
    main()
