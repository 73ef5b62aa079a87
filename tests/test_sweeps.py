"""Sweeps in the store: runstore.sweep() / agent(), with real agents in real processes."""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import runstore
from helpers import query, run_script
from runstore import _sweep
from runstore._cli import main
from runstore._sweep_config import load
from runstore._sweep_search import Done, hyperband_stops, next_draw

GRID = {
    "method": "grid",
    "metric": {"name": "loss", "goal": "minimize"},
    "parameters": {"a": {"values": [1, 2]}, "b": {"values": ["x", "y", "z"]}},
}


def trials(store: Path) -> list[tuple]:
    return query(store, "SELECT seq, attempt, params, run_state, outcome, metric "
                        "FROM sweep_runs ORDER BY seq, attempt")


# -- the config: wandb's sweep YAML, as written for wandb ---------------------------------

WANDB_STYLE_YAMLS = {
    "bayes.yaml": """
        description: tune the toy model
        program: train.py
        project: sweeps-demo
        method: bayes
        controller:
          type: local
        metric:
          name: val_loss
          goal: minimize
        parameters:
          epochs:
            value: 4
          learning_rate:
            distribution: log_uniform_values
            min: !!float 1e-5
            max: 0.1
          optimizer:
            values: [sgd, adam]
          dropout:
            distribution: q_uniform
            min: 0.0
            max: 0.5
            q: 0.1
    """,
    "hyperband.yaml": """
        program: train.py
        method: grid
        metric: {name: acc, goal: maximize}
        early_terminate:
          type: hyperband
          max_iter: 27
          s: 2
          eta: 3
        parameters:
          batch_size: {values: [16, 32, 64]}
          layers: {distribution: int_uniform, min: 1, max: 3}
    """,
    "nested.yaml": """
        program: train.py
        method: random
        run_cap: 5
        metric: {name: loss}
        command:
          - ${env}
          - ${interpreter}
          - ${program}
          - ${args_no_hyphens}
        parameters:
          batch_size: {values: [32, 64]}
          optimizer:
            parameters:
              lr: {distribution: normal, mu: 0.01, sigma: 0.001}
              nadam:
                parameters:
                  beta: {values: [0.9, 0.95]}
    """,
}


@pytest.mark.parametrize("name", sorted(WANDB_STYLE_YAMLS))
def test_wandb_sweep_yaml_loads_unchanged(tmp_path, name):
    path = tmp_path / name
    path.write_text(textwrap.dedent(WANDB_STYLE_YAMLS[name]))
    config = load(path)
    assert config.raw == yaml.safe_load(path.read_text())
    draw = next_draw(config, 0, seed=1, done=[]) if config.method != "bayes" else None
    if draw is not None:
        run_config = config.config_for(draw.values)
        assert set(run_config) == set(config.raw["parameters"])
    sweep_id = runstore.sweep(str(path), dir=tmp_path / "store")
    assert runstore.Api(tmp_path / "store").sweep(sweep_id).config == config.raw


def test_nested_parameters_make_nested_config():
    config = load(yaml.safe_load(textwrap.dedent(WANDB_STYLE_YAMLS["nested.yaml"])))
    assert [p.name for p in config.params] == ["batch_size", "optimizer.lr",
                                               "optimizer.nadam.beta"]
    values = next_draw(config, 3, seed=7, done=[]).values
    nested = config.config_for(values)
    assert nested["optimizer"]["nadam"]["beta"] in (0.9, 0.95)
    assert isinstance(nested["optimizer"]["lr"], float)


