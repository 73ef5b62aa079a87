"""The `runstore` command line. Heavy imports (datasette, uvicorn) stay inside commands."""

from __future__ import annotations

import os
from pathlib import Path

import click


def store_path(directory: str | os.PathLike[str] | None) -> Path:
    """The store file for DIR: `<DIR>/runstore.db`, DIR defaulting as init()'s does
    ($RUNSTORE_DIR, $WANDB_DIR, ./runstore). A path to a `.db` file is the store itself."""
    from ._api import store_path as default_store_path

    if directory is not None:
        path = Path(directory).expanduser()
        if path.suffix == ".db" and not path.is_dir():
            return path.resolve()
    return default_store_path(directory)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="runstore")
def main() -> None:
    """runstore: experiment runs in one SQLite file, browsed with Datasette."""


@main.command()
@click.argument("directory", metavar="[DIR]", required=False)
@click.option("--port", default=8001, show_default=True, type=click.IntRange(1, 65535),
              help="Port to serve on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; the default serves this machine only.")
def ui(directory: str | None, port: int, host: str) -> None:
    """Browse the runs of DIR in Datasette.

    Serves DIR/runstore.db with the runstore plugin (run list, run pages, charts),
    on 127.0.0.1 unless --host says otherwise.

    DIR defaults to $RUNSTORE_DIR, then $WANDB_DIR, then ./runstore.
    """
    path = store_path(directory)
    if not path.is_file():
        raise click.ClickException(
            f"no runstore store at {path}; create one by running a script that calls "
            f"runstore.init(dir={str(path.parent)!r}), or pass the DIR that holds runstore.db"
        )
    from . import _errors, _store

    try:  # an older store is upgraded in place before it is served
        _store.connect(path).close()
    except _errors.Error as exc:
        raise click.ClickException(str(exc)) from exc
    _serve(path, host, port)


@main.command()
@click.argument("run_path", metavar="PROJECT/ID")
@click.option("--dir", "directory", help="The store directory (default: as `ui`).")
def unrewind(run_path: str, directory: str | None) -> None:
    """Undo the newest rewind (resume_from) of a run.

    The archived tail goes back into the live history; whatever was logged since
    the rewind is archived in turn, so nothing is lost.
    """
    from . import _errors
    from ._api import Api

    try:
        run = Api(store_path(directory).parent).unrewind(run_path)
    except _errors.Error as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"restored the newest rewind of {run.path}")


@main.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option("--dir", "directory", help="The store to merge into (default: as `ui`).")
@click.option("--project", help="Put the synced runs in this project.")
@click.option("--entity", help="Put the synced runs under this entity.")
@click.option("--include-synced", is_flag=True, help="Sync runs that were synced before.")
@click.option("--clean", is_flag=True, help="Delete offline runs once they are synced.")
def sync(paths: tuple[str, ...], directory: str | None, project: str | None,
         entity: str | None, include_synced: bool, clean: bool) -> None:
    """Merge offline runs (their offline-run-* directories) into a store.

    With no PATH, every offline run in the store's directory. Each run is merged in
    one transaction; syncing a run again replaces the earlier copy, so nothing is
    duplicated. A run whose process died while running is merged as `crashed`.
    """
    from . import _errors, _sync

    store = store_path(directory)
    targets = list(paths) or _sync.find_offline_runs(store.parent)
    if not targets:
        raise click.ClickException(f"no offline runs to sync in {store.parent}")

    def progress(run_id: str, total: int):  # noqa: ANN202 - a callback
        click.echo(f"{run_id}: copying {total:,} points")
        return lambda done: click.echo(f"  {done:,} / {total:,}")

    try:
        merged = _sync.sync(targets, store, project=project, entity=entity,
                            include_synced=include_synced, clean=clean, say=click.echo,
                            progress=progress)
    except _errors.Error as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{merged} run(s) synced into {store}")


def _serve(path: Path, host: str, port: int) -> None:
    import asyncio

    import uvicorn
    from datasette.app import Datasette
    from datasette.plugins import pm

    import datasette_plugins.runstore_ui as plugin

    # Installed, the plugin arrives through its entry point; register it by hand
    # if entry points were not loaded.
    if not pm.is_registered(plugin):
        pm.register(plugin, name="runstore_ui")
    ds = Datasette([str(path)], metadata={"title": "runstore"})
    asyncio.run(ds.invoke_startup())
    url = f"http://{host}:{port}{ds.urls.table(ds.get_database().name, 'run_list')}"
    click.echo(f"runstore ui: serving {path} at {url} (Ctrl+C to stop)")
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning", lifespan="on", workers=1)
