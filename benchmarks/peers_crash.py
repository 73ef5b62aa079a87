"""What peer trackers lose when the training process dies hard (the harness of
benchmarks/crash_loss.py, run through the peers of benchmarks/peers.py).

    make peers-venv
    benchmarks/.peers-venv/bin/python benchmarks/peers_crash.py [--peer trackio] [--keys 10 100]
        [--deaths kill abort] [--repeats 1] [--run-for 1.5] [--still 2] [--settle-max 30]
        [--json]

Runs under the peers' virtualenv and does not import runstore. For each installed peer
and variant, a child process in a fresh temporary directory (peers.peer_env: offline,
no telemetry) builds a row of --keys values per step in its loop (keys - 1 floats and
"step_value", as in crash_loss.py), logs it, and after each log call returns writes the
step's wall-clock time into a shared memory map. --run-for seconds after its first log
the child dies: `kill` is a SIGKILL from the parent, `abort` the child's own os.abort()
once the parent raises a flag in the map. The parent then waits until nothing under the
temporary directory has changed for --still seconds (at most --settle-max: wandb's
service process outlives the child and may still be writing), counts the steps on disk
and ends every process the child left behind (found by a tag in their environment).

Variants (the calls of peers.py):
  trackio  log                trackio.log(row); steps: rows of its metrics table
  wandb    log offline        run.log(row), mode="offline"; steps: history records in the
                              .wandb file
  mlflow   log_metrics        mlflow.log_metrics(row, step=i), SQLite tracking URI;
                              steps: distinct steps in the metrics table
  mlflow   log_metrics async  the same with synchronous=False

A logged step is one whose log call returned; it is lost when the store lacks it, and
its age at the death is how far back the loss reaches (the death: the SIGKILL, or the
abort after the log call under way when the flag went up). `stored` may exceed what was
logged by the step whose call was under way at the death; `last write` is the newest
file change under the temporary directory after the death (a writer outliving it).
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crash_loss import SLOTS  # stdlib only; it puts runstore on the path but never imports it
from peers import _leveldb_records, installed, peer_env, stored_points

FLAG = 8 * SLOTS  # the byte after the step stamps: the parent's "abort now"
DEATHS = ("kill", "abort")
TAG = "PEERS_CRASH_TMP"  # in every process the child starts: how the leftovers are found
VARIANTS = [
    ("trackio", "log"),
    ("wandb", "log offline"),
    ("mlflow", "log_metrics"),
    ("mlflow", "log_metrics async"),
]

_CHILD = textwrap.dedent("""
    import mmap, os, resource, struct, sys, time
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # os.abort() leaves no core file
    peer, variant, tmp, stamps_path = sys.argv[1:5]
    keys, flag = int(sys.argv[5]), int(sys.argv[6])
    if peer == "trackio":
        import trackio
        trackio.init(project="crash", name="victim", embed=False,
                     auto_log_cpu=False, auto_log_gpu=False)
        def log(i, row):
            trackio.log(row)
    elif peer == "wandb":
        import wandb
        run = wandb.init(project="crash", mode="offline", dir=tmp)
        def log(i, row):
            run.log(row)
    else:
        import mlflow
        mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
        mlflow.start_run()
        sync = variant == "log_metrics"
        def log(i, row):
            mlflow.log_metrics(row, step=i, synchronous=sync)
    with open(stamps_path, "r+b") as f:
        view = mmap.mmap(f.fileno(), 0)
    stamp, now = struct.Struct("d").pack_into, time.time
    names, i = [f"m{j}" for j in range(keys - 1)], 0
    while not view[flag]:
        row = {name: i * 0.5 + j for j, name in enumerate(names)}
        row["step_value"] = i
        log(i, row)
        stamp(view, 8 * i, now())
        i += 1
    os.abort()
