"""Wire format: signed safetensors and JSON, gradients, aggregates, lineage, and the decoder fuzz."""
from __future__ import annotations

import collections
import json
import math
import os
import pickle
import random
import struct
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from subnet.compression.codec import Packet, decode_packet, encode_tensors
from subnet.compression.spec import PACKET_MAX_HEADER_BYTES, CodecSpec
from subnet.config import CompressionConfig, load_preset
from subnet.hashing import sha256_hex
from subnet.keys import SR25519, CoreKeypair, Keypair
from subnet.model import param_shapes
from subnet.wire.aggregate import (
    GENESIS_PREV,
    AggregateExpectation,
    aggregate_manifest,
    decode_aggregate,
    encode_aggregate,
    verify_lineage,
)
from subnet.wire.gradient import GradientExpectation, decode_gradient, encode_gradient
from subnet.wire.signing import (
    ANY_SIGNER,
    WIRE_VERSION,
    WireError,
    canonical_json,
    sign_json,
    sign_safetensors,
    verify_json,
)

BASE = "ab" * 32
OTHER_BASE = "cd" * 32


@dataclass(frozen=True)
class WireSetup:
    """The tiny model's spec, one encoded packet, what it transmits, and its signed gradient object."""
    spec: CodecSpec
    packet: Packet
    transmitted: dict[str, torch.Tensor]
    miner: Keypair
    data: bytes  # signed by `miner` for window 12, uid 3, base model BASE


def make_setup() -> WireSetup:
    preset = load_preset("tiny")
    spec = CodecSpec(param_shapes(preset.model), preset.compression)
    generator = torch.Generator().manual_seed(7)
    tensors = {name: torch.randn(shape, generator=generator) for name, shape in spec.shapes.items()}
    packet, transmitted = encode_tensors(tensors, preset.compression)
    miner = Keypair.from_seed(bytes(range(32)))
    data = encode_gradient(packet, miner, window=12, uid=3, base_model_hash=BASE)
    return WireSetup(spec=spec, packet=packet, transmitted=transmitted, miner=miner, data=data)


def _shared_scope(fixture_name: str, config) -> str:
    """Module-wide normally; per test under bench/mutation.py, whose mutmut credits a code path only
    to the test that first built a shared fixture, and would then not run the others against it."""
    return "function" if os.environ.get("TESSERA_MUTATION") else "module"


@pytest.fixture(scope=_shared_scope)
def setup() -> WireSetup:
    return make_setup()


def _expect(setup: WireSetup, **overrides) -> GradientExpectation:
    fields = dict(window=12, uid=3, hotkey=setup.miner.address, base_model_hash=BASE, norm_bound=math.inf)
    fields.update(overrides)
    return GradientExpectation(**fields)


def _decode(setup: WireSetup, data, **overrides):
    return decode_gradient(data, setup.spec, _expect(setup, **overrides))


def _read_header(data: bytes) -> dict:
    (header_len,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + header_len])


def _resign(data: bytes, keypair: Keypair, edit_header=None, edit_arrays=None) -> bytes:
    """An attacker's own, validly signed object built from ``data`` with edits."""
    metadata = _read_header(data)["__metadata__"]
    arrays = st_load(data)
    if edit_arrays:
        edit_arrays(arrays)
    metadata = {k: v for k, v in metadata.items() if k not in ("signature", "hotkey")}
    if edit_header:
        edit_header(metadata)
    return sign_safetensors(st_save(arrays, metadata=metadata), keypair)


def test_gradient_round_trip_is_bit_exact(setup):
    gradient = _decode(setup, setup.data)
    assert (gradient.window, gradient.uid, gradient.hotkey) == (12, 3, setup.miner.address)
    assert gradient.base_model_hash == BASE and gradient.sha256 == sha256_hex(setup.data)
    dense = gradient.dense()
    for name in setup.spec.shapes:
        assert torch.equal(dense[name], setup.transmitted[name])
    expected_norm = float(torch.sqrt(sum((t.double() ** 2).sum() for t in setup.transmitted.values())))
    assert gradient.norm == pytest.approx(expected_norm, rel=1e-9)
    assert len(setup.data) <= setup.spec.max_gradient_bytes


def test_object_is_still_plain_safetensors(setup):
    arrays = st_load(setup.data)
    assert set(arrays) == {"unary", "remainder", "codes", "tables", "rice_params", "unary_bits"}


def test_expected_values_are_enforced(setup):
    for overrides, reason in ((dict(window=13), "wrong_window"), (dict(uid=4), "wrong_uid"),
                              (dict(base_model_hash=OTHER_BASE), "wrong_base_model"),
                              (dict(hotkey=Keypair.generate().address), "wrong_hotkey")):
        with pytest.raises(WireError) as info:
            _decode(setup, setup.data, **overrides)
        assert info.value.reason == reason, overrides


def test_any_signer_accepts_another_author_but_not_a_forgery(setup):
    other = _resign(setup.data, Keypair.generate())
    assert _decode(setup, other, hotkey=ANY_SIGNER).hotkey != setup.miner.address
    with pytest.raises(WireError) as info:
        _decode(setup, other)
    assert info.value.reason == "wrong_hotkey"
    header = _read_header(other)
    header["__metadata__"]["hotkey"] = setup.miner.address  # claims the miner, keeps the other's signature
    text = canonical_json(header)
    text += b" " * (-len(text) % 8)
    forged = struct.pack("<Q", len(text)) + text + other[8 + struct.unpack("<Q", other[:8])[0]:]
    with pytest.raises(WireError) as info:
        _decode(setup, forged, hotkey=ANY_SIGNER)
    assert info.value.reason == "bad_signature"


def test_norm_bound(setup):
    norm = _decode(setup, setup.data).norm
    assert _decode(setup, setup.data, norm_bound=norm * 1.01).norm == norm
    with pytest.raises(WireError) as info:
        _decode(setup, setup.data, norm_bound=norm * 0.99)
    assert info.value.reason == "norm_bound"


