"""Adversarial miners: what each upload looks like to a validator's wire checks."""
from __future__ import annotations

import math
import types

import numpy as np
import pytest
import torch

from miner.behaviour_kinds import BEHAVIOURS, MALFORMED_VARIANTS, check_behaviour, referenced_neurons
from miner.behaviours import StaleModel, SybilShare, copy_upload, malformed_upload, noise_upload, sybil_worker
from subnet.compression.codec import CodecError, encode_tensors
from subnet.compression.spec import CodecSpec
from subnet.keys import Keypair
from subnet.model import param_shapes
from subnet.wire.gradient import GradientExpectation, decode_gradient, encode_gradient
from subnet.wire.signing import WireError

BASE = "ab" * 32
WINDOW = 12
VICTIM = Keypair.from_seed(bytes(range(32)))
COPIER = Keypair.from_seed(bytes(range(1, 33)))


@pytest.fixture(scope="module")
def spec(tiny_preset) -> CodecSpec:
    return CodecSpec(param_shapes(tiny_preset.model), tiny_preset.compression)


def expect(keypair: Keypair, uid: int, norm_bound: float = math.inf) -> GradientExpectation:
    return GradientExpectation(window=WINDOW, uid=uid, hotkey=keypair.address, base_model_hash=BASE,
                               norm_bound=norm_bound)


def honest_upload(spec: CodecSpec) -> bytes:
    generator = torch.Generator().manual_seed(11)
    tensors = {name: torch.randn(shape, generator=generator) * 1e-3 for name, shape in spec.shapes.items()}
    packet, _ = encode_tensors(tensors, spec.codec)
    return encode_gradient(packet, VICTIM, WINDOW, 3, BASE)


@pytest.mark.parametrize("variant, reasons", [
    ("random_bytes", None),               # whatever check it fails first: random bytes are no header
    ("truncated", None),
    ("non_finite", {"non_finite"}),
    ("huge_norm", {"norm_bound"}),
])
def test_every_malformed_variant_is_refused_by_the_wire_checks(spec, variant, reasons):
    data = malformed_upload(variant, spec, VICTIM, WINDOW, 3, BASE, np.random.default_rng(0))
    with pytest.raises(WireError) as refused:
        decode_gradient(data, spec, expect(VICTIM, 3, norm_bound=1e3))
    assert refused.value.reason and (reasons is None or refused.value.reason in reasons)
    if variant in ("non_finite", "huge_norm"):
        # Signed correctly, declaring what an honest miner would: only the content check refuses it.
        from subnet.wire.signing import verify_safetensors
        signed = verify_safetensors(data, spec.max_gradient_bytes, 1 << 20, VICTIM.address)
        assert signed.metadata["base_model_hash"] == BASE and signed.metadata["window"] == str(WINDOW)
    assert set(MALFORMED_VARIANTS) == {"random_bytes", "truncated", "non_finite", "huge_norm"}


def test_random_bytes_differ_by_seed_and_have_the_size(spec):
    a = malformed_upload("random_bytes", spec, VICTIM, WINDOW, 3, BASE, np.random.default_rng(0), size=100)
    b = malformed_upload("random_bytes", spec, VICTIM, WINDOW, 3, BASE, np.random.default_rng(1), size=100)
    assert len(a) == len(b) == 100 and a != b


def test_noise_is_a_valid_gradient_whose_norm_follows_the_scale(spec):
    small = noise_upload(spec, VICTIM, WINDOW, 3, BASE, 0.01, np.random.default_rng(4))
    large = noise_upload(spec, VICTIM, WINDOW, 3, BASE, 0.02, np.random.default_rng(4))
    g_small = decode_gradient(small, spec, expect(VICTIM, 3))
    g_large = decode_gradient(large, spec, expect(VICTIM, 3))
    assert (g_small.window, g_small.uid, g_small.hotkey, g_small.base_model_hash) == (WINDOW, 3, VICTIM.address, BASE)
    assert g_large.norm == pytest.approx(2 * g_small.norm, rel=1e-9)
    dense = g_small.dense()
    assert set(dense) == set(spec.shapes)
    kept = torch.cat([t[t != 0] for t in dense.values()])
    # Top-k of N(0, 0.01^2): kept magnitudes are a few hundredths, not zero and not huge.
    assert 0.01 < kept.abs().mean().item() < 0.1