def test_every_distribution_draws_within_its_range():
    params = {
        "const": {"value": "fixed"},
        "cat": {"values": [1, "two", [3]]},
        "catp": {"values": ["a", "b"], "probabilities": [0.9, 0.1]},
        "iu": {"min": 2, "max": 5},
        "u": {"min": -1.0, "max": 1.0},
        "qu": {"distribution": "q_uniform", "min": 0, "max": 10, "q": 2},
        "lu": {"distribution": "log_uniform", "min": -3.0, "max": 0.0},
        "luv": {"distribution": "log_uniform_values", "min": 1e-8, "max": 1e12},
        "qluv": {"distribution": "q_log_uniform_values", "min": 1, "max": 1000, "q": 1},
        "qlu": {"distribution": "q_log_uniform", "min": 0.0, "max": 3.0, "q": 0.5},
        "ilu": {"distribution": "inv_log_uniform", "min": 0.0, "max": 2.0},
        "iluv": {"distribution": "inv_log_uniform_values", "min": 0.01, "max": 10},
        "n": {"distribution": "normal", "mu": 5, "sigma": 0.1},
        "qn": {"distribution": "q_normal", "mu": 100, "sigma": 10, "q": 5},
        "ln": {"distribution": "log_normal", "mu": 0, "sigma": 0.5},
        "qln": {"distribution": "q_log_normal", "mu": 2, "sigma": 0.5, "q": 1},
    }
    config = load({"method": "random", "parameters": params})
    draws = [next_draw(config, seq, seed=3, done=[]).values for seq in range(400)]
    col = {name: [d[name] for d in draws] for name in params}
    assert set(col["const"]) == {"fixed"}
    assert {json.dumps(v) for v in col["cat"]} == {"1", '"two"', "[3]"}
    assert 300 < col["catp"].count("a") < 400
    assert set(col["iu"]) == {2, 3, 4, 5} and all(type(v) is int for v in col["iu"])
    assert all(-1 <= v <= 1 for v in col["u"])
    assert set(col["qu"]) <= {0, 2, 4, 6, 8, 10} and all(type(v) is int for v in col["qu"])
    assert all(math.exp(-3) <= v <= 1 for v in col["lu"])
    assert all(1e-8 <= v <= 1e12 for v in col["luv"])
    # log-uniform: each decade gets about the same share
    assert 10 < sum(1e-8 <= v < 1e-6 for v in col["luv"]) < 60
    assert all(1 <= v <= 1000 and type(v) is int for v in col["qluv"])
    assert all(v % 0.5 == 0 for v in col["qlu"])
    assert all(math.exp(-2) <= v <= 1 for v in col["ilu"])
    assert all(0.01 <= v <= 10 for v in col["iluv"])
    assert 4.9 < statistics.mean(col["n"]) < 5.1
    assert all(v % 5 == 0 for v in col["qn"])
    assert all(v > 0 for v in col["ln"])
    # the same seed draws the same configurations, another seed others
    assert draws[:5] == [next_draw(config, s, seed=3, done=[]).values for s in range(5)]
    assert draws[:5] != [next_draw(config, s, seed=4, done=[]).values for s in range(5)]


@pytest.mark.parametrize(("config", "says"), [
    ({"method": "hill", "parameters": {"a": {"value": 1}}}, "method 'hill'"),
    ({"method": "grid"}, "`parameters`"),
    ({"method": "grid", "parameters": {"a": {"min": 0.0, "max": 1.0}}}, "cannot enumerate"),
    ({"method": "random", "parameters": {"a": {"min": 3, "max": 1}}}, "min 3 is not less"),
    ({"method": "random", "parameters": {"a": {"distribution": "cauchy"}}}, "cauchy"),
    ({"method": "random", "parameters": {"a": {"vaules": [1]}}}, "unknown key 'vaules'"),
    ({"method": "random", "parameters": {"a": {}}}, "give `value`"),
    ({"method": "random", "parameters": {"a": {"values": [1, 2],
                                               "probabilities": [0.5]}}}, "probabilities"),
    ({"method": "random", "parameters": {"a": {"distribution": "log_uniform_values",
                                               "min": 0, "max": 1}}}, "min > 0"),
    ({"method": "bayes", "parameters": {"a": {"values": [1, 2]}}}, "needs a `metric`"),
    ({"method": "grid", "run_cap": 0, "parameters": {"a": {"value": 1}}}, "run_cap"),
    ({"method": "grid", "metric": {"name": "m"}, "early_terminate": {"type": "hyperband"},
      "parameters": {"a": {"value": 1}}}, "max_iter"),
    # typos are errors, as in wandb's schema (additionalProperties: false)
    ({"method": "random", "parameters": {"lr": {"distribtion": "log_uniform_values",
                                                "min": 1e-5, "max": 0.1}}}, "'distribtion'"),
    ({"method": "random", "metrc": {"name": "m"}, "parameters": {"a": {"value": 1}}},
     "unknown key 'metrc'"),
    ({"method": "grid", "metric": {"name": "m", "gaol": "maximize"},
      "parameters": {"a": {"value": 1}}}, "'gaol'"),
    ({"method": "grid", "metric": {"name": "m"}, "early_terminate": {
        "type": "hyperband", "min_iter": 3, "etta": 2}, "parameters": {"a": {"value": 1}}},
     "'etta'"),
    ({"method": "random", "parameters": {"lr": {"min": "1e-5", "max": 0.1}}},
     "write it with a dot"),
    ({"method": "grid", "parameters": {"a.b": {"values": [1, 2]},
                                       "a": {"parameters": {"b": {"values": [3]}}}}},
     "named twice"),
])
def test_a_bad_sweep_config_says_what_is_wrong(tmp_path, config, says):
    with pytest.raises(runstore.UsageError, match=says):
        runstore.sweep(config, dir=tmp_path)
    assert not (tmp_path / "runstore.db").exists() or query(
        tmp_path, "SELECT count(*) FROM sweeps") == [(0,)]


