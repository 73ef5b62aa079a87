"""The run page beyond charts: console output, system metrics and media, on stores written by
real runs (a child process that prints, samples system metrics and logs images, histograms,
tables and a video), served by a real Datasette app. Plus the media types' round trip
through the Python API and their deduplication."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import struct
from html import unescape
from typing import Any

import numpy as np
import pytest

import runstore
from helpers import run_script
from runstore import _store
from runstore._store import system_series
from ui_helpers import run_url, ui_get

pytestmark = pytest.mark.ui  # builds a Datasette or starts `runstore ui`

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EVIL_SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
# The first box of an MP4 file: enough for the blob route to know it as video/mp4.
FAKE_MP4 = struct.pack(">I", 24) + b"ftypisom" + b"\x00\x00\x02\x00isomiso2" + b"\x00" * 200
CONSOLE_LINES = 1200

CHILD = """
import sqlite3, sys, time
import numpy as np
import runstore
from runstore import Video

store = {store!r}
run = runstore.init(dir=store, project="vision", id="media1", name="media run",
                    settings={{"stats_sampling_interval": 0.1}})
print("epoch 1 <script>alert(1)</script>")
print("warning: <b>lr</b> is high", file=sys.stderr)
print("\\x1b[32mgreen\\x1b[0m 10%\\r 50%\\r100%")
pixels = np.zeros((16, 24, 3), np.uint8)
pixels[:, :12, 0] = 255
pixels[:, 12:, 2] = 255
for step in range(3):
    run.log({{
        "loss": 1.0 / (step + 1),
        "samples": runstore.Image(pixels, caption="<i>red and blue</i>"),
        "weights": runstore.Histogram(np_histogram=([1, 3 + step, 2], [0.0, 1.0, 2.0, 3.0])),
        "preds": runstore.Table(columns=["id", "<th>"], data=[[step, "<script>x</script>"]]),
    }}, step=step)
run.log({{"drawing": runstore.Image({svg!r}),
          "videos": Video({mp4!r}, format="mp4", episode=7)}}, step=3)
deadline = time.time() + 20
while time.time() < deadline:  # until the sampler stored a few samples
    run.save()
    conn = sqlite3.connect(store + "/runstore.db")
    (n,) = conn.execute("SELECT count(DISTINCT at) FROM system_metrics").fetchone()
    conn.close()
    if n >= 3:
        break
    time.sleep(0.1)
run.finish()

chatty = runstore.init(dir=store, project="vision", id="chatty", name="chatty run",
                       settings={{"disable_stats": True}})
for i in range({lines}):
    print(f"line {{i}}", file=sys.stderr if i % 100 == 99 else sys.stdout)
chatty.finish()
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("extras")
    store_dir = root / "store"
    svg = root / "drawing.svg"
    svg.write_bytes(EVIL_SVG)
    mp4 = root / "episode.mp4"
    mp4.write_bytes(FAKE_MP4)
    code = CHILD.format(store=str(store_dir), svg=str(svg), mp4=str(mp4), lines=CONSOLE_LINES)
    result = run_script(code, cwd=root, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "epoch 1 <script>alert(1)</script>" in result.stdout  # the terminal is untouched
    conn = sqlite3.connect(store_dir / "runstore.db")
    try:
        keys = dict(conn.execute("SELECT id, run_key FROM runs").fetchall())
    finally:
        conn.close()
    return {"dir": store_dir, "path": store_dir / "runstore.db",
            "media": keys["media1"], "chatty": keys["chatty"]}


def _extras_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="runstore-extras-data">(.*?)</script>',
                      html, re.S)
    assert match, "no extras data on the page"
    return json.loads(match.group(1))


def _section(html: str, class_name: str) -> str:
    start = html.index(f'<section class="{class_name}">')
    return html[start:html.index("</section>", start)]


def _figure(html: str, key: str) -> str:
    start = html.index(f'<figure class="runstore-media" data-key="{key}"')
    return html[start:html.index("</figure>", start)]


def _blob_urls(html: str) -> list[str]:
    return re.findall(r'src="(/runstore/-/runstore/blob/[0-9a-f]{64})"', html)


# -- console ----------------------------------------------------------------------------


