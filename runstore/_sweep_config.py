"""A sweep config (wandb's sweep YAML), checked: its parameters, metric, early stopping.

Every parameter maps a quantile u in [0, 1) to a value (`Param.value`), the way wandb's
sweeps library draws from its distributions, so random search and Optuna's sampler share
one description of the space. The semantics follow wandb's `sweeps` package:

- A parameter without `distribution` is a constant (`value`), categorical (`values`,
  with `probabilities` if given), `int_uniform` (`min`/`max` both ints) or `uniform`.
- `log_uniform` / `q_log_uniform` take exponents (`exp(U(min, max))`); the `_values`
  forms take the values themselves. `inv_log_uniform_values` is drawn as wandb's code
  draws it: log-uniform between `min` and `max`.
- `q_*` rounds to a multiple of `q` (an int `q` gives ints). `normal` and `log_normal`
  default to mu 0, sigma 1.
- Parameters are taken in name order at every level (grid order: the last varies fastest).
- `parameters:` inside a parameter nests it: the run's config gets a dict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import yaml

from ._errors import UsageError
from ._values import warn_user

METHODS = ("grid", "random", "bayes")
GOALS = ("minimize", "maximize")
# distribution -> the keys it needs (defaults are filled in below)
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "categorical": ("values",),
    "categorical_w_probabilities": ("values", "probabilities"),
    "int_uniform": ("min", "max"),
    "uniform": ("min", "max"),
    "q_uniform": ("min", "max"),
    "log_uniform": ("min", "max"),
    "log_uniform_values": ("min", "max"),
    "q_log_uniform": ("min", "max"),
    "q_log_uniform_values": ("min", "max"),
    "inv_log_uniform": ("min", "max"),
    "inv_log_uniform_values": ("min", "max"),
    "normal": (),
    "q_normal": (),
    "log_normal": (),
    "q_log_normal": (),
}
_UNSUPPORTED = frozenset({"metrics", "scheduler", "job", "image_uri"})
# wandb's schema allows no other keys (additionalProperties: false): a typo is an error.
_TOP_KEYS = frozenset({"method", "parameters", "metric", "early_terminate", "run_cap",
                       "program", "command", "name", "description", "project", "entity",
                       "controller", "apiVersion", "kind"}) | _UNSUPPORTED
_PARAM_KEYS = frozenset({"distribution", "value", "values", "probabilities", "min", "max",
                         "mu", "sigma", "q", "parameters", "description"})
_METRIC_KEYS = frozenset({"name", "goal", "target", "impute", "impute_while_running"})
_HYPERBAND_KEYS = frozenset({"type", "min_iter", "max_iter", "s", "eta", "strict"})
_GRID_KINDS = ("constant", "categorical", "int_uniform", "q_uniform")
_EDGE = 1e-12  # quantiles are kept inside (0, 1) for the normal's inverse CDF
_STANDARD = NormalDist()


@dataclass(frozen=True)
class Param:
    """One swept parameter: where it goes in the config, and its distribution."""

    path: tuple[str, ...]
    kind: str
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        return ".".join(self.path)

    @property
    def searched(self) -> bool:
        return self.kind != "constant"

    def value(self, u: float) -> Any:
        """The value at quantile `u` of the distribution (u in [0, 1))."""
        s, kind = self.spec, self.kind
        u = min(max(u, 0.0), 1.0 - _EDGE)
        if kind == "constant":
            return s["value"]
        if kind == "categorical":
            values = s["values"]
            return values[min(int(u * len(values)), len(values) - 1)]
        if kind == "categorical_w_probabilities":
            total = 0.0
            for value, p in zip(s["values"], s["probabilities"], strict=True):
                total += p
                if u < total:
                    return value
            return s["values"][-1]
        if kind == "int_uniform":
            span = s["max"] - s["min"]
            return s["min"] + min(int(u * (span + 1)), span)
        lo: float = s.get("min", 0.0)
        hi: float = s.get("max", 1.0)
        z = _STANDARD.inv_cdf(min(max(u, _EDGE), 1 - _EDGE))
        x = {
            "uniform": lambda: lo + u * (hi - lo),
            "q_uniform": lambda: lo + u * (hi - lo),
            "log_uniform": lambda: math.exp(lo + u * (hi - lo)),
            "q_log_uniform": lambda: math.exp(lo + u * (hi - lo)),
            "log_uniform_values": lambda: _log_between(lo, hi, u),
            "q_log_uniform_values": lambda: _log_between(lo, hi, u),
            "inv_log_uniform": lambda: math.exp(-(lo + (1 - u) * (hi - lo))),
            "inv_log_uniform_values": lambda: _log_between(lo, hi, u),
            "normal": lambda: s["mu"] + s["sigma"] * z,
            "q_normal": lambda: s["mu"] + s["sigma"] * z,
            "log_normal": lambda: math.exp(s["mu"] + s["sigma"] * z),
            "q_log_normal": lambda: math.exp(s["mu"] + s["sigma"] * z),
        }[kind]()
        if kind.startswith("q_"):
            q = s["q"]
            x = round(x / q) * q
            return int(round(x)) if isinstance(q, int) else x
        return x

    def grid_values(self) -> list[Any]:
        """The values a grid takes (wandb: q_uniform's range excludes max)."""
        s = self.spec
        if self.kind == "constant":
            return [s["value"]]
        if self.kind == "categorical":
            return list(s["values"])
        if self.kind == "int_uniform":
            return list(range(s["min"], s["max"] + 1))
        if self.kind == "q_uniform":
            q = s["q"]
            count = math.ceil((s["max"] - s["min"]) / q)
            return [s["min"] + i * q for i in range(count)]
        raise UsageError(
            f"parameter {self.name!r} has distribution {self.kind!r}, which a grid cannot "
            f"enumerate; use one of {', '.join(_GRID_KINDS)} (without probabilities), "
            "or method: random or bayes")


def _log_between(lo: float, hi: float, u: float) -> float:
    return math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))