# -- agents --------------------------------------------------------------------------------

AGENT_SCRIPT = """
    import os, sys, time, runstore
    def train():
        run = runstore.init(config={"a": -1, "epochs": 3})
        for i in range(run.config["epochs"]):
            time.sleep(0.05)
            runstore.log({"loss": run.config["a"] / (i + 1), "pid": os.getpid()})
    runstore.agent(sys.argv[1] if len(sys.argv) > 1 else os.environ["SWEEP"],
                   function=train, dir=os.environ["STORE"])
"""


def start_agent(script: str, cwd: Path, env: dict) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("RUNSTORE_", "WANDB_"))}
    full.update({"RUNSTORE_SILENT": "true", "RUNSTORE_SWEEP_POLL_S": "0.1", **env})
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], cwd=cwd,
                            env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_three_agents_run_each_grid_configuration_exactly_once(tmp_path):
    store = tmp_path / "store"
    sweep_id = runstore.sweep(GRID, project="grid", dir=store)
    agents = [start_agent(AGENT_SCRIPT, tmp_path, {"SWEEP": sweep_id, "STORE": str(store)})
              for _ in range(3)]
    for proc in agents:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    rows = trials(store)
    assert len(rows) == 6
    seen = [json.loads(params) for _, _, params, *_ in rows]
    assert sorted((p["a"], p["b"]) for p in seen) == sorted(
        itertools.product([1, 2], ["x", "y", "z"]))
    assert {(attempt, state, outcome) for _, attempt, _, state, outcome, _ in rows} == {
        (0, "finished", "finished")}
    # the sweep's value wins over init(config=...), and the run's metric is recorded
    for _, _, params, _, _, metric in rows:
        assert metric == pytest.approx(json.loads(params)["a"] / 3)
    configs = [json.loads(c) for (c,) in query(store, "SELECT config FROM runs")]
    assert all(c["epochs"] == 3 and c["a"] in (1, 2) for c in configs)
    # more than one process did the work
    pids = {v for (v,) in query(store, "SELECT h.value FROM history h JOIN metric_keys k "
                                       "USING (key_id) WHERE k.key = 'pid'")}
    assert len(pids) >= 2
    assert query(store, "SELECT state FROM sweeps") == [("finished",)]
    assert query(store, "SELECT count(*) FROM sweep_agents WHERE stopped_at IS NOT NULL") \
        == [(3,)]


def test_random_with_run_cap_and_a_recorded_seed(tmp_path):
    config = {"method": "random", "run_cap": 4, "metric": {"name": "loss"},
              "parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-4,
                                    "max": 1e-1}, "layers": {"min": 1, "max": 8}}}
    sweep_id = runstore.sweep(config, project="rnd", dir=tmp_path, seed=1234)

    def train():
        run = runstore.init()
        runstore.log({"loss": run.config["lr"] * run.config["layers"]})

    runstore.agent(sweep_id, function=train, dir=tmp_path)
    rows = trials(tmp_path)
    assert [r[0] for r in rows] == [0, 1, 2, 3]
    assert query(tmp_path, "SELECT seed, state FROM sweeps") == [(1234, "finished")]
    expected = [next_draw(load(config), seq, 1234, []).values for seq in range(4)]
    assert [json.loads(r[2]) for r in rows] == expected
    api_sweep = runstore.Api(tmp_path).sweep(f"rnd/{sweep_id}")
    assert api_sweep.state == "finished" and len(api_sweep.runs) == 4
    best = api_sweep.best_run()
    assert best.summary["loss"] == min(r.summary["loss"] for r in api_sweep.runs)
    assert api_sweep.best_run(order="-loss").summary["loss"] == max(
        r.summary["loss"] for r in api_sweep.runs)


def test_count_limits_one_agent_and_project_and_id_given_to_init_are_ignored(tmp_path):
    sweep_id = runstore.sweep(GRID, project="grid", dir=tmp_path)

    def train():
        with pytest.warns(UserWarning) as said:
            run = runstore.init(project="elsewhere", id="myid", config={"a": 100})
        assert [str(w.message).split(":")[1].strip() for w in said] == [
            "ignoring project='elsewhere'", "ignoring id='myid'"]
        with pytest.warns(RuntimeWarning, match="locked by 'sweep'"):
            run.config.update({"a": 7})
        run.config["lr"] = 0.1  # not swept: changes as usual
        runstore.log({"loss": float(run.config["a"])})

    runstore.agent(sweep_id, function=train, count=2, dir=tmp_path)
    rows = query(tmp_path, "SELECT project, id, config FROM runs ORDER BY created_at")
    assert len(rows) == 2 and {r[0] for r in rows} == {"grid"}
    assert all(r[1] != "myid" for r in rows)
    assert [json.loads(r[2])["a"] for r in rows] == [1, 1]
    assert all(json.loads(r[2])["lr"] == 0.1 for r in rows)
    assert query(tmp_path, "SELECT state FROM sweeps") == [("running",)]