def test_console_lines_are_shown_escaped_with_times_and_stderr_marked(store):
    (page,) = ui_get(store["path"], run_url(store["media"]))
    assert page.status_code == 200
    console = _section(page.text, "runstore-console-section")
    assert "epoch 1 &lt;script&gt;alert(1)&lt;/script&gt;" in console
    assert "<script>alert(1)" not in page.text
    lines = re.findall(r'<div class="runstore-line (runstore-\w+)" data-seq="(\d+)">'
                       r'<time datetime="([^"]+)"[^>]*>(\d\d:\d\d:\d\d)</time>'
                       r'<span class="runstore-stream">(\w*)</span>'
                       r'<span class="runstore-text">(.*?)</span></div>', console)
    assert [(cls, seq, stream, unescape(text)) for cls, seq, _, _, stream, text in lines] == [
        ("runstore-stdout", "0", "", "epoch 1 <script>alert(1)</script>"),
        ("runstore-stderr", "1", "err", "warning: <b>lr</b> is high"),
        # A terminal shows what follows the last \r, without colour codes.
        ("runstore-stdout", "2", "", "100%"),
    ]
    assert all(iso.startswith("20") and iso.endswith("+00:00") for _, _, iso, *_ in lines)
    assert 'class="runstore-console-more" hidden' in console


def test_long_console_output_comes_in_pages(store):
    url = run_url(store["chatty"])
    page, first, last, bad = ui_get(store["path"], url, url + "/console.json?after=499",
                                  url + f"/console.json?after={CONSOLE_LINES - 3}&limit=10",
                                  url + "/console.json?after=x")
    console = _section(page.text, "runstore-console-section")
    assert console.count('<div class="runstore-line ') == 500  # a bounded first page
    assert f"{CONSOLE_LINES} lines of stdout and stderr" in console
    assert f"Load more ({CONSOLE_LINES - 500} more lines)" in console
    assert 'runstore-stderr" data-seq="99"' in console
    data = _extras_data(page.text)
    assert (data["lastSeq"], data["remaining"]) == (499, CONSOLE_LINES - 500)
    assert data["consoleUrl"] == url + "/console.json"

    body = first.json()
    assert first.status_code == 200
    assert [line["seq"] for line in body["lines"]] == list(range(500, CONSOLE_LINES))
    assert body["lines"][0]["text"] == "line 500" and body["lines"][0]["stream"] == "stdout"
    assert body["lines"][99]["stream"] == "stderr"
    assert body["remaining"] == 0 and body["total"] == CONSOLE_LINES
    assert body["last_seq"] == CONSOLE_LINES - 1 and body["live"] is False
    assert [line["text"] for line in last.json()["lines"]] == [
        f"line {CONSOLE_LINES - 2}", f"line {CONSOLE_LINES - 1}"]
    assert bad.status_code == 400


# -- system metrics ---------------------------------------------------------------------


def test_system_metrics_have_a_chart_each_under_system(store):
    url = run_url(store["media"])
    page, series = ui_get(store["path"], url, url + "/system.json")
    system = _section(page.text, "runstore-system")
    assert '<h2 id="runstore-system">System</h2>' in system
    keys = re.findall(r'<figure class="runstore-syschart" data-key="([^"]+)">', system)
    assert {"system/cpu_percent", "system/memory_percent", "system/disk_percent",
            "system/process_rss_mb"} <= set(keys)
    assert all(key.startswith("system/") for key in keys)
    # System keys are not drawn as step charts (their x axis is time).
    assert 'class="runstore-chart" data-key="system/' not in page.text
    data = series.json()
    assert set(data["series"]) == set(keys) == set(_extras_data(page.text)["systemKeys"])
    memory = data["series"]["system/memory_percent"]
    assert memory["total"] >= 3 and len(memory["at"]) == len(memory["values"]) == memory["total"]
    assert memory["at"] == sorted(memory["at"]) and memory["at"][0] > 1e9
    assert all(0 <= v <= 100 for v in memory["values"])
    (later,) = ui_get(store["path"], url + f"/system.json?after={memory['at'][-2]}")
    assert later.json()["series"]["system/memory_percent"]["at"] == memory["at"][-1:]