@dataclass(frozen=True)
class SweepConfig:
    """A checked sweep config; `raw` is the config as given (kept in the store)."""

    raw: dict[str, Any]
    method: str
    params: tuple[Param, ...]
    metric: str | None = None
    goal: str = "minimize"
    target: float | None = None
    run_cap: int | None = None
    hyperband: dict[str, Any] | None = field(default=None)

    @property
    def searched(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.searched)

    def config_for(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The run config of {param name: value}: nested parameters as dicts."""
        out: dict[str, Any] = {}
        for p in self.params:
            node = out
            for part in p.path[:-1]:
                node = node.setdefault(part, {})
            node[p.path[-1]] = values[p.name]
        return out

    def grid_size(self) -> int:
        return math.prod(len(p.grid_values()) for p in self.params)

    def grid_point(self, index: int) -> dict[str, Any]:
        """The grid's `index`-th point (itertools.product order: the last varies fastest)."""
        out: dict[str, Any] = {}
        for p in reversed(self.params):
            values = p.grid_values()
            index, at = divmod(index, len(values))
            out[p.name] = values[at]
        return out


def load(config: Mapping[str, Any] | str | Path) -> SweepConfig:
    """Check a sweep config (a dict, or the path of a YAML or JSON file)."""
    if isinstance(config, (str, Path)):
        path = Path(config)
        try:
            raw = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise UsageError(f"cannot read the sweep config {path}: {exc}") from None
        except yaml.YAMLError as exc:
            raise UsageError(f"the sweep config {path} is not valid YAML: {exc}") from None
    else:
        raw = config
    if not isinstance(raw, Mapping):
        raise UsageError(f"a sweep config is a mapping (method, metric, parameters, ...), "
                         f"got {type(raw).__name__}")
    raw = dict(raw)
    _known_keys(raw, _TOP_KEYS, "sweep config")
    unsupported = sorted(_UNSUPPORTED.intersection(raw))
    if unsupported:
        warn_user(f"runstore: sweep config keys {', '.join(unsupported)} are not supported "
                  "(wandb Launch, multi-objective); ignored")
    method = raw.get("method")
    if method not in METHODS:
        raise UsageError(f"sweep config: method {method!r} is not one of "
                         f"{', '.join(METHODS)}")
    parameters = raw.get("parameters")
    if not isinstance(parameters, Mapping) or not parameters:
        raise UsageError("sweep config: `parameters` must map each parameter's name to "
                         "its values, e.g. {lr: {values: [0.1, 0.01]}}")
    params = tuple(_params(parameters, ()))
    names = [p.name for p in params]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise UsageError(f"sweep config: parameter {clash[0]!r} is named twice (a flat "
                         "name with dots and a nested parameter); rename one")
    metric, goal, target = _metric(raw.get("metric"), method)
    run_cap = raw.get("run_cap")
    if run_cap is not None and (isinstance(run_cap, bool) or not isinstance(run_cap, int)
                                or run_cap < 1):
        raise UsageError(f"sweep config: run_cap must be a positive integer, got {run_cap!r}")
    sweep = SweepConfig(raw, method, params, metric, goal, target, run_cap,
                        _hyperband(raw.get("early_terminate"), metric))
    if method == "grid":
        for p in params:
            p.grid_values()  # a UsageError for a distribution a grid cannot enumerate
    if method == "bayes" and metric is None:
        raise UsageError("sweep config: method bayes needs a `metric` {name, goal}")
    return sweep


def _params(parameters: Mapping[str, Any], prefix: tuple[str, ...]) -> list[Param]:
    out = []
    for name in sorted(parameters, key=str):
        spec = parameters[name]
        path = (*prefix, str(name))
        where = ".".join(path)
        if not isinstance(spec, Mapping):
            raise UsageError(f"sweep parameter {where!r}: give a mapping such as "
                             f"{{values: [...]}} or {{value: ...}}, got {spec!r}")
        if "parameters" in spec and "distribution" not in spec:
            nested = spec["parameters"]
            if not isinstance(nested, Mapping) or not nested:
                raise UsageError(f"sweep parameter {where!r}: `parameters` must be a "
                                 "mapping of nested parameters")
            out.extend(_params(nested, path))
            continue
        out.append(_param(path, dict(spec)))
    return out


def _known_keys(spec: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(str(k) for k in spec if k not in allowed)
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r} (known: "
                         f"{', '.join(sorted(allowed))})")


def _param(path: tuple[str, ...], spec: dict[str, Any]) -> Param:
    where = ".".join(path)
    _known_keys(spec, _PARAM_KEYS, f"sweep parameter {where!r}")
    kind = spec.get("distribution") or _inferred(spec, where)
    if kind not in DISTRIBUTIONS:
        raise UsageError(f"sweep parameter {where!r}: distribution {kind!r} is not one of "
                         f"{', '.join(DISTRIBUTIONS)}")
    missing = [k for k in DISTRIBUTIONS[kind] if k not in spec]
    if missing:
        raise UsageError(f"sweep parameter {where!r}: distribution {kind} needs "
                         f"{', '.join(missing)}")
    spec.setdefault("mu", 0.0)
    spec.setdefault("sigma", 1.0)
    spec.setdefault("q", 1.0)
    bounds = [k for k in ("min", "max") if k in DISTRIBUTIONS[kind]]
    for key in (*bounds, "mu", "sigma", "q"):
        value = spec[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            hint = ""
            if isinstance(value, str) and _is_number(value):
                hint = (f" (YAML reads {value} as text: write it with a dot, e.g. 1.0e-5, "
                        "or as !!float 1e-5)")
            raise UsageError(f"sweep parameter {where!r}: {key} must be a finite number, "
                             f"got {value!r}{hint}")
    if "min" in spec and "max" in spec and not spec["min"] < spec["max"]:
        raise UsageError(f"sweep parameter {where!r}: min {spec['min']} is not less than "
                         f"max {spec['max']}")
    if kind == "int_uniform" and not all(isinstance(spec[k], int) for k in ("min", "max")):
        raise UsageError(f"sweep parameter {where!r}: int_uniform needs int min and max")
    if kind.endswith("_values") and spec["min"] <= 0:
        raise UsageError(f"sweep parameter {where!r}: {kind} needs min > 0")
    if spec["sigma"] <= 0 or spec["q"] <= 0:
        raise UsageError(f"sweep parameter {where!r}: sigma and q must be > 0")
    if kind.startswith("categorical"):
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise UsageError(f"sweep parameter {where!r}: values must be a non-empty list")
    if kind == "categorical_w_probabilities":
        probs = spec["probabilities"]
        if (not isinstance(probs, list) or len(probs) != len(spec["values"])
                or not math.isclose(sum(probs), 1.0, abs_tol=1e-6)):
            raise UsageError(f"sweep parameter {where!r}: probabilities must be a list as "
                             "long as values, summing to 1")
    return Param(path, kind, spec)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _inferred(spec: Mapping[str, Any], where: str) -> str:
    if "value" in spec:
        return "constant"
    if "values" in spec:
        return ("categorical_w_probabilities" if "probabilities" in spec
                else "categorical")
    if "min" in spec and "max" in spec:
        ints = all(isinstance(spec[k], int) and not isinstance(spec[k], bool)
                   for k in ("min", "max"))
        return "int_uniform" if ints else "uniform"
    raise UsageError(f"sweep parameter {where!r}: give `value`, `values`, `min` and `max`, "
                     "`distribution`, or nested `parameters`")


def _metric(metric: Any, method: str) -> tuple[str | None, str, float | None]:
    if metric is None:
        return None, "minimize", None
    if isinstance(metric, str):
        return metric, "minimize", None
    if not isinstance(metric, Mapping) or not isinstance(metric.get("name"), str):
        raise UsageError("sweep config: metric must be {name: ..., goal: minimize|maximize}")
    _known_keys(metric, _METRIC_KEYS, "sweep config: metric")
    goal = metric.get("goal", "minimize")
    if goal not in GOALS:
        raise UsageError(f"sweep config: metric goal {goal!r} is not minimize or maximize")
    target = metric.get("target")
    if target is not None and (isinstance(target, bool) or not isinstance(target, (int, float))):
        raise UsageError(f"sweep config: metric target must be a number, got {target!r}")
    return metric["name"], goal, target


def _hyperband(spec: Any, metric: str | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    if not isinstance(spec, Mapping) or spec.get("type") != "hyperband":
        raise UsageError("sweep config: early_terminate supports {type: hyperband, ...}")
    _known_keys(spec, _HYPERBAND_KEYS, "sweep config: early_terminate")
    if metric is None:
        raise UsageError("sweep config: early_terminate needs a `metric` to compare runs by")
    eta = spec.get("eta", 3)
    if not isinstance(eta, (int, float)) or eta <= 1:
        raise UsageError(f"sweep config: hyperband eta must be > 1, got {eta!r}")
    if "max_iter" in spec:
        max_iter, s = spec["max_iter"], spec.get("s")
        if not isinstance(max_iter, int) or not isinstance(s, (int, float)) or s < 1:
            raise UsageError("sweep config: hyperband with max_iter needs an int max_iter "
                             "and s >= 1")
        bands, band = [], float(max_iter)
        for _ in range(int(s)):
            band /= eta
            if band < 1:
                break
            bands.append(int(band))
    elif "min_iter" in spec:
        min_iter = spec["min_iter"]
        if not isinstance(min_iter, int) or min_iter < 1:
            raise UsageError("sweep config: hyperband min_iter must be an int >= 1")
        bands = [int(min_iter * eta ** k) for k in range(100) if min_iter * eta ** k < 2**62]
    else:
        raise UsageError("sweep config: hyperband needs max_iter (with s) or min_iter")
    if not bands:
        raise UsageError("sweep config: hyperband has no bands; increase max_iter or s, "
                         "or lower eta")
    return {"bands": sorted(bands), "eta": eta, "strict": spec.get("strict", True) is True}