def test_a_failing_function_fails_its_run_and_the_agent_goes_on(tmp_path, capsys):
    sweep_id = runstore.sweep(GRID, project="grid", dir=tmp_path)
    calls = []

    def train():
        run = runstore.init()
        calls.append(run.config["b"])
        if run.config["b"] == "y":
            raise ValueError("bad batch")
        runstore.log({"loss": 1.0})

    runstore.agent(sweep_id, function=train, dir=tmp_path)
    outcomes = [r[4] for r in trials(tmp_path)]
    assert outcomes == ["finished", "failed", "finished", "finished", "failed", "finished"]
    assert "ValueError: bad batch" in capsys.readouterr().err


def test_the_agent_stops_after_three_failures_in_a_row(tmp_path):
    sweep_id = runstore.sweep(GRID, project="grid", dir=tmp_path)

    def train():
        runstore.init()
        raise RuntimeError("typo in the training script")

    with pytest.warns(UserWarning, match="3 runs of sweep .* failed in a row"):
        runstore.agent(sweep_id, function=train, dir=tmp_path)
    assert [r[4] for r in trials(tmp_path)] == ["failed"] * 3


def test_a_crashed_agents_configuration_is_run_again(tmp_path):
    store = tmp_path / "store"
    sweep_id = runstore.sweep(GRID, project="grid", dir=store)
    dying = """
        import os, signal, sys, runstore
        def train():
            run = runstore.init()
            runstore.log({"loss": 1.0})
            if run.config["b"] == "y":
                os.kill(os.getpid(), signal.SIGKILL)  # the trainer dies hard mid-run
        runstore.agent(os.environ["SWEEP"], function=train, dir=os.environ["STORE"])
    """
    first = start_agent(dying, tmp_path, {"SWEEP": sweep_id, "STORE": str(store)})
    first.communicate(timeout=60)
    assert first.returncode == -9
    second = start_agent(AGENT_SCRIPT, tmp_path, {"SWEEP": sweep_id, "STORE": str(store)})
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    rows = trials(store)
    assert [(seq, attempt, outcome) for seq, attempt, _, _, outcome, _ in rows] == [
        (0, 0, "finished"), (1, 0, "crashed"), (1, 1, "finished"), (2, 0, "finished"),
        (3, 0, "finished"), (4, 0, "finished"), (5, 0, "finished")]
    assert rows[1][2] == rows[2][2]  # the same configuration, again
    assert rows[1][3] == "crashed"


def test_hyperband_stops_the_runs_it_should(tmp_path, monkeypatch):
    monkeypatch.setattr(_sweep, "POLL_S", 0.05)
    config = {"method": "grid", "metric": {"name": "loss", "goal": "minimize"},
              "early_terminate": {"type": "hyperband", "min_iter": 3, "eta": 3},
              "parameters": {"offset": {"values": [0.0, 5.0, 10.0]}}}
    sweep_id = runstore.sweep(config, project="hb", dir=tmp_path)
    steps_done = {}

    def train():
        run = runstore.init(settings={"sync_writes": True})
        offset = run.config["offset"]
        for i in range(40):
            steps_done[offset] = i + 1
            runstore.log({"loss": offset + 1.0 / (i + 1)})
            time.sleep(0.02)

    runstore.agent(sweep_id, function=train, dir=tmp_path)
    rows = trials(tmp_path)
    assert [r[4] for r in rows] == ["finished", "stopped", "stopped"]
    assert [r[3] for r in rows] == ["finished", "finished", "finished"]
    assert steps_done[0.0] == 40
    assert 3 <= steps_done[5.0] < 40 and 3 <= steps_done[10.0] < 40


def test_hyperband_decisions_match_wandbs_example():
    # the example of wandb's hyperband_stop_runs: max_iter 5, eta 2, s 2 -> bands [1, 2]
    hb = load({"method": "grid", "metric": {"name": "loss"}, "early_terminate": {
        "type": "hyperband", "max_iter": 5, "eta": 2, "s": 2},
        "parameters": {"a": {"value": 1}}}).hyperband
    assert hb["bands"] == [1, 2]
    histories = {"a": [10, 9], "b": [10, 10], "c": [10, 8, 8], "d": [10, 7, 7],
                 "e": [10, 6, 6]}
    # band 2's threshold is the best half of [9, 10, 8, 7, 6]: 8; only b is worse there
    assert hyperband_stops(hb, "minimize", histories, ["b", "c", "d"]) == {"b"}
    flipped = {k: [-v for v in h] for k, h in histories.items()}
    assert hyperband_stops(hb, "maximize", flipped, ["b", "c", "d"]) == {"b"}
    # strict (the default) judges the value at the band, strict: false the best so far
    histories["f"] = [12, 11, 5]
    assert hyperband_stops(hb, "minimize", histories, ["b", "c", "f"]) == {"b", "f"}
    assert hyperband_stops({**hb, "strict": False}, "minimize", histories,
                           ["b", "c", "f"]) == {"b"}