def test_long_system_series_are_downsampled_keeping_spikes(tmp_path):
    conn = _store.connect(tmp_path / "runstore.db")
    run_key = _store.insert_run(conn, {"entity": "me", "project": "p", "id": "r", "name": "r",
                                       "created_at": "2024-01-01T00:00:00+00:00"})
    samples = [(1.7e9 + i, {"system/cpu_percent": 5.0 + (i % 3)}) for i in range(10_000)]
    samples[7_777][1]["system/cpu_percent"] = 99.0
    with _store.transaction(conn):
        _store.insert_system(conn, run_key, samples, {})
    data = system_series(conn, run_key, max_points=400)
    conn.close()
    cpu = data["series"]["system/cpu_percent"]
    assert cpu["downsampled"] and cpu["total"] == 10_000 and len(cpu["at"]) <= 400
    assert 99.0 in cpu["values"] and cpu["at"][cpu["values"].index(99.0)] == 1.7e9 + 7_777
    assert cpu["at"][0] == 1.7e9 and cpu["at"][-1] == 1.7e9 + 9_999


# -- media ----------------------------------------------------------------------------------


def test_image_thumbnail_is_served_as_a_real_png(store):
    (page,) = ui_get(store["path"], run_url(store["media"]))
    figure = _figure(page.text, "samples")
    assert 'data-type="image-file"' in figure
    assert "(3 steps)" in figure and 'max="2"' in figure  # a step slider over the 3 steps
    assert '<p class="runstore-media-caption">&lt;i&gt;red and blue&lt;/i&gt;</p>' in figure
    (url,) = _blob_urls(figure)
    (blob,) = ui_get(store["path"], url)
    assert blob.status_code == 200
    assert blob.headers["content-type"] == "image/png"
    assert blob.headers["x-content-type-options"] == "nosniff"
    assert "content-disposition" not in blob.headers
    assert blob.content.startswith(PNG_MAGIC)
    from PIL import Image

    image = Image.open(io.BytesIO(blob.content))
    assert image.size == (24, 16)
    assert image.convert("RGB").getpixel((0, 0)) == (255, 0, 0)
    assert image.convert("RGB").getpixel((23, 15)) == (0, 0, 255)


def test_histogram_is_drawn_from_its_bins(store):
    (page,) = ui_get(store["path"], run_url(store["media"]))
    figure = _figure(page.text, "weights")
    assert '<div class="runstore-hist-plot"></div>' in figure
    assert "3 bins · 8 values · 0 to 3" in figure
    (hist,) = [m for m in _extras_data(page.text)["media"] if m["key"] == "weights"]
    assert hist["type"] == "histogram" and hist["steps"] == [0, 1, 2]
    assert hist["item"]["edges"] == [0.0, 1.0, 2.0, 3.0]
    assert hist["item"]["counts"] == [1, 5, 2] and hist["item"]["step"] == 2


def test_table_cells_are_escaped(store):
    (page,) = ui_get(store["path"], run_url(store["media"]))
    figure = _figure(page.text, "preds")
    assert "<th>id</th><th>&lt;th&gt;</th>" in figure
    assert "<td>2</td><td>&lt;script&gt;x&lt;/script&gt;</td>" in figure
    assert "<script>x</script>" not in page.text


def test_media_steps_are_fetched_for_the_slider(store):
    url = run_url(store["media"]) + "/media.json"
    first, table, newest, missing, nokey = ui_get(
        store["path"], url + "?key=weights&step=0", url + "?key=preds&step=1",
        url + "?key=samples", url + "?key=nosuch&step=1", url)
    assert first.json()["item"]["counts"] == [1, 3, 2] and first.json()["item"]["step"] == 0
    assert table.json()["item"]["rows"] == [["1", "<script>x</script>"]]  # JSON: text
    assert newest.json()["item"]["step"] == 2
    assert newest.json()["item"]["url"].startswith("/runstore/-/runstore/blob/")
    assert (missing.status_code, nokey.status_code) == (404, 400)


