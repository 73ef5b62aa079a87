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
              help="Interface to bind; the default serves this machine only. Any other "
                   "address serves read-only unless --enable-writes is given.")
@click.option("--open", "open_browser", is_flag=True,
              help="Open the one-time sign-in link in a web browser.")
@click.option("--enable-writes", is_flag=True,
              help="Allow edits (name, tags, notes) even when --host is not a loopback "
                   "address.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME[:PORT]",
              help="Also answer requests for this Host name (e.g. behind a proxy); "
                   "repeatable. Requests for any other Host get 421.")
def ui(directory: str | None, port: int, host: str, open_browser: bool,
       enable_writes: bool, allow_hosts: tuple[str, ...]) -> None:
    """Browse the runs of DIR in Datasette.

    Serves DIR/runstore.db with the runstore plugin (run list, run pages, charts),
    on 127.0.0.1 unless --host says otherwise, and prints a one-time link that
    signs you in (as Datasette's root user) to edit run names, tags and notes.
    Requests whose Host header names another server are refused (DNS rebinding).

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
    _serve(path, host, port, open_browser=open_browser, enable_writes=enable_writes,
           allow_hosts=allow_hosts)


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


@main.command(name="ls")
@click.argument("directory", metavar="[DIR]", required=False)
@click.option("--project", help="Only the runs of this project (or entity/project).")
def list_runs(directory: str | None, project: str | None) -> None:
    """List the runs of a store, newest first.

    A run whose process is gone without finishing is shown as crashed.
    """
    from . import _errors
    from ._api import Api

    try:
        runs = Api(store_path(directory).parent).runs(project)
    except _errors.Error as exc:
        raise click.ClickException(str(exc)) from exc
    rows = [(r.id, r.name, f"{r.entity}/{r.project}", r.state, r.created_at[:19],
             "" if r.runtime is None else f"{r.runtime:.1f}s") for r in runs]
    header = ("ID", "NAME", "PROJECT", "STATE", "CREATED", "RUNTIME")
    widths = [max(len(str(v)) for v in column) for column in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


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


@main.command(name="import-tensorboard")
@click.argument("logdir", type=click.Path(exists=True, file_okay=False))
@click.option("--project", help="Put the runs in this project (default: LOGDIR's name).")
@click.option("--dir", "directory", help="The store to import into (default: as `ui`).")
def import_tensorboard(logdir: str, project: str | None, directory: str | None) -> None:
    """Import the TensorBoard event files under LOGDIR as finished runs.

    One run per run directory (a directory holding events.out.tfevents.* files), named
    by its path under LOGDIR; scalars keep their tags, steps and wall times. Runs imported
    before are skipped. Needs TensorBoard (pip install 'runstore[tensorboard]').
    """
    from . import _errors

    store = store_path(directory)
    try:
        from . import _tensorboard_import
        imported = _tensorboard_import.import_logdir(
            Path(logdir), store, project, say=click.echo, bar=click.progressbar)
    except ImportError as exc:
        raise click.ClickException(f"import-tensorboard needs TensorBoard ({exc}); install "
                                   "it with: pip install 'runstore[tensorboard]'") from exc
    except _errors.Error as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{imported} run(s) imported into {store}")


def _serve(path: Path, host: str, port: int, *, open_browser: bool = False,
           enable_writes: bool = False, allow_hosts: tuple[str, ...] = ()) -> None:
    import asyncio
    import webbrowser

    import uvicorn
    from datasette.app import Datasette
    from datasette.plugins import pm

    import datasette_plugins.runstore_ui as plugin
    from datasette_plugins.runstore_ui import _compat, _security

    # Installed, the plugin arrives through its entry point; register it by hand
    # if entry points were not loaded.
    if not pm.is_registered(plugin):
        pm.register(plugin, name="runstore_ui")
    loopback = _security.is_loopback(host)
    if not loopback:
        state = ("edits are on for whoever signs in with the link below, which travels "
                 "over plain HTTP" if enable_writes else
                 "serving read-only (pass --enable-writes to allow edits)")
        click.echo(f"warning: --host {host} makes these runs readable by anyone who can "
                   f"reach this machine on port {port}; {state}", err=True)
    config = {
        "allowed_hosts": _security.served_hosts(host, port, allow_hosts),
        "read_only": not (loopback or enable_writes),
    }
    ds = Datasette([str(path)], **_compat.datasette_options({"title": "runstore"},
                                                            {_security.PLUGIN: config}))
    asyncio.run(ds.invoke_startup())
    # Datasette's own --root mechanism: /-/auth-token?token=... sets the ds_actor
    # cookie for root, once; nothing else (not even a local request) is root.
    token = _compat.root_login_token(ds)
    base = f"http://{_security.url_host(host)}:{port}"
    url = base + ds.urls.table(ds.get_database().name, "run_list")
    login = f"{base}{ds.urls.path('-/auth-token')}?token={token}"
    click.echo(f"runstore ui: serving {path} at {url} (Ctrl+C to stop)")
    click.echo(f"runstore ui: sign in to edit names, tags and notes (the link works once): "
               f"{login}")
    if open_browser:
        webbrowser.open(login)
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning", lifespan="on", workers=1)