def test_bayes_beats_random_on_a_toy_objective_with_the_same_budget():
    config = load({"method": "bayes", "metric": {"name": "f", "goal": "minimize"},
                   "parameters": {"x": {"min": -5.0, "max": 5.0},
                                  "y": {"min": -5.0, "max": 5.0},
                                  "kind": {"values": ["good", "bad"]}}})
    random_config = load({**config.raw, "method": "random"})

    def f(v):
        return (v["x"] - 1.3) ** 2 + (v["y"] + 2.1) ** 2 + (0 if v["kind"] == "good" else 4)

    def best(sweep, seed, budget=30):
        done: list[Done] = []
        scores = []
        for seq in range(budget):
            draw = next_draw(sweep, seq, seed, done)
            scores.append(f(draw.values))
            done.append(Done(draw.coords, scores[-1]))
        return min(scores)

    seeds = range(5)
    bayes = statistics.median(best(config, s) for s in seeds)
    rand = statistics.median(best(random_config, s) for s in seeds)
    assert bayes < rand


def test_a_bayes_sweep_records_what_it_learns_from(tmp_path):
    config = {"method": "bayes", "metric": {"name": "f", "goal": "maximize"}, "run_cap": 3,
              "parameters": {"x": {"min": 0.0, "max": 1.0}, "n": {"min": 1, "max": 3},
                             "opt": {"values": ["a", "b"]}}}
    sweep_id = runstore.sweep(config, project="bo", dir=tmp_path, seed=5)

    def train():
        run = runstore.init()
        runstore.log({"f": run.config["x"] * run.config["n"]})

    runstore.agent(sweep_id, function=train, dir=tmp_path)
    rows = query(tmp_path, "SELECT params, coords, metric FROM sweep_trials ORDER BY seq")
    assert len(rows) == 3
    for params, coords, metric in rows:
        params, coords = json.loads(params), json.loads(coords)
        assert set(coords) == {"x", "n", "opt"}
        assert params["opt"] == ["a", "b"][coords["opt"]]
        assert metric == pytest.approx(params["x"] * params["n"])


def test_pause_resume_and_cancel(tmp_path):
    store = tmp_path / "store"
    sweep_id = runstore.sweep(GRID, project="grid", dir=store)
    cli = CliRunner()
    paused = cli.invoke(main, ["sweep", "--pause", sweep_id, "--dir", str(store)])
    assert paused.exit_code == 0, paused.output
    proc = start_agent(AGENT_SCRIPT, tmp_path, {"SWEEP": sweep_id, "STORE": str(store)})
    time.sleep(1.5)
    assert proc.poll() is None and trials(store) == []  # waiting, running nothing
    assert cli.invoke(main, ["sweep", "--resume", sweep_id, "--dir", str(store)]).exit_code == 0
    deadline = time.monotonic() + 60
    while len(trials(store)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cli.invoke(main, ["sweep", "--cancel", sweep_id, "--dir", str(store)]).exit_code == 0
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    rows = trials(store)
    assert 2 <= len(rows) < 6
    assert query(store, "SELECT state FROM sweeps") == [("cancelled",)]
    assert all(outcome in ("finished", "stopped") for *_, outcome, _ in rows)
    again = cli.invoke(main, ["sweep", "--resume", sweep_id, "--dir", str(store)])
    assert again.exit_code != 0 and "cancelled" in again.output


# -- program mode: the CLI, a real script, wandb's command macros ----------------------------

TRAIN_PY = """
import argparse, json, sys
import wandb  # a script written for wandb: the agent runs it with runstore as wandb

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.0)
parser.add_argument("--optimizer", type=str, default="none")
parser.add_argument("--epochs", type=int, default=1)
args = parser.parse_args()
run = wandb.init(project="ignored-in-a-sweep", config=args)
for epoch in range(run.config["epochs"]):
    wandb.log({"loss": args.lr * (epoch + 1), "argv": " ".join(sys.argv[1:])})
wandb.finish()
"""


def test_the_cli_runs_a_real_program_with_args(tmp_path):
    (tmp_path / "train.py").write_text(TRAIN_PY)
    (tmp_path / "sweep.yaml").write_text(textwrap.dedent("""
        program: train.py
        method: grid
        project: cli-sweep
        metric: {name: loss, goal: minimize}
        parameters:
          lr: {values: [0.1, 0.2]}
          optimizer: {values: [adam]}
          epochs: {value: 2}
    """))
    store = tmp_path / "store"
    made = subprocess.run(
        [sys.executable, "-c", "from runstore._cli import main; main()", "sweep",
         "sweep.yaml", "--dir", str(store)], cwd=tmp_path, capture_output=True, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("RUNSTORE_")},
        timeout=60)
    assert made.returncode == 0, made.stderr
    sweep_id = made.stdout.strip()
    assert f"runstore agent {sweep_id} --dir {store}" in made.stderr
    ran = subprocess.run(
        [sys.executable, "-c", "from runstore._cli import main; main()", "agent", sweep_id,
         "--dir", str(store)], cwd=tmp_path, capture_output=True, text=True,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("RUNSTORE_")},
             "RUNSTORE_SILENT": "true"}, timeout=120)
    assert ran.returncode == 0, ran.stderr
    rows = query(store, "SELECT r.project, r.config, r.state, t.outcome, t.metric FROM "
                        "sweep_runs t JOIN runs r USING (run_key) ORDER BY t.seq")
    assert [(p, json.loads(c)["lr"], s, o, m) for p, c, s, o, m in rows] == [
        ("cli-sweep", 0.1, "finished", "finished", pytest.approx(0.2)),
        ("cli-sweep", 0.2, "finished", "finished", pytest.approx(0.4))]
    argv = query(store, "SELECT h.value_json FROM history h JOIN metric_keys k USING (key_id)"
                        " WHERE k.key = 'argv' ORDER BY h.run_key, h.step LIMIT 1")
    assert json.loads(argv[0][0]) == "--epochs=2 --lr=0.1 --optimizer=adam"


