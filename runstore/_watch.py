"""run.watch(model): histograms of a torch model's gradients and parameters.

As wandb does: for log="parameters" (or "all") a forward hook on the model logs
`parameters/<name>` for every parameter on each `log_freq`-th forward pass; for
log="gradients" (or "all") a hook on each parameter that requires grad logs
`gradients/<name>` on each `log_freq`-th backward pass through it. Each is a
runstore.Histogram of 64 bins, logged with commit=False, so it lands in the run's current
row. Several models watched in one call get the prefixes `graph_0.`, `graph_1.`, ...
torch is imported only here.
"""

from __future__ import annotations

from typing import Any

from ._errors import UsageError
from ._values import warn

BINS = 64
_LOG = {"gradients": (False, True), "parameters": (True, False), "all": (True, True),
        None: (False, False)}


class _Watcher:
    """The hooks of one watched model."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.handles: list[Any] = []

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


def _every(log_freq: int) -> Any:
    """A counter that says True on every log_freq-th call."""
    count = [0]

    def due() -> bool:
        count[0] += 1
        if count[0] < log_freq:
            return False
        count[0] = 0
        return True

    return due


def histogram(tensor: Any) -> Any:
    """A runstore.Histogram of a tensor's finite values (64 bins)."""
    import torch

    from ._media import Histogram

    flat = tensor.detach().reshape(-1).to(torch.float64).cpu()
    flat = flat[torch.isfinite(flat)]
    if flat.numel() == 0:
        return None
    low, high = float(flat.min()), float(flat.max())
    if low == high:
        low, high = low - 0.5, high + 0.5
    counts = torch.histc(flat, bins=BINS, min=low, max=high)
    edges = torch.linspace(low, high, BINS + 1, dtype=torch.float64)
    return Histogram(np_histogram=([int(c) for c in counts.tolist()], edges.tolist()))


def _log(run: Any, key: str, tensor: Any) -> None:
    try:
        value = histogram(tensor)
        if value is not None:
            run.log({key: value}, commit=False)
    except UsageError:  # the run has finished: stop quietly
        pass
    except Exception as exc:  # never break the training loop
        warn(f"watch could not log {key}: {exc!r}")


def watch(run: Any, models: Any, log: str | None, log_freq: int) -> list[_Watcher]:
    """Hook `models` (a torch.nn.Module or a list of them); returns the watchers."""
    try:
        import torch
    except ImportError:
        raise UsageError("watch() needs torch: pip install torch") from None
    if log not in _LOG:
        raise UsageError(f"watch log= must be 'gradients', 'parameters', 'all' or None, "
                         f"got {log!r}")
    if isinstance(log_freq, bool) or not isinstance(log_freq, int) or log_freq < 1:
        raise UsageError(f"watch log_freq must be a positive int, got {log_freq!r}")
    many = isinstance(models, (list, tuple))
    models = list(models) if many else [models]
    params_on, grads_on = _LOG[log]
    watchers = []
    for index, model in enumerate(models):
        if not isinstance(model, torch.nn.Module):
            raise UsageError(f"watch() takes torch.nn.Module models, got {type(model).__name__}")
        prefix = f"graph_{index}." if many else ""
        watcher = _Watcher(model)
        if params_on:
            due = _every(log_freq)

            def forward_hook(module: Any, inputs: Any, output: Any, due: Any = due,
                             prefix: str = prefix) -> None:
                if due():
                    for name, param in module.named_parameters():
                        _log(run, f"parameters/{prefix}{name}", param)

            watcher.handles.append(model.register_forward_hook(forward_hook))
        if grads_on:
            for name, param in model.named_parameters():
                if not param.requires_grad:
                    continue
                due = _every(log_freq)
                key = f"gradients/{prefix}{name}"

                def grad_hook(grad: Any, due: Any = due, key: str = key) -> None:
                    if due():
                        _log(run, key, grad)

                watcher.handles.append(param.register_hook(grad_hook))
        watchers.append(watcher)
    if not params_on and not grads_on:
        warn("watch(log=None) logs no histograms")
    return watchers


def unwatch(watchers: list[_Watcher], models: Any) -> list[_Watcher]:
    """Remove the hooks of `models` (all when None); returns the watchers left."""
    if models is None:
        targets = None
    else:
        targets = {id(m) for m in (models if isinstance(models, (list, tuple)) else [models])}
    left = []
    for watcher in watchers:
        if targets is None or id(watcher.model) in targets:
            watcher.remove()
        else:
            left.append(watcher)
    return left