def test_a_norm_exactly_at_the_bound_is_accepted(setup):
    norm = _decode(setup, setup.data).norm
    assert _decode(setup, setup.data, norm_bound=norm).norm == norm
    with pytest.raises(WireError, match=r"^norm_bound: update norm .* exceeds the bound"):
        _decode(setup, setup.data, norm_bound=math.nextafter(norm, 0))


@pytest.mark.parametrize("value, ok", [
    ("0", 0), ("7", 7), ("9" * 18, 10**18 - 1), ("1" + "0" * 18, None), ("01", None), ("00", None), ("", None),
    ("abc", None), ("１２", None), ("+1", None), ("-1", None), (" 1", None), ("1.0", None), (12, None), (None, None),
])
def test_metadata_integers_are_plain_ascii_decimals(value, ok):
    from subnet.wire.gradient import uint_field
    if ok is not None:
        assert uint_field({"window": value}, "window") == ok
    else:
        with pytest.raises(WireError, match=r"^bad_metadata: metadata 'window' must be a non-negative decimal integer$"):
            uint_field({"window": value}, "window")


def test_a_gradient_without_a_base_model_hash_is_refused(setup):
    for edit in (lambda m: m.pop("base_model_hash"), lambda m: m.update(base_model_hash="AB" * 32)):
        forged = _resign(setup.data, setup.miner, edit_header=edit)
        with pytest.raises(WireError, match="^bad_metadata: base_model_hash must be 64 lowercase hex digits$"):
            _decode(setup, forged)


def test_the_writer_refuses_what_a_reader_would(setup):
    with pytest.raises(ValueError, match="^base_model_hash must be 64 lowercase hex digits$"):
        encode_gradient(setup.packet, setup.miner, 1, 2, "not-a-hash")
    with pytest.raises(ValueError, match="^norm_bound must not be NaN$"):
        _expect(setup, norm_bound=float("nan"))


def test_decoding_without_an_expectation_is_impossible(setup):
    with pytest.raises(TypeError):
        GradientExpectation(window=1, uid=0, hotkey=setup.miner.address, base_model_hash=BASE)
    with pytest.raises(TypeError):
        decode_gradient(setup.data, setup.spec)
    with pytest.raises(TypeError):
        AggregateExpectation(window=1, hotkey=setup.miner.address, base_model_hash=BASE,
                             prev_aggregate_sha256=GENESIS_PREV, max_parts=4)
    with pytest.raises(TypeError):
        decode_aggregate(setup.data, setup.spec)
    raw = sign_json({"wire_format": WIRE_VERSION, "kind": "x"}, setup.miner)
    with pytest.raises(TypeError):
        verify_json(raw)
    with pytest.raises(TypeError):
        verify_json(raw, expected_kind="x")  # the author must be named too (or ANY_SIGNER)
    with pytest.raises(TypeError):
        verify_json(raw, setup.miner.address, "x")  # keyword-only: no positional mix-ups
    with pytest.raises(TypeError):
        verify_lineage([], "11" * 32)


def _packet_with_kept_positions(spec: CodecSpec, pattern: str, rng: np.random.Generator):
    """A packet whose kept positions per chunk follow `pattern` (no DCT: positions are the values'
    own): the index streams' extremes are all-kept, gaps as wide as the chunk allows, spread, random."""
    tensors = {}
    for name, layout in spec.layouts.items():
        s, k = layout.chunk_size, layout.k
        chunks = np.full((layout.num_chunks, s), 1e-6, dtype=np.float32)
        for row in chunks:
            if pattern == "ends":          # one index at 0, the rest packed at the far end: the longest gap
                picks = [0, *range(s - k + 1, s)]
            elif pattern == "spread":
                picks = np.linspace(0, s - 1, k).astype(int)
            elif pattern == "last":        # all at the end: the first gap is s - k
                picks = range(s - k, s)
            else:
                picks = rng.choice(s, size=k, replace=False)
            row[list(picks)] = rng.uniform(1.0, 2.0, size=k) * rng.choice([-1.0, 1.0], size=k)
        tensors[name] = layout.from_chunks(torch.from_numpy(chunks))
    return encode_tensors(tensors, spec.codec)[0]


@pytest.mark.parametrize("tile, topk, bits", [(4, 16, 8), (4, 1, 8), (8, 3, 2), (8, 32, 4), (16, 1, 1), (16, 200, 3)])
@pytest.mark.parametrize("pattern", ["ends", "spread", "last", "random"])
def test_gradient_byte_limit_covers_the_largest_valid_packets(tile, topk, bits, pattern):
    codec = CompressionConfig(tile=tile, topk=topk, value_bits=bits, use_dct=False)
    spec = CodecSpec({"a": (32, 48), "b": (100,), "c": (7, 5)}, codec)
    packet = _packet_with_kept_positions(spec, pattern, np.random.default_rng(tile * topk))
    author = Keypair.generate()
    data = encode_gradient(packet, author, 2**40, 2**20, BASE)       # long window and uid digits too
    assert len(data) <= spec.max_gradient_bytes, (len(data), spec.max_gradient_bytes)
    # The header has its own cap; the tensors' part of the bound must hold by itself too (with a
    # small model the header cap's slack would hide an under-counted stream).
    (header_len,) = struct.unpack("<Q", data[:8])
    assert header_len <= PACKET_MAX_HEADER_BYTES
    assert len(data) - 8 - header_len <= spec.max_gradient_bytes - 8 - PACKET_MAX_HEADER_BYTES
    gradient = decode_gradient(data, spec, GradientExpectation(window=2**40, uid=2**20, hotkey=author.address,
                                                               base_model_hash=BASE, norm_bound=math.inf))
    for name, layout in spec.layouts.items():              # it is the packet we meant to build
        assert gradient.indices[name].shape == (layout.num_chunks, layout.k)


