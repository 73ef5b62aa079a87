"""The newcomer path (issue 13): signing in survives a restart of `runstore ui` (a 0600
secret beside the store), a port in use is refused before any sign-in link is printed,
plain `datasette` does not point at a link it never printed, and the CLI's messages speak
CLI. Real child processes throughout."""

from __future__ import annotations

import http.cookiejar
import os
import re
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import runstore
from datasette_plugins.runstore_ui import security
from helpers import db_rows, free_port, start_ui, stop_group
from ui_helpers import run_url


@pytest.fixture
def store(tmp_path: Path) -> dict[str, Any]:
    """A store with one run in project p, made through the public API."""
    store_dir = tmp_path / "store"
    runstore.init(dir=store_dir, project="p", id="plain", name="plain-run",
                  tags=["baseline"]).finish()
    path = store_dir / "runstore.db"
    return {"dir": store_dir, "path": path,
            "key": db_rows(path, "SELECT run_key FROM runs")[0][0]}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _open(opener: urllib.request.OpenerDirector, url: str,
          data: dict | None = None) -> tuple[int, str, Any]:
    body = None if data is None else urllib.parse.urlencode(data).encode()
    try:
        with opener.open(urllib.request.Request(url, data=body), timeout=10) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers


def _wait_listening(proc: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)


def _login_link(proc: subprocess.Popen) -> str:
    """Read `runstore ui`'s output up to its sign-in link."""
    lines: list[str] = []
    while proc.stdout and not any("auth-token" in line for line in lines):
        line = proc.stdout.readline()
        assert line, "".join(lines)
        lines.append(line)
    match = re.search(r"(http://\S+/-/auth-token\?token=[0-9a-f]+)", "".join(lines))
    assert match, "".join(lines)
    return match.group(1)


def _tags(path: Path, run_key: int) -> str:
    return db_rows(path, "SELECT tags FROM runs WHERE run_key = ?", (run_key,))[0][0]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("RUNSTORE_", "WANDB_"))}


