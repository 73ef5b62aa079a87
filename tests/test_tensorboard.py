"""sync_tensorboard=True with a real tensorboardX writer, and `runstore import-tensorboard`."""

from __future__ import annotations

import warnings

import pytest
from click.testing import CliRunner

import runstore
from helpers import query
from runstore._cli import main as cli
from runstore._integrations import tensorboard as _tensorboard

tensorboardX = pytest.importorskip(
    "tensorboardX", reason="tensorboardX is not installed (pip install 'runstore[tensorboard]')")
pytest.importorskip(
    "tensorboard", reason="tensorboard is not installed (pip install 'runstore[tensorboard]')")
SummaryWriter = tensorboardX.SummaryWriter


def history(store_dir, run) -> list[dict]:
    return list(runstore.Api(store_dir).run(f"proj/{run.id}").scan_history())


def files(store_dir, run) -> dict[str, tuple[str, bytes]]:
    return {path: (kind, bytes(content)) for path, kind, content in query(
        store_dir, "SELECT f.path, f.kind, b.content FROM run_files f JOIN blobs b"
        " ON b.sha256 = f.sha256 JOIN runs r ON r.run_key = f.run_key WHERE r.id = ?",
        (run.id,))}


def test_scalars_are_logged_to_the_run_and_event_files_stored(new_run, store_dir, tmp_path):
    original = SummaryWriter.add_scalar
    run = new_run(sync_tensorboard=True)
    assert _tensorboard.is_patched(SummaryWriter)
    writer = SummaryWriter(str(tmp_path / "tb" / "exp"))
    for step in range(5):
        writer.add_scalar("train/loss", 1 / (step + 1), step)
        writer.add_scalar("lr", 0.1, global_step=step)
    writer.add_scalars("val", {"a": 1.0, "b": 2.0}, 4)
    writer.close()
    run.finish()

    rows = history(store_dir, run)
    assert [r["_step"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["train/loss"] for r in rows] == [1 / (s + 1) for s in range(5)]
    assert all(r["lr"] == 0.1 for r in rows)
    assert rows[4]["val/a"] == 1.0 and rows[4]["val/b"] == 2.0
    stored = files(store_dir, run)
    [main_file] = (tmp_path / "tb" / "exp").glob("events.out.tfevents.*")
    assert stored[f"tensorboard/exp/{main_file.name}"] == ("tensorboard", main_file.read_bytes())
    assert any(p.startswith("tensorboard/exp/val/a/events.out.tfevents.") for p in stored)

    # After finish the patch is gone: a new writer logs to no run.
    assert SummaryWriter.add_scalar is original and not _tensorboard.is_patched(SummaryWriter)
    later = SummaryWriter(str(tmp_path / "tb" / "later"))
    later.add_scalar("train/loss", 99.0, 10)
    later.close()
    assert history(store_dir, run) == rows
    assert query(store_dir, "SELECT count(*) FROM runs") == [(1,)]


def test_same_step_merges_and_older_steps_go_to_the_next_rows(new_run, store_dir, tmp_path):
    # wandb keeps every TensorBoard value (its sync never passes step=): the rule is in
    # runstore/_integrations/tensorboard.py's docstring.
    run = new_run(sync_tensorboard=True)
    first = SummaryWriter(str(tmp_path / "a"))
    second = SummaryWriter(str(tmp_path / "b"))
    first.add_scalar("x", 1.0, 10)
    second.add_scalar("y", 2.0, 10)  # same step: one row
    first.add_scalar("x", 3.0, 20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second.add_scalar("y", 4.0, 15)  # older than 20: the next row, global_step 15
        second.add_scalar("z", 4.5, 15)  # the same older step: the same row
        second.add_scalar("y", 5.0)  # no global_step: y is in the current row, so the next
        first.add_scalar("x", 6.0, 30)  # forward again: step 30
        first.add_scalar("x", 7.0, 30)  # the same tag at the same step: kept, next row
        first.add_text("notes", "| lr | 0.1 |", 30)
    first.close()
    second.close()
    run.finish()
    rows = [{k: v for k, v in r.items() if not k.startswith("_") or k == "_step"}
            for r in history(store_dir, run)]
    assert rows == [
        {"_step": 10, "x": 1.0, "y": 2.0, "global_step": 10},
        {"_step": 20, "x": 3.0, "global_step": 20},
        {"_step": 21, "y": 4.0, "z": 4.5, "global_step": 15},
        {"_step": 22, "y": 5.0},
        {"_step": 30, "x": 6.0, "global_step": 30},
        {"_step": 31, "x": 7.0, "notes": "| lr | 0.1 |", "global_step": 30},
    ]


def test_an_open_writer_s_events_are_flushed_and_stored(new_run, store_dir, tmp_path):
    from tensorboard.backend.event_processing import event_accumulator

    run = new_run(sync_tensorboard=True)
    writer = SummaryWriter(str(tmp_path / "open"), flush_secs=3600)
    for step in range(3):
        writer.add_scalar("loss", float(step), step)
    run.finish()  # the writer is still open
    [(path, (_, content))] = files(store_dir, run).items()
    copy = tmp_path / "copy" / path.rsplit("/", 1)[1]
    copy.parent.mkdir()
    copy.write_bytes(content)
    reader = event_accumulator.EventAccumulator(str(copy.parent))
    reader.Reload()
    assert [e.step for e in reader.Scalars("loss")] == [0, 1, 2]
    writer.close()


def test_deprecated_tensorboard_argument_warns_and_syncs(new_run, store_dir, tmp_path):
    with pytest.warns(FutureWarning, match="deprecated; use sync_tensorboard"):
        run = new_run(tensorboard=True)
    with SummaryWriter(str(tmp_path / "tb")) as writer:
        writer.add_scalar("acc", 0.5, 0)
    run.finish()
    assert history(store_dir, run)[0]["acc"] == 0.5


def test_the_newest_syncing_run_gets_the_scalars_and_the_last_one_unpatches(new_run,
                                                                             store_dir,
                                                                             tmp_path):
    outer = new_run(sync_tensorboard=True)
    inner = new_run(sync_tensorboard=True, reinit="create_new")
    writer = SummaryWriter(str(tmp_path / "tb"))
    writer.add_scalar("m", 1.0, 0)
    inner.finish()
    assert _tensorboard.is_patched(SummaryWriter)  # outer still syncs
    writer.add_scalar("m", 2.0, 1)
    outer.finish()
    assert not _tensorboard.is_patched(SummaryWriter)
    writer.close()
    assert [r["m"] for r in history(store_dir, inner)] == [1.0]
    assert [r["m"] for r in history(store_dir, outer)] == [2.0]


def test_a_run_without_sync_tensorboard_is_not_patched(new_run):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = new_run()
    assert not _tensorboard.is_patched(SummaryWriter)
    run.finish()


# -- import-tensorboard ------------------------------------------------------------------


def write_logs(logdir):
    """Two run directories; wall times and values chosen exactly representable."""
    expected = {}
    for name, scale in (("exp/a", 1.0), ("exp/b", 2.0)):
        writer = SummaryWriter(str(logdir / name))
        for step in range(0, 50, 10):
            writer.add_scalar("loss", scale / (step + 1) if step else scale, step,
                              walltime=1_700_000_000.0 + step)
            writer.add_scalar("acc", scale * step / 64, step, walltime=1_700_000_000.5 + step)
        writer.close()
        expected[name] = scale
    return expected


def imported(store_dir, project="tb"):
    api = runstore.Api(store_dir)
    return {r.name: r for r in api.runs(project)}


def test_import_makes_one_run_per_run_directory(store_dir, tmp_path):
    logdir = tmp_path / "logs"
    write_logs(logdir)
    result = CliRunner().invoke(cli, ["import-tensorboard", str(logdir), "--project", "tb",
                                      "--dir", str(store_dir)])
    assert result.exit_code == 0, result.output
    assert "loss: 5 points, steps 0..40" in result.output
    assert "2 run(s) imported" in result.output

    runs = imported(store_dir)
    assert sorted(runs) == ["exp/a", "exp/b"]
    for name, scale in (("exp/a", 1.0), ("exp/b", 2.0)):
        run = runs[name]
        assert run.state == "finished"
        rows = list(run.scan_history())
        assert [r["_step"] for r in rows] == [0, 10, 20, 30, 40]
        assert [r["acc"] for r in rows] == [scale * s / 64 for s in range(0, 50, 10)]
        assert rows[0]["loss"] == scale
        assert [r["_timestamp"] for r in rows] == [1_700_000_000.0 + s for s in range(0, 50, 10)]
        assert [r["_runtime"] for r in rows] == [float(s) for s in range(0, 50, 10)]
        assert run.summary["acc"] == scale * 40 / 64
        assert run.created_at.startswith("2023-11-14T22:13:20")

    again = CliRunner().invoke(cli, ["import-tensorboard", str(logdir), "--project", "tb",
                                     "--dir", str(store_dir)])
    assert again.exit_code == 0 and "already imported" in again.output
    assert query(store_dir, "SELECT count(*) FROM runs") == [(2,)]


def test_import_reads_tf2_tensor_scalars(store_dir, tmp_path):
    from tensorboardX.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

    logdir = tmp_path / "tf2"
    writer = SummaryWriter(str(logdir))
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    for step in range(3):
        tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[step * 0.5],
                                        tensor_shape=tensor_shape_pb2.TensorShapeProto())
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(
            tag="epoch_loss", tensor=tensor, metadata=metadata)])
        writer.file_writer.add_summary(summary, step, 1_700_000_000.0 + step)
    writer.close()
    result = CliRunner().invoke(cli, ["import-tensorboard", str(logdir), "--dir", str(store_dir)])
    assert result.exit_code == 0, result.output
    [run] = imported(store_dir, "tf2").values()
    assert run.name == "tf2"
    assert [(r["_step"], r["epoch_loss"]) for r in run.scan_history()] == [
        (0, 0.0), (1, 0.5), (2, 1.0)]


