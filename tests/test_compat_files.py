"""What training libraries keep with a run (issue 14): run.save files, artifacts (versions,
aliases, dedup, large files beside the store, references, lineage), define_metric's
step_sync. All read back from the store file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import runstore
from runstore import _artifacts


def _init(tmp_path: Path, **kwargs):
    kwargs.setdefault("project", "p")
    return runstore.init(dir=tmp_path / "store", **kwargs)


def _rows(tmp_path: Path, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(tmp_path / "store" / "runstore.db")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _files(tmp_path: Path, run_id: str) -> dict[str, tuple[str, bytes]]:
    return {path: (kind, bytes(content)) for path, kind, content in _rows(
        tmp_path, "SELECT f.path, f.kind, b.content FROM run_files f JOIN blobs b"
        " ON b.sha256 = f.sha256 JOIN run_records r ON r.run_key = f.run_key WHERE r.id = ?",
        (run_id,))}


def test_save_now_live_and_end_policies(tmp_path):
    models = tmp_path / "work" / "models"
    models.mkdir(parents=True, exist_ok=True)
    (models / "now.bin").write_bytes(b"first")
    (models / "live.bin").write_bytes(b"one")
    (models / "end.bin").write_bytes(b"draft")
    run = _init(tmp_path)
    assert run.save(str(models / "now.bin"), base_path=str(models), policy="now") == ["now.bin"]
    assert run.save(str(models / "live.bin"), base_path=str(models)) == ["live.bin"]
    assert run.save(str(models / "*.bin"), policy="end") == [  # absolute: folder kept
        "models/end.bin", "models/live.bin", "models/now.bin"]
    (models / "now.bin").write_bytes(b"changed after save(policy='now')")
    (models / "live.bin").write_bytes(b"two")
    (models / "end.bin").write_bytes(b"final")
    run.finish()
    files = _files(tmp_path, run.id)
    assert files["now.bin"] == ("save", b"first")
    assert files["live.bin"] == ("save", b"two")  # stored again at finish: it changed
    assert files["models/end.bin"] == ("save", b"final")


def test_save_rejects_a_bad_policy_and_warns_on_no_match(tmp_path):
    run = _init(tmp_path)
    with pytest.raises(runstore.UsageError, match="policy"):
        run.save("x", policy="sometimes")
    with pytest.warns(RuntimeWarning, match="matched no file"):
        assert run.save("nothing-*.txt") == []


def test_artifact_versions_aliases_dedup_and_lineage(tmp_path):
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"v0 weights")
    producer = _init(tmp_path, id="producer")
    art = runstore.Artifact("model", type="model", metadata={"acc": 0.5})
    art.add_file(weights, name="model.bin")
    producer.log_artifact(art, aliases=["best"])
    assert (art.name, art.version, art.aliases) == ("model:v0", "v0", ["best", "latest"])
    same = runstore.Artifact("model", type="model")
    same.add_file(weights, name="model.bin")
    assert producer.log_artifact(same).version == "v0"  # same content: same version
    weights.write_bytes(b"v1 weights")
    newer = runstore.Artifact("model", type="model", metadata={"acc": 0.7})
    newer.add_file(weights, name="model.bin")
    with newer.new_file("notes.txt") as handle:
        handle.write("trained longer")
    producer.log_artifact(newer, aliases=["candidate"])
    assert newer.version == "v1"
    wrong = runstore.Artifact("model", type="dataset")
    wrong.add_file(weights)
    with pytest.raises(runstore.UsageError, match="has type 'model'"):
        producer.log_artifact(wrong)
    producer.finish()

    consumer = _init(tmp_path, id="consumer")
    best = consumer.use_artifact("model:best")
    assert (best.version, best.metadata, best.logged_by()) == ("v0", {"acc": 0.5}, "producer")
    target = Path(best.download(root=tmp_path / "dl0"))
    assert (target / "model.bin").read_bytes() == b"v0 weights"
    latest = consumer.use_artifact("p/model", type="model")  # no alias: latest
    assert latest.version == "v1"
    assert Path(latest.get_path("notes.txt").download()).read_text() == "trained longer"
    assert Path(latest.download()) == Path("artifacts", "model:v1")  # wandb's default
    assert Path("artifacts", "model:v1", "model.bin").read_bytes() == b"v1 weights"
    with pytest.raises(runstore.UsageError, match="no artifact"):
        consumer.use_artifact("model:nope")
    consumer.finish()

    assert _rows(tmp_path, "SELECT name, version, aliases, logged_by_run, used_by_runs"
                           " FROM artifact_list ORDER BY version") == [
        ("model", "v0", '["best"]', "producer", '["consumer"]'),
        ("model", "v1", '["candidate","latest"]', "producer", '["consumer"]')]
    # one blob per distinct content
    assert _rows(tmp_path, "SELECT count(DISTINCT sha256) FROM artifact_files") == [(3,)]


def test_large_files_live_beside_the_store_and_references_are_not_copied(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setattr(_artifacts, "INLINE_MAX", 10)
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 100)
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("1,2\n")
    run = _init(tmp_path)
    art = runstore.Artifact("bundle", type="dataset")
    art.add_file(big)
    art.add_reference(f"file://{data}", name="raw")
    art.add_reference("s3://bucket/key.parquet")
    run.log_artifact(art)
    run.finish()
    ((location, sha),) = _rows(tmp_path, "SELECT location, sha256 FROM artifact_files"
                                         " WHERE path = 'big.bin'")
    assert location == f"artifacts/{sha[:2]}/{sha}"
    assert (tmp_path / "store" / location).read_bytes() == b"x" * 100
    assert _rows(tmp_path, "SELECT count(*) FROM blobs WHERE sha256 = ?", (sha,)) == [(0,)]
    refs = dict(_rows(tmp_path, "SELECT path, ref FROM artifact_files WHERE ref IS NOT NULL"))
    assert refs == {"raw/a.csv": (data / "a.csv").as_uri(),
                    "key.parquet": "s3://bucket/key.parquet"}
    other = _init(tmp_path)
    used = other.use_artifact("bundle:latest")
    out = Path(used.download(root=tmp_path / "out"))
    assert (out / "big.bin").read_bytes() == b"x" * 100
    assert not (out / "raw").exists()  # references stay where they are
    other.finish()


def test_step_sync_fills_in_the_step_metric(tmp_path):
    run = _init(tmp_path)
    run.define_metric("train/global_step")
    run.define_metric("*", step_metric="train/global_step", step_sync=True)
    run.log({"train/loss": 1.0, "train/global_step": 10})
    run.log({"eval/acc": 0.5})  # no step metric: the last one is filled in
    run.define_metric("other/*", step_metric="other/step", step_sync=False)
    run.log({"other/x": 1})
    run.finish()
    rows = list(runstore.Api(tmp_path / "store").run(f"p/{run.id}").scan_history())
    assert [row.get("train/global_step") for row in rows] == [10, 10, 10]
    assert "other/step" not in rows[2]
    assert isinstance(rows[1]["train/global_step"], int)


def test_a_disabled_run_takes_the_same_calls(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    run = runstore.init(mode="disabled")
    art = runstore.Artifact("a", type="t")
    art.add_file(tmp_path / "f.txt")
    assert run.log_artifact(art) is art
    assert run.use_artifact("a:latest") is None
    assert run.save(str(tmp_path / "f.txt")) is False
    run._label(code="x")
    run.finish()


@pytest.mark.ui
def test_the_run_page_lists_saved_files_and_artifacts(tmp_path):
    import asyncio
    import re

    from datasette.app import Datasette

    (tmp_path / "model.zip").write_bytes(b"PK model bytes")
    producer = _init(tmp_path, id="producer")
    producer.save(str(tmp_path / "model.zip"), base_path=str(tmp_path), policy="now")
    art = runstore.Artifact("model", type="model")
    art.add_file(tmp_path / "model.zip", name="model.zip")
    producer.log_artifact(art, aliases=["best"])
    producer.finish()
    consumer = _init(tmp_path, id="consumer")
    consumer.use_artifact("model:best")
    consumer.finish()
    keys = dict(_rows(tmp_path, "SELECT id, run_key FROM run_records"))

    async def get(*urls: str) -> list:
        ds = Datasette([str(tmp_path / "store" / "runstore.db")])
        return [await ds.client.get(url) for url in urls]

    base = "/runstore/-/runstore/run"
    made, used = asyncio.run(get(f"{base}/{keys['producer']}", f"{base}/{keys['consumer']}"))
    assert made.status_code == used.status_code == 200
    files = made.text[made.text.index('class="runstore-files"'):]
    link = re.search(r'<a href="([^"]+/blob/[0-9a-f]{64})">model\.zip</a>', files).group(1)
    assert "<td>save</td>" in files
    artifacts = made.text[made.text.index('class="runstore-artifacts"'):]
    assert "<td>logged</td><td>model:v0</td><td>model</td>" in artifacts
    assert "<td>best, latest</td>" in artifacts
    assert f'<a href="{base}/{keys["consumer"]}">consumer</a>' in artifacts  # lineage links
    assert "<td>used</td><td>model:v0</td>" in used.text
    assert f'<a href="{base}/{keys["producer"]}">producer</a>' in used.text
    assert 'class="runstore-files"' not in used.text  # the consumer kept no files
    (blob,) = asyncio.run(get(link))
    assert blob.status_code == 200 and blob.content == b"PK model bytes"


def test_log_code_keeps_the_python_files_as_a_code_artifact(tmp_path):
    src = tmp_path / "work" / "proj"
    (src / "pkg").mkdir(parents=True)
    (src / "train.py").write_text("print('train')\n")
    (src / "pkg" / "model.py").write_text("W = 1\n")
    (src / "notes.txt").write_text("not code\n")
    (src / ".venv").mkdir()
    (src / ".venv" / "site.py").write_text("skipped\n")
    run = _init(tmp_path)
    art = run.log_code(str(src), name="proj")
    run.finish()
    assert (art.name, art.type) == ("source-proj:v0", "code")
    assert sorted(e.path for e in art.files()) == ["pkg/model.py", "train.py"]
    out = Path(art.download(root=tmp_path / "code"))
    assert (out / "pkg" / "model.py").read_text() == "W = 1\n"


def test_artifacts_of_an_offline_run_are_synced_with_it(tmp_path, monkeypatch):
    from runstore import _sync

    monkeypatch.setattr(_artifacts, "INLINE_MAX", 10)
    (tmp_path / "small.txt").write_text("tiny")
    (tmp_path / "big.bin").write_bytes(b"y" * 64)
    online = _init(tmp_path, id="online")
    first = runstore.Artifact("data", type="dataset")
    first.add_file(tmp_path / "small.txt")
    online.log_artifact(first)  # v0 in the main store
    online.finish()
    offline = _init(tmp_path, id="away", mode="offline")
    art = runstore.Artifact("data", type="dataset")
    art.add_file(tmp_path / "small.txt")
    art.add_file(tmp_path / "big.bin")
    offline.log_artifact(art, aliases=["fresh"])
    assert art.version == "v0"  # numbered in the offline run's own store
    offline.finish()
    store = tmp_path / "store" / "runstore.db"
    for _ in range(2):  # syncing again changes nothing
        assert _sync.sync([offline.dir], store, include_synced=True, say=lambda m: None) == 1
    assert _rows(tmp_path, "SELECT version, aliases, logged_by_run FROM artifact_list"
                           " ORDER BY version") == [
        ("v0", "[]", "online"), ("v1", '["fresh","latest"]', "away")]
    consumer = _init(tmp_path)
    out = Path(consumer.use_artifact("data:fresh").download(root=tmp_path / "out"))
    consumer.finish()
    assert (out / "big.bin").read_bytes() == b"y" * 64  # copied beside the main store
    assert (out / "small.txt").read_text() == "tiny"
