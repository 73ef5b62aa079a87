"""Who may edit, and which Host headers the server answers.

`runstore ui` sets the plugin config (``plugins.runstore`` in Datasette's metadata):

- ``allowed_hosts``: the Host header values the server serves (``host:port``);
  any other Host gets 421 Misdirected Request, which defeats DNS rebinding.
  Without this key (plain ``datasette``) every Host is served, as Datasette does.
- ``read_only``: when true, nobody may edit, not even root.

Edits need the ``runstore-edit`` permission (an action on a database), which this
plugin grants to the root actor only (the one Datasette's one-time ``/-/auth-token``
URL signs in). Datasette signs that sign-in cookie with a secret `runstore ui` keeps
beside the store (`store_secret`, mode 0600), so signing in survives a restart.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .compat import database_permission

PLUGIN = "runstore"
EDIT_PERMISSION = "runstore-edit"
EDIT_DESCRIPTION = "Edit the name, tags and notes of runstore runs"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARDS = ("0.0.0.0", "::", "")


def secret_path(db: Path) -> Path:
    """The file beside the store `db` that keeps `runstore ui`'s signing secret."""
    return db.with_name(db.name + "-ui-secret")


def _read_secret(path: Path) -> str | None:
    """The secret kept at `path`, or None when it is missing, unreadable, malformed, or
    readable by anyone but its owner (then it may have leaked: it is replaced)."""
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077:
            return None
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            return None
        value = path.read_text().strip()
    except OSError:
        return None
    return value if len(value) >= 32 else None


def store_secret(db: Path) -> str:
    """The secret Datasette signs cookies with (the sign-in cookie ``ds_actor`` and the
    CSRF token) for `runstore ui` on the store `db`: kept in `secret_path(db)`, mode
    0600, so a browser signed in stays signed in when `runstore ui` restarts. Made on
    first use; one with looser permissions is replaced. OSError if it cannot be written."""
    path = secret_path(db)
    value = _read_secret(path)
    if value is not None:
        return value
    value = secrets.token_hex(32)
    temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(value + "\n")
        try:
            os.link(temp, path)  # never overwrites: a concurrent `runstore ui` may win
        except FileExistsError:
            kept = _read_secret(path)
            if kept is not None:
                return kept
            os.replace(temp, path)  # the one there was unsafe or malformed
    finally:
        temp.unlink(missing_ok=True)
    return value


def plugin_config(datasette: Any) -> dict[str, Any]:
    """This plugin's config (empty when none was given)."""
    config = datasette.plugin_config(PLUGIN)
    return config if isinstance(config, dict) else {}


def read_only(datasette: Any) -> bool:
    """True when the UI was started read-only (edits denied to everyone)."""
    return bool(plugin_config(datasette).get("read_only"))


def edit_allowed(actor: Any, action: str, datasette: Any) -> bool | None:
    """Our answer on `action`: root may edit, unless read-only; None: no opinion."""
    if action != EDIT_PERMISSION:
        return None
    if read_only(datasette):
        return False
    if isinstance(actor, dict) and actor.get("id") == "root":
        return True
    return None


async def can_edit(datasette: Any, request: Any, db: Any) -> bool:
    """True if this request's actor may edit the runs of database `db`."""
    if not db.is_mutable or read_only(datasette):
        return False
    return await database_permission(datasette, request.actor, EDIT_PERMISSION, db.name)


def is_loopback(host: str) -> bool:
    """True if binding `host` serves this machine only."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def url_host(host: str) -> str:
    """The host to put in a URL for a server bound to `host` (wildcards -> loopback)."""
    if host in WILDCARDS:
        return "[::1]" if host == "::" else "127.0.0.1"
    return _bracketed(host)


def _machine_names() -> set[str]:
    """Names and addresses this machine answers to on its networks (best effort)."""
    names = {socket.gethostname(), socket.getfqdn()}
    for name in list(names):
        try:
            names.update(str(info[4][0]) for info in socket.getaddrinfo(name, None))
        except OSError:
            pass
    return {n for n in names if n}


def served_hosts(host: str, port: int, extra: Iterable[str] = ()) -> list[str]:
    """The Host header values a server bound to host:port answers (lowercase).

    Loopback binds also answer localhost, 127.0.0.1 and [::1]; wildcard binds
    (0.0.0.0, ::) answer those and this machine's names and addresses. `extra`
    adds names (with or without a port)."""
    names = {_bracketed(host)}
    if is_loopback(host) or host in WILDCARDS:
        names.update(LOOPBACK_NAMES)
    if host in WILDCARDS:
        names.update(_bracketed(n) for n in _machine_names())
    names.discard("")
    names.discard("[::]")
    names.discard("0.0.0.0")
    served = set()
    for name in names:
        served.add(f"{name}:{port}".lower())
        if port == 80:
            served.add(name.lower())
    served.update(_with_port(n.strip().lower(), port) for n in extra if n.strip())
    return sorted(served)


def _with_port(name: str, port: int) -> str:
    """`name` as host:port: names given with a port keep theirs."""
    if name.startswith("["):  # [v6] or [v6]:port
        return name if "]:" in name else f"{name}:{port}"
    if name.count(":") == 1:  # host:port
        return name
    return f"{_bracketed(name)}:{port}"


def _host_header(scope: dict[str, Any]) -> str:
    for key, value in scope.get("headers") or []:
        if key.lower() == b"host":
            return value.decode("latin-1").strip().lower().rstrip(".")
    return ""


def host_check(app: Any, allowed: Iterable[str]) -> Any:
    """Wrap an ASGI app: HTTP and websocket requests whose Host is not in `allowed`
    get 421 Misdirected Request."""
    allowed = frozenset(h.lower() for h in allowed)
    message = (
        "Misdirected Request: this runstore ui answers only to "
        + ", ".join(sorted(allowed))
        + ".\nOpen one of those addresses, or restart it with --allow-host NAME.\n"
    ).encode()

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or _host_header(scope) in allowed:
            await app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({
            "type": "http.response.start",
            "status": 421,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(message)).encode())],
        })
        await send({"type": "http.response.body", "body": message})

    return wrapped


def wrap_app(datasette: Any) -> Any:
    """The asgi_wrapper: a Host check when the config names the served hosts."""
    allowed = plugin_config(datasette).get("allowed_hosts")

    def wrapper(app: Any) -> Any:
        if not allowed:
            return app
        return host_check(app, allowed)

    return wrapper


async def run_to_change(datasette: Any, request: Any, read_only_says: str,
                        denied_says: str) -> tuple[Any, int] | Any:
    """The store and run_key a POST that changes one run names, after the checks every
    such POST needs (method, store, run, read-only, permission); or the 405 Response."""
    from datasette.utils.asgi import Forbidden, Response

    from .access import store_and_key

    if request.method != "POST":
        return Response.text("Method not allowed: POST a form here", status=405,
                             headers={"Allow": "POST"})
    db, run_key = await store_and_key(datasette, request)
    if read_only(datasette):
        raise Forbidden(read_only_says)
    if not await can_edit(datasette, request, db):
        raise Forbidden(denied_says)
    return db, run_key
