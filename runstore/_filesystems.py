"""Which filesystem a path is on: SQLite must never be written over a network filesystem
(its locks and WAL's shared memory need one host), so init() asks before it opens a store.

Linux: statfs(2)'s f_type magic number. macOS: statfs(2)'s MNT_LOCAL flag and type name.
Elsewhere, or when the call fails: unknown (None), and the store is used as asked.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

# statfs f_type magic numbers (linux/magic.h and the filesystems' own sources)
_LINUX_NETWORK = {
    0x6969: "nfs", 0x517B: "smb", 0xFF534D42: "cifs", 0xFE534D42: "smb2",
    0x0BD00BD0: "lustre", 0x47504653: "gpfs", 0x00C36400: "ceph", 0x19830326: "beegfs",
    0x5346414F: "afs", 0x6B414653: "afs", 0x013111A8: "ibrix", 0xAAD7AAEA: "panfs",
    0x01021997: "9p",  # WSL2's /mnt/c, VM shares
}
_MNT_LOCAL = 0x00001000  # macOS <sys/mount.h>


def _existing(path: Path) -> Path:
    path = path.expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _libc() -> Any:
    import ctypes.util  # here, not at import: `import runstore` stays light

    try:
        return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    except OSError:
        return None


def network_filesystem(path: str | os.PathLike[str]) -> str | None:
    """The network filesystem `path` (or its nearest existing parent) is on, e.g. "nfs";
    None when it is local or cannot be told."""
    import ctypes

    where = os.fsencode(_existing(Path(path)))
    libc = _libc()
    if libc is None:
        return None
    buf = ctypes.create_string_buffer(512)  # larger than struct statfs on every platform
    if sys.platform.startswith("linux"):
        if libc.statfs(where, buf) != 0:
            return None
        f_type = ctypes.c_ulong.from_buffer(buf).value & 0xFFFFFFFF
        return _LINUX_NETWORK.get(f_type)
    if sys.platform == "darwin":
        statfs = getattr(libc, "statfs$INODE64", None) or libc.statfs
        if statfs(where, buf) != 0:
            return None
        flags = ctypes.c_uint32.from_buffer(buf, 64).value
        if flags & _MNT_LOCAL:
            return None
        return buf.raw[72:88].split(b"\0", 1)[0].decode("ascii", "replace") or "network"
    return None


def local_dir() -> Path:
    """Node-local disk for runs that cannot live on the shared filesystem: SLURM's
    $SLURM_TMPDIR, else $TMPDIR, else the system's temporary directory."""
    import tempfile

    base = os.environ.get("SLURM_TMPDIR") or os.environ.get("TMPDIR") or tempfile.gettempdir()
    return Path(base) / "runstore"
