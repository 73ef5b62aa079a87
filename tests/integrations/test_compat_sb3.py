"""stable-baselines3's documented W&B example under `runstore run -- python train.py`:
PPO on CartPole for 256 steps with sync_tensorboard and WandbCallback (gradients, model
saving)."""

from __future__ import annotations

from switched import GATED, column, history, only_run, run_switched

pytestmark = GATED

TRAIN = """
import gymnasium as gym
import wandb
from stable_baselines3 import PPO
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv
from wandb.integration.sb3 import WandbCallback

config = {"policy_type": "MlpPolicy", "total_timesteps": 256, "env_name": "CartPole-v1"}
run = wandb.init(project="sb3", config=config, sync_tensorboard=True, save_code=True)
env = DummyVecEnv([lambda: Monitor(gym.make(config["env_name"]))])
model = PPO(config["policy_type"], env, n_steps=64, batch_size=32, n_epochs=2, verbose=0,
            tensorboard_log=f"runs/{run.id}", seed=0)
model.learn(total_timesteps=config["total_timesteps"],
            callback=WandbCallback(gradient_save_freq=10, model_save_path=f"models/{run.id}",
                                   verbose=2))
run.finish()
print("RUN", run.id)
"""


def test_ppo_with_wandb_callback_logs_config_tensorboard_scalars_gradients_and_the_model(
        tmp_path):
    result = run_switched(TRAIN, tmp_path, via_cli=True)
    run_id = result.stdout.split("RUN")[1].split()[0]
    run = only_run(tmp_path / "store", "sb3")
    assert (run.id, run.state) == (run_id, "finished")
    # WandbCallback's config: the algorithm and the model's simple attributes; set keys win
    assert run.config["algo"] == "PPO" and run.config["policy_type"] == "MlpPolicy"
    assert run.config["n_steps"] == 64 and type(run.config["n_steps"]) is int
    assert type(run.config["gamma"]) is float and run.config["total_timesteps"] == 256
    rows = history(run)
    rewards = column(rows, "rollout/ep_rew_mean")
    assert rewards and all(type(v) is float for v in rewards)
    assert all(type(v) is int for v in column(rows, "time/fps"))
    assert column(rows, "train/value_loss") and column(rows, "train/learning_rate")[0] == 3e-4
    # TensorBoard's steps are SB3's timesteps; each row records its own as global_step
    assert column(rows, "global_step") == sorted(column(rows, "global_step"))
    assert set(column(rows, "global_step")) >= {64, 128, 192, 256}
    assert column(rows, "gradients/action_net.weight")[0]["_type"] == "histogram"
    assert column(rows, "parameters/action_net.weight")[0]["_type"] == "histogram"
    import sqlite3

    conn = sqlite3.connect(tmp_path / "store" / "runstore.db")
    files = dict(conn.execute("SELECT f.path, f.kind FROM run_files f JOIN run_records r"
                              " ON r.run_key = f.run_key WHERE r.id = ?", (run_id,)).fetchall())
    (model_zip,) = conn.execute(
        "SELECT b.content FROM run_files f JOIN blobs b ON b.sha256 = f.sha256"
        " WHERE f.path = 'model.zip'").fetchone()
    conn.close()
    assert files["model.zip"] == "save" and files["code/train.py"] == "code"
    assert any(kind == "tensorboard" for kind in files.values())
    assert bytes(model_zip) == (tmp_path / "models" / run_id / "model.zip").read_bytes()
