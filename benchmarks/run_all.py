"""`make bench`: every benchmark, one table.

    .venv/bin/python benchmarks/run_all.py [--quick]

Peers (MLflow, trackio, wandb offline) are measured in their own virtualenv,
benchmarks/.peers-venv (`make peers-venv`), never in the project's; without it
their rows are skipped. Figures are medians; ratios compare figures from this run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import branching  # noqa: E402
import core  # noqa: E402
import log_cost  # noqa: E402
from _table import Row, print_table  # noqa: E402

PEERS_PYTHON = HERE / ".peers-venv" / "bin" / "python"


def peer_rows(steps: int, repeats: int, runstore_rate: float) -> list[Row]:
    """The peers' ingest rates and log() cost, and runstore's rate over theirs."""
    if not PEERS_PYTHON.exists():
        print(f"(peers skipped: no {PEERS_PYTHON}; run `make peers-venv` to measure them)")
        return []
    done = subprocess.run(
        [str(PEERS_PYTHON), str(HERE / "peers.py"), "--steps", str(steps),
         "--repeats", str(repeats), "--json"],
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        print(f"(peers failed: {done.stderr.strip().splitlines()[-1:]})")
        return []
    out = done.stdout
    rows: list[Row] = []
    for result in json.loads(out):
        name = f"{result['peer']} ({result['variant']})"
        if not result.get("points_per_s"):
            print(f"(peer {name} skipped: {result.get('note', 'not measured')})")
            continue
        rows.append((f"{name}: log() mean", result["log_mean_us"], "µs", ""))
        rows.append((f"{name}: ingest", result["points_per_s"], "points/s", ""))
        rows.append((f"runstore ingest / {name}", runstore_rate / result["points_per_s"],
                     "x", ""))
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
    rows += peer_rows(min(steps, 5_000), 3, runstore_rate)
    print_table(rows, f"runstore benchmarks ({'quick' if args.quick else 'full'} sizes)")


if __name__ == "__main__":
    main()
