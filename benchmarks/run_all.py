"""`make bench`: every benchmark, one table.

    .venv/bin/python benchmarks/run_all.py [--quick]

Also what a dying training process loses (benchmarks/crash_loss.py for runstore,
benchmarks/peers_crash.py for the peers). Peers (MLflow, trackio, wandb offline) are
measured in their own virtualenv, benchmarks/.peers-venv (`make peers-venv`), never in
the project's; without it their rows are skipped. Figures are medians; ratios compare
figures from this run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import branching  # noqa: E402
import core  # noqa: E402
import crash_loss  # noqa: E402
import log_cost  # noqa: E402
from _table import Row, print_table  # noqa: E402

PEERS_PYTHON = HERE / ".peers-venv" / "bin" / "python"


def _peers_json(script: str, *args: str) -> list[dict] | None:
    """A peers script's --json output, run under the peers' virtualenv (None: skipped)."""
    if not PEERS_PYTHON.exists():
        print(f"(peers skipped: no {PEERS_PYTHON}; run `make peers-venv` to measure them)")
        return None
    done = subprocess.run([str(PEERS_PYTHON), str(HERE / script), *args, "--json", "--quiet"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(f"({script} failed: {done.stderr.strip().splitlines()[-1:]})")
        return None
    return json.loads(done.stdout)


def peer_rows(steps: int, work_steps: int, repeats: int, runstore_rate: float) -> list[Row]:
    """The peers' log() cost in the same loop, their ingest rates, and runstore's rate
    over theirs."""
    rows: list[Row] = []
    for result in _peers_json("peers.py", "--steps", str(steps), "--work-steps",
                              str(work_steps), "--repeats", str(repeats)) or []:
        name = f"{result['peer']} ({result['variant']})"
        if result.get("log_mean_us") is None:
            print(f"(peer {name} skipped: {result.get('note', 'not measured')})")
            continue
        loop = "logging-only loop" if result["work"] == "none" else f"{result['work']} work"
        rows.append((f"{name}: log(), {loop}: mean", result["log_mean_us"], "µs", ""))
        if result.get("points_per_s"):
            rows.append((f"{name}: ingest", result["points_per_s"], "points/s", ""))
            rows.append((f"runstore ingest / {name}", runstore_rate / result["points_per_s"],
                         "x", ""))
    return rows


def crash_rows(run_for: float) -> list[Row]:
    """Steps whose log() returned but that are not stored after the training process
    died, for runstore (crash_loss.py) and the peers (peers_crash.py), 10 and 100 keys."""
    rows: list[Row] = []
    for keys in (10, 100):
        for death in crash_loss.DEATHS:
            with tempfile.TemporaryDirectory() as tmp:
                result = crash_loss.kill_and_measure(Path(tmp), keys, run_for, death)
            rows.append((f"runstore: steps lost, {death}, {keys} keys "
                         f"(of {result['logged']:,})", result["lost"], "steps", "0"))
    for result in _peers_json("peers_crash.py", "--run-for", str(run_for)) or []:
        if result.get("lost") is None:
            continue
        rows.append((f"{result['peer']} ({result['variant']}): steps lost, {result['death']}, "
                     f"{result['keys']} keys (of {result['logged']:,.0f})", result["lost"],
                     "steps", ""))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    steps, repeats = (10_000, 3) if args.quick else (100_000, 5)
    rows = core.measure(args.quick)
    ingest = log_cost.measure(steps, repeats)
    rows += ingest
    rows += branching.measure(steps, 3 if args.quick else repeats)
    try:
        import ui  # the UI benchmark, when present
        rows += ui.measure(args.quick)
    except ImportError:
        pass
    runstore_rate = next(value for name, value, _, _ in ingest
                         if name.startswith("process: ingest end"))
    rows += peer_rows(min(steps, 5_000), 1_000 if args.quick else 2_000, 3, runstore_rate)
    rows += crash_rows(1.0 if args.quick else 1.5)
    print_table(rows, f"runstore benchmarks ({'quick' if args.quick else 'full'} sizes)")


if __name__ == "__main__":
    main()
