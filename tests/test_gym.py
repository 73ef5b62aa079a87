"""runstore.Video and init(monitor_gym=True) with gymnasium's RecordVideo."""

from __future__ import annotations

import hashlib
import importlib.util

import pytest

import runstore
from helpers import query, run_script
from runstore import Video
from runstore._integrations import gym as _gym

MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64  # enough for a blob


def history(store_dir, run, keys=None):
    return runstore.Api(store_dir).run(f"{run.project}/{run.id}").history(keys=keys)


def blob_count(store_dir, digest):
    return query(store_dir, "SELECT count(*) FROM blobs WHERE sha256 = ?", (digest,))[0][0]


def test_episode_from_a_recording_name_is_ascii_digits():
    class Wrapper:  # no episode seen by start_recording: it comes from the file name
        pass

    assert _gym._episode(Wrapper(), "rl-video-episode-12") == 12
    assert _gym._episode(Wrapper(), "rl-video-episode-١٢") is None  # \d would say 12
    assert _gym._episode(Wrapper(), "rl-video-episode-" + "9" * 5000) is None


def test_video_description_and_blob_stored_once(new_run, store_dir, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(MP4)
    run = new_run()
    run.log({"v": Video(clip, caption="first", episode=3)})
    run.log({"v": Video(MP4)})  # same bytes again: a second value, the same blob
    run.finish()
    digest = hashlib.sha256(MP4).hexdigest()
    first, second = (r["v"] for r in history(store_dir, run, ["v"]))
    assert first == {"_type": "video-file", "path": f"media/videos/{digest[:16]}.mp4",
                     "sha256": digest, "format": "mp4", "size": len(MP4),
                     "episode": 3, "caption": "first"}
    assert second["path"] == first["path"] and second["episode"] is None
    assert blob_count(store_dir, digest) == 1
    assert query(store_dir, "SELECT content FROM blobs WHERE sha256 = ?",
                 (digest,))[0][0] == MP4


def test_video_arguments_are_checked(tmp_path):
    with pytest.raises(runstore.UsageError, match="does not exist"):
        Video(tmp_path / "missing.mp4")
    with pytest.raises(runstore.UsageError, match="format"):
        Video(MP4, format="exe")
    with pytest.raises(runstore.UsageError, match="file path or bytes"):
        Video([1, 2, 3])
    assert Video(MP4, format="WEBM").format == "webm"


def _video_encoder_or_skip():
    gym = pytest.importorskip("gymnasium", reason="gymnasium is not installed: "
                              "pip install 'runstore[test]' to test monitor_gym")
    if importlib.util.find_spec("moviepy") is None:
        pytest.skip("moviepy (RecordVideo's video encoder) is not installed")
    if importlib.util.find_spec("pygame") is None:
        pytest.skip("pygame (CartPole's renderer) is not installed: "
                    "pip install 'gymnasium[classic-control]'")
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:
        pytest.skip(f"no ffmpeg binary to encode videos with: {exc}")
    return gym


def _cartpole_episode(gym, folder, steps=30, episodes=1):
    from gymnasium.wrappers import RecordVideo

    env = RecordVideo(gym.make("CartPole-v1", render_mode="rgb_array"), video_folder=str(folder),
                      episode_trigger=lambda episode: True, disable_logger=True)
    for episode in range(episodes):
        env.reset(seed=episode)  # stops the previous episode's recording: a video
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                break
    env.close()  # stop_recording: the last video is written (and attached) here


def test_monitor_gym_attaches_recordvideo_videos(new_run, store_dir, tmp_path, monkeypatch):
    gym = _video_encoder_or_skip()
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    from gymnasium.wrappers import RecordVideo
    from gymnasium.wrappers.vector import RecordVideo as VectorRecordVideo

    classes = (RecordVideo, VectorRecordVideo)
    originals = [dict(vars(cls)) for cls in classes]
    run = new_run(monitor_gym=True)
    assert _gym.patched()
    for cls, before in zip(classes, originals, strict=True):
        assert vars(cls)["stop_recording"] is not before["stop_recording"]
        assert vars(cls)["start_recording"] is not before["start_recording"]
    run.log({"reward": 1.0})
    _cartpole_episode(gym, tmp_path / "videos")
    run.log({"reward": 2.0})
    run.finish()
    assert not _gym.patched()
    for cls, before in zip(classes, originals, strict=True):
        assert dict(vars(cls)) == before

    rows = history(store_dir, run)
    assert [r["_step"] for r in rows] == [0, 1]
    (row,) = [r for r in rows if _gym.VIDEO_KEY in r]
    assert row["_step"] == 1 and row["reward"] == 2.0  # logged at the then-current step
    video = row[_gym.VIDEO_KEY]
    assert video["_type"] == "video-file" and video["format"] == "mp4"
    assert video["episode"] == 0 and video["caption"] == "rl-video-episode-0"
    assert video["path"] == f"media/videos/{video['sha256'][:16]}.mp4"
    written = (tmp_path / "videos" / "rl-video-episode-0.mp4").read_bytes()
    assert hashlib.sha256(written).hexdigest() == video["sha256"]
    (blob,) = query(store_dir, "SELECT content FROM blobs WHERE sha256 = ?", (video["sha256"],))
    assert bytes(blob[0]) == written and written[4:8] == b"ftyp" and len(written) == video["size"]
    assert blob_count(store_dir, video["sha256"]) == 1
    assert query(store_dir, "SELECT kind FROM run_files WHERE path = ?",
                 (video["path"],)) == [("media",)]

    # After finish, RecordVideo is gymnasium's own again: a new video is not attached.
    _cartpole_episode(gym, tmp_path / "later")
    assert (tmp_path / "later" / "rl-video-episode-0.mp4").exists()
    assert len([r for r in history(store_dir, run) if _gym.VIDEO_KEY in r]) == 1


def test_monitor_gym_without_gymnasium_warns_and_the_run_goes_on(tmp_path):
    result = run_script(f"""
        import sys, warnings
        sys.modules["gymnasium"] = None  # as if gymnasium were not installed
        import runstore
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = runstore.init(dir={str(tmp_path / "store")!r}, project="p", monitor_gym=True)
        run.log({{"x": 1.0}})
        run.finish()
        for w in caught:
            print(w.category.__name__, w.filename.endswith("<string>"), w.message)
        print("state", runstore.Api({str(tmp_path / "store")!r}).run("p/" + run.id).state)
    """, cwd=tmp_path, env={"RUNSTORE_SILENT": "true"})
    assert result.returncode == 0, result.stderr
    assert "UserWarning True runstore: gymnasium is not installed" in result.stdout
    assert "pip install 'runstore[gym]'" in result.stdout
    assert "state finished" in result.stdout


def test_videos_at_one_step_all_kept(new_run, store_dir, tmp_path, monkeypatch):
    gym = _video_encoder_or_skip()
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    run = new_run(monitor_gym=True)
    _cartpole_episode(gym, tmp_path / "videos", steps=10, episodes=2)  # no log() between
    run.finish()
    (row,) = history(store_dir, run)
    assert row["_step"] == 0
    assert [(k, v["episode"]) for k, v in sorted(row.items()) if k.startswith("videos")] == [
        ("videos", 0), ("videos_2", 1)]
