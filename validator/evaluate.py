"""Evaluating one miner's update against version w (the loss maths; data and I/O come from the loop).

For miner i: loss before and after applying its update alone, scaled by `outer lr x eval_lr_scale`
and clipped to the window's median norm, on (a) a subset of the samples it was assigned and (b) one
random batch shared by the window, whose before-loss is computed once. That is 3 forward passes per
evaluated miner plus 1 per window (Templar's 3 + 1/N).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from subnet.model import Params, set_params
from subnet.train import eval_loss
from subnet.wire.gradient import Gradient


@dataclass
class Evaluator:
    model: torch.nn.Module     # scratch model; its weights are overwritten for every evaluation
    theta: Params              # version w
    step_scale: float          # outer lr x eval_lr_scale
    median_norm: float         # median norm of the window's valid uploads
    forward_passes: int = 0

    def loss(self, params: Params, batch: torch.Tensor) -> float:
        set_params(self.model, params)
        self.forward_passes += 1
        return eval_loss(self.model, [batch])

    def updated(self, gradient: Gradient) -> Params:
        """theta - scale * clip(update): the miner's update applied alone, as the outer step would."""
        clip = min(1.0, self.median_norm / gradient.norm) if gradient.norm > 0 else 1.0
        dense = gradient.dense()
        factor = self.step_scale * clip
        return {name: self.theta[name] - dense[name] * factor for name in self.theta}

    def before(self, batch: torch.Tensor) -> float:
        return self.loss(self.theta, batch)

    def evaluate(self, gradient: Gradient, own_batch: torch.Tensor, random_batch: torch.Tensor,
                 random_before: float) -> tuple[float, float, float, float]:
        """(own before, own after, random before, random after) for one miner."""
        after = self.updated(gradient)
        own_before = self.loss(self.theta, own_batch)
        own_after = self.loss(after, own_batch)
        random_after = self.loss(after, random_batch)
        return own_before, own_after, random_before, random_after
