"""Edits from the run page: the store function, the route, its permission and CSRF
guards, read-only mode, and notes rendered as Markdown safely."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from datasette.app import Datasette

import runstore
from helpers import db_rows
from runstore import _store
from runstore._errors import UsageError
from ui_helpers import run_url

pytestmark = pytest.mark.ui  # builds a Datasette or starts `runstore ui`

EVIL = "<script>alert(1)</script>"
ROOT = {"id": "root"}


@pytest.fixture
def store(tmp_path: Path) -> dict[str, Any]:
    """A store made through the public API: one plain run and one with an evil name
    and Markdown notes."""
    store_dir = tmp_path / "store"
    runstore.init(dir=store_dir, project="p", id="plain", name="plain-run",
                  tags=["baseline"]).finish()
    runstore.init(dir=store_dir, project="p", id="evil", name=EVIL,
                  notes=f"**bold** {EVIL} [x](javascript:alert(1)) [ok](https://example.com)"
                  ).finish()
    path = store_dir / "runstore.db"
    keys = dict(db_rows(path, "SELECT id, run_key FROM runs"))
    return {"path": path, "plain": keys["plain"], "evil": keys["evil"]}


def _fields(path: Path, run_key: int) -> tuple:
    return db_rows(path, "SELECT name, notes, tags FROM runs WHERE run_key = ?", (run_key,))[0]


def _with_ds(path: Path, go: Any, plugin_config: dict | None = None) -> Any:
    """Run `go(ds)` against a fresh Datasette on `path` in one event loop."""
    metadata = {"plugins": {"runstore": plugin_config}} if plugin_config else None

    async def run() -> Any:
        return await go(Datasette([str(path)], metadata=metadata))

    return asyncio.run(run())


async def _post(ds: Datasette, run_key: int, data: dict[str, str], *, actor: dict | None = ROOT,
                token: str | None = "good", headers: dict | None = None) -> httpx.Response:
    """POST an edit; token "good" is a valid CSRF token (cookie and form field agree),
    "bad" a form field that does not match, None no token at all."""
    cookies = {}
    if actor is not None:
        cookies["ds_actor"] = ds.sign({"a": actor}, "actor")
    if token is not None:
        cookies["ds_csrftoken"] = ds.sign("secret-ish", "csrftoken")
        data = {**data, "csrftoken": cookies["ds_csrftoken"] if token == "good" else "nope"}
    return await ds.client.post(run_url(run_key) + "/edit", data=data, cookies=cookies,
                                headers=headers or {})


def test_root_edits_name_notes_and_tags(store: dict[str, Any]) -> None:
    key = store["plain"]

    async def go(ds: Datasette) -> list[httpx.Response]:
        return [
            await _post(ds, key, {"name": "  renamed run  "}),
            await _post(ds, key, {"notes": "first line\r\n\r\n*second*"}),
            await _post(ds, key, {"add_tag": "best"}),
            await _post(ds, key, {"add_tag": "best"}),  # no duplicate
            await _post(ds, key, {"remove_tag": "baseline"}),
            await ds.client.get(run_url(key)),
        ]

    *edits, page = _with_ds(store["path"], go)
    assert [r.status_code for r in edits] == [302] * 5
    assert edits[0].headers["location"] == run_url(key) + "#runstore-edit"
    assert "ds_messages" in edits[0].headers.get("set-cookie", "")
    assert _fields(store["path"], key) == ("renamed run", "first line\n\n*second*", '["best"]')
    assert page.status_code == 200
    assert "<h1 class=\"runstore-title\">renamed run" in page.text
    assert "<p>first line</p>\n<p><em>second</em></p>" in page.text
    assert "tags__arraycontains=best" in page.text and "baseline" not in page.text


def test_tags_replace_clear_notes_and_json_answers(store: dict[str, Any]) -> None:
    key = store["plain"]
    accept = {"accept": "application/json"}

    async def go(ds: Datasette) -> list[httpx.Response]:
        return [
            await _post(ds, key, {"tags": "one\r\ntwo\n\n one \n", "notes": "  "},
                        headers=accept),
            await _post(ds, key, {"add_tag": "x" * 65}, headers=accept),
        ]

    ok, bad = _with_ds(store["path"], go)
    assert ok.status_code == 200
    assert ok.json() == {"ok": True, "run": {"name": "plain-run", "notes": None,
                                             "tags": ["one", "two"]}}
    assert bad.status_code == 400 and bad.json()["ok"] is False
    assert "1 to 64 characters" in bad.json()["error"]
    assert _fields(store["path"], key) == ("plain-run", None, '["one", "two"]')


def test_invalid_edits_are_400_and_change_nothing(store: dict[str, Any]) -> None:
    key = store["plain"]
    before = _fields(store["path"], key)
    long_tag = "x" * 65

    async def go(ds: Datasette) -> list[httpx.Response]:
        return [
            await _post(ds, key, {"add_tag": long_tag}),
            await _post(ds, key, {"tags": f"fine\n{long_tag}", "name": "would-change"}),
            await _post(ds, key, {"name": "   "}),
            await _post(ds, key, {}),
        ]

    responses = _with_ds(store["path"], go)
    assert [r.status_code for r in responses] == [400] * 4
    assert f"Nothing was changed: tag &#39;{long_tag}&#39; must be a string of 1 to 64" \
        in responses[0].text
    assert "must be non-empty" in responses[2].text
    assert "nothing to change" in responses[3].text
    assert _fields(store["path"], key) == before


def test_edits_denied_without_the_permission(store: dict[str, Any]) -> None:
    key = store["plain"]
    before = _fields(store["path"], key)

    async def go(ds: Datasette) -> list[httpx.Response]:
        return [
            await _post(ds, key, {"name": "x"}, actor=None),  # anonymous, valid CSRF
            await _post(ds, key, {"name": "x"}, actor=None, token=None),  # no cookies
            await _post(ds, key, {"name": "x"}, actor={"id": "alice"}),
            await ds.client.get(run_url(key)),
            await ds.client.get(run_url(key), cookies={
                "ds_actor": ds.sign({"a": {"id": "alice"}}, "actor")}),
        ]

    *denied, anonymous_page, alice_page = _with_ds(store["path"], go)
    assert [r.status_code for r in denied] == [403, 403, 403]
    assert "runstore-edit permission" in denied[0].text
    assert _fields(store["path"], key) == before
    for page in (anonymous_page, alice_page):
        assert f'action="{run_url(key)}/edit"' not in page.text
    assert "sign in with the one-time link" in anonymous_page.text


def test_edits_denied_without_a_valid_csrf_token(store: dict[str, Any]) -> None:
    """What a cross-site form post sends is refused before the edit route: on 0.65 for
    its missing, wrong or forged token (asgi-csrf), on 1.0 for its Sec-Fetch-Site or
    Origin header (header-based CSRF). The same post from the UI's own origin works."""
    key = store["plain"]
    before = _fields(store["path"], key)
    cross_site = {"sec-fetch-site": "cross-site", "origin": "http://evil.example"}
    old_browser = {"origin": "http://evil.example"}  # no Sec-Fetch-Site

    async def go(ds: Datasette) -> list[httpx.Response]:
        forged = {"ds_actor": ds.sign({"a": ROOT}, "actor"), "ds_csrftoken": "forged"}
        return [
            await _post(ds, key, {"name": "x"}, token=None, headers=cross_site),
            await _post(ds, key, {"name": "x"}, token="bad", headers=old_browser),
            await ds.client.post(run_url(key) + "/edit", cookies=forged, headers=cross_site,
                                 data={"name": "x", "csrftoken": "forged"}),
        ]

    responses = _with_ds(store["path"], go)
    assert [r.status_code for r in responses] == [403, 403, 403]
    assert _fields(store["path"], key) == before

    async def same_origin(ds: Datasette) -> httpx.Response:
        return await _post(ds, key, {"name": "x"}, headers={
            "sec-fetch-site": "same-origin", "origin": "http://localhost"})

    assert _with_ds(store["path"], same_origin).status_code == 302
    assert _fields(store["path"], key)[0] == "x"


