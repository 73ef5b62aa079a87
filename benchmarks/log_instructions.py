"""Instructions one log() of 10 floats costs the training thread, counted by callgrind.

    .venv/bin/python benchmarks/log_instructions.py [--steps 20000] [--code DIR]

Wall-clock figures swing 2-3x on this shared machine; instruction counts do not. Runs
the loop of `_loop.py` (a row of 10 floats built per step) under
`valgrind --tool=callgrind --separate-threads=yes` twice, with and without the log()
call, and prints (instructions of the main thread with log - without) / steps: the
caller's cost alone (a writer thread's or process's work is not in it; the queue holds
every row, so log() never waits). --code runs the
runstore found in DIR instead of this checkout's (e.g. a `git worktree` of an older
commit), so two versions compare in one run. Needs valgrind.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

_CHILD = """
import sys, tempfile
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import runstore
from _loop import KEYS
steps, do_log = int(sys.argv[3]), sys.argv[4] == "1"
# A queue that holds every row: log() never waits for the writer (waiting blocks, which
# counts few instructions but is not the cost of a call).
run = runstore.init(project="p", dir=tempfile.mkdtemp(),
                    settings={"silent": True, "disable_stats": True, "console": "off",
                              "log_queue_size": 20 * steps})
keys = list(enumerate(KEYS))
for i in range(steps):
    row = {k: i * 0.5 + j for j, k in keys}
    if do_log:
        run.log(row)
run.finish()
"""


def main_thread_instructions(code: Path, steps: int, do_log: bool) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--separate-threads=yes",
             f"--callgrind-out-file={out}", sys.executable, "-c", _CHILD, str(code),
             str(HERE), str(steps), "1" if do_log else "0"],
            check=True, capture_output=True)
        text = (out.parent / (out.name + "-01")).read_text(errors="replace")
    found = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    assert found, "callgrind wrote no totals"
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--code", type=Path, default=HERE.parent,
                        help="the folder holding the runstore package to measure")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed")
    # A first run outside valgrind writes the .pyc files: a checkout whose bytecode is
    # compiled by the measured run counts the compiling as log()'s (+7,000 a call at
    # 20,000 steps in a fresh `git worktree`).
    subprocess.run([sys.executable, "-c", _CHILD, str(args.code), str(HERE), "10", "1"],
                   check=True, capture_output=True)
    with_log = main_thread_instructions(args.code, args.steps, True)
    without = main_thread_instructions(args.code, args.steps, False)
    print(f"{args.code}: {(with_log - without) / args.steps:,.0f} instructions per log() "
          f"of 10 floats in the training thread ({args.steps:,} steps)")


if __name__ == "__main__":
    main()
