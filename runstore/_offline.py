"""Where offline runs live: `<dir>/offline-run-<YYYYmmdd_HHMMSS>-<id>/runstore.db`."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

from ._errors import CommError
from ._store import STORE_FILENAME


def new_offline_store(root: Path, run_id: str) -> Path:
    """A fresh offline run directory under `root` or, if that cannot be written, under
    the system's temporary directory; returns the path its store file should have."""
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    last_error: OSError | None = None
    for base in (root, Path(tempfile.gettempdir()) / "runstore-offline"):
        for n in range(100):
            run_dir = base / (f"offline-run-{stamp}-{run_id}" + (f"-{n}" if n else ""))
            if not run_dir.exists():
                break
        try:
            run_dir.mkdir(parents=True)
            probe = run_dir / ".probe"
            probe.touch()
            probe.unlink()
            return run_dir / STORE_FILENAME
        except OSError as exc:
            last_error = exc
    raise CommError(f"cannot create an offline run directory: {last_error}")