def test_edit_route_errors(store: dict[str, Any]) -> None:
    async def go(ds: Datasette) -> list[httpx.Response]:
        return [
            await ds.client.get(run_url(store["plain"]) + "/edit"),
            await _post(ds, 999, {"name": "x"}),
            await _post(ds, 10**30, {"name": "x"}),
        ]

    responses = _with_ds(store["path"], go)
    assert [r.status_code for r in responses] == [405, 404, 404]


def test_root_sees_the_edit_forms_with_a_csrf_token(store: dict[str, Any]) -> None:
    async def go(ds: Datasette) -> httpx.Response:
        return await ds.client.get(run_url(store["evil"]), cookies={
            "ds_actor": ds.sign({"a": ROOT}, "actor")})

    html = _with_ds(store["path"], go).text
    # name, add tag, notes (no tags to remove), each with a token field (Datasette 0.65
    # checks it against its ds_csrftoken cookie; 1.0 checks headers and ignores it)
    forms = re.findall(rf'<form method="post" action="{run_url(store["evil"])}/edit"[^>]*>'
                       r'\s*<input type="hidden" name="csrftoken" value="[^"]+">', html)
    assert len(forms) == 3
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in html  # the name input


def test_read_only_mode_denies_root(store: dict[str, Any]) -> None:
    key = store["plain"]

    async def go(ds: Datasette) -> list[httpx.Response]:
        return [
            await _post(ds, key, {"name": "x"}),
            await ds.client.get(run_url(key), cookies={"ds_actor": ds.sign({"a": ROOT}, "actor")}),
        ]

    denied, page = _with_ds(store["path"], go, {"read_only": True})
    assert denied.status_code == 403 and "read-only" in denied.text
    assert _fields(store["path"], key)[0] == "plain-run"
    assert f'action="{run_url(key)}/edit"' not in page.text and "--enable-writes" in page.text


