"""`runstore ui`'s server: Datasette with this plugin on one store, served by uvicorn.

The one module of the plugin that runstore imports (lazily, from its CLI); heavy
imports (datasette, uvicorn) stay inside `serve`. It signs the local user in with a
one-time root URL, as Datasette's ``--root`` does, answers only the Host headers it
serves (`security.served_hosts`), and serves read-only on a non-loopback address
unless told otherwise.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable
from pathlib import Path

import click

from . import compat, security


def serve(path: Path, host: str, port: int, *, open_browser: bool = False,
          enable_writes: bool = False, allow_hosts: Iterable[str] = (),
          immutable: bool = False) -> None:
    """Serve the store file `path` on host:port until interrupted; print its address
    and the one-time sign-in link (and open that in a browser with `open_browser`).
    `immutable`: open the file as Datasette's immutable databases (never written, not
    even its -wal/-shm) and allow no edits."""
    # Check the port first: a port in use is refused before any link is printed.
    listener = _claim(host, port)
    import asyncio
    import webbrowser

    import uvicorn
    from datasette.app import Datasette
    from datasette.plugins import pm

    import datasette_plugins.runstore_ui as plugin

    # Installed, the plugin arrives through its entry point; register it by hand
    # if entry points were not loaded.
    if not pm.is_registered(plugin):
        pm.register(plugin, name="runstore_ui")
    loopback = security.is_loopback(host)
    if not loopback:
        state = ("edits are on for whoever signs in with the link below, which travels "
                 "over plain HTTP" if enable_writes else
                 "serving read-only (pass --enable-writes to allow edits)")
        click.echo(f"warning: --host {host} makes these runs readable by anyone who can "
                   f"reach this machine on port {port}; {state}", err=True)
    config = {
        "allowed_hosts": security.served_hosts(host, port, allow_hosts),
        "read_only": immutable or not (loopback or enable_writes),
    }
    files = {"immutables": [str(path)]} if immutable else {"files": [str(path)]}
    ds = Datasette(**files, secret=_secret(path, immutable),
                   **compat.datasette_options({"title": "runstore"}, {security.PLUGIN: config}))
    asyncio.run(ds.invoke_startup())
    # Datasette's own --root mechanism: /-/auth-token?token=... sets the ds_actor
    # cookie for root, once; nothing else (not even a local request) is root.
    token = compat.root_login_token(ds)
    base = f"http://{security.url_host(host)}:{port}"
    url = base + ds.urls.table(ds.get_database().name, "run_list")
    login = f"{base}{ds.urls.path('-/auth-token')}?token={token}"
    click.echo(f"runstore ui: serving {path} at {url} (Ctrl+C to stop)")
    if immutable:
        click.echo("runstore ui: read-only: the store is opened immutable, nothing is "
                   "written and edits are off")
    else:
        click.echo(f"runstore ui: sign in to edit names, tags and notes (the link works "
                   f"once; a browser signed in before stays signed in): {login}")
    if open_browser:
        webbrowser.open(url if immutable else login)
    listener.close()  # uvicorn binds it again at once
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning", lifespan="on", workers=1)


def _claim(host: str, port: int) -> socket.socket:
    """A socket bound to host:port as uvicorn binds it (SO_REUSEADDR, so a restart is
    not refused for connections in TIME_WAIT), or a one-line error saying the port is
    taken (or the address is not this machine's)."""
    bare = host.strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in bare else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:  # bound, not listening: a browser that comes early is refused, not dropped
        sock.bind((bare, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"port {port} on {host} is already in use (another `runstore ui` or "
                f"server?); stop it, or pick another port with --port") from None
        raise click.ClickException(f"cannot serve on {host}:{port}: {exc.strerror or exc}; "
                                   f"pick another --host or --port") from None
    return sock


def _secret(path: Path, immutable: bool) -> str | None:
    """The secret Datasette signs the sign-in cookie with: kept beside the store, so a
    sign-in survives a restart; None (a new one per process) for an immutable store,
    which is never written and allows no edits, or when it cannot be kept."""
    if immutable:
        return None
    try:
        return security.store_secret(path)
    except OSError as exc:
        click.echo(f"warning: cannot keep a sign-in secret in "
                   f"{security.secret_path(path)} ({exc.strerror or exc}); signing in "
                   f"will not survive a restart of runstore ui", err=True)
        return None