def test_signed_json_round_trip_and_tamper():
    key = Keypair.generate()
    raw = sign_json({"wire_format": WIRE_VERSION, "kind": "x", "n": 1}, key)
    assert verify_json(raw, expected_hotkey=key.address, expected_kind="x")["n"] == 1
    upper = json.loads(raw)
    upper["signature"] = upper["signature"].upper()
    for tampered, reason in ((raw.replace(b'"n":1', b'"n":2'), "bad_signature"),
                             (raw.replace(b'"n":1', b'"n": 1'), "non_canonical_header"),
                             (raw[:-1], "bad_header"),
                             (canonical_json(upper), "bad_signature_format")):
        with pytest.raises(WireError) as info:
            verify_json(tampered, expected_hotkey=key.address, expected_kind="x")
        assert info.value.reason == reason
    for hotkey, kind, reason in ((Keypair.generate().address, "x", "wrong_hotkey"), (key.address, "y", "wrong_kind")):
        with pytest.raises(WireError) as info:
            verify_json(raw, expected_hotkey=hotkey, expected_kind=kind)
        assert info.value.reason == reason


def test_signed_json_without_a_signer_or_with_a_bad_hotkey_is_refused():
    key = Keypair.generate()
    signed = json.loads(sign_json({"wire_format": WIRE_VERSION, "kind": "x", "n": 1}, key))
    unsigned = {k: v for k, v in signed.items() if k != "signature"}
    no_hotkey = {k: v for k, v in signed.items() if k != "hotkey"}
    not_an_address = {**signed, "hotkey": "5" + "z" * 47}
    for document, reason in ((unsigned, "unsigned"), (no_hotkey, "unsigned"), (not_an_address, "bad_hotkey")):
        with pytest.raises(WireError) as info:
            verify_json(canonical_json(document), expected_hotkey=ANY_SIGNER, expected_kind="x")
        assert info.value.reason == reason, document


def test_canonical_json_is_sorted_compact_ascii_and_refuses_nan():
    assert canonical_json({"b": 1, "a": [True, None], "é": "ü"}) == b'{"a":[true,null],"b":1,"\\u00e9":"\\u00fc"}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def _signed_doc(key: Keypair, **fields) -> bytes:
    return sign_json({"wire_format": WIRE_VERSION, "kind": "x", **fields}, key)


def test_every_signed_json_refusal_names_its_problem():
    """Each refusal of verify_json provoked from hostile bytes; the message (anchored) says which."""
    key, other = Keypair.generate(), Keypair.generate()
    good = _signed_doc(key, n=1)
    document = json.loads(good)
    cases = [
        (good, dict(max_bytes=len(good) - 1), "too_large", rf"{len(good)} bytes exceeds the limit of {len(good) - 1}$"),
        (b"{not json", {}, "bad_header", r"document is not valid JSON"),
        (b"[1,2]", {}, "bad_header", r"document is not a JSON object$"),
        (good.replace(b'"n":1', b'"n": 1'), {}, "non_canonical_header", r"document is not in canonical form$"),
        (canonical_json({k: v for k, v in document.items() if k != "signature"}), {}, "unsigned",
         r"document carries no hotkey or no signature$"),
        (canonical_json({**document, "signature": "AB" * 64}), {}, "bad_signature_format",
         r"signature must be 128 lowercase hex digits$"),
        (canonical_json({**document, "hotkey": "5" + "z" * 47}), {}, "bad_hotkey",
         r"hotkey '5z+' is not a valid SS58 address$"),
        (good, dict(expected_hotkey=other.address), "wrong_hotkey", rf"signed by {key.address}, expected {other.address}$"),
        (canonical_json({**document, "hotkey": other.address}), dict(expected_hotkey=other.address), "bad_signature",
         rf"signature does not verify for ed25519 hotkey {other.address}$"),
        (canonical_json({**document, "scheme": "ed25519"}), {}, "bad_scheme",
         r"signature scheme 'ed25519' is not 'sr25519'$"),
        (canonical_json({**document, "scheme": ["sr25519"]}), {}, "bad_scheme",
         r"signature scheme \"\['sr25519'\]\" is not 'sr25519'$"),
        (sign_json({"wire_format": "tessera-wire-v0", "kind": "x"}, key), {}, "wrong_version",
         rf"wire_format 'tessera-wire-v0', expected '{WIRE_VERSION}'$"),
        (good, dict(expected_kind="y"), "wrong_kind", r"kind 'x', expected 'y'$"),
    ]
    for data, overrides, reason, message in cases:
        arguments = {"expected_hotkey": key.address, "expected_kind": "x", **overrides}
        with pytest.raises(WireError, match=rf"^{reason}: {message}") as info:
            verify_json(data, **arguments)
        assert info.value.reason == reason
    assert verify_json(good, expected_hotkey=key.address, expected_kind="x", max_bytes=len(good))["n"] == 1


def test_re_signing_a_signed_document_replaces_its_signature():
    first, second = Keypair.generate(), Keypair.generate()
    signed = json.loads(_signed_doc(first, n=2))
    again = sign_json(signed, second)                       # carries first's signature in: replaced, not signed
    assert verify_json(again, expected_hotkey=second.address, expected_kind="x")["n"] == 2


def _reframe(data: bytes, edit_metadata) -> bytes:
    """The object with its metadata edited and the header put back in canonical form (signature kept):
    what an attacker who cannot sign can still produce."""
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    edit_metadata(header["__metadata__"])
    text = canonical_json(header)
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + length:]


