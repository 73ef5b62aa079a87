"""`runstore ui`: the one-time sign-in link, the Host check (DNS rebinding) and read-only
serving of non-loopback addresses; in process and as a real server."""

from __future__ import annotations

import asyncio
import http.cookiejar
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from datasette.app import Datasette

import runstore
from helpers import db_rows, free_port, start_ui, stop_group
from runstore._cli import main
from ui_helpers import run_url

pytestmark = pytest.mark.ui  # builds a Datasette or starts `runstore ui`


@pytest.fixture
def store(tmp_path: Path) -> dict[str, Any]:
    """A store with one run, made through the public API."""
    store_dir = tmp_path / "store"
    runstore.init(dir=store_dir, project="p", id="plain", name="plain-run",
                  tags=["baseline"]).finish()
    path = store_dir / "runstore.db"
    return {"path": path, "plain": db_rows(path, "SELECT run_key FROM runs")[0][0]}


def _tags(path: Path, run_key: int) -> str:
    return db_rows(path, "SELECT tags FROM runs WHERE run_key = ?", (run_key,))[0][0]


def test_host_check(store: dict[str, Any]) -> None:
    from datasette_plugins.runstore_ui.security import served_hosts

    allowed = served_hosts("127.0.0.1", 8001)

    async def go(ds: Datasette) -> list[int]:
        statuses = []
        for host in ("evil.example:8001", "127.0.0.1:8001", "localhost:8001", "[::1]:8001",
                     "127.0.0.1:9999", "127.0.0.1", "EVIL.example:8001"):
            response = await ds.client.get("/", headers={"host": host})
            statuses.append(response.status_code)
        return statuses

    checked = asyncio.run(go(Datasette([str(store["path"])], metadata={
        "plugins": {"runstore": {"allowed_hosts": allowed}}})))
    # Served hosts get / (a redirect to the run list of the only database, a store).
    assert checked == [421, 302, 302, 302, 421, 421, 421]

    async def plain(ds: Datasette) -> int:
        return (await ds.client.get("/", headers={"host": "evil.example:8001"})).status_code

    assert asyncio.run(plain(Datasette([str(store["path"])]))) == 302  # plain: no check


def test_served_hosts() -> None:
    from datasette_plugins.runstore_ui.security import is_loopback, served_hosts

    assert served_hosts("127.0.0.1", 8001) == ["127.0.0.1:8001", "[::1]:8001",
                                              "localhost:8001"]
    assert served_hosts("192.168.1.5", 8001, ["box.lan", "proxy:443"]) == [
        "192.168.1.5:8001", "box.lan:8001", "proxy:443"]
    wildcard = served_hosts("0.0.0.0", 8001)
    assert "127.0.0.1:8001" in wildcard and f"{socket.gethostname().lower()}:8001" in wildcard
    assert "0.0.0.0:8001" not in wildcard
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")



def _serve_in_process(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> dict[str, Any]:
    """Invoke `runstore ui ARGS` with uvicorn.run replaced: returns the app it would
    serve, the host and port, and the command's output."""
    served: dict[str, Any] = {}

    def fake_run(app: Any, **kwargs: Any) -> None:
        served.update(app=app, **kwargs)

    monkeypatch.setattr("uvicorn.run", fake_run)
    result = CliRunner().invoke(main, ["ui", *args])
    assert result.exit_code == 0, result.output
    served["output"] = result.output
    return served


def _login_url(output: str) -> str:
    match = re.search(r"(http://\S+/-/auth-token\?token=[0-9a-f]+)", output)
    assert match, output
    return match.group(1)


async def _login_and_edit(app: Any, login: str, run_key: int) -> list[httpx.Response]:
    """Sign in through the login URL, then POST an edit with the page's csrftoken."""
    parts = urllib.parse.urlsplit(login)
    base = f"{parts.scheme}://{parts.netloc}"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base) as c:
        signed_in = await c.get(login)
        page = await c.get(run_url(run_key))
        match = re.search(r'name="csrftoken" value="([^"]+)"', page.text)
        token = match.group(1) if match else "none"
        edit = await c.post(run_url(run_key) + "/edit", data={"add_tag": "from-ui",
                                                             "csrftoken": token})
        return [signed_in, page, edit]


