"""The `runstore` command line. Heavy imports (datasette, uvicorn) stay inside commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from ._errors import Error
from ._settings import store_path


class _Group(click.Group):
    """The one error boundary of the CLI: a runstore.Error from any command is reported
    as a one-line error (click.ClickException), as sqlite-utils reports its library's."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Error as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option("--read-only", is_flag=True,
              help="Never write the store: no schema upgrade, no edits, opened immutable "
                   "(for a restored replica or a copy of a store).")
def ui(directory: str | None, port: int, host: str, open_browser: bool,
       enable_writes: bool, allow_hosts: tuple[str, ...], read_only: bool) -> None:
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
    from . import _store

    if read_only:
        if enable_writes:
            raise click.ClickException("--read-only and --enable-writes exclude each other")
        _check_schema_current(path)
    else:
        _store.connect(path).close()  # an older store is upgraded in place when served
    from datasette_plugins.runstore_ui.serve import serve

    serve(path, host, port, open_browser=open_browser, enable_writes=enable_writes,
          allow_hosts=allow_hosts, immutable=read_only)


def _check_schema_current(path: Path) -> None:
    """Refuse to serve read-only a store whose schema this runstore does not speak (an
    older one would need the upgrade that --read-only forbids)."""
    from ._store import latest_version, schema_version

    version = schema_version(path)
    if version != latest_version():
        raise click.ClickException(
            f"{path} has schema version {version}, this runstore speaks "
            f"{latest_version()}; --read-only cannot upgrade it: serve a copy without "
            f"--read-only, or use the runstore that wrote it"
        )


@main.command()
@click.argument("directory", metavar="[DIR]", required=False)
@click.option("--to", "url", required=True, metavar="URL",
              help="The replica: s3://BUCKET/PATH (add ?endpoint=http://HOST:PORT for an "
                   "S3-compatible server) or file:///PATH.")
@click.option("--sync-interval", default=1.0, show_default=True, metavar="SECONDS",
              type=click.FloatRange(0.01), help="How often Litestream ships new WAL frames.")
def replicate(directory: str | None, url: str, sync_interval: float) -> None:
    """Replicate the store of DIR with Litestream until stopped (Ctrl+C, SIGTERM).

    Runs in the foreground; on a stop Litestream syncs once more and exits. One
    replica per store and one `runstore replicate` per store (Litestream 0.5).
    S3 credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. Needs
    pip install 'runstore[replicate]'. DIR defaults as for `ui`.
    """
    from . import _replicate

    status = _replicate.replicate(store_path(directory), url, sync_interval=sync_interval,
                                  echo=click.echo)
    if status:
        raise click.ClickException(f"litestream exited with status {status}")


@main.command()
@click.option("--from", "url", required=True, metavar="URL",
              help="The replica, as given to `runstore replicate --to`.")
@click.option("--to", "target", required=True, metavar="PATH",
              help="A new store directory (refused if it already holds a store).")
def restore(url: str, target: str) -> None:
    """Restore a Litestream replica into a new store directory.

    The result must pass PRAGMA integrity_check. Browse it without writing it
    with `runstore ui --read-only PATH`.
    """
    from . import _replicate

    db = _replicate.restore(url, target)
    click.echo(f"restored {url} into {db} (integrity_check: ok)")


@main.command()
@click.argument("run_path", metavar="PROJECT/ID")
@click.option("--dir", "directory", help="The store directory (default: as `ui`).")
def unrewind(run_path: str, directory: str | None) -> None:
    """Undo the newest rewind (resume_from) of a run.

    The archived tail goes back into the live history; whatever was logged since
    the rewind is archived in turn, so nothing is lost.
    """
    from ._api import Api

    with Api(_existing_store(directory, "runstore unrewind --dir DIR PROJECT/ID")) as api:
        run = api.unrewind(run_path)
    click.echo(f"restored the newest rewind of {run.path}")