def test_every_metadata_field_of_a_signed_object_is_covered_by_its_signature(setup):
    from subnet.wire.signing import verify_safetensors
    limits = dict(max_bytes=1 << 24, max_header_bytes=1 << 20, expected_hotkey=setup.miner.address)
    assert verify_safetensors(setup.data, **limits).hotkey == setup.miner.address
    for field in sorted(set(_read_header(setup.data)["__metadata__"]) - {"signature", "hotkey"}):
        edited = _reframe(setup.data, lambda m: m.update({field: m[field] + "0"}))
        with pytest.raises(WireError, match="^bad_signature: signature does not verify") as info:
            verify_safetensors(edited, **limits)
        assert info.value.reason == "bad_signature", field
    unsigned = _reframe(setup.data, lambda m: m.pop("signature"))
    with pytest.raises(WireError, match="^unsigned: object carries no hotkey or no signature$"):
        verify_safetensors(unsigned, **limits)
    (length,) = struct.unpack("<Q", setup.data[:8])
    header = json.loads(setup.data[8:8 + length])
    unsorted = json.dumps(dict(reversed(list(header.items()))), separators=(",", ":")).encode()
    unsorted += b" " * (-len(unsorted) % 8)                 # well framed, every byte signed, keys out of order
    reordered = struct.pack("<Q", len(unsorted)) + unsorted + setup.data[8 + length:]
    with pytest.raises(WireError, match="^non_canonical_header: header is not in canonical form$"):
        verify_safetensors(reordered, **limits)


def test_re_signing_a_signed_object_replaces_its_signature(setup):
    from subnet.wire.signing import verify_safetensors
    other = Keypair.generate()
    again = sign_safetensors(setup.data, other)
    signed = verify_safetensors(again, 1 << 24, 1 << 20, other.address)
    assert signed.hotkey == other.address and signed.metadata["window"] == _read_header(setup.data)["__metadata__"]["window"]


def test_verify_json_any_signer_accepts_any_author_but_not_a_forgery():
    alice, bob = Keypair.generate(), Keypair.generate()
    for author in (alice, bob):
        raw = sign_json({"wire_format": WIRE_VERSION, "kind": "x", "n": 1}, author)
        assert verify_json(raw, expected_hotkey=ANY_SIGNER, expected_kind="x")["hotkey"] == author.address
    # Bob's signature under Alice's name: a valid signer form, but not Alice's signature.
    document = json.loads(sign_json({"wire_format": WIRE_VERSION, "kind": "x", "n": 1}, bob))
    document["hotkey"] = alice.address
    with pytest.raises(WireError) as info:
        verify_json(canonical_json(document), expected_hotkey=ANY_SIGNER, expected_kind="x")
    assert info.value.reason == "bad_signature"
    # ANY_SIGNER is a marker, not a hotkey: its text is not accepted as "any".
    raw = sign_json({"wire_format": WIRE_VERSION, "kind": "x"}, alice)
    with pytest.raises(WireError) as info:
        verify_json(raw, expected_hotkey=str(ANY_SIGNER), expected_kind="x")
    assert info.value.reason == "wrong_hotkey"


# --- aggregates and lineage ---------------------------------------------------------------------

LEAD = Keypair.from_seed(b"\x01" * 32)
GENESIS = "11" * 32


def _aggregate_chain(setup: WireSetup, windows):
    """Signed aggregates of two miners each for ``windows``, linked from genesis, and their manifests."""
    miners = [Keypair.from_seed(bytes([10 + i]) * 32) for i in range(2)]
    prev, model, manifests, objects = GENESIS_PREV, GENESIS, [], {}
    for step, window in enumerate(windows):
        grads = [encode_gradient(setup.packet, kp, window, uid, model) for uid, kp in enumerate(miners)]
        result = f"{step + 0x20:02x}" * 32
        obj = encode_aggregate(window, grads, LEAD, base_model_hash=model, result_model_hash=result,
                               prev_aggregate_sha256=prev)
        manifests.append(aggregate_manifest(obj, LEAD))
        objects[window] = obj
        prev, model = sha256_hex(obj), result
    return manifests, objects


def _aggregate_expect(**overrides) -> AggregateExpectation:
    fields = dict(window=4, hotkey=LEAD.address, base_model_hash=GENESIS, prev_aggregate_sha256=GENESIS_PREV,
                  max_parts=8, norm_bound=math.inf)
    fields.update(overrides)
    return AggregateExpectation(**fields)


@pytest.fixture(scope=_shared_scope)
def chain(setup):
    return _aggregate_chain(setup, [1, 2, 4])


def test_aggregate_round_trip_carries_verified_miner_objects(setup):
    _, objects = _aggregate_chain(setup, [4])
    aggregate = decode_aggregate(objects[4], setup.spec, _aggregate_expect())
    assert [p.uid for p in aggregate.parts] == [0, 1]
    assert aggregate.base_model_hash == GENESIS and aggregate.prev_aggregate_sha256 == GENESIS_PREV
    assert aggregate.sha256 == sha256_hex(objects[4]) and aggregate.hotkey == LEAD.address
    name = next(iter(setup.spec.shapes))
    for gradient, part in zip(aggregate.gradients, aggregate.parts):
        assert gradient.hotkey == part.hotkey and gradient.sha256 == part.gradient_sha256
        assert gradient.base_model_hash == GENESIS and gradient.window == 4
        assert torch.equal(gradient.dense()[name], setup.transmitted[name])
    with pytest.raises(WireError) as info:
        decode_aggregate(objects[4], setup.spec, _aggregate_expect(max_parts=1))
    assert info.value.reason == "bad_metadata"


def test_aggregate_expectations_are_enforced(setup, chain):
    manifests, objects = chain
    # The window-2 aggregate applies to the model window 1 produced and links to window 1's object.
    good = _aggregate_expect(window=2, base_model_hash="20" * 32, prev_aggregate_sha256=sha256_hex(objects[1]))
    assert decode_aggregate(objects[2], setup.spec, good).window == 2
    for overrides, reason in ((dict(window=3), "wrong_window"),
                              (dict(hotkey=Keypair.generate().address), "wrong_hotkey"),
                              (dict(base_model_hash=GENESIS), "wrong_base_model"),
                              (dict(prev_aggregate_sha256=GENESIS_PREV), "broken_lineage"),
                              (dict(prev_aggregate_sha256=sha256_hex(objects[4])), "broken_lineage")):
        fields = {**good.__dict__, **overrides}
        with pytest.raises(WireError) as info:
            decode_aggregate(objects[2], setup.spec, AggregateExpectation(**fields))
        assert info.value.reason == reason, overrides


