"""Wire format: signed safetensors and JSON, gradients, aggregates, lineage, and the decoder fuzz."""
from __future__ import annotations

import collections
import json
import os
import pickle
import random
import struct

import numpy as np
import pytest
import torch
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from subnet import wire
from subnet.compression.codec import encode_tensors
from subnet.config import CompressionConfig, load_preset
from subnet.keys import Keypair
from subnet.model import param_shapes

BASE = "ab" * 32
OTHER_BASE = "cd" * 32


def make_setup():
    """(codec, shapes, packet, transmitted, miner keypair, signed gradient bytes) for the tiny model."""
    preset = load_preset("tiny")
    shapes = param_shapes(preset.model)
    generator = torch.Generator().manual_seed(7)
    tensors = {name: torch.randn(shape, generator=generator) for name, shape in shapes.items()}
    packet, transmitted = encode_tensors(tensors, preset.compression)
    miner = Keypair.from_seed(bytes(range(32)))
    data = wire.encode_gradient(packet, miner, window=12, uid=3, base_model_hash=BASE)
    return preset.compression, shapes, packet, transmitted, miner, data


@pytest.fixture(scope="module")
def setup():
    return make_setup()


def _decode(setup_tuple, data, **overrides):
    codec, shapes, _, _, miner, _ = setup_tuple
    expected = dict(window=12, uid=3, hotkey=miner.address, base_model_hash=BASE)
    expected.update(overrides)
    return wire.decode_gradient(data, shapes, codec, **expected)


def _resign(data: bytes, keypair: Keypair, edit_header=None, edit_arrays=None) -> bytes:
    """An attacker's own, validly signed object built from ``data`` with edits."""
    (header_len,) = struct.unpack("<Q", data[:8])
    metadata = json.loads(data[8:8 + header_len])["__metadata__"]
    arrays = st_load(data)
    if edit_arrays:
        edit_arrays(arrays)
    metadata = {k: v for k, v in metadata.items() if k not in ("signature", "hotkey")}
    if edit_header:
        edit_header(metadata)
    return wire.sign_safetensors(st_save(arrays, metadata=metadata), keypair)


def test_gradient_round_trip_is_bit_exact(setup):
    codec, shapes, packet, transmitted, miner, data = setup
    gradient = _decode(setup, data)
    assert (gradient.window, gradient.uid, gradient.hotkey) == (12, 3, miner.address)
    dense = gradient.dense()
    for name in shapes:
        assert torch.equal(dense[name], transmitted[name])
    expected_norm = float(torch.sqrt(sum((t.double() ** 2).sum() for t in transmitted.values())))
    assert gradient.norm == pytest.approx(expected_norm, rel=1e-9)
    assert len(data) <= wire.gradient_byte_limit(shapes, codec)


def test_object_is_still_plain_safetensors(setup):
    *_, data = setup
    arrays = st_load(data)
    assert set(arrays) == {"unary", "remainder", "codes", "tables", "rice_params", "unary_bits"}


def test_expected_values_are_enforced(setup):
    *_, data = setup
    for overrides, reason in ((dict(window=13), "wrong_window"), (dict(uid=4), "wrong_uid"),
                              (dict(base_model_hash=OTHER_BASE), "wrong_base_model"),
                              (dict(hotkey=Keypair.generate().address), "wrong_hotkey")):
        with pytest.raises(wire.WireError) as info:
            _decode(setup, data, **overrides)
        assert info.value.reason == reason


def test_norm_bound(setup):
    *_, data = setup
    norm = _decode(setup, data).norm
    assert _decode(setup, data, norm_bound=norm * 1.01).norm == norm
    with pytest.raises(wire.WireError) as info:
        _decode(setup, data, norm_bound=norm * 0.99)
    assert info.value.reason == "norm_bound"


