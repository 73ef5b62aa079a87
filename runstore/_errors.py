"""The exception tree, written out once.

    Error
    ├── UsageError (also a ValueError, so wandb-era `except ValueError` still works)
    ├── CommError  (the store cannot be reached or written)
    └── RunNotFound (the read API was asked for a run that does not exist)
"""

from __future__ import annotations


class Error(Exception):
    """Base class of every runstore error."""


class UsageError(Error, ValueError):
    """An argument was wrong; the message says which and how to fix it."""


class CommError(Error):
    """The store could not be opened or written."""


class RunNotFound(Error, LookupError):
    """The read API was asked for a run that is not in the store."""
