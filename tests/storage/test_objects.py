"""Two windows of the protocol through the real SeaweedFS: miners compress and upload, the validator
reads with the shared read key and checks each upload against what it expects, the lead aggregates
and publishes hash-linked aggregates, and anyone replays the lineage to the same model."""
from __future__ import annotations

import math

import pytest
import torch

from subnet.compression.spec import CodecSpec
from subnet.keys import Keypair
from subnet.model import build_model, get_params, model_hash
from subnet.protocol.settings import genesis_anchor
from subnet.protocol.window import aggregate_result, apply_aggregate, compress_update
from subnet.wire import names
from subnet.wire.aggregate import (
    AggregateExpectation,
    aggregate_manifest,
    decode_aggregate,
    encode_aggregate,
    verify_lineage,
)
from subnet.wire.gradient import GradientExpectation, decode_gradient, encode_gradient
from subnet.hashing import sha256_hex

MINERS = {0: ("miner-0", Keypair.from_seed(b"\x30" * 32)), 1: ("miner-1", Keypair.from_seed(b"\x31" * 32))}
LEAD = Keypair.from_seed(b"\x40" * 32)


@pytest.mark.slow
def test_two_windows_of_uploads_aggregates_and_lineage(seaweed, tiny_preset):
    spec = CodecSpec.from_preset(tiny_preset)
    lr = tiny_preset.outer.lr
    reader = seaweed.reader()
    lead_client, lead_bucket = seaweed.writer("validator-0"), seaweed.bucket("validator-0")
    theta = get_params(build_model(tiny_preset.model, seed=5))
    genesis = model_hash(theta)
    anchor = genesis_anchor(tiny_preset, genesis)
    errors = {uid: {n: torch.zeros(s) for n, s in spec.shapes.items()} for uid in MINERS}
    prev = anchor
    generator = torch.Generator().manual_seed(0)
    for window in (1, 2):
        base = model_hash(theta)
        for uid, (name, key) in MINERS.items():
            delta = {n: 1e-3 * torch.randn(s, generator=generator) for n, s in spec.shapes.items()}
            errors[uid], packet = compress_update(errors[uid], delta, tiny_preset.compression)
            obj = encode_gradient(packet, key, window, uid, base)
            seaweed.writer(name).put(seaweed.bucket(name), names.gradient_key(window, uid), obj,
                                     max_bytes=spec.max_gradient_bytes)
        # Validator side: fetch with the read key, verify against expectations, aggregate.
        fetched, gradients = [], []
        for uid, (name, key) in MINERS.items():
            obj = bytes(reader.get(seaweed.bucket(name), names.gradient_key(window, uid),
                                   max_bytes=spec.max_gradient_bytes))
            gradients.append(decode_gradient(obj, spec, GradientExpectation(
                window=window, uid=uid, hotkey=key.address, base_model_hash=base, norm_bound=math.inf)))
            fetched.append(obj)
        theta = aggregate_result(theta, gradients, lr)
        aggregate = encode_aggregate(window, fetched, LEAD, base_model_hash=base,
                                     result_model_hash=model_hash(theta), prev_aggregate_sha256=prev)
        lead_client.put(lead_bucket, names.aggregate_key(window), aggregate)
        lead_client.put(lead_bucket, names.aggregate_manifest_key(window), aggregate_manifest(aggregate, LEAD))
        prev = sha256_hex(aggregate)

    # Anyone: walk the manifests from the genesis anchor, then replay the aggregates to the same model.
    manifests = [bytes(reader.get(lead_bucket, names.aggregate_manifest_key(w), 1 << 20)) for w in (1, 2)]
    objects = {w: bytes(reader.get(lead_bucket, names.aggregate_key(w), spec.max_aggregate_bytes(8))) for w in (1, 2)}
    lineage = verify_lineage(manifests, genesis, anchor, {LEAD.address}, objects)
    assert lineage.windows == [1, 2] and lineage.head_model_hash == model_hash(theta)
    replay, prev = get_params(build_model(tiny_preset.model, seed=5)), anchor
    for w in (1, 2):
        agg = decode_aggregate(objects[w], spec, AggregateExpectation(
            window=w, hotkey=LEAD.address, base_model_hash=model_hash(replay), prev_aggregate_sha256=prev,
            max_parts=8, norm_bound=math.inf))
        replay, prev = apply_aggregate(replay, agg, lr), agg.sha256
    assert model_hash(replay) == model_hash(theta)
