"""Bytes on disk per point for three kinds of values: whole floats, fractional floats, ints.

    .venv/bin/python benchmarks/bytes_per_point.py [--steps 50000]

The store keeps each value's own kind (schema 7): a float is an 8-byte REAL, an int as
few bytes as it needs. Whole floats (2.0) were smaller under the old REAL column, which
stored them as integers; this shows the three cases side by side.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).parent)]

from _table import print_table  # noqa: E402

import runstore  # noqa: E402

KINDS = {
    "whole floats": lambda i, j: float(i + j),
    "fractional floats (losses)": lambda i, j: 1.0 / (i + j + 1.7),
    "ints": lambda i, j: i + j,
}


def bytes_per_point(steps: int, value) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        run = runstore.init(project="b", dir=tmp, settings={"silent": True})
        for i in range(steps):
            run.log({f"metric_{j}": value(i, j) for j in range(10)})
        run.finish()
        conn = sqlite3.connect(Path(tmp) / "runstore.db")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = (conn.execute("PRAGMA page_count").fetchone()[0]
                * conn.execute("PRAGMA page_size").fetchone()[0])
        conn.close()
    return size / (steps * 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50_000)
    args = parser.parse_args()
    print_table([(f"bytes per point, {name}", bytes_per_point(args.steps, value), "B", "<= 24")
                 for name, value in KINDS.items()])


if __name__ == "__main__":
    main()