def test_command_macros_expand_as_wandbs():
    raw = {"program": "train.py", "command": [
        "${env}", "${interpreter}", "${program}", "--fixed", "${args_no_hyphens}",
        "${args_json}", "${args_no_boolean_flags}", "--params=${args_json_file}",
        "--home=${envvar:SWEEP_TEST_HOME}"]}
    os.environ["SWEEP_TEST_HOME"] = "/h"
    try:
        out = _sweep.expand_command(raw, {"lr": 0.1, "amp": True, "ema": False,
                                          "opt": {"b": 1}}, "/tmp/args.json")
    finally:
        del os.environ["SWEEP_TEST_HOME"]
    assert out == [
        "/usr/bin/env", sys.executable, "train.py", "--fixed",
        "lr=0.1", "amp=True", "ema=False", 'opt={"b": 1}',
        '{"lr": 0.1, "amp": true, "ema": false, "opt": {"b": 1}}',
        "--lr=0.1", "--amp", '--opt={"b": 1}',
        "--params=/tmp/args.json", "--home=/h"]
    assert _sweep.expand_command({"program": "t.py"}, {"a": 1}, "f") == [
        "/usr/bin/env", sys.executable, "t.py", "--a=1"]
    with pytest.raises(runstore.UsageError, match="no `program`"):
        _sweep.expand_command({"command": ["${program}"]}, {}, "f")


def test_agent_without_function_needs_a_program(tmp_path):
    sweep_id = runstore.sweep(GRID, dir=tmp_path)
    with pytest.raises(runstore.UsageError, match="no program or command"):
        runstore.agent(sweep_id, dir=tmp_path)
    with pytest.raises(runstore.UsageError, match="no sweep 'nope'"):
        runstore.agent("nope", function=print, dir=tmp_path)


def test_seed_draws_are_reproducible_across_processes(tmp_path):
    code = """
        from runstore._sweep_config import load
        from runstore._sweep_search import next_draw
        c = load({"method": "random", "parameters": {"x": {"min": 0.0, "max": 1.0}}})
        print(next_draw(c, 2, 99, []).values["x"])
    """
    outs = {run_script(code, tmp_path).stdout for _ in range(2)}
    assert len(outs) == 1
    random.seed(0)
    here = next_draw(load({"method": "random", "parameters": {"x": {"min": 0.0, "max": 1.0}}}),
                     2, 99, []).values["x"]
    assert float(outs.pop()) == here


def test_envvar_macros_expand_once():
    os.environ["SWEEP_LOOPY"] = "${envvar:SWEEP_LOOPY}"
    try:
        assert _sweep.expand_command({"command": ["x${envvar:SWEEP_LOOPY}"]}, {}, "f") == [
            "x${envvar:SWEEP_LOOPY}"]
    finally:
        del os.environ["SWEEP_LOOPY"]


