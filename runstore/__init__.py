"""runstore: wandb.init() for a laptop. Every run is a row in one SQLite file.

    import runstore as wandb
    run = wandb.init(project="mnist", config={"lr": 0.01})
    wandb.log({"loss": 0.5})
    wandb.finish()
"""

from __future__ import annotations

from typing import Any

from ._api import Api, ApiRun
from ._artifacts import Artifact
from ._errors import CommError, Error, RunNotFound, UsageError
from ._init import init
from ._lifecycle import PreInit
from ._media import Histogram, Image, Table, Video
from ._run import Run
from ._settings import Settings

__version__ = "0.1.0"

# Module globals, rebound by init() and finish() as wandb's are.
run: Run | None = None
config: Any = PreInit("config")
summary: Any = PreInit("summary")


def _current(what: str) -> Run:
    if run is None:
        raise Error(f"You must call runstore.init() before runstore.{what}()")
    return run


def log(data: dict[str, Any], step: int | None = None, commit: bool | None = None) -> None:
    """Log to the current run (see Run.log)."""
    _current("log").log(data, step=step, commit=commit)


def finish(exit_code: int | None = None, quiet: bool | None = None) -> None:
    """Finish the current run, if there is one."""
    if run is not None:
        run.finish(exit_code=exit_code)


def define_metric(name: str, **kwargs: Any) -> Any:
    """define_metric on the current run (see Run.define_metric)."""
    return _current("define_metric").define_metric(name, **kwargs)


def sweep(sweep_config: Any, project: str | None = None, entity: str | None = None,
          **kwargs: Any) -> str:
    """Register a sweep (a wandb sweep config, dict or YAML path); returns its id.
    Keywords: dir= (the store), retries=, seed=. See docs/SWEEPS.md."""
    from ._sweep import sweep as _sweep

    return _sweep(sweep_config, project=project, entity=entity, **kwargs)


def agent(sweep_id: str, function: Any = None, count: int | None = None,
          project: str | None = None, entity: str | None = None, **kwargs: Any) -> None:
    """Run a sweep's configurations: call `function` for each (its runstore.init() is the
    configuration's run), or start the sweep's program. Keyword: dir= (the store)."""
    from ._sweep import agent as _agent

    _agent(sweep_id, function=function, count=count, project=project, entity=entity,
           **kwargs)


def as_wandb() -> None:
    """Make `import wandb` mean runstore in this process and the ones it starts, so
    libraries that log to wandb (transformers, Lightning, SB3, Keras) log here. For
    notebooks; elsewhere set RUNSTORE_AS_WANDB=1 or use `runstore run -- python ...`."""
    from ._as_wandb import install

    install()


def save(glob_str: str | None = None, **kwargs: Any) -> bool:
    """save on the current run (see Run.save)."""
    return _current("save").save(glob_str, **kwargs)


__all__ = [
    "Api",
    "ApiRun",
    "Artifact",
    "CommError",
    "Error",
    "Histogram",
    "Image",
    "Run",
    "RunNotFound",
    "Settings",
    "Table",
    "UsageError",
    "Video",
    "agent",
    "as_wandb",
    "config",
    "define_metric",
    "finish",
    "init",
    "log",
    "run",
    "save",
    "summary",
    "sweep",
]

# Users see runstore.Run, not runstore._run.Run, in reprs and tracebacks (as httpx does).
for _name in __all__:
    if isinstance(globals()[_name], type):
        globals()[_name].__module__ = "runstore"
del _name
