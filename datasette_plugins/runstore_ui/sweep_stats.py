"""What the sweep page computes from a sweep's trials (plain Python, no SQL): the best
metric so far in trial order, and how much each swept parameter mattered.

Importance, two ways:

- Pearson correlation of each parameter with the metric, over the trials with a metric.
  A numeric parameter (numbers only, also `values: [0.001, 0.01]`) is correlated by its
  value (by log10 of its value for a log distribution, as its axis is drawn); a
  categorical one (any string or bool among its values) one-hot: one row per category,
  the correlation of "this category or not" with the metric.
- Optuna's `get_param_importances` (fANOVA, seeded; PED-ANOVA when scikit-learn, which
  fANOVA needs, is missing) over the same trials, each given
  to a study as a finished trial with its parameters' distributions (the range the
  trials span; categories as given), when optuna can be imported and at least
  `MIN_OPTUNA_TRIALS` trials have a metric; else the reason it is not shown.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

MIN_OPTUNA_TRIALS = 5


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def is_categorical(param: dict[str, Any], values: list[Any]) -> bool:
    """A parameter whose values are categories: one of its values (those the trials have,
    and a categorical distribution's `values`) is not a finite number (a string, a
    bool). A categorical distribution of numbers ([0.001, 0.01]) is numeric."""
    given = param.get("values") or []
    return any(_number(v) is None for v in [*given, *values] if v is not None)


def best_so_far(trials: list[dict[str, Any]], goal: str) -> list[float | None]:
    """The best metric among the trials up to each one (in the order given)."""
    best: float | None = None
    out = []
    for trial in trials:
        value = _number(trial.get("metric"))
        if value is not None and (best is None or (value < best if goal == "minimize"
                                                   else value > best)):
            best = value
        out.append(best)
    return out


def pearson(xs: list[float], ys: list[float]) -> float | None:
    """Pearson's r, None when fewer than 3 points or either side is constant."""
    n = len(xs)
    if n < 3:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx <= 0 or syy <= 0:
        return None
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def category_key(value: Any) -> str:
    """A category's label (what the page shows and the one-hot rows name)."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def correlations(params: list[dict[str, Any]], trials: list[dict[str, Any]]
                 ) -> list[dict[str, Any]]:
    """Rows {param, category (None for a numeric one), how, n, r}, by parameter order."""
    scored = [t for t in trials if _number(t.get("metric")) is not None]
    rows = []
    for param in params:
        name = param["name"]
        values = [t["params"].get(name) for t in scored]
        if is_categorical(param, values):
            labels = dict.fromkeys(category_key(v) for v in values)
            for label in labels:
                xs = [1.0 if category_key(v) == label else 0.0 for v in values]
                ys = [float(t["metric"]) for t in scored]
                rows.append({"param": name, "category": label, "how": "one-hot",
                             "n": len(xs), "r": pearson(xs, ys)})
            continue
        log = bool(param.get("log"))
        pairs = [(_number(v), float(t["metric"])) for v, t in zip(values, scored, strict=True)]
        xs_ys = [(math.log10(x) if log else x, y) for x, y in pairs
                 if x is not None and (not log or x > 0)]
        rows.append({"param": name, "category": None,
                     "how": "log10(value)" if log else "value", "n": len(xs_ys),
                     "r": pearson([x for x, _ in xs_ys], [y for _, y in xs_ys])})
    return rows


def optuna_importances(params: list[dict[str, Any]], trials: list[dict[str, Any]],
                       goal: str) -> tuple[list[tuple[str, float]], str]:
    """([(param, importance)] largest first, the evaluator's name), or ([], why they
    are not shown)."""
    scored = [t for t in trials if _number(t.get("metric")) is not None]
    if len(scored) < MIN_OPTUNA_TRIALS:
        return [], (f"Optuna's importance needs at least {MIN_OPTUNA_TRIALS} trials with "
                    f"a metric; this sweep has {len(scored)}.")
    try:
        import optuna
    except ImportError:
        return [], ("Optuna's importance is not shown: optuna is not installed "
                    "(pip install optuna).")
    distributions: dict[str, Any] = {}
    for param in params:
        name = param["name"]
        values = [t["params"].get(name) for t in scored]
        if is_categorical(param, values):
            choices = list(dict.fromkeys(category_key(v) for v in values))
            if len(choices) > 1:
                distributions[name] = optuna.distributions.CategoricalDistribution(choices)
            continue
        numbers = [x for x in (_number(v) for v in values) if x is not None]
        if len(numbers) != len(values) or min(numbers) == max(numbers):
            continue
        log = bool(param.get("log")) and min(numbers) > 0
        if all(isinstance(v, int) for v in values):
            distributions[name] = optuna.distributions.IntDistribution(
                int(min(numbers)), int(max(numbers)), log=log)
        else:
            distributions[name] = optuna.distributions.FloatDistribution(
                min(numbers), max(numbers), log=log)
    if not distributions:
        return [], "Optuna's importance needs a parameter whose value varies between trials."
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(
            direction="maximize" if goal == "maximize" else "minimize")
        for trial in scored:
            chosen: dict[str, Any] = {}
            for name in distributions:
                value = trial["params"].get(name)
                chosen[name] = (category_key(value) if isinstance(
                    distributions[name], optuna.distributions.CategoricalDistribution)
                    else value)
            study.add_trial(optuna.trial.create_trial(
                params=chosen, distributions=distributions, value=float(trial["metric"])))
        evaluator = _evaluator(optuna)
        try:
            found = optuna.importance.get_param_importances(study, evaluator=evaluator)
        except Exception as exc:  # shown on the page, not raised
            return [], f"Optuna could not compute importances: {exc}"
    how = "fANOVA" if isinstance(evaluator, optuna.importance.FanovaImportanceEvaluator) \
        else "PED-ANOVA"
    return sorted(((f"{k}", float(v)) for k, v in found.items()),
                  key=lambda kv: -kv[1]), how


def _evaluator(optuna: Any) -> Any:
    """fANOVA (Optuna's default, seeded) when scikit-learn, which it needs, can be
    imported; else PED-ANOVA, which needs nothing more."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return optuna.importance.PedAnovaImportanceEvaluator()
    return optuna.importance.FanovaImportanceEvaluator(seed=0)