@main.command(name="ls")
@click.argument("directory", metavar="[DIR]", required=False)
@click.option("--project", help="Only the runs of this project (or entity/project).")
def list_runs(directory: str | None, project: str | None) -> None:
    """List the runs of a store, newest first.

    A run whose process is gone without finishing is shown as crashed.
    """
    from ._api import Api

    path = _existing_store(directory, "runstore ls DIR")
    with Api(path) as api:
        runs = api.runs(project)
        if not runs:
            _no_run_matched(api, path, project)
            return
    rows = [(r.id, r.name, f"{r.entity}/{r.project}", r.state, r.created_at[:19],
             "" if r.runtime is None else f"{r.runtime:.1f}s") for r in runs]
    header = ("ID", "NAME", "PROJECT", "STATE", "CREATED", "RUNTIME")
    widths = [max(len(str(v)) for v in column) for column in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _existing_store(directory: str | None, usage: str) -> Path:
    """The store file of `directory` (as init() resolves it), or a one-line error that
    says which DIR to give (`usage`: the command line that takes it)."""
    path = store_path(directory)
    if not path.is_file():
        where = ("" if directory is not None else
                 " (the default: $RUNSTORE_DIR, $WANDB_DIR or ./runstore)")
        raise click.ClickException(
            f"no runstore store at {path}{where}; run `{usage}` with the directory your "
            f"runs were logged to (the dir of runstore.init)")
    return path


def _no_run_matched(api: Any, path: Path, project: str | None) -> None:
    """Say on stderr that `runstore ls` found no run, and what there is instead."""
    if project is None:
        click.echo(f"no runs in {path} yet: runs appear here once a script calls "
                   f"runstore.init(dir={str(path.parent)!r})", err=True)
        return
    projects = sorted({f"{r.entity}/{r.project}" for r in api.runs()})
    known = (f"; its projects: {', '.join(projects)}" if projects else
             "; it has no runs yet")
    click.echo(f"no run matched --project {project} in {path}{known}", err=True)


@main.command(name="run", context_settings={"ignore_unknown_options": True,
                                            "allow_interspersed_args": False})
@click.option("--dir", "directory", help="Store the command's runs here (sets RUNSTORE_DIR).")
@click.option("--project", help="Put the command's runs in this project (sets RUNSTORE_PROJECT).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run_command(directory: str | None, project: str | None, command: tuple[str, ...]) -> None:
    """Run COMMAND with `import wandb` meaning runstore.

    `runstore run -- python train.py --lr 0.1` runs the command unchanged with
    RUNSTORE_AS_WANDB=1, so each Python it starts (in an environment where runstore is
    installed) gets runstore when it imports wandb: transformers' report_to="wandb",
    Lightning's WandbLogger, SB3's WandbCallback and scripts calling wandb.* log to the
    store. Exits with the command's exit code.
    """
    import subprocess
    import sys

    env = {**os.environ, "RUNSTORE_AS_WANDB": "1"}
    if directory:
        env["RUNSTORE_DIR"] = str(Path(directory).expanduser().resolve())
    if project:
        env["RUNSTORE_PROJECT"] = project
    try:
        if os.name == "posix":
            os.execvpe(command[0], list(command), env)  # the command takes this process
        sys.exit(subprocess.call(list(command), env=env))
    except FileNotFoundError:
        raise click.ClickException(f"command not found: {command[0]}") from None


@main.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option("--dir", "directory", help="The store to merge into (default: as `ui`).")
@click.option("--project", help="Put the synced runs in this project.")
@click.option("--entity", help="Put the synced runs under this entity.")
@click.option("--include-synced", is_flag=True, help="Sync runs that were synced before.")
@click.option("--clean", is_flag=True, help="Delete offline runs once they are synced.")
@click.option("--watch", "inbox", metavar="INBOX", type=click.Path(file_okay=False),
              help="Be the hub: merge what nodes publish into INBOX (their "
                   "RUNSTORE_PUBLISH_DIR) as it arrives, until stopped.")
@click.option("--rebuild", is_flag=True,
              help="Make the store (which must not exist) again from the archive of "
                   "published files.")
@click.option("--archive", type=click.Path(file_okay=False),
              help="Where the hub keeps merged files (default: DIR/published).")
@click.option("--crashed-after", default=120.0, show_default=True, type=float,
              help="With --watch: a published run silent this many seconds is crashed.")
def sync(paths: tuple[str, ...], directory: str | None, project: str | None,
         entity: str | None, include_synced: bool, clean: bool, inbox: str | None,
         rebuild: bool, archive: str | None, crashed_after: float) -> None:
    """Merge offline runs (their offline-run-* directories) into a store.

    With no PATH, every offline run in the store's directory. Each run is merged in
    one transaction; syncing a run again replaces the earlier copy, so nothing is
    duplicated. A run whose process died while running is merged as `crashed`.

    On a cluster's hub, `--watch INBOX` merges the files nodes publish (see
    docs/SCALE-OUT.md); `--rebuild` remakes the hub's store from its archive.
    """
    from . import _sync

    store = store_path(directory)
    if inbox is not None or rebuild:
        from . import _hub

        archive_path = Path(archive) if archive else None
        if rebuild:
            merged = _hub.rebuild(store, archive_path, say=click.echo)
            click.echo(f"rebuilt {store} from {merged} published file(s)")
        if inbox is not None:
            _hub.watch(Path(inbox), store, archive_path, silent_after_s=crashed_after,
                       say=click.echo)
        return
    targets = list(paths) or _sync.find_offline_runs(store.parent)
    if not targets:
        raise click.ClickException(f"no offline runs to sync in {store.parent}")

    def progress(run_id: str, total: int):  # a callback, returning one per run
        click.echo(f"{run_id}: copying {total:,} points")
        return lambda done: click.echo(f"  {done:,} / {total:,}")

    merged = _sync.sync(targets, store, project=project, entity=entity,
                        include_synced=include_synced, clean=clean, say=click.echo,
                        progress=progress)
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
    store = store_path(directory)
    try:
        from ._integrations import tensorboard_import
        imported = tensorboard_import.import_logdir(
            Path(logdir), store, project, say=click.echo, bar=click.progressbar)
    except ImportError as exc:
        raise click.ClickException(f"import-tensorboard needs TensorBoard ({exc}); install "
                                   "it with: pip install 'runstore[tensorboard]'") from exc
    click.echo(f"{imported} run(s) imported into {store}")



@main.command(name="sweep")
@click.argument("config", metavar="CONFIG.yaml|SWEEP_ID")
@click.option("--project", help="The sweep's project (default: the config's `project`).")
@click.option("--entity", help="The sweep's entity (default: the config's, else your user).")
@click.option("--dir", "directory", help="The store directory (default: as `ui`).")
@click.option("--retries", default=1, show_default=True, type=click.IntRange(0),
              help="How often a configuration whose run crashed is offered again.")
@click.option("--seed", type=int, help="Seed of random and bayes draws (default: random).")
@click.option("--pause", "action", flag_value="paused",
              help="Pause the sweep SWEEP_ID: agents wait after their current run.")
@click.option("--resume", "action", flag_value="running", help="Resume a paused sweep.")
@click.option("--cancel", "action", flag_value="cancelled",
              help="Cancel the sweep: agents stop their runs and exit.")
def sweep_command(config: str, project: str | None, entity: str | None,
                  directory: str | None, retries: int, seed: int | None,
                  action: str | None) -> None:
    """Register a sweep from a wandb sweep config, or steer one.

    `runstore sweep sweep.yaml` stores the sweep and prints its id and the command that
    runs an agent; start as many agents as you like, on this machine or others sharing
    the store's directory locally. `runstore sweep --pause|--resume|--cancel SWEEP_ID`
    changes a sweep's state.
    """
    from . import _sweep

    if action is not None:
        _sweep.set_state(config, action, directory)
        click.echo(f"sweep {config} is now {action}")
        return
    sweep_id = _sweep.sweep(config, project, entity, dir=directory, retries=retries,
                            seed=seed)
    where = "" if directory is None else f" --dir {directory}"
    click.echo(sweep_id)  # alone on stdout: SWEEP_ID=$(runstore sweep sweep.yaml)
    click.echo(f"created sweep {sweep_id}; run an agent with: runstore agent "
               f"{sweep_id}{where}", err=True)


@main.command(name="agent")
@click.argument("sweep_id", metavar="SWEEP_ID")
@click.option("--count", type=click.IntRange(1), help="Run at most this many configurations.")
@click.option("--project", help="The sweep's project, if the id alone is ambiguous.")
@click.option("--entity", help="The sweep's entity.")
@click.option("--dir", "directory", help="The store directory (default: as `ui`).")
def agent_command(sweep_id: str, count: int | None, project: str | None,
                  entity: str | None, directory: str | None) -> None:
    """Run a sweep's configurations with its `program`/`command`, one process each,
    until none is left (or --count of them)."""
    from . import _sweep

    _sweep.agent(sweep_id, count=count, project=project, entity=entity, dir=directory)