def test_copy_passes_under_the_copier_with_the_victims_indices(spec):
    victim_object = honest_upload(spec)
    copied = copy_upload(victim_object, spec, COPIER, WINDOW, 5, BASE)
    original = decode_gradient(victim_object, spec, expect(VICTIM, 3))
    copy = decode_gradient(copied, spec, expect(COPIER, 5))
    assert (copy.hotkey, copy.uid) == (COPIER.address, 5)
    assert copy.sha256 != original.sha256
    for name in spec.shapes:
        assert np.array_equal(copy.indices[name], original.indices[name])
    assert all(torch.equal(a, b) for a, b in zip(copy.dense().values(), original.dense().values()))
    with pytest.raises(WireError) as refused:
        decode_gradient(copied, spec, expect(VICTIM, 3))
    assert refused.value.reason == "wrong_hotkey"


def test_noisy_copy_keeps_most_positions_but_not_the_values(spec):
    from validator.copies import index_overlap, values_fingerprint

    victim_object = honest_upload(spec)
    original = decode_gradient(victim_object, spec, expect(VICTIM, 3))
    nudged = decode_gradient(copy_upload(victim_object, spec, COPIER, WINDOW, 5, BASE, noise=0.05,
                                         rng=np.random.default_rng(2)), spec, expect(COPIER, 5))
    assert values_fingerprint(nudged) != values_fingerprint(original)
    assert any(not torch.equal(a, b) for a, b in zip(nudged.dense().values(), original.dense().values()))
    # Small noise keeps the large coefficients on top: well above the 0.6 copy threshold.
    assert index_overlap(nudged, original) > 0.9
    # Noise of the update's own size scrambles the positions: that is an update of its own.
    scrambled = decode_gradient(copy_upload(victim_object, spec, COPIER, WINDOW, 5, BASE, noise=3.0,
                                            rng=np.random.default_rng(2)), spec, expect(COPIER, 5))
    assert index_overlap(scrambled, original) < index_overlap(nudged, original)


def test_sybil_share_round_trip_and_prune(tmp_path):
    assert sybil_worker("sybil_b", "sybil_a") == sybil_worker("sybil_a", "sybil_b") == "sybil_a"
    share = SybilShare(tmp_path / "sybil", "sybil_a")
    assert share.read(4) is None                     # nothing shared yet
    share.publish(4, b"upload-4", 123.0)
    share.publish(5, b"upload-5", 124.0)
    assert share.read(4) == (b"upload-4", 123.0)
    (tmp_path / "sybil" / "sybil_a-5.json").write_text("{not json")
    assert share.read(5) is None                     # a torn note reads as not shared yet
    share.prune(5)
    assert share.read(4) is None and (tmp_path / "sybil" / "sybil_a-5.gradient").is_file()


def test_copy_of_a_malformed_object_raises_codec_error(spec):
    with pytest.raises(CodecError):
        copy_upload(b"not a gradient", spec, COPIER, WINDOW, 5, BASE)


def _theta(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((2, 2), value)}


def test_stale_model_returns_the_model_of_lag_versions_ago():
    stale = StaleModel(lag=2)
    with pytest.raises(KeyError):
        stale.theta_for(0)
    stale.push(0, _theta(0.0))
    assert stale.theta_for(0)["w"][0, 0] == 0.0        # history shorter than lag: the oldest held
    pushed = _theta(1.0)
    stale.push(1, pushed)
    pushed["w"].fill_(99.0)                             # the held copy is the caller's no longer
    for version in range(2, 8):
        stale.push(version, _theta(float(version)))
        assert stale.theta_for(version)["w"][0, 0] == version - 2
    assert stale.versions == [5, 6, 7]                   # a small ring, not the whole history
    with pytest.raises(ValueError):
        stale.push(7, _theta(7.0))


