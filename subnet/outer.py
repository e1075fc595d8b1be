"""Outer steps: turning miners' pseudo-gradients into the next global model.

`sparse_outer_step` is the protocol's: clip each selected update to the median norm of the selection
(so one huge update cannot dominate), average each entry over the updates that carry it, and descend.
`NesterovOuter` is dense DiLoCo's outer optimiser, used as the baseline in the training simulation.
"""
from __future__ import annotations

import torch

Update = dict[str, torch.Tensor]


def update_norm(update: Update) -> float:
    return float(torch.sqrt(sum((t.double() ** 2).sum() for t in update.values())))


def clip_to_median_norm(updates: list[Update]) -> list[Update]:
    """Scale each update whose global L2 norm exceeds the selection's median norm down to it."""
    if not updates:
        return []
    norms = torch.tensor([update_norm(u) for u in updates], dtype=torch.float64)
    median = float(norms.median())  # lower median for an even count: the stricter of the two
    clipped = []
    for update, norm in zip(updates, norms.tolist()):
        scale = median / norm if norm > median and norm > 0 else 1.0
        clipped.append({name: t * scale for name, t in update.items()} if scale != 1.0 else update)
    return clipped


def average_overlapping(updates: list[Update]) -> Update:
    """Per entry, the mean over the updates in which that entry is non-zero (0 where none are)."""
    out = {}
    for name in updates[0]:
        total = torch.zeros_like(updates[0][name])
        count = torch.zeros_like(updates[0][name])
        for update in updates:
            t = update[name]
            total += t
            count += (t != 0).to(t.dtype)
        out[name] = total / count.clamp(min=1)
    return out


def sparse_outer_step(theta: Update, updates: list[Update], lr: float) -> Update:
    """theta - lr * average_overlapping(clip_to_median_norm(updates)); inputs are not modified."""
    if not updates:
        return {name: t.clone() for name, t in theta.items()}
    average = average_overlapping(clip_to_median_norm(updates))
    return {name: theta[name] - lr * average[name] for name in theta}


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