def test_gradient_byte_limit_covers_the_worst_valid_packet():
    # One dense chunk per tensor with k = chunk size: every index kept, the largest possible streams.
    codec = CompressionConfig(tile=4, topk=16, value_bits=8)
    shapes = {"a": (8, 8), "b": (16,)}
    generator = torch.Generator().manual_seed(1)
    packet, _ = encode_tensors({n: torch.randn(s, generator=generator) for n, s in shapes.items()}, codec)
    data = wire.encode_gradient(packet, Keypair.generate(), 0, 0, BASE)
    assert len(data) <= wire.gradient_byte_limit(shapes, codec)
    wire.decode_gradient(data, shapes, codec)


def test_signed_json_round_trip_and_tamper():
    key = Keypair.generate()
    raw = wire.sign_json({"wire_format": wire.WIRE_VERSION, "kind": "x", "n": 1}, key)
    assert wire.verify_json(raw, expected_hotkey=key.address, expected_kind="x")["n"] == 1
    for tampered, reason in ((raw.replace(b'"n":1', b'"n":2'), "bad_signature"),
                             (raw.replace(b'"n":1', b'"n": 1'), "non_canonical_header"),
                             (raw[:-1], "bad_header")):
        with pytest.raises(wire.WireError) as info:
            wire.verify_json(tampered)
        assert info.value.reason == reason
    upper = json.loads(raw)
    upper["signature"] = upper["signature"].upper()
    with pytest.raises(wire.WireError) as info:
        wire.verify_json(wire.canonical_json(upper))
    assert info.value.reason == "bad_signature_format"


def _aggregate_chain(setup, windows):
    codec, shapes, packet, _, _, _ = setup
    lead = Keypair.from_seed(b"\x01" * 32)
    miners = [Keypair.from_seed(bytes([10 + i]) * 32) for i in range(2)]
    genesis = "11" * 32
    prev, model, manifests, objects = wire.GENESIS_PREV, genesis, [], {}
    for step, window in enumerate(windows):
        grads = [wire.encode_gradient(packet, kp, window, uid, model) for uid, kp in enumerate(miners)]
        result = f"{step + 0x20:02x}" * 32
        obj = wire.encode_aggregate(window, grads, lead, base_model_hash=model, result_model_hash=result,
                                    prev_aggregate_sha256=prev)
        manifests.append(wire.aggregate_manifest(obj, lead))
        objects[window] = obj
        prev, model = wire.sha256_hex(obj), result
    return lead, genesis, manifests, objects


def test_aggregate_round_trip_carries_verified_miner_objects(setup):
    codec, shapes, _, transmitted, _, _ = setup
    lead, genesis, manifests, objects = _aggregate_chain(setup, [4])
    aggregate = wire.decode_aggregate(objects[4], shapes, codec, max_parts=8, window=4, hotkey=lead.address)
    assert [p.uid for p in aggregate.parts] == [0, 1]
    assert aggregate.base_model_hash == genesis and aggregate.prev_aggregate_sha256 == wire.GENESIS_PREV
    for gradient, part in zip(aggregate.gradients, aggregate.parts):
        assert gradient.hotkey == part.hotkey and gradient.sha256 == part.gradient_sha256
        assert torch.equal(gradient.dense()[next(iter(shapes))], transmitted[next(iter(shapes))])
    with pytest.raises(wire.WireError) as info:
        wire.decode_aggregate(objects[4], shapes, codec, max_parts=1)
    assert info.value.reason in ("too_large", "bad_metadata")


