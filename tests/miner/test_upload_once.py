"""A miner's upload is written once (miner/loop.py `stored_copy`, `put_once`): a re-signed retry of
the same work must not overwrite the stored object, whose timestamp the copy check reads. sr25519
signatures are randomised, so "the same work" is the same signed content, not the same bytes."""
from __future__ import annotations

import json

import pytest

from miner.loop import put_once, stored_copy
from subnet.keys import SR25519, CoreKeypair, Keypair
from subnet.storage.client import StorageError
from subnet.wire.gradient import encode_gradient, encode_intent
from subnet.wire.signing import sign_json, signed_content_digest
from tests.test_wire import BASE, make_setup


class Bucket:
    """An in-memory stand-in for one bucket of a StorageClient: get with a size limit, put."""

    def __init__(self):
        self.objects: dict[str, bytes] = {}
        self.puts = 0

    def get(self, bucket: str, key: str, max_bytes: int) -> bytes:
        if key not in self.objects:
            raise StorageError("not_found", key)
        if len(self.objects[key]) > max_bytes:
            raise StorageError("too_large", key)
        return self.objects[key]

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.puts += 1
        self.objects[key] = bytes(data)


@pytest.fixture(scope="module")
def packet():
    return make_setup().packet


def test_an_sr25519_miner_re_signing_its_work_does_not_overwrite_it(packet):
    miner = CoreKeypair.generate(SR25519)
    first = encode_gradient(packet, miner, window=5, uid=2, base_model_hash=BASE)
    again = encode_gradient(packet, miner, window=5, uid=2, base_model_hash=BASE)
    assert first != again and signed_content_digest(first) == signed_content_digest(again)
    bucket = Bucket()
    assert put_once(bucket, "b", "gradient-5-2", first) and bucket.puts == 1
    assert not put_once(bucket, "b", "gradient-5-2", again) and bucket.puts == 1
    assert stored_copy(bucket, "b", "gradient-5-2", again) == first   # the stored bytes, for the intent


def test_other_content_or_another_signer_is_uploaded(packet):
    miner, other = CoreKeypair.generate(SR25519), CoreKeypair.generate(SR25519)
    bucket = Bucket()
    put_once(bucket, "b", "k", encode_gradient(packet, miner, window=5, uid=2, base_model_hash=BASE))
    for changed in (encode_gradient(packet, miner, window=6, uid=2, base_model_hash=BASE),
                    encode_gradient(packet, other, window=5, uid=2, base_model_hash=BASE)):
        assert stored_copy(bucket, "b", "k", changed) is None
        assert put_once(bucket, "b", "k", changed)
    assert bucket.puts == 3


def test_ed25519_re_signing_is_byte_identical_and_missing_objects_are_written(packet):
    miner = Keypair.generate()
    data = encode_gradient(packet, miner, window=5, uid=2, base_model_hash=BASE)
    assert encode_gradient(packet, miner, window=5, uid=2, base_model_hash=BASE) == data
    bucket = Bucket()
    assert stored_copy(bucket, "b", "k", data) is None
    assert put_once(bucket, "b", "k", data) and not put_once(bucket, "b", "k", data)


def test_signed_documents_compare_by_content_too():
    miner = CoreKeypair.generate(SR25519)
    gradient = b"\x00" * 64
    first, again = (encode_intent(gradient, miner, 5, 2) for _ in range(2))
    assert first != again and signed_content_digest(first) == signed_content_digest(again)
    other = encode_intent(b"\x01" * 64, miner, 5, 2)
    assert signed_content_digest(other) != signed_content_digest(first)
    doc = sign_json({"wire_format": "tessera-wire-v1", "kind": "x"}, miner)
    assert signed_content_digest(doc) == signed_content_digest(sign_json(json.loads(doc), miner))


@pytest.mark.parametrize("junk", [b"", b"\x01", b"[1, 2]", b"{not json", (8).to_bytes(8, "little") + b"[]      ",
                                  (1 << 62).to_bytes(8, "little") + b"{}"])
def test_what_is_not_a_signed_object_has_no_content_digest(junk):
    assert signed_content_digest(junk) is None
