"""The log() workload of benchmarks/log_cost.py, run through peer trackers.

    make peers-venv
    benchmarks/.peers-venv/bin/python benchmarks/peers.py [--steps 100000]
        [--work-steps 5000] [--work none sleep numpy python] [--repeats 5] [--json]

Runs under the peers' virtualenv (never the project's) and does not import runstore.
For each peer that is installed, the loop of benchmarks/_loop.py (the one log_cost.py
runs): a row of 10 floats built in the loop per step, ~100 µs of work of each --work
kind between calls (--steps steps for `none`, --work-steps for the others); the
per-call time the loop sees (mean, p99) and, for the logging-only loop, end-to-end
points/s from the first log call through finish/flush (init is outside that clock, as
in log_cost.py, and shown in the note). Every figure is a median over --repeats runs;
each run is a fresh process in a fresh temporary directory, with network features of
the peers switched off by environment variables (offline modes, no telemetry, no
dashboards).

Variants:
  mlflow   log_metrics        mlflow.log_metrics(row, step=i), SQLite tracking URI
  mlflow   log_metrics async  the same with synchronous=False, flushed before end_run
  mlflow   log_batch          MlflowClient().log_batch every --batch steps; a step's
                              time includes building its Metric objects, so the mean
                              is the batch cost amortised over steps (max in the note)
  trackio  log                trackio.log(row), TRACKIO_DIR in the temp dir
  wandb    log offline        run.log(row), mode="offline", dir=temp dir
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _loop import KEYS, WORK_KINDS, log_loop, make_work, mean_us, p99_us

# (peer, variant): the peer is also the module that must import.
VARIANTS = [
    ("mlflow", "log_metrics"),
    ("mlflow", "log_metrics async"),
    ("mlflow", "log_batch"),
    ("trackio", "log"),
    ("wandb", "log offline"),
]


def peer_env(tmp: Path) -> dict[str, str]:
    """Environment for one measured process: data under tmp, nothing on the network."""
    env = dict(os.environ)
    env.update({
        # MLflow: no telemetry.
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        # trackio: its SQLite store under tmp (read at import time); Hugging Face Hub
        # and Gradio offline, no analytics. It starts no dashboard outside notebooks.
        "TRACKIO_DIR": str(tmp / "trackio"),
        "HF_HOME": str(tmp / "hf"),
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        # wandb: offline, quiet, every file under tmp.
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DIR": str(tmp),
        "WANDB_CACHE_DIR": str(tmp / "wandb-cache"),
        "WANDB_CONFIG_DIR": str(tmp / "wandb-config"),
        "WANDB_DATA_DIR": str(tmp / "wandb-data"),
        "WANDB_ARTIFACT_DIR": str(tmp / "wandb-artifacts"),
        "WANDB_ERROR_REPORTING": "false",
        # No browser, whoever asks.
        "BROWSER": "true",
    })
    for var in ("MLFLOW_TRACKING_URI", "TRACKIO_SPACE_ID", "TRACKIO_SERVER_URL",
                "TRACKIO_BUCKET_ID", "TRACKIO_DATASET_ID", "WANDB_BASE_URL"):
        env.pop(var, None)
    return env


# --- one measurement, in a child process --------------------------------------------


def measure(peer: str, variant: str, steps: int, tmp: Path, batch: int, kind: str) -> dict:
    work = make_work(kind)
    t_init = time.perf_counter()

    if peer == "mlflow":
        import mlflow
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient

        mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
        run = mlflow.start_run()
        init_s = time.perf_counter() - t_init
        step = itertools.count()
        if variant == "log_batch":
            client = MlflowClient()
            run_id = run.info.run_id
            pending: list = []
            flush_at = batch * len(KEYS)

            def log(row: dict) -> None:
                i, ts = next(step), int(time.time() * 1000)
                pending.extend([Metric(k, v, ts, i) for k, v in row.items()])
                if len(pending) >= flush_at:
                    client.log_batch(run_id, metrics=pending)
                    pending.clear()

            start = time.perf_counter()
            per_call, loop_s = log_loop(log, steps, work)
            if pending:
                client.log_batch(run_id, metrics=pending)
        else:
            sync = variant == "log_metrics"
            log_metrics = mlflow.log_metrics
            start = time.perf_counter()
            per_call, loop_s = log_loop(
                lambda row: log_metrics(row, step=next(step), synchronous=sync), steps, work)
            if not sync:
                mlflow.flush_async_logging()
        mlflow.end_run()
        version = mlflow.__version__

    elif peer == "trackio":
        import trackio

        trackio.init(project="bench", name="bench", embed=False,
                     auto_log_cpu=False, auto_log_gpu=False)
        init_s = time.perf_counter() - t_init
        start = time.perf_counter()
        per_call, loop_s = log_loop(trackio.log, steps, work)
        trackio.finish()
        version = trackio.__version__

    elif peer == "wandb":
        import wandb

        run = wandb.init(project="bench", mode="offline", dir=str(tmp))
        init_s = time.perf_counter() - t_init
        start = time.perf_counter()
        per_call, loop_s = log_loop(run.log, steps, work)
        run.finish()
        version = wandb.__version__

    else:
        raise ValueError(peer)

    total_s = time.perf_counter() - start
    return {
        "version": version,
        "stored_points": stored_points(peer, tmp),
        "init_s": init_s,
        "loop_s": loop_s,
        "total_s": total_s,
        "log_mean_us": mean_us(per_call),
        "log_p99_us": p99_us(per_call),
        "log_max_us": per_call[-1] / 1000,
    }


def stored_points(peer: str, tmp: Path) -> int:
    """Scalar points found on disk after finish (outside the clock): was it all written?"""
    import sqlite3

    if peer == "mlflow":
        with sqlite3.connect(tmp / "mlflow.db") as conn:
            return conn.execute("SELECT count(*) FROM metrics").fetchone()[0]
    if peer == "trackio":  # one row per log() call, the metrics as a JSON object
        total = 0
        for db in (tmp / "trackio").glob("*.db"):
            with sqlite3.connect(db) as conn:
                for (blob,) in conn.execute("SELECT metrics FROM metrics"):
                    total += sum(1 for k in json.loads(blob) if not k.startswith("_"))
        return total
    if peer == "wandb":  # history records in the offline run's LevelDB-style log
        from wandb.proto import wandb_internal_pb2

        total = 0
        for path in (tmp / "wandb").glob("offline-run-*/run-*.wandb"):
            for payload in _leveldb_records(path.read_bytes()):
                record = wandb_internal_pb2.Record()
                record.ParseFromString(payload)
                if record.WhichOneof("record_type") == "history":
                    total += sum(1 for item in record.history.item
                                 if not (item.key or ".".join(item.nested_key))
                                 .startswith("_"))
        return total
    raise ValueError(peer)


def _leveldb_records(data: bytes, block: int = 32768):
    """Payloads of a LevelDB log file after wandb's 7-byte header (:W&B, magic, version)."""
    pos, parts = 7, b""
    while pos < len(data):
        left = block - pos % block
        if left < 7:  # block trailer
            pos += left
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        pos += 7
        if kind == 0:  # zero padding up to the block end
            pos += left - 7
            continue
        chunk = data[pos:pos + length]
        pos += length
        parts = chunk if kind in (1, 2) else parts + chunk  # FULL, FIRST / MIDDLE, LAST
        if kind in (1, 4):
            yield parts