def test_a_run_left_open_does_not_swallow_the_sweeps_runs(tmp_path):
    notebook = runstore.init(project="nb", dir=tmp_path)  # open before the agent starts
    sweep_id = runstore.sweep(GRID, project="grid", dir=tmp_path)

    def train():
        run = runstore.init()
        runstore.log({"loss": float(run.config["a"])})
        runstore.init(reinit="create_new", project="side", dir=tmp_path)  # left open

    runstore.agent(sweep_id, function=train, count=3, dir=tmp_path)
    assert [r[4] for r in trials(tmp_path)] == ["finished"] * 3
    assert query(tmp_path, "SELECT project, state FROM runs WHERE project != 'grid' "
                           "ORDER BY created_at") == [("nb", "finished")] + [
        ("side", "finished")] * 3
    assert query(tmp_path, "SELECT count(*) FROM runs WHERE project = 'grid'") == [(3,)]
    assert notebook.id not in {r for (r,) in query(tmp_path, "SELECT run_id FROM sweep_runs")}


def test_nan_metrics_never_make_the_best_run(tmp_path):
    sweep_id = runstore.sweep({"method": "grid", "metric": {"name": "loss"}, "parameters": {
        "v": {"values": [float("nan"), 3.0, 1.0, 2.0]}}}, project="nan", dir=tmp_path)

    def train():
        run = runstore.init()
        runstore.log({"loss": run.config["v"]})

    runstore.agent(sweep_id, function=train, dir=tmp_path)
    best = runstore.Api(tmp_path).sweep(sweep_id).best_run()
    assert best.summary["loss"] == 1.0
    assert [r[5] for r in trials(tmp_path)] == [None, 3.0, 1.0, 2.0]


def test_sigterm_to_an_agent_leaves_its_configuration_to_be_run_again(tmp_path):
    store = tmp_path / "store"
    sweep_id = runstore.sweep(GRID, project="grid", dir=store)
    slow = AGENT_SCRIPT.replace("time.sleep(0.05)", "time.sleep(1)")
    agent = start_agent(slow, tmp_path, {"SWEEP": sweep_id, "STORE": str(store)})
    deadline = time.monotonic() + 60
    while not query(store, "SELECT count(*) FROM history") [0][0] \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    agent.send_signal(signal.SIGTERM)  # a cluster's preemption
    agent.communicate(timeout=60)
    assert agent.returncode == 143
    assert [(r[1], r[3], r[4]) for r in trials(store)] == [(0, "failed", "crashed")]
    runstore.agent(sweep_id, function=lambda: runstore.init(), count=1, dir=store)
    assert [(r[0], r[1], r[4]) for r in trials(store)] == [(0, 0, "crashed"),
                                                          (0, 1, "finished")]


def test_a_program_whose_agent_died_is_not_run_twice(tmp_path):
    (tmp_path / "slow.py").write_text(textwrap.dedent("""
        import time
        time.sleep(6)  # a slow `import torch`: the agent dies before init()
        import runstore
        run = runstore.init()
        runstore.log({"loss": 1.0})
        run.finish()
    """))
    (tmp_path / "sweep.yaml").write_text("program: slow.py\nmethod: grid\n"
                                         "parameters: {a: {values: [1]}}\n")
    store = tmp_path / "store"
    sweep_id = runstore.sweep(tmp_path / "sweep.yaml", project="slow", dir=store)
    agent = f"""
        from runstore._cli import main
        main(["agent", "{sweep_id}", "--dir", "{store}"])
    """
    first = start_agent(agent, tmp_path, {})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not query(
            store, "SELECT count(*) FROM sweep_trials WHERE worker_pid != ?", (first.pid,))[0][0]:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # the agent dies; its program goes on
    first.wait(timeout=30)  # (not communicate(): the program still holds the pipes)
    second = start_agent(agent, tmp_path, {})
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert "waiting for 1 run(s)" in err
    assert query(store, "SELECT count(*), min(state) FROM runs") == [(1, "finished")]
    assert [(r[1], r[4]) for r in trials(store)] == [(0, "finished")]
    assert query(store, "SELECT state FROM sweeps") == [("finished",)]


