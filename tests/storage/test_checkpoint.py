"""Checkpoints through the real SeaweedFS: round trip into from_pretrained, LATEST written last, and
a checkpoint in the middle of being written is never what a reader gets."""
from __future__ import annotations

import json

import pytest
import torch

from subnet.data import train_tokenizer
from subnet.hashing import sha256_hex
from subnet.keys import Keypair
from subnet.model import build_model, model_hash
from subnet.storage.checkpoint import (LATEST_KEY, fetch_checkpoint, load_checkpoint_model, publish_checkpoint,
                                       read_latest)
from subnet.wire.signing import WireError

LEAD = Keypair.from_seed(b"\x07" * 32)


@pytest.fixture(scope="module")
def tokenizer_json(tiny_preset) -> bytes:
    tokenizer = train_tokenizer(["a small corpus for a small tokenizer", "just enough text"] * 4, 300)
    return tokenizer.to_str().encode()


def test_round_trip_loads_with_from_pretrained(seaweed, tiny_preset, tokenizer_json, tmp_path):
    writer, reader = seaweed.writer("validator-0"), seaweed.reader()
    bucket = seaweed.bucket("validator-0")
    model = build_model(tiny_preset.model, seed=1)
    published = publish_checkpoint(writer, bucket, 10, model, tokenizer_json, LEAD, aggregate_sha256="ab" * 32)
    info, directory = fetch_checkpoint(reader, bucket, tmp_path, hotkey=LEAD.address)
    assert info == published and info.window == 10 and info.aggregate_sha256 == "ab" * 32
    loaded = load_checkpoint_model(directory, info)
    assert model_hash(loaded) == model_hash(model)
    tokens = torch.randint(0, tiny_preset.model.vocab_size, (1, 8))
    assert torch.equal(loaded(tokens).logits, model(tokens).logits)
    assert (directory / "tokenizer.json").read_bytes() == tokenizer_json
    with pytest.raises(WireError) as err:
        fetch_checkpoint(reader, bucket, tmp_path, hotkey=Keypair.generate().address)
    assert err.value.reason == "wrong_hotkey"


def test_reader_never_sees_a_half_written_checkpoint(seaweed, tiny_preset, tokenizer_json, tmp_path):
    writer, reader = seaweed.writer("miner-1"), seaweed.reader()
    bucket = seaweed.bucket("miner-1")
    first = build_model(tiny_preset.model, seed=2)
    publish_checkpoint(writer, bucket, 20, first, tokenizer_json, LEAD)
    second = build_model(tiny_preset.model, seed=3)
    seen = []

    def look(key):
        # Between every two uploads of window 21 a reader still gets window 20, complete.
        info, directory = fetch_checkpoint(reader, bucket, tmp_path / f"r{len(seen)}", hotkey=LEAD.address)
        seen.append((key, info.window, model_hash(load_checkpoint_model(directory, info))))

    publish_checkpoint(writer, bucket, 21, second, tokenizer_json, LEAD, after_upload=look)
    assert [key for key, _, _ in seen][-1] == LATEST_KEY
    for key, window, digest in seen[:-1]:
        assert (window, digest) == (20, model_hash(first)), key
    assert seen[-1][1:] == (21, model_hash(second))
    assert read_latest(reader, bucket, LEAD.address)[0] == 21


def test_a_file_replaced_under_the_manifest_is_refused(seaweed, tiny_preset, tokenizer_json, tmp_path):
    writer, reader = seaweed.writer("miner-0"), seaweed.reader()
    bucket = seaweed.bucket("miner-0")
    publish_checkpoint(writer, bucket, 30, build_model(tiny_preset.model, seed=4), tokenizer_json, LEAD)
    config = json.loads(bytes(reader.get(bucket, "checkpoints/30/config.json", 1 << 20)))
    config["vocab_size"] += 1
    writer.put(bucket, "checkpoints/30/config.json", json.dumps(config).encode())
    with pytest.raises(WireError) as err:
        fetch_checkpoint(reader, bucket, tmp_path, hotkey=LEAD.address)
    assert err.value.reason == "part_mismatch"
    assert not (tmp_path / "30").exists()  # nothing half-written was left behind
    latest = bytes(reader.get(bucket, LATEST_KEY, 4096))
    writer.put(bucket, LATEST_KEY, latest.replace(b'"window":30', b'"window":31'))
    with pytest.raises(WireError) as err:
        fetch_checkpoint(reader, bucket, tmp_path, hotkey=LEAD.address)
    assert err.value.reason == "bad_signature"
    assert sha256_hex(latest)  # the original pointer was well-formed