def child_main(args: argparse.Namespace) -> None:
    tmp = Path(args.tmp)
    os.chdir(tmp)  # MLflow's default artifact root and any stray files land here
    result = measure(args.peer, args.variant, args.steps, tmp, args.batch, args.work[0])
    Path(args.out).write_text(json.dumps(result))


# --- the driver ------------------------------------------------------------------------


def run_once(peer: str, variant: str, steps: int, batch: int, kind: str,
             timeout: float) -> tuple[dict | None, str]:
    """One fresh process; (result, error text)."""
    with tempfile.TemporaryDirectory(prefix=f"peers-{peer}-") as tmp_str:
        tmp = Path(tmp_str)
        out = tmp / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child",
               "--peer", peer, "--variant", variant, "--steps", str(steps),
               "--batch", str(batch), "--work", kind, "--tmp", str(tmp), "--out", str(out)]
        try:
            proc = subprocess.run(cmd, env=peer_env(tmp), cwd=tmp, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, f"timed out after {timeout:.0f} s"
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return None, f"exit {proc.returncode}: " + " | ".join(tail)
        return json.loads(out.read_text()), ""


def installed(module: str) -> str | None:
    """The distribution version if the module can be found, else None."""
    if importlib.util.find_spec(module) is None:
        return None
    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return "?"


def bench(steps: int, work_steps: int, kinds: list[str], repeats: int, batch: int,
          timeout: float, only: list[str] | None, progress: bool) -> list[dict]:
    results = []
    for (peer, variant), kind in itertools.product(VARIANTS, kinds):
        if only and peer not in only:
            continue
        n = steps if kind == "none" else work_steps
        points = n * len(KEYS)
        row = {"peer": peer, "variant": variant, "work": kind, "log_mean_us": None,
               "log_p99_us": None, "points_per_s": None, "note": ""}
        version = installed(peer)
        if version is None:
            row["note"] = f"skipped: {peer} is not installed in {sys.prefix}"
            results.append(row)
            continue
        runs, errors = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            result, error = run_once(peer, variant, n, batch, kind, timeout)
            if progress:
                print(f"  {peer} {variant} ({kind}): {time.perf_counter() - t:.1f} s"
                      + (f" ({error})" if error else ""), file=sys.stderr)
            if result is None:
                errors.append(error)
                break
            runs.append(result)
        if not runs:
            row["note"] = f"failed: {errors[0]}"
            results.append(row)
            continue

        def med(key: str, runs: list[dict] = runs) -> float:
            return statistics.median(r[key] for r in runs)

        row.update({
            "version": runs[0]["version"],
            "log_mean_us": med("log_mean_us"),
            "log_p99_us": med("log_p99_us"),
            "log_max_us": med("log_max_us"),
            # The ingest rate is the logging-only loop's; with work, the loop is the work.
            "points_per_s": points / med("total_s") if kind == "none" else None,
            "init_s": med("init_s"),
            "finish_s": med("total_s") - med("loop_s"),
        })
        note = [f"{peer} {runs[0]['version']}", f"init {row['init_s']:.2f} s",
                f"finish {row['finish_s']:.2f} s", f"max call {row['log_max_us'] / 1000:.1f} ms"]
        if variant == "log_batch":
            note.append(f"one log_batch per {batch} steps")
        lost = [r["stored_points"] for r in runs if r["stored_points"] != points]
        if lost:
            note.append(f"stored {lost[0]} of {points} points on disk after finish")
        if len(runs) < repeats:
            note.append(f"only {len(runs)} of {repeats} repeats: {errors[0]}")
        row["note"] = "; ".join(note)
        results.append(row)
    return results


def print_table(results: list[dict], steps: int, work_steps: int, repeats: int) -> None:
    print(f"{steps} steps ({work_steps} with work) x {len(KEYS)} floats, median of {repeats}"
          f" (python {sys.version.split()[0]})")
    print(f"{'peer':<8} {'variant':<18} {'work':<7} {'log mean µs':>12} {'log p99 µs':>11} "
          f"{'points/s':>12}  note")

    def num(value: float | None, fmt: str) -> str:
        return "—" if value is None else format(value, fmt)

    for r in results:
        print(f"{r['peer']:<8} {r['variant']:<18} {r['work']:<7} "
              f"{num(r['log_mean_us'], '.1f'):>12} "
              f"{num(r['log_p99_us'], '.1f'):>11} {num(r['points_per_s'], ',.0f'):>12}  "
              f"{r['note']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--work-steps", type=int, default=5000,
                        help="steps of the loops with work between calls")
    parser.add_argument("--work", nargs="+", choices=WORK_KINDS, default=list(WORK_KINDS),
                        help="kinds of work between log() calls (see _loop.py)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1000,
                        help="steps per MlflowClient.log_batch call")
    parser.add_argument("--peer", action="append",
                        help="only this peer (mlflow, trackio, wandb); repeatable")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds allowed for one measured process")
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    # Internal: one measurement in this process.
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.peer = args.peer[0]
        child_main(args)
        return
    results = bench(args.steps, args.work_steps, args.work, args.repeats, args.batch,
                    args.timeout, args.peer, not args.quiet)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results, args.steps, args.work_steps, args.repeats)


if __name__ == "__main__":
    main()