def test_a_stop_becomes_sigkill_for_a_program_that_ignores_sigterm(tmp_path):
    (tmp_path / "stubborn.py").write_text(textwrap.dedent("""
        import signal, time, runstore
        run = runstore.init()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ignoring SIGTERM", flush=True)
        time.sleep(120)
    """))
    (tmp_path / "sweep.yaml").write_text("program: stubborn.py\nmethod: grid\n"
                                         "parameters: {a: {values: [1, 2]}}\n")
    store = tmp_path / "store"
    sweep_id = runstore.sweep(tmp_path / "sweep.yaml", project="stub", dir=store)
    agent = start_agent(f"""
        from runstore._cli import main
        main(["agent", "{sweep_id}", "--dir", "{store}"])
    """, tmp_path, {"RUNSTORE_AGENT_KILL_DELAY": "0.5"})
    assert agent.stdout.readline().strip() == "ignoring SIGTERM"
    started = time.monotonic()
    runstore._sweep.set_state(sweep_id, "cancelled", store)
    out, err = agent.communicate(timeout=60)
    assert agent.returncode == 0, err
    assert time.monotonic() - started < 20
    assert [(r[0], r[4]) for r in trials(store)] == [(0, "stopped")]


def test_sweeps_refuse_a_store_on_a_network_filesystem(tmp_path, monkeypatch):
    from runstore import _filesystems

    monkeypatch.setattr(_filesystems, "network_filesystem", lambda path: "nfs4")
    with pytest.raises(runstore.UsageError, match="is on nfs4.*on cluster nodes"):
        runstore.sweep(GRID, dir=tmp_path / "shared")
    assert not (tmp_path / "shared" / "runstore.db").exists()
    with pytest.raises(runstore.UsageError, match="is on nfs4"):
        runstore.agent("abc", function=print, dir=tmp_path / "shared")
    monkeypatch.setenv("RUNSTORE_ALLOW_NETWORK_FILESYSTEM", "true")
    assert runstore.sweep(GRID, dir=tmp_path / "shared")


def test_agents_on_cluster_nodes_claim_through_the_hub(tmp_path):
    """Nodes never open the hub's store: they ask the hub (files in the inbox), and
    publish their runs there; the hub claims for them, one transaction per claim."""
    hub_dir, inbox = tmp_path / "hub", tmp_path / "inbox"
    inbox.mkdir()
    sweep_id = runstore.sweep(GRID, project="cluster", dir=hub_dir)
    hub = start_agent(f"""
        from runstore import _hub
        from runstore._cli import main
        _hub.POLL_S = 0.1
        main(["sync", "--watch", "{inbox}", "--dir", "{hub_dir}", "--crashed-after", "30"])
    """, tmp_path, {})
    node_env = {"SWEEP": sweep_id, "RUNSTORE_PUBLISH_DIR": str(inbox),
                "RUNSTORE_PUBLISH_INTERVAL": "0.2"}
    nodes = [start_agent(AGENT_SCRIPT, tmp_path, {**node_env, "STORE": str(tmp_path / f"n{i}")})
             for i in range(2)]
    try:
        for node in nodes:
            out, err = node.communicate(timeout=180)
            assert node.returncode == 0, err
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (list(inbox.glob("*.db")) or query(
                hub_dir, "SELECT count(*) FROM sweep_runs WHERE run_state = 'finished'")
                != [(6,)]):
            time.sleep(0.2)
    finally:
        hub.send_signal(signal.SIGTERM)
        out, err = hub.communicate(timeout=30)
    rows = trials(hub_dir)
    assert sorted((json.loads(p)["a"], json.loads(p)["b"]) for _, _, p, *_ in rows) == sorted(
        itertools.product([1, 2], ["x", "y", "z"]))
    assert {(r[1], r[3], r[4]) for r in rows} == {(0, "finished", "finished")}
    for _, _, params, _, _, metric in rows:
        assert metric == pytest.approx(json.loads(params)["a"] / 3)
    # both nodes worked, their runs are in the hub store (published), none in its dir
    assert len({v for (v,) in query(hub_dir, "SELECT h.value FROM history h JOIN "
                                             "metric_keys k USING (key_id) WHERE k.key = "
                                             "'pid'")}) == 2
    assert query(hub_dir, "SELECT count(*) FROM published_files") != [(0,)]
    assert query(hub_dir, "SELECT state FROM sweeps") == [("finished",)]
    assert "configuration 5" in out


def test_the_agent_s_beats_and_claims_never_share_a_connection_at_once(tmp_path):
    # The monitor thread beats while the agent claims: on one connection the two could
    # both BEGIN ("cannot start a transaction within a transaction", seen under load).
    import threading

    from runstore._sweep_board import StoreBoard

    store = tmp_path / "store"
    sweep_id = runstore.sweep({"method": "grid", "parameters": {"a": {"values": [1, 2]}}},
                              project="p", dir=store)
    board = StoreBoard(store / "runstore.db", sweep_id, "p", None, "agent-1")
    monitor = board.monitor_connection()
    errors: list[BaseException] = []

    def beats() -> None:
        try:
            for _ in range(400):
                board.beat(monitor)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=beats)
    thread.start()
    try:
        for _ in range(400):
            board.beat()
    finally:
        thread.join()
        monitor.close()
        board.close()
    assert errors == []
