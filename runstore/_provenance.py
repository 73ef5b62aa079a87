"""Provenance: facts about the process and its git repository, recorded on each run
(system metrics, CPU and memory over time, are _system_stats.py's)."""

from __future__ import annotations

import getpass
import os
import platform
import socket
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from ._store import process_started


def os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers)
        return "unknown"


def program_path() -> str | None:
    """The main program's absolute path, or None in an interactive session."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv and sys.argv[0] else None)
    if not path or path.startswith(("<", "-")):  # -c, - (stdin), <stdin>, <string>
        return None
    return str(Path(path).resolve())


def process_facts(host: str | None = None, program: str | None = None) -> dict[str, Any]:
    """Host, pid (and when that process started, to tell it from a later one given the
    same pid), user, program, argv and Python version of this process."""
    return {
        "host": host or socket.gethostname(),
        "pid": os.getpid(),
        "pid_started": process_started(),
        "os_user": os_user(),
        "program": program or program_path(),
        "args": list(sys.argv[1:]),
        "python_version": platform.python_version(),
    }


def find_git_root(start: str | Path) -> Path | None:
    """The working tree root containing `start`, found without running git."""
    path = Path(start).resolve()
    for candidate in (path, *path.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def strip_credentials(url: str | None) -> str | None:
    """A remote URL without any user:password@ part."""
    if not url:
        return url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme and parts.netloc and "@" in parts.netloc:
        host = parts.netloc.rsplit("@", 1)[1]
        return urllib.parse.urlunsplit(parts._replace(netloc=host))
    return url


def git_facts(root: str | Path, remote: str = "origin") -> dict[str, Any]:
    """Commit SHA, remote URL (credentials stripped), branch and dirty flag of a repository.

    Empty values where something does not exist (no commits, detached HEAD, no remote).
    """
    import git  # gitpython: imported here, it costs ~50 ms

    facts: dict[str, Any] = {
        "git_commit": None, "git_remote": None, "git_branch": None, "git_dirty": None,
    }
    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, OSError):
        return facts
    with repo:
        try:
            facts["git_commit"] = repo.head.commit.hexsha
        except ValueError:  # a repository with no commits yet
            pass
        try:
            facts["git_branch"] = repo.active_branch.name
        except TypeError:  # detached HEAD
            pass
        try:
            facts["git_remote"] = strip_credentials(repo.remote(remote).url)
        except (ValueError, git.GitCommandError):
            pass
        try:
            facts["git_dirty"] = int(repo.is_dirty(untracked_files=False))
        except git.GitCommandError:
            pass
    return facts
