"""Outer steps: turning miners' pseudo-gradients into the next global model.

`sparse_outer_step` is the protocol's: clip each selected update to the median norm of the selection
(so one huge update cannot dominate), average each entry over the updates that carry it, and descend.
It is bit-for-bit reproducible on CPU float32: the norms come in as numbers (the wire computes them
from each packet's tables and code counts, with no float reduction over the tensor), and everything
else is element-wise, in the order the updates are given. `NesterovOuter` is dense DiLoCo's outer
optimiser, used as the baseline in the training simulation.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch

Update = dict[str, torch.Tensor]


def update_norm(update: Update) -> float:
    """Global L2 norm of a dense update (float64 accumulation)."""
    return float(torch.sqrt(sum((t.double() ** 2).sum() for t in update.values())))


def median_clip_scales(norms: list[float]) -> list[float]:
    """Per update, the factor that brings its norm down to the selection's median norm (1.0 for
    those at or below it). The lower median for an even count: the stricter of the two."""
    if not norms:
        return []
    median = sorted(norms)[(len(norms) - 1) // 2]
    return [median / norm if norm > median and norm > 0 else 1.0 for norm in norms]


def sparse_outer_step(theta: Update, updates: Iterable[Update], norms: list[float], lr: float) -> Update:
    """theta - lr * (per entry, the mean over the updates carrying it of the median-clipped updates).

    ``updates`` is consumed once, in order, so a generator keeps one dense update in memory at a
    time; ``norms[i]`` is the norm of the i-th update. Inputs are not modified.
    """
    scales = median_clip_scales(list(norms))
    total = {name: torch.zeros_like(t) for name, t in theta.items()}
    count = {name: torch.zeros_like(t) for name, t in theta.items()}
    seen = 0
    for update, scale in zip(updates, scales, strict=True):
        seen += 1
        for name in theta:
            t = update[name] if scale == 1.0 else update[name] * scale
            total[name] += t
            count[name] += (t != 0).to(t.dtype)
    if seen == 0:
        return {name: t.clone() for name, t in theta.items()}
    return {name: theta[name] - (total[name] / count[name].clamp(min=1)) * lr for name in theta}


def mean_update(updates: list[Update]) -> Update:
    return {name: sum(u[name] for u in updates) / len(updates) for name in updates[0]}


class NesterovOuter:
    """DiLoCo's outer SGD with Nesterov momentum: m = mu*m + g; theta -= lr * (g + mu*m)."""

    def __init__(self, lr: float, momentum: float):
        self.lr, self.momentum = lr, momentum
        self.buffers: Update | None = None

    def step(self, theta: Update, gradient: Update) -> Update:
        if self.buffers is None:
            self.buffers = {name: torch.zeros_like(t) for name, t in gradient.items()}
        out = {}
        for name, g in gradient.items():
            m = self.momentum * self.buffers[name] + g
            self.buffers[name] = m
            out[name] = theta[name] - self.lr * (g + self.momentum * m)
        return out