@pytest.mark.parametrize("part_window, part_base, reason", [(3, GENESIS, "part_wrong_window"),
                                                           (4, "99" * 32, "part_wrong_base_model")])
def test_an_aggregate_carrying_a_gradient_of_another_window_or_model_is_refused(setup, part_window, part_base,
                                                                                 reason):
    """Each part is checked as the miner's upload of this window against this model: a lead cannot
    slip in an old gradient, or one made against another model, under a correct aggregate header."""
    miners = [Keypair.from_seed(bytes([10 + i]) * 32) for i in range(2)]
    parts = [encode_gradient(setup.packet, miners[0], 4, 0, GENESIS),
             encode_gradient(setup.packet, miners[1], part_window, 1, part_base)]
    obj = encode_aggregate(4, parts, LEAD, base_model_hash=GENESIS, result_model_hash="21" * 32,
                           prev_aggregate_sha256=GENESIS_PREV)
    with pytest.raises(WireError) as info:
        decode_aggregate(obj, setup.spec, _aggregate_expect())
    assert info.value.reason == reason


def test_aggregate_parts_are_checked_against_the_norm_bound(setup):
    _, objects = _aggregate_chain(setup, [4])
    norm = decode_aggregate(objects[4], setup.spec, _aggregate_expect()).gradients[0].norm
    with pytest.raises(WireError) as info:
        decode_aggregate(objects[4], setup.spec, _aggregate_expect(norm_bound=norm * 0.99))
    assert info.value.reason == "part_norm_bound"


def test_aggregate_listing_a_uid_twice_is_refused(setup):
    # Two miners' valid gradients, both for uid 0: each part verifies, but uid 0 would count twice.
    miners = [Keypair.from_seed(bytes([30 + i]) * 32) for i in range(2)]
    grads = [encode_gradient(setup.packet, kp, 4, 0, GENESIS) for kp in miners]
    with pytest.raises(ValueError):  # an honest lead cannot make one
        encode_aggregate(4, grads, LEAD, base_model_hash=GENESIS, result_model_hash=BASE,
                         prev_aggregate_sha256=GENESIS_PREV)
    # A hostile lead edits the parts list of a valid aggregate and signs it again.
    distinct = [grads[0], encode_gradient(setup.packet, miners[1], 4, 1, GENESIS)]
    honest = encode_aggregate(4, distinct, LEAD, base_model_hash=GENESIS, result_model_hash=BASE,
                              prev_aggregate_sha256=GENESIS_PREV)

    def both_uid_zero(metadata):
        parts = json.loads(metadata["parts"])
        parts[1]["uid"] = 0
        metadata["parts"] = json.dumps(parts, sort_keys=True, separators=(",", ":"))

    hostile = _resign(honest, LEAD, edit_header=both_uid_zero)
    with pytest.raises(WireError) as info:
        decode_aggregate(hostile, setup.spec, _aggregate_expect())
    assert info.value.reason == "bad_metadata"
    assert [p.uid for p in decode_aggregate(honest, setup.spec, _aggregate_expect()).parts] == [0, 1]


def _two_part_aggregate(setup: WireSetup) -> bytes:
    miners = [Keypair.from_seed(bytes([40 + i]) * 32) for i in range(2)]
    grads = [encode_gradient(setup.packet, kp, 4, uid, GENESIS) for uid, kp in enumerate(miners)]
    return encode_aggregate(4, grads, LEAD, base_model_hash=GENESIS, result_model_hash=BASE,
                            prev_aggregate_sha256=GENESIS_PREV)


def _edit_parts(change):
    def edit(metadata):
        parts = json.loads(metadata["parts"])
        change(parts)
        metadata["parts"] = json.dumps(parts)
    return edit


def _set_part(index, **fields):
    return _edit_parts(lambda parts: parts[index].update(fields))


def _as_u8(array):
    return np.frombuffer(array.tobytes(), dtype=np.uint8)


MALFORMED_ENTRY = "^bad_metadata: malformed entry in the parts list$"


@pytest.mark.parametrize("edit_header, edit_arrays, reason", [
    (lambda m: m.update(parts="["), None, "^bad_header: parts is not valid JSON"),
    (lambda m: m.pop("parts"), None, "^bad_header: parts is not valid JSON"),
    (lambda m: m.update(parts="{}"), None, r"^bad_metadata: parts must be a list of at most 8 entries$"),
    (_edit_parts(lambda parts: parts.__setitem__(0, [1])), None, MALFORMED_ENTRY),
    (_edit_parts(lambda parts: parts[0].pop("hotkey")), None, MALFORMED_ENTRY),
    (_set_part(0, uid="0"), None, MALFORMED_ENTRY),
    (_set_part(0, uid=-1), None, MALFORMED_ENTRY),
    (_set_part(0, hotkey=5), None, MALFORMED_ENTRY),
    (_set_part(0, hotkey="5" + "z" * 47), None, MALFORMED_ENTRY),
    (_set_part(0, gradient_sha256="AB" * 32), None, MALFORMED_ENTRY),
    (_set_part(0, gradient_sha256="ab" * 32), None, "^part_mismatch: part 0 does not hash to its listed gradient_sha256$"),
    (lambda m: m.pop("base_model_hash"), None, "^bad_metadata: base_model_hash must be 64 lowercase hex digits$"),
    (lambda m: m.pop("result_model_hash"), None, "^bad_metadata: result_model_hash must be 64 lowercase hex digits$"),
    (lambda m: m.update(prev_aggregate_sha256="0" * 63), None,
     "^bad_metadata: prev_aggregate_sha256 must be 64 lowercase hex digits$"),
    (None, lambda a: a.update(part002=a["part000"]), r"^bad_tensors: aggregate tensors \['part000', 'part001', 'part002'\]"),
    (None, lambda a: a.update(part000=a["part000"].view(np.int8)), "^bad_dtype: part000 must be a 1-D U8 tensor$"),
    (None, lambda a: a.update(part000=a["part000"].reshape(1, -1)), "^bad_dtype: part000 must be a 1-D U8 tensor$"),
])
def test_every_refusal_of_a_hostile_leads_aggregate_names_its_problem(setup, edit_header, edit_arrays, reason):
    """A lead that signs what it likes: each malformed part of its aggregate is refused, with the reason
    and a message that says which part."""
    hostile = _resign(_two_part_aggregate(setup), LEAD, edit_header=edit_header, edit_arrays=edit_arrays)
    with pytest.raises(WireError, match=reason):
        decode_aggregate(hostile, setup.spec, _aggregate_expect())


