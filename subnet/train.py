"""A miner's inner loop: H AdamW steps with linear warm-up, cosine decay and gradient clipping."""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from subnet.config import TrainConfig
from subnet.model import lm_loss


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate of global inner step `step` (0-based): warm-up, then cosine to min_lr_ratio * lr."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.cosine_steps - cfg.warmup_steps))
    floor = cfg.min_lr_ratio
    return cfg.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (norm gains and biases are not decayed)."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


def inner_steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable[torch.Tensor],
                cfg: TrainConfig, first_step: int) -> list[float]:
    """Train on each batch in turn; returns the training loss of every step."""
    model.train()
    losses = []
    for offset, tokens in enumerate(batches):
        lr = lr_at(first_step + offset, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = lm_loss(model, tokens)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


@torch.no_grad()
def eval_loss(model: torch.nn.Module, batches: Iterable[torch.Tensor]) -> float:
    """Mean loss over batches (weighted by batch size)."""
    model.eval()
    total, count = 0.0, 0
    for tokens in batches:
        total += float(lm_loss(model, tokens)) * tokens.shape[0]
        count += tokens.shape[0]
    return total / max(1, count)