def test_video_plays_from_the_blob_route_with_ranges(store):
    (page,) = ui_get(store["path"], run_url(store["media"]))
    figure = _figure(page.text, "videos")
    assert '<video class="runstore-video" controls preload="metadata"' in figure
    assert "episode 7" in figure
    (url,) = _blob_urls(figure)
    whole, part, tail, beyond = ui_get(store["path"], url)[0], *[
        ui_get(store["path"], url, headers={"Range": r})[0]
        for r in ("bytes=4-11", "bytes=-8", f"bytes={len(FAKE_MP4)}-")]
    assert whole.status_code == 200 and whole.content == FAKE_MP4
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    assert part.status_code == 206 and part.content == b"ftypisom"
    assert part.headers["content-range"] == f"bytes 4-11/{len(FAKE_MP4)}"
    assert tail.status_code == 206 and tail.content == FAKE_MP4[-8:]
    assert beyond.status_code == 416


def test_numbers_in_extras_routes_are_ascii_digits_within_int64(store):
    arabic = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
    run = run_url(store["chatty"])
    media = run_url(store["media"]) + "/media.json?key=weights&step="
    responses = ui_get(
        store["path"], run + "/console.json?after=" + "499".translate(arabic),
        run + "/console.json?limit=" + "10".translate(arabic),
        run + "/console.json?after=1_0", run + "/system.json?after=" + "1.5".translate(arabic),
        run + "/system.json?points=" + "400".translate(arabic), run + "/system.json?after=nan",
        media + "1".translate(arabic), media + "%201",
    )
    assert [r.status_code for r in responses] == [400] * 8
    assert all("digits 0-9" in r.json()["error"] for r in responses)
    page, step = ui_get(store["path"], run + "/console.json?after=499&limit=1e1", media + "1.0")
    assert [line["seq"] for line in page.json()["lines"]] == list(range(500, 510))
    assert step.json()["item"]["step"] == 1


def test_byte_ranges_beyond_int64_are_answered_not_a_500(store):
    (page,) = ui_get(store["path"], run_url(store["media"]))
    (url,) = _blob_urls(_figure(page.text, "videos"))
    huge = "9" * 5000  # beyond int()'s 4300 digits
    to_end, suffix, beyond, past_int64 = (
        ui_get(store["path"], url, headers={"Range": r})[0]
        for r in (f"bytes=4-{huge}", f"bytes=-{huge}", f"bytes={huge}-", f"bytes={2**63}-"))
    assert to_end.status_code == 206 and to_end.content == FAKE_MP4[4:]
    assert suffix.status_code == 206 and suffix.content == FAKE_MP4
    assert (beyond.status_code, past_int64.status_code) == (416, 416)


def test_other_files_are_downloads_never_rendered(store):
    (page,) = ui_get(store["path"], run_url(store["media"]))
    (url,) = _blob_urls(_figure(page.text, "drawing"))
    (blob,) = ui_get(store["path"], url)
    assert blob.status_code == 200 and blob.content == EVIL_SVG
    assert blob.headers["content-type"] == "application/octet-stream"
    assert blob.headers["content-disposition"].startswith("attachment;")
    assert blob.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in blob.headers["content-security-policy"]


def test_media_keys_are_not_drawn_as_line_charts(store):
    url = run_url(store["media"])
    page, status = ui_get(store["path"], url, url + "/status.json")
    charts = re.findall(r'<figure class="runstore-chart" data-key="([^"]+)">', page.text)
    assert charts == ["loss"]
    assert status.json()["metric_keys"] == ["loss"]
    media = re.findall(r'<figure class="runstore-media" data-key="([^"]+)"', page.text)
    assert media == ["drawing", "preds", "samples", "videos", "weights"]
    (compare,) = ui_get(store["path"],
                      f"/runstore/-/runstore/compare?runs={store['media']},{store['chatty']}")
    assert compare.status_code == 200
    assert re.findall(r'<figure class="runstore-chart" data-key="([^"]+)">', compare.text) \
        == ["loss"]


def test_summary_names_media_in_a_few_words(store):
    (page,) = ui_get(store["path"], run_url(store["media"]))
    summary = _section(page.text, "runstore-summary")
    assert "<th>samples</th><td>image 24×16 png</td>" in summary
    assert "<th>weights</th><td>histogram (3 bins)</td>" in summary
    assert "<th>preds</th><td>table (1 row × 2 columns)</td>" in summary
    assert "<th>videos</th><td>video mp4 (episode 7)</td>" in summary
    assert "samples.sha256" not in summary and "weights.bins" not in summary