def test_an_aggregate_of_exactly_max_parts_is_accepted(setup):
    obj = _two_part_aggregate(setup)
    assert len(decode_aggregate(obj, setup.spec, _aggregate_expect(max_parts=2)).parts) == 2
    with pytest.raises(WireError, match=r"^bad_metadata: parts must be a list of at most 1 entries$"):
        decode_aggregate(obj, setup.spec, _aggregate_expect(max_parts=1))


def test_the_lead_cannot_make_what_readers_refuse(setup):
    grads = [encode_gradient(setup.packet, Keypair.from_seed(b"\x33" * 32), 4, 0, GENESIS)]
    hashes = dict(base_model_hash=GENESIS, result_model_hash=BASE, prev_aggregate_sha256=GENESIS_PREV)
    for name in hashes:
        with pytest.raises(ValueError, match=f"^{name} must be 64 lowercase hex digits$"):
            encode_aggregate(4, grads, LEAD, **{**hashes, name: "x"})
    with pytest.raises(ValueError, match=r"^uid 0 is listed twice; readers refuse such an aggregate$"):
        encode_aggregate(4, grads * 2, LEAD, **hashes)
    import subnet.wire.aggregate as aggregate_module
    limit = aggregate_module.MAX_AGGREGATE_PARTS
    with pytest.raises(ValueError, match=rf"^an aggregate holds at most {limit} parts \(part000..part999\)$"):
        encode_aggregate(4, grads * (limit + 1), LEAD, **hashes)


def test_an_aggregate_of_the_part_limit_is_made(setup, monkeypatch):
    """The writer's limit is inclusive (checked with a small limit: 1000 real parts would take minutes)."""
    import subnet.wire.aggregate as aggregate_module
    monkeypatch.setattr(aggregate_module, "MAX_AGGREGATE_PARTS", 2)
    assert _read_header(_two_part_aggregate(setup))["part001"]["dtype"] == "U8"
    grads = [encode_gradient(setup.packet, Keypair.from_seed(b"\x34" * 32), 4, uid, GENESIS) for uid in range(3)]
    with pytest.raises(ValueError, match="at most 2 parts"):
        encode_aggregate(4, grads, LEAD, base_model_hash=GENESIS, result_model_hash=BASE,
                         prev_aggregate_sha256=GENESIS_PREV)


def test_an_aggregate_expectation_refuses_a_nan_norm_bound():
    with pytest.raises(ValueError, match="^norm_bound must not be NaN$"):
        _aggregate_expect(norm_bound=float("nan"))


def test_the_manifest_carries_the_documented_fields(setup):
    obj = _two_part_aggregate(setup)
    document = json.loads(aggregate_manifest(obj, LEAD))
    parts = json.loads(_read_header(obj)["__metadata__"]["parts"])
    assert {k: v for k, v in document.items() if k != "signature"} == {
        "wire_format": WIRE_VERSION, "kind": "aggregate_manifest", "window": 4, "aggregate_key": "aggregate-4.safetensors",
        "aggregate_sha256": sha256_hex(obj), "aggregate_size": len(obj), "base_model_hash": GENESIS,
        "result_model_hash": BASE, "prev_aggregate_sha256": GENESIS_PREV, "parts": parts, "hotkey": LEAD.address}
    from subnet.wire.aggregate import decode_manifest
    manifest = decode_manifest(aggregate_manifest(obj, LEAD), LEAD.address)
    assert (manifest.window, manifest.aggregate_size, manifest.aggregate_sha256, manifest.hotkey) == (
        4, len(obj), sha256_hex(obj), LEAD.address)
    assert (manifest.base_model_hash, manifest.result_model_hash, manifest.prev_aggregate_sha256) == (
        GENESIS, BASE, GENESIS_PREV)


@pytest.mark.parametrize("change, ok", [
    (dict(window=0), True), (dict(aggregate_size=1), True), (dict(window=-1), False), (dict(window="4"), False),
    (dict(window=True), False), (dict(aggregate_size=0), False), (dict(aggregate_size=-5), False),
    (dict(aggregate_size=None), False),
])
def test_manifest_window_and_size_must_be_plain_integers(change, ok):
    from subnet.wire.aggregate import decode_manifest
    document = {"wire_format": WIRE_VERSION, "kind": "aggregate_manifest", "window": 4,
                "aggregate_sha256": BASE, "aggregate_size": 100, "base_model_hash": GENESIS,
                "result_model_hash": BASE, "prev_aggregate_sha256": GENESIS_PREV, **change}
    raw = sign_json(document, LEAD)
    if ok:
        assert decode_manifest(raw, LEAD.address).window == document["window"]
    else:
        with pytest.raises(WireError, match="^bad_metadata: manifest window or size is malformed$"):
            decode_manifest(raw, LEAD.address)
    for key in ("aggregate_sha256", "base_model_hash", "result_model_hash", "prev_aggregate_sha256"):
        with pytest.raises(WireError, match="^bad_metadata: aggregate 4 manifest has malformed hashes$"):
            decode_manifest(sign_json({**document, "window": 4, "aggregate_size": 100, key: "x"}, LEAD), LEAD.address)


