"""The window's steps: inner phase, compression with error feedback, aggregate, apply."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from subnet.compression.codec import decode_packet
from subnet.model import build_model, get_params, model_hash, set_params
from subnet.outer import update_norm
from subnet.protocol.window import (
    AggregateMismatch,
    aggregate_result,
    apply_aggregate,
    compress_update,
    inner_first_step,
    inner_phase,
    inner_phase_rebased,
)
from subnet.sampler import assigned_samples
from subnet.train import make_optimizer
from subnet.wire.aggregate import Aggregate
from tests.protocol.window_job import window_gradients

JOB = Path(__file__).with_name("window_job.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def theta(tiny_preset):
    return get_params(build_model(tiny_preset.model, tiny_preset.seed))


def test_get_and_set_params_round_trip(tiny_preset, theta):
    model = build_model(tiny_preset.model, seed=99)
    assert model_hash(model) != model_hash(theta)
    set_params(model, theta)
    assert model_hash(model) == model_hash(theta)
    with pytest.raises(KeyError):
        set_params(model, {k: v for k, v in list(theta.items())[1:]})


def test_inner_phase_returns_theta_minus_local(tiny_preset, tiny_train, theta):
    model = build_model(tiny_preset.model, tiny_preset.seed)
    optimizer = make_optimizer(model, tiny_preset.train)
    ids = assigned_samples(tiny_preset.seed, 0, 0, tiny_preset.samples_per_window, tiny_train.num_samples)
    before = {n: t.clone() for n, t in theta.items()}
    result = inner_phase(model, optimizer, theta, tiny_train.batches(ids, tiny_preset.train.batch_size),
                         tiny_preset.train, first_step=0)
    assert len(result.losses) == tiny_preset.train.inner_steps
    local = get_params(model)
    for name in theta:
        assert torch.equal(theta[name], before[name])  # the global model is not touched
        assert torch.equal(result.pseudo_gradient[name], theta[name] - local[name])
    assert update_norm(result.pseudo_gradient) > 0


def _phase(tiny_preset, tiny_train, start, true_base=None):
    model = build_model(tiny_preset.model, tiny_preset.seed)
    optimizer = make_optimizer(model, tiny_preset.train)
    ids = assigned_samples(tiny_preset.seed, 1, 0, tiny_preset.samples_per_window, tiny_train.num_samples)
    batches = tiny_train.batches(ids, tiny_preset.train.batch_size)
    if true_base is None:
        return inner_phase(model, optimizer, start, batches, tiny_preset.train, first_step=0), model
    return inner_phase_rebased(model, optimizer, start, batches, tiny_preset.train, 0, true_base), model


def test_rebased_inner_phase_known_at_once_is_the_plain_inner_phase(tiny_preset, tiny_train, theta):
    new = {n: t + 0.01 for n, t in theta.items()}
    plain, _ = _phase(tiny_preset, tiny_train, new)
    rebased, _ = _phase(tiny_preset, tiny_train, theta, lambda step: new)
    assert all(torch.equal(plain.pseudo_gradient[n], rebased.pseudo_gradient[n]) for n in theta)
    assert plain.losses == rebased.losses


def test_rebased_inner_phase_moves_the_local_weights_when_the_model_arrives(tiny_preset, tiny_train, theta):
    first, _ = _phase(tiny_preset, tiny_train, theta)
    new = {n: theta[n] - first.pseudo_gradient[n] for n in theta}   # a realistic next version
    asked = []

    def arrives_before_step_3(step):
        asked.append(step)
        return new if step >= 3 else None

    result, model = _phase(tiny_preset, tiny_train, theta, arrives_before_step_3)
    assert asked == list(range(tiny_preset.train.inner_steps))   # asked before every step
    local = get_params(model)
    for name in theta:                         # the update is measured from the window's model
        assert torch.allclose(result.pseudo_gradient[name], new[name] - local[name])
    fresh, _ = _phase(tiny_preset, tiny_train, new)
    steps = tiny_preset.train.inner_steps
    stale, _ = _phase(tiny_preset, tiny_train, theta, lambda step: new if step == steps else None)

    def distance(a):
        return update_norm({n: a.pseudo_gradient[n] - fresh.pseudo_gradient[n] for n in theta})

    # 3 of 10 steps off the model: nearer the fresh update than training wholly on the old model.
    assert 0 < distance(result) < distance(stale)


def test_rebased_inner_phase_needs_the_model_by_the_end(tiny_preset, tiny_train, theta):
    late = {n: t + 0.01 for n, t in theta.items()}
    steps = tiny_preset.train.inner_steps
    result, model = _phase(tiny_preset, tiny_train, theta, lambda step: late if step == steps else None)
    local = get_params(model)
    assert all(torch.allclose(result.pseudo_gradient[n], late[n] - local[n]) for n in theta)
    with pytest.raises(ValueError, match="true_base"):
        _phase(tiny_preset, tiny_train, theta, lambda step: None)


def test_schedule_position_counts_applied_aggregates(tiny_preset):
    assert inner_first_step(0, tiny_preset.train) == 0
    assert inner_first_step(5, tiny_preset.train) == 5 * tiny_preset.train.inner_steps


def test_compress_update_keeps_what_was_not_sent(tiny_preset, theta):
    codec = replace(tiny_preset.compression, ef_decay=0.5)
    generator = torch.Generator().manual_seed(3)
    error = {n: torch.randn(t.shape, generator=generator) for n, t in theta.items()}
    delta = {n: torch.randn(t.shape, generator=generator) for n, t in theta.items()}
    new_error, packet = compress_update(error, delta, codec)
    sent = decode_packet(packet)
    for name in theta:
        # what was owed (decayed error plus this window's delta) = what was sent + what is still owed
        owed = 0.5 * error[name] + delta[name]
        torch.testing.assert_close(sent[name] + new_error[name], owed, rtol=0, atol=1e-6)
        assert (sent[name] != 0).sum() < owed.numel() / 10  # sparse: most of it stays in the buffer


def _aggregate(gradients, base, result) -> Aggregate:
    return Aggregate(window=7, hotkey="x", base_model_hash=base, result_model_hash=result,
                     prev_aggregate_sha256="0" * 64, sha256="0" * 64, parts=[], gradients=gradients)


def test_apply_aggregate_checks_base_and_result(tiny_preset, theta):
    gradients = window_gradients(tiny_preset, theta)
    lr = tiny_preset.outer.lr
    expected = aggregate_result(theta, gradients, lr)
    base = model_hash(theta)
    assert model_hash(expected) != base
    applied = apply_aggregate(theta, _aggregate(gradients, base, model_hash(expected)), lr)
    assert model_hash(applied) == model_hash(expected)
    with pytest.raises(AggregateMismatch) as err:
        apply_aggregate(theta, _aggregate(gradients, base, "ab" * 32), lr)
    assert err.value.reason == "result_mismatch"
    with pytest.raises(AggregateMismatch) as err:
        apply_aggregate(expected, _aggregate(gradients, base, model_hash(expected)), lr)
    assert err.value.reason == "wrong_base_model"
    # order of parts is part of the contract: dropping one changes the result
    assert model_hash(aggregate_result(theta, gradients[:2], lr)) != model_hash(expected)


def test_aggregate_result_is_bit_identical_across_processes_and_thread_counts(tiny_preset, theta):
    """Two fresh processes (1 and 2 torch threads) and this one land on the same model hash."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    hashes = []
    for threads in ("1", "2"):
        run = subprocess.run([sys.executable, str(JOB), threads], capture_output=True, text=True, env=env,
                             timeout=300, check=True)
        hashes.append(run.stdout.strip())
    here = model_hash(aggregate_result(theta, window_gradients(tiny_preset, theta), tiny_preset.outer.lr))
    assert len(hashes[0]) == 64
    assert hashes[0] == hashes[1] == here