def test_stale_model_with_skipped_versions_uses_the_newest_old_enough():
    stale = StaleModel(lag=3)
    for version in (0, 1, 5, 6):
        stale.push(version, _theta(float(version)))
    assert stale.theta_for(6)["w"][0, 0] == 1.0
    assert stale.theta_for(8)["w"][0, 0] == 5.0
    with pytest.raises(ValueError):
        StaleModel(lag=0)


@pytest.mark.parametrize("kind, params", [
    ("malformed", {}), ("malformed", {"size": 10}), ("malformed", {"variant": "truncated"}), ("noisy", {}),
    ("noisy", {"scale": 0.5}), ("noisy", {"scale": 2}), ("copier", {"victim": "miner-1"}),
    ("copier", {"victim": "miner-1", "noise": 0.05}), ("sybil", {"twin": "s2"}), ("stale", {"lag": 1}), ("free_rider", {}), ("free_rider", {"scale": 0}),
    ("free_rider", {"scale": 1e-6}), ("lazy", {}), ("late", {}), ("late", {"delay_blocks": 2}), ("poisoner", {}),
    ("poisoner", {"scale": 10}), ("poisoner", {"scale": -0.5}),
])
def test_check_behaviour_accepts(kind, params):
    assert kind in BEHAVIOURS
    check_behaviour(kind, params)


@pytest.mark.parametrize("kind, params, message", [
    ("sleepy", {}, "not one of"),
    ("copier", {}, "missing parameter 'victim'"),
    ("copier", {"victim": 3}, "victim must be"),
    ("copier", {"victim": ""}, "victim must be"),
    ("copier", {"victim": "m", "noise": -0.1}, "noise must be"),
    ("copier", {"victim": "m", "noise": "some"}, "noise must be"),
    ("sybil", {}, "missing parameter 'twin'"),
    ("sybil", {"twin": ["a"]}, "twin must be"),
    ("malformed", {"variant": "bitflip"}, "variant must be one of"),
    ("lazy", {"x": 1}, r"unknown parameter 'x' \(known: none\)"),
    ("stale", {}, "missing parameter 'lag'"),
    ("stale", {"lag": 0}, "lag must be"),
    ("stale", {"lag": 1.5}, "lag must be"),
    ("stale", {"lag": True}, "lag must be"),
    ("noisy", {"scale": 0}, "scale must be"),
    ("noisy", {"scale": -1.0}, "scale must be"),
    ("noisy", {"scale": float("inf")}, "scale must be"),
    ("noisy", {"scale": "big"}, "scale must be"),
    ("malformed", {"size": 0}, "size must be"),
    ("malformed", {"size": 2.0}, "size must be"),
    ("malformed", {"victim": "x"}, "unknown parameter 'victim'"),
    ("free_rider", {"scale": -1}, "scale must be"),
    ("late", {"delay_blocks": 0}, "delay_blocks must be"),
    ("poisoner", {"scale": 1}, "other than 1"),
    ("poisoner", {"scale": True}, "scale must be"),
    ("lazy", {"lag": 1}, "unknown parameter 'lag'"),
])
def test_check_behaviour_refuses(kind, params, message):
    with pytest.raises(ValueError, match=message):
        check_behaviour(kind, params)


def test_free_rider_poisoner_and_lazy_updates():
    from miner.behaviours import free_rider_update, lazy_samples, poisoned

    spec = types.SimpleNamespace(shapes={"a": (2, 3), "b": (4,)})
    rng = np.random.default_rng(0)
    zeros = free_rider_update(spec, 0.0, rng)
    assert all(t.shape == spec.shapes[n] and not t.any() for n, t in zeros.items())
    tiny = free_rider_update(spec, 1e-6, rng)
    assert all(0 < float(t.abs().max()) < 1e-4 for t in tiny.values())
    update = {"a": torch.ones(2, 3)}
    assert torch.equal(poisoned(update, -1.0)["a"], -torch.ones(2, 3))
    ids = lazy_samples(rng, 8, 100)
    assert len(set(ids)) == 8 and all(0 <= i < 100 for i in ids)


def test_referenced_neurons():
    assert referenced_neurons("copier", {"victim": "m1", "noise": 0.1}) == ["m1"]
    assert referenced_neurons("sybil", {"twin": "s2"}) == ["s2"]
    assert referenced_neurons("lazy", {}) == []
