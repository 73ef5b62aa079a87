"""Which configuration a sweep tries next (grid, random, bayes), and which runs
hyperband stops.

Each function is pure: the store passes what the sweep has seen, so any agent in any
process computes the same next configuration from the same rows.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from ._errors import UsageError
from ._sweep_config import SweepConfig


class Draw(NamedTuple):
    """A configuration: its values by parameter name, and the sampler's coordinates of
    them (a grid index, quantiles, or Optuna's internal values) kept for later draws."""

    values: dict[str, Any]
    coords: dict[str, Any]


class Done(NamedTuple):
    """A finished trial, as bayes learns from it."""

    coords: Mapping[str, Any]
    metric: float


def next_draw(sweep: SweepConfig, seq: int, seed: int, done: Sequence[Done]) -> Draw | None:
    """The sweep's `seq`-th configuration; None when a grid has no more."""
    if sweep.method == "grid":
        if seq >= sweep.grid_size():
            return None
        return Draw(sweep.grid_point(seq), {"grid_index": seq})
    if sweep.method == "random" or not sweep.searched:
        rng = random.Random(f"{seed}/{seq}")
        coords = {p.name: rng.random() for p in sweep.params}
        return Draw({p.name: p.value(coords[p.name]) for p in sweep.params}, coords)
    return _bayes(sweep, seq, seed, done)


def _bayes(sweep: SweepConfig, seq: int, seed: int, done: Sequence[Done]) -> Draw:
    """Optuna's TPE sampler, rebuilt from the finished trials (so agents share no state
    but the store). Categorical parameters are searched by index, int_uniform as ints,
    every other distribution in quantile space (u in [0, 1), as wandb's bayes does)."""
    try:
        import optuna
    except ImportError:
        raise UsageError("method: bayes needs Optuna; install it with "
                         "pip install 'runstore[sweeps]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists: dict[str, Any] = {}
    for p in sweep.searched:
        if p.kind.startswith("categorical"):
            dists[p.name] = optuna.distributions.CategoricalDistribution(
                list(range(len(p.spec["values"]))))
        elif p.kind == "int_uniform":
            dists[p.name] = optuna.distributions.IntDistribution(p.spec["min"], p.spec["max"])
        else:
            dists[p.name] = optuna.distributions.FloatDistribution(0.0, 1.0)
    study = optuna.create_study(
        direction="maximize" if sweep.goal == "maximize" else "minimize",
        sampler=optuna.samplers.TPESampler(seed=(seed + seq) % 2**32))
    for trial in done:
        if set(trial.coords) >= set(dists) and math.isfinite(trial.metric):
            study.add_trial(optuna.trial.create_trial(
                params={n: trial.coords[n] for n in dists}, distributions=dists,
                value=trial.metric))
    coords = study.ask(dists).params
    values = {}
    for p in sweep.params:
        if p.name not in dists:
            values[p.name] = p.value(0.0)
        elif p.kind.startswith("categorical"):
            values[p.name] = p.spec["values"][coords[p.name]]
        elif p.kind == "int_uniform":
            values[p.name] = coords[p.name]
        else:
            values[p.name] = p.value(coords[p.name])
    return Draw(values, coords)


def hyperband_stops(hyperband: Mapping[str, Any], goal: str,
                    histories: Mapping[str, Sequence[float]],
                    running: Iterable[str]) -> set[str]:
    """The running runs hyperband stops, as wandb's sweeps library decides: at each band
    (a number of values logged of the metric), the threshold is the best 1/eta of the
    values every run had there; a running run past a band whose value there (strict, the
    default) or best value so far (strict: false) is worse than the threshold stops."""
    sign = -1.0 if goal == "maximize" else 1.0
    seen = {run: [sign * v for v in values] for run, values in histories.items() if values}
    r = 1.0 / hyperband["eta"]
    thresholds = []
    for band in hyperband["bands"]:
        at_band = sorted(h[band - 1] for h in seen.values() if len(h) >= band)
        thresholds.append(at_band[int(r * len(at_band))] if at_band else math.inf)
    stops = set()
    for run in running:
        history = seen.get(run)
        if not history:
            continue
        reached = [(band, t) for band, t in zip(hyperband["bands"], thresholds, strict=True)
                   if band <= len(history)]
        if not reached:
            continue
        band, threshold = reached[-1]
        value = history[band - 1] if hyperband["strict"] else min(history)
        if value > threshold:
            stops.add(run)
    return stops
