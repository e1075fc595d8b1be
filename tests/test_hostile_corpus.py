"""A corpus of hostile uploads built to exhaust the reader: bombs, huge headers, replays, foreign keys.

Each entry is small on the wire but claims (or would expand to) far more: a header length of 2^63,
a tensor of 2^39 elements, a JSON nesting 30,000 deep, a 5,000-digit number, a gzip or xz stream of
64-256 MiB. The reader must refuse every one with its own error type and a named reason, and peak
memory (numpy and Python allocations, traced) must stay near the payload's own size: nothing it
claims is allocated before it is checked. The random-mutation fuzz is tests/test_wire.py; this is
the deliberate list (docs/reliability.md).
"""
from __future__ import annotations

import gzip
import json
import lzma
import math
import struct
import tracemalloc

import pytest

from subnet.keys import Keypair
from subnet.wire.gradient import GradientExpectation, decode_gradient, encode_gradient
from subnet.wire.signing import ANY_SIGNER, WireError, sign_json, sign_safetensors, verify_json
from tests.test_wire import BASE, make_setup

MEMORY_SLACK = 4 << 20   # bytes a refusal may allocate beyond a few copies of the payload


@pytest.fixture(scope="module")
def setup():
    return make_setup()


def header_object(header: bytes, data: bytes = b"") -> bytes:
    """A safetensors-shaped object: length prefix, header as given, data section."""
    return struct.pack("<Q", len(header)) + header + data


def signed_with(setup, header: dict) -> bytes:
    """The attacker's own validly signed object around a hand-made header (data section empty)."""
    raw = json.dumps(header, separators=(",", ":")).encode()
    return sign_safetensors(header_object(raw + b" " * (-len(raw) % 8)), Keypair.from_seed(b"\x66" * 32))


def gzip_bomb(expanded: int) -> bytes:
    return gzip.compress(bytes(expanded), compresslevel=9)


def header_length(setup) -> int:
    return struct.unpack("<Q", setup.data[:8])[0]


def metadata(setup) -> dict:
    return json.loads(setup.data[8:8 + header_length(setup)])["__metadata__"]


def corpus(setup) -> list[tuple[str, bytes, set[str]]]:
    """(name, payload, the reasons a reader may give) for every hostile upload."""
    nesting = b"[" * 30_000 + b"]" * 30_000
    other_window = encode_gradient(setup.packet, setup.miner, window=11, uid=3, base_model_hash=BASE)
    foreign = encode_gradient(setup.packet, Keypair.from_seed(b"\x01" * 32), window=12, uid=3,
                              base_model_hash=BASE)
    meta = {k: v for k, v in metadata(setup).items() if k not in ("hotkey", "signature")}
    return [
        ("header length 2^63", struct.pack("<Q", 1 << 63) + b"{}      ", {"header_too_large"}),
        ("header length 2^64-1", struct.pack("<Q", (1 << 64) - 1) + b"{}", {"header_too_large"}),
        ("header length at the limit, body absent", struct.pack("<Q", 64 * 1024), {"truncated"}),
        ("a JSON nesting 30,000 deep", header_object(nesting + b" " * (-len(nesting) % 8)), {"bad_header"}),
        ("a 5,000-digit number", header_object(b'{"x":' + b"9" * 5000 + b"}" + b" " * 2), {"bad_header"}),
        ("a tensor of 2^39 float32s with no data", signed_with(setup, {
            "__metadata__": meta, "t": {"dtype": "F32", "shape": [1 << 39], "data_offsets": [0, 4 << 39]}}),
         {"bad_tensor_entry"}),
        ("a shape of 9,000 dimensions", signed_with(setup, {
            "__metadata__": meta, "t": {"dtype": "U8", "shape": [1] * 9000, "data_offsets": [0, 1]}}),
         {"bad_tensor_entry"}),
        ("900 empty tensors", signed_with(setup, {
            "__metadata__": meta, **{f"t{i}": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}
                                     for i in range(900)}}),
         {"wrong_hotkey", "bad_tensors"}),
        ("a gzip bomb (64 MiB of zeros)", gzip_bomb(64 << 20), {"header_too_large"}),
        ("an xz bomb (256 MiB of zeros)", lzma.compress(bytes(256 << 20), preset=1),
         {"header_too_large"}),
        ("a valid header over a gzip bomb as its data", setup.data[:8 + header_length(setup)] + gzip_bomb(32 << 20),
         {"bad_tensor_entry"}),
        ("the same miner's upload of an older window, replayed", other_window, {"wrong_window"}),
        ("a valid upload signed by another hotkey", foreign, {"wrong_hotkey"}),
        ("an object over the byte limit", setup.data + bytes(setup.spec.max_gradient_bytes), {"too_large"}),
    ]