""")


# --- what is on disk ------------------------------------------------------------------


def stored_steps(peer: str, tmp: Path) -> list[int]:
    """The step numbers the peer's store holds, one per stored step (per row for trackio,
    per history record for wandb, per distinct step for mlflow)."""
    if peer == "mlflow":
        return _sqlite_ints([tmp / "mlflow.db"], "SELECT DISTINCT step FROM metrics")
    if peer == "trackio":
        return _sqlite_ints(sorted((tmp / "trackio").glob("*.db")), "SELECT step FROM metrics")
    if peer == "wandb":
        from google.protobuf.message import DecodeError
        from wandb.proto import wandb_internal_pb2

        steps = []
        for path in (tmp / "wandb").glob("offline-run-*/run-*.wandb"):
            for payload in _leveldb_records(path.read_bytes()):
                record = wandb_internal_pb2.Record()
                try:
                    record.ParseFromString(payload)
                except DecodeError:  # a record cut short by the death
                    continue
                if record.WhichOneof("record_type") == "history":
                    steps.append(record.history.step.num)
        return steps
    raise ValueError(peer)


def _sqlite_ints(paths: list[Path], query: str) -> list[int]:
    found: list[int] = []
    for path in paths:
        if not path.exists():
            continue
        conn = sqlite3.connect(path)
        try:
            found += [int(value) for (value,) in conn.execute(query)]
        except sqlite3.Error:  # the table was never created
            pass
        finally:
            conn.close()
    return found


def _snapshot(tmp: Path, skip: set[Path]) -> tuple[dict[str, tuple[int, int]], int]:
    """Every file under tmp but `skip`: {path: (size, mtime)}, and the newest mtime."""
    files = {}
    for path in tmp.rglob("*"):
        if path in skip:
            continue
        try:
            st = path.stat()
        except OSError:  # removed while we looked
            continue
        if not path.is_dir():
            files[str(path)] = (st.st_size, st.st_mtime_ns)
    return files, max((m for _, m in files.values()), default=0)


def settle(tmp: Path, skip: set[Path], quiet: float, longest: float) -> tuple[float, int]:
    """Wait until nothing under tmp has changed for `quiet` s (at most `longest` s);
    (seconds waited, newest file mtime in ns)."""
    start = last_change = time.monotonic()
    seen, newest = _snapshot(tmp, skip)
    while time.monotonic() - last_change < quiet and time.monotonic() - start < longest:
        time.sleep(0.1)
        files, newest = _snapshot(tmp, skip)
        if files != seen:
            seen, last_change = files, time.monotonic()
    return time.monotonic() - start, newest


# --- the processes the child leaves -------------------------------------------------------


def tagged_processes(tag: str) -> dict[int, str]:
    """{pid: command name} of the live processes whose environment carries TAG=tag."""
    marker = f"\0{TAG}={tag}\0".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker not in b"\0" + (entry / "environ").read_bytes() + b"\0":
                continue
            status = (entry / "stat").read_text()
        except OSError:
            continue
        if status.rsplit(")", 1)[1].split()[0] != "Z":  # a zombie is already dead
            found[int(entry.name)] = status[status.index("(") + 1:status.rindex(")")]
    return found


def end_tagged(tag: str, timeout: float = 10.0) -> dict[int, str]:
    """SIGKILL the tagged processes until none is left; the ones that were alive."""
    ended: dict[int, str] = {}
    deadline = time.monotonic() + timeout
    while (alive := tagged_processes(tag)) and time.monotonic() < deadline:
        ended.update(alive)
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    return ended


# --- one death ----------------------------------------------------------------------------


def _bring_death(proc: subprocess.Popen, view: mmap.mmap, death: str, run_for: float
                 ) -> float | None:
    """`run_for` s after the child's first log (imports and init may take seconds, so
    count from there: every death lands in steady logging), kill it or raise its abort
    flag; when that was, or None if it never logged."""
    give_up = time.time() + 180
    while not any(view[:8]):
        if proc.poll() is not None or time.time() > give_up:
            proc.kill()
            return None
        time.sleep(0.01)
    time.sleep(run_for)
    killed_at = time.time()
    if death == "abort":
        view[FLAG] = 1
    else:
        os.kill(proc.pid, signal.SIGKILL)
    return killed_at


def die_and_count(peer: str, variant: str, keys: int, death: str, run_for: float,
                  tmp: Path, still: float = 2.0, settle_max: float = 30.0) -> dict:
    """Run the child in tmp, make it die `run_for` s after its first log; what was logged,
    stored and lost."""
    stamps, err = tmp / "stamps.bin", tmp / "child.err"
    stamps.write_bytes(bytes(FLAG + 1))
    env = peer_env(tmp)
    env[TAG] = str(tmp)
    with open(err, "wb") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, peer, variant, str(tmp), str(stamps), str(keys),
             str(FLAG)], env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=err_file)
    code = None
    try:
        with open(stamps, "r+b") as f, mmap.mmap(f.fileno(), 0) as view:
            killed_at = _bring_death(proc, view, death, run_for)
            try:
                code = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:  # a log call that never returned: no abort
                proc.kill()
                code = f"{proc.wait()} (still alive 60 s after the death, killed)"
            logged = []
            for (at,) in struct.iter_unpack("d", view[:FLAG]):
                if not at:
                    break
                logged.append(at)
        waited_s, newest_ns = settle(tmp, {stamps, err}, still, settle_max)
        found = stored_steps(peer, tmp)
        try:
            points = stored_points(peer, tmp)
        except Exception as exc:  # a store the death left unreadable
            points = f"{type(exc).__name__}: {exc}"
    finally:
        proc.kill()
        proc.wait()
        leftovers = end_tagged(str(tmp))
    tail = err.read_text(errors="replace").strip().splitlines()[-3:]
    if killed_at is None:
        raise RuntimeError(f"{peer} {variant}: no step logged (exit {code}): "
                           + " | ".join(tail))
    # An abort comes once the log call under way when the flag went up has returned;
    # a SIGKILL may land after one more step's stamp: the death is the later of the two.
    died_at = max([killed_at, *logged[-1:]])
    kept = set(found) & set(range(len(logged)))
    lost = [i for i in range(len(logged)) if i not in kept]
    return {
        "peer": peer, "variant": variant, "keys": keys, "death": death, "exit_code": code,
        "logged": len(logged), "stored": len(found), "lost": len(lost),
        "oldest_lost_ms": 1000 * (died_at - logged[lost[0]]) if lost else 0.0,
        "points": points, "whole_steps": points == len(found) * keys,
        "rate_per_s": len(logged) / run_for,
        "settle_ms": 1000 * waited_s,
        "last_write_after_death_ms": max(0.0, newest_ns / 1e6 - 1000 * died_at),
        "leftover_processes": sorted(set(leftovers.values())),
        "stderr_tail": tail,
    }


# --- the driver -----------------------------------------------------------------------------


def bench(peers: list[str] | None, keys_list: list[int], deaths: list[str], repeats: int,
          run_for: float, still: float, settle_max: float, progress: bool) -> list[dict]:
    rows = []
    for peer, variant in VARIANTS:
        if peers and peer not in peers:
            continue
        version = installed(peer)
        for keys in keys_list:
            for death in deaths:
                row = {"peer": peer, "variant": variant, "keys": keys, "death": death,
                       "version": version, "runs": [], "note": ""}
                rows.append(row)
                if version is None:
                    row["note"] = f"skipped: {peer} is not installed in {sys.prefix}"
                    continue
                for _ in range(repeats):
                    t = time.perf_counter()
                    with tempfile.TemporaryDirectory(prefix=f"peers-crash-{peer}-",
                                                     ignore_cleanup_errors=True) as tmp:
                        try:
                            row["runs"].append(die_and_count(
                                peer, variant, keys, death, run_for, Path(tmp),
                                still, settle_max))
                        except RuntimeError as exc:
                            row["note"] = str(exc)
                    if progress:
                        print(f"  {peer} {variant} {keys} keys {death}: "
                              f"{time.perf_counter() - t:.1f} s", file=sys.stderr)
                _summarise(row)
    return rows


def _summarise(row: dict) -> None:
    """Medians over the repeats, except the worst lost and oldest lost."""
    runs = row["runs"]
    if not runs:
        return
    for key in ("logged", "stored", "settle_ms", "last_write_after_death_ms"):
        row[key] = statistics.median(r[key] for r in runs)
    row["lost"] = max(r["lost"] for r in runs)
    row["oldest_lost_ms"] = max(r["oldest_lost_ms"] for r in runs)
    note = [f"exit {'/'.join(sorted({str(r['exit_code']) for r in runs}))}"]
    unreadable = {r["points"] for r in runs if isinstance(r["points"], str)}
    if unreadable:
        note.append("store: " + "; ".join(sorted(unreadable)))
    elif not all(r["whole_steps"] for r in runs):
        note.append("points " + "/".join(str(r["points"]) for r in runs)
                    + f" (not {row['keys']} a stored step)")
    left = sorted({name for r in runs for name in r["leftover_processes"]})
    if left:
        note.append("left running, killed: " + ", ".join(left))
    row["note"] = "; ".join(note + ([row["note"]] if row["note"] else []))


def print_table(rows: list[dict], repeats: int, run_for: float) -> None:
    versions = sorted({f"{r['peer']} {r['version']}" for r in rows if r["version"]})
    print(f"death {run_for:g} s after the first log, {repeats} repeat(s); "
          f"{', '.join(versions)} (python {sys.version.split()[0]})")
    print(f"{'peer':<8} {'variant':<18} {'keys/step':>9} {'death':>6} {'logged':>9} "
          f"{'stored':>9} {'lost steps':>10} {'oldest lost (ms)':>17} "
          f"{'last write (ms)':>15} {'settle (ms)':>11}  note")
    for r in rows:
        head = f"{r['peer']:<8} {r['variant']:<18} {r['keys']:>9} {r['death']:>6}"
        if not r["runs"]:
            print(f"{head} {'—':>9} {'—':>9} {'—':>10} {'—':>17} {'—':>15} {'—':>11}  "
                  f"{r['note']}")
            continue
        print(f"{head} {r['logged']:>9,.0f} {r['stored']:>9,.0f} {r['lost']:>10,.0f} "
              f"{r['oldest_lost_ms']:>17,.0f} {r['last_write_after_death_ms']:>15,.0f} "
              f"{r['settle_ms']:>11,.0f}  {r['note']}")
    print("lost steps and oldest lost: the worst of the repeats; the rest: medians. "
          "last write: the newest file change after the death; settle: the wait for "
          "the disk to stay still")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", action="append",
                        help="only this peer (trackio, wandb, mlflow); repeatable")
    parser.add_argument("--keys", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--deaths", nargs="+", choices=DEATHS, default=list(DEATHS))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--run-for", type=float, default=1.5)
    parser.add_argument("--still", type=float, default=2.0,
                        help="after the death, wait until the disk is still this long (s)")
    parser.add_argument("--settle-max", type=float, default=30.0,
                        help="but no longer than this (s)")
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args()
    rows = bench(args.peer, args.keys, args.deaths, args.repeats, args.run_for,
                 args.still, args.settle_max, not args.quiet)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows, args.repeats, args.run_for)


if __name__ == "__main__":
    main()