def test_blob_route_refuses_unknown_unreferenced_and_forbidden(store):
    (page,) = ui_get(store["path"], run_url(store["media"]))
    (url,) = _blob_urls(_figure(page.text, "samples"))
    conn = sqlite3.connect(store["path"])
    try:  # a blob in the store that no run's files reference
        with conn:
            conn.execute("INSERT INTO blobs (sha256, size, content) VALUES (?, 3, x'010203')",
                         ("ab" * 32,))
    finally:
        conn.close()
    unknown, orphan, malformed, nodb = ui_get(
        store["path"], "/runstore/-/runstore/blob/" + "0" * 64,
        "/runstore/-/runstore/blob/" + "ab" * 32, "/runstore/-/runstore/blob/abc",
        "/nosuchdb/-/runstore/blob/" + "0" * 64)
    assert [r.status_code for r in (unknown, orphan, malformed, nodb)] == [404, 404, 404, 404]
    private = {"databases": {"runstore": {"allow": {"id": "someone"}}}}
    denied = ui_get(store["path"], url, run_url(store["media"]) + "/console.json",
                  run_url(store["media"]) + "/system.json",
                  run_url(store["media"]) + "/media.json?key=samples", metadata=private)
    assert [r.status_code for r in denied] == [403, 403, 403, 403]
    assert not any(r.content.startswith(PNG_MAGIC) for r in denied)
    (allowed,) = ui_get(store["path"], url, metadata=private, actor={"id": "someone"})
    assert allowed.status_code == 200 and allowed.content.startswith(PNG_MAGIC)


def test_run_page_without_extras_says_so(tmp_path):
    with runstore.init(dir=tmp_path / "s", project="p", id="quiet",
                       settings={"console": "off", "disable_stats": True}) as run:
        run.log({"x": 1})
    (page,) = ui_get(tmp_path / "s" / "runstore.db", run_url(1))
    assert page.status_code == 200
    assert "No console output." in page.text
    assert "runstore-media-section" not in page.text
    assert '<section class="runstore-system">' not in page.text


# -- the media types in the store -----------------------------------------------------------


def test_media_round_trip_through_the_api_and_images_are_deduplicated(tmp_path):
    store_dir = tmp_path / "s"
    pixels = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    with runstore.init(dir=store_dir, project="p", id="m",
                       settings={"console": "off", "disable_stats": True}) as run:
        for step in range(2):  # the same image twice: one blob
            run.log({"img": runstore.Image(pixels, caption="c"),
                     "hist": runstore.Histogram([1.0, 2.0, 2.0, 3.0], num_bins=2),
                     "tab": runstore.Table(columns=["a", "b"], data=[[step, "x"]])}, step=step)
        run.log({"img": runstore.Image(pixels[::-1])}, step=2)  # another image: a second blob
    rows = runstore.Api(store_dir).run("p/m").history()
    assert [row["_step"] for row in rows] == [0, 1, 2]
    image = rows[0]["img"]
    assert image["_type"] == "image-file" and image["format"] == "png"
    assert (image["width"], image["height"], image["caption"]) == (5, 4, "c")
    assert rows[1]["img"]["sha256"] == image["sha256"] != rows[2]["img"]["sha256"]
    assert rows[0]["hist"] == {"_type": "histogram", "bins": [1.0, 2.0, 3.0], "values": [1, 3]}
    assert rows[1]["tab"] == {"_type": "table", "columns": ["a", "b"], "data": [[1, "x"]]}
    conn = sqlite3.connect(store_dir / "runstore.db")
    try:
        blobs = dict(conn.execute("SELECT sha256, content FROM blobs").fetchall())
        files = conn.execute("SELECT path, kind, sha256 FROM run_files ORDER BY path").fetchall()
    finally:
        conn.close()
    assert set(blobs) == {image["sha256"], rows[2]["img"]["sha256"]}
    assert bytes(blobs[image["sha256"]]).startswith(PNG_MAGIC)
    assert sorted((path, kind, sha) for path, kind, sha in files) == sorted(
        (row["img"]["path"], "media", row["img"]["sha256"]) for row in (rows[0], rows[2]))
    from PIL import Image

    decoded = np.asarray(Image.open(io.BytesIO(bytes(blobs[image["sha256"]]))))
    assert (decoded == pixels).all()