def test_aggregate_with_a_forged_part_is_rejected(setup):
    lead, victim, forger = Keypair.generate(), Keypair.generate(), Keypair.generate()
    good = encode_gradient(setup.packet, victim, 4, 0, BASE)
    forged = _resign(good, forger)
    # The lead lists the forged object under the victim's hotkey: the part's signature fails.
    obj = encode_aggregate(4, [forged], lead, base_model_hash=BASE, result_model_hash=BASE,
                           prev_aggregate_sha256=GENESIS_PREV)
    header = _read_header(obj)
    parts = json.loads(header["__metadata__"]["parts"])
    parts[0]["hotkey"] = victim.address
    metadata = {k: v for k, v in header["__metadata__"].items() if k not in ("signature", "hotkey")}
    metadata["parts"] = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    relisted = sign_safetensors(st_save(st_load(obj), metadata=metadata), lead)
    expect = _aggregate_expect(hotkey=lead.address, base_model_hash=BASE, max_parts=4)
    with pytest.raises(WireError) as info:
        decode_aggregate(relisted, setup.spec, expect)
    assert info.value.reason == "part_wrong_hotkey"


def test_lineage_walks_from_genesis_and_detects_breaks(setup, chain):
    manifests, objects = chain
    lineage = verify_lineage(manifests, GENESIS, GENESIS_PREV, {LEAD.address}, objects)
    assert lineage.windows == [1, 2, 4]
    assert lineage.head_aggregate_sha256 == sha256_hex(objects[4])
    assert lineage.head_model_hash == "22" * 32
    leads = {LEAD.address}
    for broken, message in (([manifests[0], manifests[2]], "aggregate 4 does not link to the previous aggregate"),
                            ([manifests[1], manifests[2]], "aggregate 2 does not link to the previous aggregate"),
                            ([manifests[0], manifests[0]], "window 1 does not follow window 1"),
                            # correctly linked, but the same window twice, or a window going back
                            (_aggregate_chain(setup, [1, 1])[0], "window 1 does not follow window 1"),
                            (_aggregate_chain(setup, [2, 1])[0], "window 1 does not follow window 2")):
        with pytest.raises(WireError, match=f"^broken_lineage: {message}$"):
            verify_lineage(broken, GENESIS, GENESIS_PREV, leads)
    with pytest.raises(WireError, match="^broken_lineage: aggregate 1 applies to a different model$"):
        verify_lineage(manifests, "22" * 32, GENESIS_PREV, leads)
    stranger = Keypair.generate().address
    with pytest.raises(WireError, match=f"^wrong_hotkey: aggregate 1 signed by {LEAD.address}, not a lead$"):
        verify_lineage(manifests, GENESIS, GENESIS_PREV, {stranger})
    with pytest.raises(WireError, match="^part_mismatch: aggregate 2 object does not match its manifest$"):
        verify_lineage(manifests, GENESIS, GENESIS_PREV, leads, {2: objects[1]})


# --- fuzz -------------------------------------------------------------------------------------

