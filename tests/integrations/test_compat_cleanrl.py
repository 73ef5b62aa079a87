"""A CleanRL-style script under the switch: wandb.init(sync_tensorboard=True,
monitor_gym=True, save_code=True), torch's SummaryWriter, gymnasium's RecordVideo in a
SyncVectorEnv, and DQN's evaluation logged at steps 0..2 after training. `make
test-integrations` runs it on .venv's gymnasium 1.x and on CleanRL's gymnasium 0.29 in
.venv-gym029."""

from __future__ import annotations

import sqlite3

from switched import GATED, column, history, only_run, run_switched

pytestmark = GATED

TRAIN = """
import argparse, time
import gymnasium as gym
import numpy as np
import torch
import wandb
from torch.utils.tensorboard import SummaryWriter

args = argparse.Namespace(exp_name="dqn", seed=1, total_timesteps=200, learning_rate=2.5e-4,
                          env_id="CartPole-v1", capture_video=True)
run_name = f"{args.env_id}__{args.exp_name}__{args.seed}"
wandb.init(project="cleanrl", sync_tensorboard=True, config=vars(args), name=run_name,
           monitor_gym=True, save_code=True)
writer = SummaryWriter(f"runs/{run_name}")
writer.add_text("hyperparameters", "|param|value|\\n|-|-|\\n%s" % (
    "\\n".join([f"|{key}|{value}|" for key, value in vars(args).items()])))


def make_env(env_id, seed, idx, capture_video, run_name):
    def thunk():
        if capture_video and idx == 0:
            env = gym.make(env_id, render_mode="rgb_array")
            env = gym.wrappers.RecordVideo(env, f"videos/{run_name}")
        else:
            env = gym.make(env_id)
        env = gym.wrappers.RecordEpisodeStatistics(env)
        env.action_space.seed(seed)
        return env
    return thunk


envs = gym.vector.SyncVectorEnv([make_env(args.env_id, args.seed, 0, True, run_name)])
q_network = torch.nn.Linear(4, 2)
start_time = time.time()
obs, _ = envs.reset(seed=args.seed)
for global_step in range(args.total_timesteps):
    actions = np.array([envs.single_action_space.sample()])
    obs, rewards, terminations, truncations, infos = envs.step(actions)
    if "final_info" in infos:  # gymnasium 0.29
        for info in infos["final_info"]:
            if info and "episode" in info:
                writer.add_scalar("charts/episodic_return", info["episode"]["r"], global_step)
    elif "episode" in infos:  # gymnasium 1.x
        for i, done in enumerate(infos["_episode"]):
            if done:
                writer.add_scalar("charts/episodic_return", infos["episode"]["r"][i], global_step)
    if global_step % 50 == 0:
        loss = torch.nn.functional.mse_loss(q_network(torch.tensor(obs, dtype=torch.float32)),
                                            torch.zeros(1, 2))
        writer.add_scalar("losses/td_loss", loss, global_step)
        writer.add_scalar("charts/SPS", int(global_step / (time.time() - start_time + 1e-9)),
                          global_step)
envs.close()
for idx, episodic_return in enumerate([10.0, 11.0, 12.0]):  # DQN's evaluation
    writer.add_scalar("eval/episodic_return", episodic_return, idx)
writer.close()
wandb.finish()
print("GYM", gym.__version__)
"""


def test_cleanrl_script_logs_scalars_text_videos_and_code(tmp_path):
    result = run_switched(TRAIN, tmp_path, SDL_VIDEODRIVER="dummy")
    version = result.stdout.split("GYM")[1].split()[0]
    assert "no videos will be attached" not in result.stderr, result.stderr
    run = only_run(tmp_path / "store", "cleanrl")
    assert (run.name, run.state) == ("CartPole-v1__dqn__1", "finished")
    assert run.config["total_timesteps"] == 200 and run.config["learning_rate"] == 2.5e-4
    rows = history(run)
    returns = column(rows, "charts/episodic_return")
    assert len(returns) >= 3 and all(type(v) is float for v in returns)
    assert len(column(rows, "losses/td_loss")) == 4
    assert all(type(v) is float for v in column(rows, "losses/td_loss"))
    assert all(type(v) is int for v in column(rows, "charts/SPS"))
    td = [row for row in rows if "losses/td_loss" in row]
    assert [row["global_step"] for row in td] == [0, 50, 100, 150]
    assert [row["_step"] for row in td] == [0, 50, 100, 150]  # TensorBoard's step, forward
    # evaluated after training, at steps the run has passed: kept, each with its step
    evals = [row for row in rows if "eval/episodic_return" in row]
    assert [(r["eval/episodic_return"], r["global_step"]) for r in evals] == [
        (10.0, 0), (11.0, 1), (12.0, 2)]
    assert all(r["_step"] > td[-1]["_step"] for r in evals)
    (text,) = column(rows, "hyperparameters")
    assert "|total_timesteps|200|" in text
    videos = [v for row in rows for k, v in row.items() if k.startswith("videos")]
    assert len(videos) >= 2, (version, [sorted(r) for r in rows if "videos" in str(r)])
    assert all(v["_type"] == "video-file" and v["format"] == "mp4" for v in videos)
    conn = sqlite3.connect(tmp_path / "store" / "runstore.db")
    stored = dict(conn.execute("SELECT f.path, b.content FROM run_files f JOIN blobs b"
                               " ON b.sha256 = f.sha256").fetchall())
    conn.close()
    on_disk = {p.read_bytes() for p in (tmp_path / "videos").rglob("*.mp4")}
    assert {bytes(stored[v["path"]]) for v in videos} <= on_disk
    assert "code/train.py" in stored
    assert any(p.startswith("tensorboard/") for p in stored)