def expect(setup, hotkey: str) -> GradientExpectation:
    return GradientExpectation(window=12, uid=3, hotkey=hotkey, base_model_hash=BASE, norm_bound=math.inf)


def refusal(call) -> tuple[str, int]:
    """The reason `call` refused with and the peak bytes allocated while it ran."""
    tracemalloc.start()
    try:
        call()
    except WireError as exc:
        return exc.reason, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    raise AssertionError("accepted")


def test_every_hostile_upload_is_refused_by_name_in_bounded_memory(setup):
    entries = corpus(setup)
    assert len({name for name, _, _ in entries}) == len(entries)
    for name, payload, reasons in entries:
        for hotkey in (setup.miner.address, ANY_SIGNER):   # as the miner's validator and as anyone reads it
            if name.startswith("a valid upload signed by another") and hotkey == ANY_SIGNER:
                continue   # any signer accepts any author: the validator always reads with the miner's key
            reason, peak = refusal(lambda: decode_gradient(payload, setup.spec, expect(setup, hotkey)).dense())
            print(f"{name} ({'any signer' if hotkey == ANY_SIGNER else 'its miner'}): {reason}, "
                  f"peak {peak / 1e6:.2f} MB for {len(payload)} bytes")
            assert reason in reasons, (name, reason)
            assert peak <= 3 * len(payload) + MEMORY_SLACK, (name, peak)


def test_the_corpus_is_of_small_payloads_that_claim_much_more(setup):
    """The bombs are what they say: small on the wire, huge once expanded or allocated as claimed."""
    assert gzip.decompress(gzip_bomb(1 << 20)) == bytes(1 << 20)
    sizes = {name: len(payload) for name, payload, _ in corpus(setup)}
    # all but the last fit the byte limit, so each reaches the parser rather than the size check
    assert max(v for k, v in sizes.items() if k != "an object over the byte limit") <= setup.spec.max_gradient_bytes


@pytest.mark.parametrize("name, document, reason", [
    ("nesting bomb", b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "bad_header"),
    ("huge number", b'{"a":' + b"1" * 6000 + b"}", "bad_header"),
    ("duplicate keys", b'{"a":1,"a":2}', "bad_header"),
    ("over the size limit", b'{"a":"' + b"x" * (1 << 20) + b'"}', "too_large"),
    ("a JSON array", b"[1,2,3]", "bad_header"),
])
def test_hostile_signed_json_is_refused_by_name_in_bounded_memory(name, document, reason):
    got, peak = refusal(lambda: verify_json(document, expected_hotkey=ANY_SIGNER, expected_kind="scores"))
    assert got == reason, name
    assert peak <= 4 * len(document) + 16 * MEMORY_SLACK, (name, peak)


def test_a_replayed_signed_document_of_another_kind_is_refused():
    signer = Keypair.from_seed(b"\x02" * 32)
    document = sign_json({"wire_format": "tessera-wire-v1", "kind": "aggregate-manifest", "window": 3}, signer)
    with pytest.raises(WireError) as refused:
        verify_json(document, expected_hotkey=signer.address, expected_kind="scores")
    assert refused.value.reason in ("wrong_kind", "wrong_version")