class _Exploit:
    """Unpickling this would create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _structural_mutants(setup: WireSetup, attacker: Keypair, rng: random.Random):
    """Validly signed (by their author) but malformed objects, with the reason each must get."""
    data = setup.data

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
        ("bad_codec", dict(edit_header=lambda m: m.update(codec=json.dumps(
            {**json.loads(m["codec"]), "topk": json.loads(m["codec"])["topk"] // 2}, sort_keys=True))), {}),
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


def run_fuzz(setup: WireSetup, count: int, seed: int, marker: str) -> dict:
    """Mutate the gradient ``count`` times; returns counts of crashes, acceptances and reasons."""
    rng = random.Random(seed)
    attacker = Keypair.from_seed(b"\x66" * 32)
    data = setup.data
    reasons: collections.Counter = collections.Counter()
    crashes, changed_accepted, unchanged, wrong_reason = [], 0, 0, []
    for _ in range(count):
        if rng.random() < 0.25:
            # The attacker's own validly signed objects: read accepting any signer, so that they
            # reach the deep checks instead of stopping at wrong_hotkey.
            expected, mutated, extra = _structural_mutants(setup, attacker, rng)
            hotkey = ANY_SIGNER
        else:
            kind, mutated = _unsigned_mutation(data, rng, marker)
            expected, extra = None, {}
            hotkey = setup.miner.address if rng.random() < 0.5 else ANY_SIGNER  # half as a validator reads them
        try:
            gradient = _decode(setup, mutated, hotkey=hotkey, **extra)
            gradient.dense()
            if mutated != data:
                changed_accepted += 1
            else:
                unchanged += 1   # a mutation that rewrote bytes with their own values
        except WireError as exc:
            reasons[exc.reason] += 1
            if expected is not None and exc.reason not in expected.split("|"):
                wrong_reason.append((expected, exc.reason))
        except Exception as exc:  # any other exception is a crash of the reader
            crashes.append(repr(exc))
    return {"count": count, "crashes": crashes, "changed_accepted": changed_accepted, "unchanged": unchanged,
            "wrong_reason": wrong_reason, "reasons": dict(reasons)}


def test_fuzz_10000_mutations(setup, tmp_path):
    marker = tmp_path / "pwned"
    result = run_fuzz(setup, 10_000, seed=2026, marker=str(marker))
    assert result["crashes"] == []
    assert result["changed_accepted"] == 0
    assert result["wrong_reason"] == []
    assert result["unchanged"] < 10                      # nearly every mutation changes the object
    assert sum(result["reasons"].values()) + result["unchanged"] == 10_000   # and every changed one is refused
    assert not marker.exists(), "a pickle payload was executed"
    # The mix reaches the deep checks, not just the signature.
    for reason in ("bad_signature", "bad_header", "truncated", "non_finite", "bad_indices", "norm_bound"):
        assert result["reasons"].get(reason, 0) > 0, reason


def test_pickle_payload_is_rejected_not_executed(setup, tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Exploit(str(marker)))
    with pytest.raises(WireError) as info:
        _decode(setup, payload)
    assert info.value.reason in ("header_too_large", "truncated", "bad_header")
    assert not marker.exists()


def test_signature_with_whitespace_is_rejected(setup):
    # bytes.fromhex skips whitespace, so "<sig>\n" would decode to the same signature.
    data = setup.data
    (header_len,) = struct.unpack("<Q", data[:8])
    header = _read_header(data)
    header["__metadata__"]["signature"] += "\n"
    text = canonical_json(header)
    text += b" " * (-len(text) % 8)
    forged = struct.pack("<Q", len(text)) + text + data[8 + header_len:]
    with pytest.raises(WireError) as info:
        _decode(setup, forged)
    assert info.value.reason == "bad_signature_format"


def test_numbers_that_overflow_are_rejected_with_a_reason(setup):
    data = setup.data
    (header_len,) = struct.unpack("<Q", data[:8])
    text = data[8:8 + header_len].replace(b'"shape":[', b'"shape":[1e400,', 1)
    forged = struct.pack("<Q", len(text)) + text + data[8 + header_len:]
    with pytest.raises(WireError) as info:
        _decode(setup, forged)
    assert info.value.reason == "bad_tensor_entry"  # 1e400 parses to infinity: not an integer dimension
    with pytest.raises(WireError) as info:
        verify_json(b'{"hotkey":1e999}', expected_hotkey=ANY_SIGNER, expected_kind="x")
    assert info.value.reason == "bad_header"


def test_bytearray_input_is_accepted(setup):
    assert _decode(setup, bytearray(setup.data)).sha256 == sha256_hex(setup.data)


@pytest.mark.parametrize("use_dct", [False, True])
def test_dense_equals_the_codec_decoder_on_odd_shapes(use_dct):
    codec = CompressionConfig(tile=8, topk=5, value_bits=3, use_dct=use_dct)
    spec = CodecSpec({"matrix": (24, 40), "odd": (9, 14), "cube": (4, 6, 10), "vector": (70,), "tiny": (3,)}, codec)
    generator = torch.Generator().manual_seed(3)
    packet, transmitted = encode_tensors({n: torch.randn(s, generator=generator) for n, s in spec.shapes.items()},
                                         codec)
    author = Keypair.generate()
    gradient = decode_gradient(encode_gradient(packet, author, 0, 0, BASE), spec, GradientExpectation(
        window=0, uid=0, hotkey=author.address, base_model_hash=BASE, norm_bound=math.inf))
    dense, reference = gradient.dense(), decode_packet(packet)
    for name in spec.shapes:
        assert torch.equal(dense[name], reference[name]) and torch.equal(dense[name], transmitted[name]), name


def test_an_empty_aggregate_says_nothing_was_aggregated(setup):
    """A lead with no valid uploads publishes a signed aggregate of zero parts: followers can skip
    the window at once instead of waiting for the deadline. It still checks signer and links."""
    obj = encode_aggregate(4, [], LEAD, base_model_hash=GENESIS, result_model_hash=GENESIS,
                           prev_aggregate_sha256=GENESIS_PREV)
    aggregate = decode_aggregate(obj, setup.spec, _aggregate_expect())
    assert aggregate.parts == [] and aggregate.gradients == []
    assert aggregate.result_model_hash == aggregate.base_model_hash == GENESIS
    with pytest.raises(WireError) as info:
        decode_aggregate(obj, setup.spec, _aggregate_expect(prev_aggregate_sha256=BASE))
    assert info.value.reason == "broken_lineage"


def test_an_sr25519_author_names_its_scheme_and_is_verified_under_it(setup):
    """Operators' Bittensor hotkeys are sr25519: their gradients and documents verify as such, the
    scheme is signed (dropping or changing it breaks the signature), ed25519 objects carry none."""
    from subnet.wire.signing import verify_safetensors
    author = CoreKeypair.generate(SR25519)
    data = encode_gradient(setup.packet, author, window=12, uid=3, base_model_hash=BASE)
    assert _read_header(data)["__metadata__"]["scheme"] == "sr25519"
    assert "scheme" not in _read_header(setup.data)["__metadata__"]
    dense = _decode(setup, data, hotkey=author.address).dense()
    assert all(torch.equal(dense[n], setup.transmitted[n]) for n in setup.spec.shapes)
    limits = dict(max_bytes=1 << 24, max_header_bytes=1 << 20, expected_hotkey=author.address)
    for edit, reason in ((lambda m: m.pop("scheme"), "bad_signature"), (lambda m: m.update(scheme="ed25519"), "bad_scheme")):
        with pytest.raises(WireError) as info:
            verify_safetensors(_reframe(data, edit), **limits)
        assert info.value.reason == reason
    raw = sign_json({"wire_format": WIRE_VERSION, "kind": "x", "n": 1}, author)
    assert json.loads(raw)["scheme"] == "sr25519"
    assert verify_json(raw, expected_hotkey=author.address, expected_kind="x")["n"] == 1
    stripped = canonical_json({k: v for k, v in json.loads(raw).items() if k != "scheme"})
    with pytest.raises(WireError, match="^bad_signature: signature does not verify for ed25519 hotkey"):
        verify_json(stripped, expected_hotkey=author.address, expected_kind="x")
    ed = Keypair.generate()   # re-signing an sr25519 document by an ed25519 key drops the scheme
    assert "scheme" not in json.loads(sign_json(json.loads(raw), ed))
