"""Gradient and aggregate objects through the real SeaweedFS: miner uploads, validator reads with the
shared read key, the lead publishes hash-linked aggregates, anyone walks the lineage."""
from __future__ import annotations

import pytest
import torch

from subnet import wire
from subnet.compression.codec import compress_with_feedback
from subnet.keys import Keypair
from subnet.model import build_model, model_hash, param_shapes
from subnet.outer import sparse_outer_step

MINERS = {0: ("miner-0", Keypair.from_seed(b"\x30" * 32)), 1: ("miner-1", Keypair.from_seed(b"\x31" * 32))}
LEAD = Keypair.from_seed(b"\x40" * 32)


@pytest.mark.slow
def test_two_windows_of_uploads_aggregates_and_lineage(seaweed, tiny_preset):
    codec = tiny_preset.compression
    shapes = param_shapes(tiny_preset.model)
    reader = seaweed.reader()
    lead_client, lead_bucket = seaweed.writer("validator-0"), seaweed.bucket("validator-0")
    theta = {n: p.detach().clone() for n, p in build_model(tiny_preset.model, seed=5).named_parameters()}
    genesis = model_hash(theta)
    errors = {uid: {n: torch.zeros(s) for n, s in shapes.items()} for uid in MINERS}
    prev = wire.GENESIS_PREV
    generator = torch.Generator().manual_seed(0)
    limit = wire.gradient_byte_limit(shapes, codec)
    for window in (1, 2):
        base = model_hash(theta)
        for uid, (name, key) in MINERS.items():
            delta = {n: 1e-3 * torch.randn(s, generator=generator) for n, s in shapes.items()}
            errors[uid], packet, _ = compress_with_feedback(errors[uid], delta, codec)
            obj = wire.encode_gradient(packet, key, window, uid, base)
            seaweed.writer(name).put(seaweed.bucket(name), wire.gradient_key(window, uid), obj, max_bytes=limit)
        # Validator side: fetch with the read key, verify against expectations, apply.
        fetched, updates = [], []
        for uid, (name, key) in MINERS.items():
            obj = bytes(reader.get(seaweed.bucket(name), wire.gradient_key(window, uid), max_bytes=limit))
            gradient = wire.decode_gradient(obj, shapes, codec, window=window, uid=uid, hotkey=key.address,
                                            base_model_hash=base)
            fetched.append(obj)
            updates.append(gradient.dense())
        theta = sparse_outer_step(theta, updates, tiny_preset.outer.lr)
        aggregate = wire.encode_aggregate(window, fetched, LEAD, base_model_hash=base,
                                          result_model_hash=model_hash(theta), prev_aggregate_sha256=prev)
        lead_client.put(lead_bucket, wire.aggregate_key(window), aggregate)
        lead_client.put(lead_bucket, wire.aggregate_manifest_key(window), wire.aggregate_manifest(aggregate, LEAD))
        prev = wire.sha256_hex(aggregate)

    # Anyone: walk the manifests from genesis, then replay the aggregates and land on the same model.
    manifests = [bytes(reader.get(lead_bucket, wire.aggregate_manifest_key(w), 1 << 20)) for w in (1, 2)]
    objects = {w: bytes(reader.get(lead_bucket, wire.aggregate_key(w), 1 << 24)) for w in (1, 2)}
    lineage = wire.verify_lineage(manifests, genesis, {LEAD.address}, objects)
    assert lineage.windows == [1, 2] and lineage.head_model_hash == model_hash(theta)
    replay = {n: p.detach().clone() for n, p in build_model(tiny_preset.model, seed=5).named_parameters()}
    for w in (1, 2):
        agg = wire.decode_aggregate(objects[w], shapes, codec, max_parts=8, window=w, hotkey=LEAD.address)
        assert agg.base_model_hash == model_hash(replay)
        replay = sparse_outer_step(replay, [g.dense() for g in agg.gradients], tiny_preset.outer.lr)
        assert model_hash(replay) == agg.result_model_hash