def _runstore(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("runstore")
    command = [str(script)] if script.exists() else [
        sys.executable, "-c", "from runstore._cli import main; main()"]
    return subprocess.run([*command, *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=60)


@pytest.mark.ui
def test_sign_in_survives_a_restart(store: dict[str, Any]) -> None:
    """A browser signed in to one `runstore ui` is still signed in (it may edit, with the
    CSRF token of the page it loaded) after `runstore ui` restarts on the same store."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar),
                                          _NoRedirect)
    first = start_ui(store["dir"], port)
    try:
        login = _login_link(first)
        _wait_listening(first, port)
        status, _, _ = _open(browser, login)
        assert status == 302 and "ds_actor" in {c.name for c in jar}
        status, page, _ = _open(browser, base + run_url(store["key"]))
        assert status == 200 and f'action="{run_url(store["key"])}/edit"' in page
    finally:
        stop_group(first)
    secret = security.secret_path(store["path"])
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    kept = secret.read_text()

    second = start_ui(store["dir"], port)
    try:
        _login_link(second)  # printed, and not used: the browser's cookie still counts
        _wait_listening(second, port)
        status, page, _ = _open(browser, base + run_url(store["key"]))
        assert status == 200 and f'action="{run_url(store["key"])}/edit"' in page, page
        token = re.search(r'name="csrftoken" value="([^"]+)"', page).group(1)
        status, body, _ = _open(browser, base + run_url(store["key"]) + "/edit",
                                {"csrftoken": token, "add_tag": "after-restart"})
        assert status == 302, body
        assert _tags(store["path"], store["key"]) == '["baseline", "after-restart"]'
        # Another browser, never signed in, may not edit.
        stranger = urllib.request.build_opener(_NoRedirect)
        status, page, _ = _open(stranger, base + run_url(store["key"]))
        assert status == 200 and f'action="{run_url(store["key"])}/edit"' not in page
    finally:
        stop_group(second)
    assert secret.read_text() == kept
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_store_secret_is_kept_0600_and_a_loose_one_replaced(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    db = tmp_path / "store" / "runstore.db"
    first = security.store_secret(db)
    path = security.secret_path(db)
    assert path.parent == db.parent and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32 and security.store_secret(db) == first
    path.chmod(0o644)  # readable by others: it may have leaked
    second = security.store_secret(db)
    assert second != first and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert security.store_secret(db) == second
    assert [p.name for p in db.parent.iterdir()] == ["runstore.db-ui-secret"]


@pytest.mark.ui
def test_a_port_in_use_is_refused_before_any_sign_in_link(store: dict[str, Any]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start_ui(store["dir"], port)
        try:
            output, _ = proc.communicate(timeout=30)
        finally:
            stop_group(proc)
    assert proc.returncode == 1, output
    assert f"port {port} on 127.0.0.1 is already in use" in output
    assert "--port" in output
    assert "auth-token" not in output and "sign in" not in output
    assert "Traceback" not in output


@pytest.mark.ui
def test_plain_datasette_does_not_point_at_a_link_it_never_printed(
        store: dict[str, Any]) -> None:
    port = free_port()
    datasette = Path(sys.executable).with_name("datasette")
    command = [str(datasette)] if datasette.exists() else [sys.executable, "-m", "datasette"]
    proc = subprocess.Popen([*command, "serve", str(store["path"]), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=_env(), start_new_session=True)
    try:
        _wait_listening(proc, port)
        status, page, _ = _open(urllib.request.build_opener(),
                                f"http://127.0.0.1:{port}" + run_url(store["key"]))
    finally:
        stop_group(proc)
    assert status == 200
    hint = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page))
    assert "runstore ui printed" not in hint
    assert ("sign in with the one-time link that runstore ui DIR prints when it starts "
            "(plain datasette prints one with --root)") in hint
    # Serving the store this way writes no secret beside it.
    assert not security.secret_path(store["path"]).exists()


def test_ls_without_a_store_says_which_dir_to_give(tmp_path: Path) -> None:
    result = _runstore("ls", cwd=tmp_path)
    assert result.returncode == 1
    assert "Api(" not in result.stderr
    assert (f"no runstore store at {tmp_path.resolve() / 'runstore' / 'runstore.db'} "
            "(the default: $RUNSTORE_DIR, $WANDB_DIR or ./runstore); "
            "run `runstore ls DIR` with the directory your runs were logged to"
            ) in result.stderr
    result = _runstore("ls", str(tmp_path / "elsewhere"), cwd=tmp_path)
    assert result.returncode == 1 and "runstore ls DIR" in result.stderr
    result = _runstore("unrewind", "p/x", cwd=tmp_path)
    assert result.returncode == 1 and "Api(" not in result.stderr
    assert "runstore unrewind --dir DIR PROJECT/ID" in result.stderr


def test_ls_says_when_no_run_matched(store: dict[str, Any], tmp_path: Path) -> None:
    result = _runstore("ls", str(store["dir"]), "--project", "nope", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == ""
    entity = db_rows(store["path"], "SELECT entity FROM runs")[0][0]
    assert result.stderr.strip() == (f"no run matched --project nope in {store['path']}; "
                                     f"its projects: {entity}/p")
    listed = _runstore("ls", str(store["dir"]), "--project", "p", cwd=tmp_path)
    assert listed.returncode == 0 and "plain-run" in listed.stdout and listed.stderr == ""


CHROMIUM = os.environ.get("RUNSTORE_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.mark.ui
def test_a_browser_stays_signed_in_across_a_restart(store: dict[str, Any]) -> None:
    """Headless Chromium signs in with the first `runstore ui`'s link, then adds a tag
    through the run page's form served by a second `runstore ui` on the same store."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.skip(f"needs the Python package playwright ({exc}), in the `test` extra")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (`make test` installs it when "
                    "run as root), or RUNSTORE_TEST_CHROMIUM")
    port = free_port()
    page_url = f"http://127.0.0.1:{port}" + run_url(store["key"])
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        except Exception as exc:  # a Chromium that cannot start here
            pytest.skip(f"headless Chromium did not start: {exc}")
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(15_000)
            first = start_ui(store["dir"], port)
            try:
                login = _login_link(first)
                _wait_listening(first, port)
                page.goto(login)
                page.goto(page_url)
                assert page.locator("a[href='#runstore-edit']").count() == 1
            finally:
                stop_group(first)
            second = start_ui(store["dir"], port)
            try:
                _login_link(second)
                _wait_listening(second, port)
                page.goto(page_url + "#runstore-edit")
                page.fill("input[name=add_tag]", "chromium-after-restart")
                with page.expect_navigation():
                    page.click(".runstore-tag-add button[type=submit]")
                assert page.url.endswith("#runstore-edit")
            finally:
                stop_group(second)
        finally:
            browser.close()
    assert _tags(store["path"], store["key"]) == '["baseline", "chromium-after-restart"]'