def test_aggregate_with_a_forged_part_is_rejected(setup):
    codec, shapes, packet, _, _, _ = setup
    lead, victim, forger = Keypair.generate(), Keypair.generate(), Keypair.generate()
    good = wire.encode_gradient(packet, victim, 4, 0, BASE)
    forged = _resign(good, forger)
    # The lead lists the forged object under the victim's hotkey: the part's signature fails.
    obj = wire.encode_aggregate(4, [forged], lead, base_model_hash=BASE, result_model_hash=BASE,
                                prev_aggregate_sha256=wire.GENESIS_PREV)
    header_len = struct.unpack("<Q", obj[:8])[0]
    header = json.loads(obj[8:8 + header_len])
    parts = json.loads(header["__metadata__"]["parts"])
    parts[0]["hotkey"] = victim.address
    metadata = {k: v for k, v in header["__metadata__"].items() if k not in ("signature", "hotkey")}
    metadata["parts"] = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    relisted = wire.sign_safetensors(st_save(st_load(obj), metadata=metadata), lead)
    with pytest.raises(wire.WireError) as info:
        wire.decode_aggregate(relisted, shapes, codec, max_parts=4)
    assert info.value.reason == "part_wrong_hotkey"


def test_lineage_walks_from_genesis_and_detects_breaks(setup):
    lead, genesis, manifests, objects = _aggregate_chain(setup, [1, 2, 4])
    lineage = wire.verify_lineage(manifests, genesis, {lead.address}, objects)
    assert lineage.windows == [1, 2, 4]
    assert lineage.head_aggregate_sha256 == wire.sha256_hex(objects[4])
    for broken in ([manifests[0], manifests[2]], [manifests[1], manifests[2]], [manifests[0], manifests[0]]):
        with pytest.raises(wire.WireError) as info:
            wire.verify_lineage(broken, genesis)
        assert info.value.reason == "broken_lineage"
    with pytest.raises(wire.WireError) as info:
        wire.verify_lineage(manifests, "22" * 32)
    assert info.value.reason == "broken_lineage"
    with pytest.raises(wire.WireError) as info:
        wire.verify_lineage(manifests, genesis, {Keypair.generate().address})
    assert info.value.reason == "wrong_hotkey"
    with pytest.raises(wire.WireError) as info:
        wire.verify_lineage(manifests, genesis, None, {2: objects[1]})
    assert info.value.reason == "part_mismatch"


# --- fuzz -------------------------------------------------------------------------------------