def test_markdown_notes_are_safe(store: dict[str, Any]) -> None:
    async def go(ds: Datasette) -> httpx.Response:
        return await ds.client.get(run_url(store["evil"]))

    html = _with_ds(store["path"], go).text
    notes = html.split('<div class="runstore-notes">', 1)[1].split("</div>", 1)[0]
    assert "<strong>bold</strong>" in notes
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in notes
    assert '<a href="https://example.com" rel="nofollow noopener noreferrer">ok</a>' in notes
    assert "javascript:" not in re.sub(r"\[x\]\(javascript:alert\(1\)\)", "", notes)
    assert not re.search(r"href=\"\s*javascript:", html, re.IGNORECASE)
    assert EVIL not in html
    assert '<h1 class="runstore-title">&lt;script&gt;alert(1)&lt;/script&gt;' in html


def test_markdown_link_filter() -> None:
    from datasette_plugins.runstore_ui.markdown import render_notes, safe_link

    for url in ("https://x.org", "HTTP://x", "mailto:a@b.c", "/runstore", "#top", "a/b:c",
                "//x.org/a:b"):
        assert safe_link(url), url
    for url in ("javascript:alert(1)", "JavaScript:x", "vbscript:x", "data:text/html,x",
                "file:///etc/passwd", "java%09script:x", " javascript:x"):
        assert not safe_link(url), url
    html = str(render_notes("[a](java&#x09;script:alert(1)) ![i](https://t.example/p.png)"))
    assert "href" not in html.replace('href="https://t.example/p.png"', "")
    assert "<img" not in html  # images would fetch from the network
    assert render_notes(None) == "" and render_notes("  ") == ""


def test_store_edits_validate_like_the_api(store: dict[str, Any]) -> None:
    conn = _store.connect(store["path"])
    try:
        key = store["plain"]
        with pytest.raises(UsageError, match="1 to 64"):
            _store.set_run_fields(conn, key, tags=["y" * 65])
        with pytest.raises(UsageError, match="non-empty"):
            _store.set_run_fields(conn, key, name="")
        assert _store.set_run_fields(conn, 12345, name="x") is None
        assert _store.set_run_fields(conn, key, tags="solo", add_tags=["b"],
                                     remove_tags=["solo"]) == {
            "name": "plain-run", "notes": None, "tags": ["b"]}
    finally:
        conn.close()
    assert _fields(store["path"], store["plain"])[2] == '["b"]'
