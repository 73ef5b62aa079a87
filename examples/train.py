"""A small numpy-only training script, logged with runstore exactly as with wandb.

Trains a two-layer network on a synthetic two-spirals problem for a few seconds
and logs train/val loss and accuracy, the learning rate and gradient norm.
Run it from any directory: the run goes to ./runstore/runstore.db there.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import runstore as wandb


def spirals(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    t = np.sqrt(rng.uniform(0.05, 1, n)) * 3 * np.pi
    sign = rng.integers(0, 2, n) * 2 - 1
    x = np.stack([sign * t * np.cos(t), sign * t * np.sin(t)], 1) / 10
    return x + rng.normal(0, 0.03, x.shape), (sign > 0).astype(float)


def bce(p: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(y * np.log(p + 1e-9) + (1 - y) * np.log(1 - p + 1e-9)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3000)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    run = wandb.init(project="spirals", config=args, tags=["demo", "numpy"],
                     notes="Two-layer MLP on two spirals, plain numpy.")
    wandb.define_metric("val/acc", summary="max,last")
    rng = np.random.default_rng(args.seed)
    x, y = spirals(2000, rng)
    xv, yv = spirals(500, rng)
    w1 = rng.normal(0, 1, (2, args.hidden))
    b1 = np.zeros(args.hidden)
    w2 = rng.normal(0, 1 / np.sqrt(args.hidden), args.hidden)
    b2 = 0.0

    def forward(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = np.tanh(inputs @ w1 + b1)
        return h, 1 / (1 + np.exp(-(h @ w2 + b2)))

    start, points = time.perf_counter(), 0
    for epoch in range(args.epochs):
        lr = args.lr * 0.5 * (1 + np.cos(np.pi * epoch / args.epochs))
        h, p = forward(x)
        loss = bce(p, y)
        g = (p - y) / len(y)
        gw2, gb2 = h.T @ g, g.sum()
        gh = np.outer(g, w2) * (1 - h**2)
        gw1, gb1 = x.T @ gh, gh.sum(0)
        for param, grad in ((w1, gw1), (b1, gb1), (w2, gw2)):
            param -= lr * grad
        b2 -= lr * gb2
        metrics = {"train/loss": loss, "train/acc": np.mean((p > 0.5) == y), "lr": lr,
                   "grad_norm": float(np.sqrt((gw1**2).sum() + (gw2**2).sum()))}
        if epoch % 10 == 0:
            _, pv = forward(xv)
            metrics["val/loss"] = bce(pv, yv)
            metrics["val/acc"] = np.mean((pv > 0.5) == yv)
        wandb.log(metrics)
        points += len(metrics)
    wandb.summary["final_train_loss"] = float(loss)
    wandb.finish()
    elapsed = time.perf_counter() - start
    print(f"logged {points} points over {args.epochs} steps in {elapsed:.2f} s "
          f"({points / elapsed:,.0f} points/s, training included) to {run.dir}")


if __name__ == "__main__":
    main()