class _Exploit:
    """Unpickling this would create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _structural_mutants(setup, attacker: Keypair, rng: random.Random):
    """Validly signed (by their author) but malformed objects, with the reason each must get."""
    codec, shapes, packet, _, miner, data = setup

    def nan_table(a):
        t = a["tables"].copy()
        t[rng.randrange(t.shape[0]), rng.randrange(t.shape[1])] = rng.choice([np.nan, np.inf, -np.inf])
        a["tables"] = t

    def huge_table(a):
        a["tables"] = a["tables"] * np.float32(1e6)

    def bad_dtype(a):
        a["tables"] = a["tables"].astype(np.float64)

    def drop_tensor(a):
        del a[rng.choice(sorted(a))]

    def extra_tensor(a):
        a["extra"] = np.zeros(3, dtype=np.uint8)

    def rice_param(a):
        r = a["rice_params"].copy()
        r[rng.randrange(r.size)] = rng.choice([17, 255])
        a["rice_params"] = r

    def unary_bits(a):
        u = a["unary_bits"].copy()
        u[rng.randrange(u.size)] += rng.choice([-9, 8, 1 << 40])
        a["unary_bits"] = u

    def unary_flip(a):
        # Flip a bit inside the coded part of a tensor's unary stream: the count of stop bits
        # changes, so the chunk no longer holds exactly k indices.
        lengths = (a["unary_bits"] + 7) // 8
        i = rng.randrange(lengths.size)
        start = int(lengths[:i].sum())
        bit = rng.randrange(int(a["unary_bits"][i]))
        u = a["unary"].copy()
        u[start + bit // 8] ^= np.uint8(0x80 >> (bit % 8))
        a["unary"] = u

    def shorter_codes(a):
        a["codes"] = a["codes"][:-1]

    def wrong_shape(a):
        a["tables"] = a["tables"].reshape(-1)

    mutants = [
        ("non_finite", dict(edit_arrays=nan_table), {}),
        ("norm_bound", dict(edit_arrays=huge_table), {"norm_bound": 1e4}),
        ("bad_dtype", dict(edit_arrays=bad_dtype), {}),
        ("bad_tensors", dict(edit_arrays=drop_tensor), {}),
        ("bad_tensors", dict(edit_arrays=extra_tensor), {}),
        ("bad_indices", dict(edit_arrays=rice_param), {}),
        ("bad_indices|bad_length", dict(edit_arrays=unary_bits), {}),
        ("bad_indices", dict(edit_arrays=unary_flip), {}),
        ("bad_length", dict(edit_arrays=shorter_codes), {}),
        ("bad_shape", dict(edit_arrays=wrong_shape), {}),
        ("wrong_model", dict(edit_header=lambda m: m.update(layout_sha256="0" * 64)), {}),
        ("bad_codec", dict(edit_header=lambda m: m.update(codec=m["codec"].replace('"topk": 64', '"topk": 32'))), {}),
        ("wrong_window", dict(edit_header=lambda m: m.update(window="13")), {}),
        ("bad_metadata", dict(edit_header=lambda m: m.update(window="012")), {}),
        ("wrong_kind", dict(edit_header=lambda m: m.update(kind="aggregate")), {}),
        ("wrong_version", dict(edit_header=lambda m: m.update(wire_format="tessera-wire-v0")), {}),
        ("header_too_large", dict(edit_header=lambda m: m.update(pad="x" * 70000)), {}),
    ]
    name, edits, extra = rng.choice(mutants)
    return name, _resign(data, attacker, **edits), extra


def _unsigned_mutation(data: bytes, rng: random.Random, marker: str) -> tuple[str, bytes]:
    kind = rng.choice(["bitflip", "bitflip", "bitflip", "truncate", "append", "bytes", "header_len",
                       "signature", "hotkey", "pickle", "random", "splice"])
    b = bytearray(data)
    if kind == "bitflip":
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(b))
            b[position] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        b = b[:rng.randrange(len(b))]
    elif kind == "append":
        b += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    elif kind == "bytes":
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif kind == "header_len":
        b[:8] = struct.pack("<Q", rng.choice([0, 7, 1 << 20, 1 << 40, (1 << 64) - 1, rng.randrange(1 << 16)]))
    elif kind == "signature":
        text = bytes(b)
        start = text.index(b'"signature":"') + len(b'"signature":"')
        forged = Keypair.generate().sign(os.urandom(32)).hex() if rng.random() < 0.5 else os.urandom(64).hex()
        b[start:start + 128] = forged.encode()
    elif kind == "hotkey":
        text = bytes(b)
        start = text.index(b'"hotkey":"') + len(b'"hotkey":"')
        end = text.index(b'"', start)
        b[start:end] = Keypair.generate().address.encode()
    elif kind == "pickle":
        payload = pickle.dumps(_Exploit(marker), protocol=rng.choice([2, 4, 5]))
        b = bytearray(payload if rng.random() < 0.5 else data[:8 + rng.randrange(64)] + payload)
    elif kind == "random":
        b = bytearray(os.urandom(rng.randint(0, 4096)))
    elif kind == "splice":
        i, j = sorted(rng.randrange(len(b)) for _ in range(2))
        b = b[:i] + b[j:] + b[i:j]
    return kind, bytes(b)


def run_fuzz(setup, count: int, seed: int, marker: str) -> dict:
    """Mutate the gradient ``count`` times; returns counts of crashes, acceptances and reasons."""
    rng = random.Random(seed)
    attacker = Keypair.from_seed(b"\x66" * 32)
    *_, data = setup
    reasons: collections.Counter = collections.Counter()
    crashes, changed_accepted, wrong_reason = [], 0, []
    for _ in range(count):
        if rng.random() < 0.25:
            # The attacker's own validly signed objects: read without an expected hotkey, so that
            # they reach the deep checks instead of stopping at wrong_hotkey.
            expected, mutated, extra = _structural_mutants(setup, attacker, rng)
            hotkey = None
        else:
            kind, mutated = _unsigned_mutation(data, rng, marker)
            expected, extra = None, {}
            hotkey = setup[4].address if rng.random() < 0.5 else None  # half as a validator reads them
        try:
            gradient = _decode(setup, mutated, hotkey=hotkey, **extra)
            gradient.dense()
            if mutated != data:
                changed_accepted += 1
        except wire.WireError as exc:
            reasons[exc.reason] += 1
            if expected is not None and exc.reason not in expected.split("|"):
                wrong_reason.append((expected, exc.reason))
        except Exception as exc:  # any other exception is a crash of the reader
            crashes.append(repr(exc))
    return {"count": count, "crashes": crashes, "changed_accepted": changed_accepted,
            "wrong_reason": wrong_reason, "reasons": dict(reasons)}


def test_fuzz_10000_mutations(setup, tmp_path):
    marker = tmp_path / "pwned"
    result = run_fuzz(setup, 10_000, seed=2026, marker=str(marker))
    assert result["crashes"] == []
    assert result["changed_accepted"] == 0
    assert result["wrong_reason"] == []
    assert sum(result["reasons"].values()) == 10_000
    assert not marker.exists(), "a pickle payload was executed"
    # The mix reaches the deep checks, not just the signature.
    for reason in ("bad_signature", "bad_header", "truncated", "non_finite", "bad_indices", "norm_bound"):
        assert result["reasons"].get(reason, 0) > 0, reason


def test_pickle_payload_is_rejected_not_executed(setup, tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Exploit(str(marker)))
    with pytest.raises(wire.WireError) as info:
        _decode(setup, payload)
    assert info.value.reason in ("header_too_large", "truncated", "bad_header")
    assert not marker.exists()


def test_signature_with_whitespace_is_rejected(setup):
    # bytes.fromhex skips whitespace, so "<sig>\n" would decode to the same signature.
    *_, data = setup
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    header["__metadata__"]["signature"] += "\n"
    text = wire.canonical_json(header)
    text += b" " * (-len(text) % 8)
    forged = struct.pack("<Q", len(text)) + text + data[8 + header_len:]
    with pytest.raises(wire.WireError) as info:
        _decode(setup, forged)
    assert info.value.reason == "bad_signature_format"


def test_numbers_that_overflow_are_rejected_with_a_reason(setup):
    *_, data = setup
    (header_len,) = struct.unpack("<Q", data[:8])
    text = data[8:8 + header_len].replace(b'"shape":[', b'"shape":[1e400,', 1)
    forged = struct.pack("<Q", len(text)) + text + data[8 + header_len:]
    for bad in (forged, b'{"hotkey":1e999}'):
        with pytest.raises(wire.WireError) as info:
            if bad is forged:
                _decode(setup, bad)
            else:
                wire.verify_json(bad)
        assert info.value.reason == "bad_header"


def test_bytearray_input_is_accepted(setup):
    *_, data = setup
    assert _decode(setup, bytearray(data)).sha256 == wire.sha256_hex(data)


@pytest.mark.parametrize("use_dct", [False, True])
def test_dense_equals_the_codec_decoder_on_odd_shapes(use_dct):
    from subnet.compression.codec import decode_packet
    codec = CompressionConfig(tile=8, topk=5, value_bits=3, use_dct=use_dct)
    shapes = {"matrix": (24, 40), "odd": (9, 14), "cube": (4, 6, 10), "vector": (70,), "tiny": (3,)}
    generator = torch.Generator().manual_seed(3)
    packet, transmitted = encode_tensors({n: torch.randn(s, generator=generator) for n, s in shapes.items()}, codec)
    gradient = wire.decode_gradient(wire.encode_gradient(packet, Keypair.generate(), 0, 0, BASE), shapes, codec)
    dense, reference = gradient.dense(), decode_packet(packet)
    for name in shapes:
        assert torch.equal(dense[name], reference[name]) and torch.equal(dense[name], transmitted[name]), name
