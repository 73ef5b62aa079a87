"""save_code: the main program's source (or a notebook's session) and the git diff."""

from __future__ import annotations

import sys
from pathlib import Path


def _notebook_history() -> bytes | None:
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython else None
    cells = getattr(shell, "user_ns", {}).get("In") if shell is not None else None
    if not cells:
        return None
    return "\n\n".join(cell for cell in cells if cell).encode()


def git_diff(root: Path) -> bytes | None:
    """`git diff HEAD` of the repository (tracked changes, staged or not), if any."""
    import git  # gitpython: imported here, it costs ~50 ms

    try:
        with git.Repo(root, search_parent_directories=True) as repo:
            diff = repo.git.diff("HEAD")
    except (git.GitError, ValueError, OSError):
        return None
    return (diff + "\n").encode() if diff else None


def code_files(
    program: str | None, git_root: Path | None, cwd: Path, with_diff: bool
) -> list[tuple[str, str, bytes]]:
    """(path, kind, content) of what save_code keeps, as wandb lays it out:
    code/<path relative to the git root or cwd>, and diff.patch when the tree is dirty."""
    files = []
    notebook = _notebook_history()
    if notebook is not None:
        files.append(("code/notebook_history.py", "notebook", notebook))
    elif program and Path(program).is_file():
        source = Path(program).resolve()
        base = git_root or cwd
        try:
            rel = source.relative_to(base.resolve())
        except ValueError:
            rel = Path(source.name)
        files.append((f"code/{rel.as_posix()}", "code", source.read_bytes()))
    if with_diff and git_root is not None:
        diff = git_diff(git_root)
        if diff:
            files.append(("diff.patch", "diff", diff))
    return files