def test_cli_non_loopback_host_is_read_only(store: dict[str, Any], monkeypatch) -> None:
    served = _serve_in_process(monkeypatch, [str(store["path"].parent), "--host", "0.0.0.0",
                                             "--port", "8123"])
    assert served["host"] == "0.0.0.0" and served["port"] == 8123
    assert "warning: --host 0.0.0.0" in served["output"] and "read-only" in served["output"]
    login = _login_url(served["output"])
    assert login.startswith("http://127.0.0.1:8123/-/auth-token?token=")
    signed_in, page, edit = asyncio.run(_login_and_edit(served["app"], login, store["plain"]))
    assert signed_in.status_code == 302 and "ds_actor" in signed_in.headers["set-cookie"]
    assert "--enable-writes" in page.text and edit.status_code == 403
    assert _tags(store["path"], store["plain"]) == '["baseline"]'


def test_cli_enable_writes_on_a_non_loopback_host(store: dict[str, Any], monkeypatch) -> None:
    served = _serve_in_process(monkeypatch, [str(store["path"].parent), "--host", "0.0.0.0",
                                             "--port", "8123", "--enable-writes"])
    assert "edits are on" in served["output"]
    responses = asyncio.run(_login_and_edit(served["app"], _login_url(served["output"]),
                                            store["plain"]))
    assert [r.status_code for r in responses] == [302, 200, 302]
    assert _tags(store["path"], store["plain"]) == '["baseline", "from-ui"]'


def test_cli_open_flag_opens_the_login_url(store: dict[str, Any], monkeypatch) -> None:
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    served = _serve_in_process(monkeypatch, [str(store["path"].parent), "--port", "8124"])
    assert opened == []
    served = _serve_in_process(monkeypatch, [str(store["path"].parent), "--port", "8124",
                                             "--open"])
    assert opened == [_login_url(served["output"])]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _open(opener: urllib.request.OpenerDirector, url: str, data: dict | None = None,
          headers: dict | None = None) -> tuple[int, str, Any]:
    body = None if data is None else urllib.parse.urlencode(data).encode()
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers


def test_cli_login_url_works_once_in_a_real_server(store: dict[str, Any]) -> None:
    port = free_port()
    proc = start_ui(store["path"].parent, port)
    try:
        lines = []
        while proc.stdout and not any("auth-token" in line for line in lines):
            line = proc.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        login = _login_url("".join(lines))
        assert login.startswith(f"http://127.0.0.1:{port}/-/auth-token?token=")
        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar),
                                              _NoRedirect)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:  # wait for the server
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        status, _, headers = _open(browser, login)
        assert status == 302 and "ds_actor" in {c.name for c in jar}
        status, page, _ = _open(browser, base + run_url(store["plain"]))
        assert status == 200
        token = re.search(r'name="csrftoken" value="([^"]+)"', page).group(1)
        status, _, headers = _open(browser, base + run_url(store["plain"]) + "/edit",
                                   {"csrftoken": token, "add_tag": "via-login"})
        assert status == 302, _
        assert headers["location"].endswith(run_url(store["plain"]) + "#runstore-edit")
        assert _tags(store["path"], store["plain"]) == '["baseline", "via-login"]'
        # The token works once; another browser cannot reuse it.
        other = urllib.request.build_opener(_NoRedirect)
        assert _open(other, login)[0] == 403
        # DNS rebinding: a page on evil.example that resolves to 127.0.0.1 gets 421.
        status, body, _ = _open(other, base + "/", headers={"Host": f"evil.example:{port}"})
        assert status == 421 and "Misdirected" in body
        status, _, headers = _open(other, base + "/")  # home: the run list
        assert status == 302 and headers["location"] == "/runstore/run_list"
        assert _open(other, base + "/runstore/run_list")[0] == 200
    finally:
        stop_group(proc)
