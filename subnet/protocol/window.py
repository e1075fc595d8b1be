"""One window of the protocol, step by step (docs/architecture.md, "One window").

    miner:      theta_w --inner_phase--> pseudo-gradient --compress_update--> packet (signed, uploaded)
    validator:  uploads --(wire checks)--> gradients --aggregate_result--> theta_{w+1}, result hash
    everyone:   theta_w + aggregate w --apply_aggregate--> theta_{w+1}, checked against the result hash

`theta` is always a name -> float32 CPU tensor dict (`subnet.model.get_params`). The miner's inner
optimiser state and error-feedback buffer are kept by the caller across windows.

Reproducibility contract of the outer step (what makes every node's hash agree): on CPU in float32,
`aggregate_result` gives the same bytes in every process, whatever the thread count, because the
update norms come from the wire (integer code counts x table values in float64, a fixed order) and
everything else is element-wise in the order of the aggregate's parts. A GPU node keeps a float32
CPU copy of the global model for this step (or does the same element-wise ops in float32 with no
TF32 and no fused or reordered kernels) and trains on its device from that copy.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from subnet.compression.codec import Packet, compress_with_feedback
from subnet.config import CompressionConfig, TrainConfig
from subnet.errors import InputRejected
from subnet.model import Params, get_params, model_hash, set_params
from subnet.outer import sparse_outer_step
from subnet.train import inner_steps
from subnet.wire.aggregate import Aggregate
from subnet.wire.gradient import Gradient


class AggregateMismatch(InputRejected):
    """An aggregate does not apply to this model, or does not produce the model it says."""


@dataclass(frozen=True)
class InnerResult:
    pseudo_gradient: Params   # theta_w - theta_local
    losses: list[float]       # training loss of each inner step


def inner_first_step(version: int, train: TrainConfig) -> int:
    """Schedule position of a window's first inner step: H steps per applied aggregate, so a window
    without an aggregate leaves the learning-rate schedule where it was."""
    return version * train.inner_steps


def inner_phase(model: torch.nn.Module, optimizer: torch.optim.Optimizer, theta: Params,
                batches: Iterable[torch.Tensor], train: TrainConfig, first_step: int) -> InnerResult:
    """Load the global model, train H inner steps on the window's batches, return theta - local."""
    set_params(model, theta)
    losses = inner_steps(model, optimizer, batches, train, first_step)
    local = get_params(model)
    return InnerResult({name: theta[name] - local[name] for name in theta}, losses)


def inner_phase_rebased(model: torch.nn.Module, optimizer: torch.optim.Optimizer, theta: Params,
                        batches: Iterable[torch.Tensor], train: TrainConfig, first_step: int,
                        true_base: Callable[[int], Params | None]) -> InnerResult:
    """`inner_phase` started before the window's model is known, so a node trains while the
    aggregate is on its way (as overlapped DiLoCo variants do). It starts from `theta`, the model
    it holds; before every step i it asks `true_base(i)` for the window's model, which may not be
    known yet (None) and which `true_base(len(batches))` must return (it may block, or raise to
    abandon the work). When it comes, the local weights move by (true - theta) and training goes
    on: the steps before it were taken a little off the window's model, the rest on it.
    Pseudo-gradient = true - local, as always."""
    set_params(model, theta)
    base, rebased = theta, False

    def rebase_to(new: Params, step: int) -> None:
        nonlocal base, rebased
        if step == 0:
            set_params(model, new)            # nothing trained yet: exactly inner_phase from `new`
        else:
            with torch.no_grad():
                for name, p in model.named_parameters():
                    p.add_((new[name] - base[name]).to(p.device, p.dtype))
        base, rebased = new, True

    batches = list(batches)

    def steps():
        for i, batch in enumerate(batches):
            new = true_base(i)            # asked every step: it may also say "stop"
            if new is not None and not rebased:
                rebase_to(new, i)
            yield batch

    losses = inner_steps(model, optimizer, steps(), train, first_step)
    if not rebased:
        new = true_base(len(batches))
        if new is None:
            raise ValueError("true_base must return the window's model after the last step")
        rebase_to(new, len(batches))
    local = get_params(model)
    return InnerResult({name: base[name] - local[name] for name in base}, losses)


def compress_update(error: Params, pseudo_gradient: Params, codec: CompressionConfig) -> tuple[Params, Packet]:
    """Error feedback + top-k + quantisation; returns the new error buffer and the packet to sign."""
    new_error, packet, _ = compress_with_feedback(error, pseudo_gradient, codec)
    return new_error, packet


def aggregate_result(theta: Params, gradients: list[Gradient], outer_lr: float) -> Params:
    """The next global model from checked gradients, in the given order (the aggregate's parts)."""
    return sparse_outer_step(theta, (g.dense() for g in gradients), [g.norm for g in gradients], outer_lr)


def apply_aggregate(theta: Params, aggregate: Aggregate, outer_lr: float) -> Params:
    """Version w + 1 from version w and aggregate w; refuses an aggregate for another model
    (`wrong_base_model`) or one whose stated result differs from what it produces (`result_mismatch`)."""
    base = model_hash(theta)
    if aggregate.base_model_hash != base:
        raise AggregateMismatch("wrong_base_model", f"aggregate {aggregate.window} applies to "
                                                    f"{aggregate.base_model_hash[:16]}..., this model is {base[:16]}...")
    new_theta = aggregate_result(theta, aggregate.gradients, outer_lr)
    got = model_hash(new_theta)
    if got != aggregate.result_model_hash:
        raise AggregateMismatch("result_mismatch", f"aggregate {aggregate.window} produces {got[:16]}..., "
                                                   f"it states {aggregate.result_model_hash[:16]}...")
    return new_theta