def test_import_of_a_directory_without_event_files_says_so(store_dir, tmp_path):
    result = CliRunner().invoke(cli, ["import-tensorboard", str(tmp_path), "--dir",
                                      str(store_dir)])
    assert result.exit_code == 0
    assert "no TensorBoard event files" in result.output


TORCH_LIKE = '''
class SummaryWriter:
    """torch.utils.tensorboard's signatures and log_dir attribute, writing nothing."""

    def __init__(self, log_dir=None, comment="", purge_step=None, max_queue=10,
                 flush_secs=120, filename_suffix=""):
        self.log_dir = log_dir
        self.calls = []

    def add_scalar(self, tag, scalar_value, global_step=None, walltime=None,
                   new_style=False, double_precision=False):
        self.calls.append((tag, scalar_value, global_step))

    def add_scalars(self, main_tag, tag_scalar_dict, global_step=None, walltime=None):
        for tag, value in tag_scalar_dict.items():
            self.add_scalar(main_tag + "_" + tag, value, global_step)  # nested: not re-logged

    def flush(self):
        pass
'''


def test_torch_style_writers_with_keywords_and_numpy_values(new_run, store_dir, tmp_path,
                                                            monkeypatch):
    np = pytest.importorskip("numpy")
    (tmp_path / "torch_like_tb.py").write_text(TORCH_LIKE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(_tensorboard, "_WRITER_CLASSES",
                        (("torch_like_tb", "torch_like_tb", "SummaryWriter"),))
    import torch_like_tb

    run = new_run(sync_tensorboard=True)
    writer = torch_like_tb.SummaryWriter(log_dir=str(tmp_path / "runs" / "x"))
    writer.add_scalar(tag="loss", scalar_value=np.float32(0.5), global_step=np.int64(3),
                      new_style=True)
    writer.add_scalars("val", {"a": np.array(1.5)}, 3)
    run.finish()
    assert writer.calls == [("loss", 0.5, 3), ("val_a", 1.5, 3)]  # the originals ran
    assert not _tensorboard.is_patched(torch_like_tb.SummaryWriter)
    [row] = history(store_dir, run)
    assert (row["_step"], row["loss"], row["val/a"]) == (3, 0.5, 1.5)
    assert "val_a" not in row


def test_without_any_writer_library_sync_tensorboard_warns(new_run, monkeypatch):
    monkeypatch.setattr(_tensorboard, "_WRITER_CLASSES",
                        (("no_such_tensorboard_lib", "no_such_tensorboard_lib", "W"),))
    with pytest.warns(UserWarning, match="sync_tensorboard needs tensorboardX"):
        run = new_run(sync_tensorboard=True)
    run.log({"x": 1.0})
    run.finish()


def test_import_follows_tensorboard_on_a_restarted_run(store_dir, tmp_path):
    logdir = tmp_path / "restarted"
    first = SummaryWriter(str(logdir), filename_suffix=".1")
    for step in range(10):
        first.add_scalar("loss", 1.0, step, walltime=1_700_000_000.0 + step)
    first.close()
    # Restarted from the checkpoint at step 5: TensorBoard drops the first run's 5..9.
    second = SummaryWriter(str(logdir), filename_suffix=".2", purge_step=5)
    for step in range(5, 8):
        second.add_scalar("loss", 2.0, step, walltime=1_700_000_100.0 + step)
    second.close()
    result = CliRunner().invoke(cli, ["import-tensorboard", str(logdir), "--dir", str(store_dir)])
    assert result.exit_code == 0, result.output
    [run] = imported(store_dir, "restarted").values()
    assert [(r["_step"], r["loss"]) for r in run.scan_history()] == (
        [(s, 1.0) for s in range(5)] + [(s, 2.0) for s in range(5, 8)])
