"""Dataset bucket: upload a prepared dataset, read samples by ranged GETs through a verified cache."""
from __future__ import annotations

import pytest
import torch

from subnet.data import DataError, TokenDataset, prepare_dataset
from subnet.keys import Keypair
from subnet.storage.dataset_store import RemoteTokenDataset, dataset_key, upload_dataset
from subnet.wire.signing import WireError

OWNER = Keypair.from_seed(b"\x09" * 32)
BLOCK = 4096


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("corpus") / "text.txt"
    words = "the quick brown fox jumps over the lazy dog while seven wizards quietly box jam".split()
    corpus.write_text("\f\n".join(" ".join(words[(i * 7 + j) % len(words)] for j in range(400))
                                  for i in range(40)))
    out = tmp_path_factory.mktemp("prepared")
    prepare_dataset(out, corpus=corpus, vocab_size=300, shard_tokens=4096)
    return out


@pytest.fixture(scope="module")
def uploaded(seaweed, prepared):
    upload_dataset(seaweed.writer("dataset"), seaweed.bucket("dataset"), "demo", prepared, OWNER, block_bytes=BLOCK)
    return "demo"


def test_remote_samples_equal_local_samples(seaweed, prepared, uploaded, tmp_path):
    local = TokenDataset(prepared, "train", seq_len=32)
    remote = RemoteTokenDataset(seaweed.reader(), seaweed.bucket("dataset"), uploaded, "train", 32, tmp_path,
                                hotkey=OWNER.address)
    assert remote.num_samples == local.num_samples > 100
    ids = [0, 1, 5, remote.num_samples - 1, 77, 5]
    assert torch.equal(remote.batch(ids), local.batch(ids))
    fetched = remote.cache.fetched
    # Only the blocks the samples touch were downloaded, and a second read is served from the cache.
    total_blocks = sum(len(f["blocks"]) for f in remote.cache.files.values())
    assert 0 < fetched < total_blocks
    assert torch.equal(remote.batch(ids), local.batch(ids))
    assert remote.cache.fetched == fetched and remote.cache.hits > 0


def test_corrupt_cache_block_is_fetched_again(seaweed, prepared, uploaded, tmp_path):
    remote = RemoteTokenDataset(seaweed.reader(), seaweed.bucket("dataset"), uploaded, "train", 32, tmp_path,
                                hotkey=OWNER.address)
    expected = remote.batch([3])
    corrupted = 0
    for path in (tmp_path / "blocks").iterdir():
        path.write_bytes(b"garbage")
        corrupted += 1
    again = RemoteTokenDataset(seaweed.reader(), seaweed.bucket("dataset"), uploaded, "train", 32, tmp_path,
                               hotkey=OWNER.address)
    assert torch.equal(again.batch([3]), expected)
    assert again.cache.fetched == corrupted == remote.cache.fetched  # every block fetched again, once


def test_changed_remote_shard_is_refused(seaweed, prepared, uploaded, tmp_path):
    writer, bucket = seaweed.writer("dataset"), seaweed.bucket("dataset")
    upload_dataset(writer, bucket, "tampered", prepared, OWNER, block_bytes=BLOCK)
    key = dataset_key("tampered", "train-00000.npy")
    original = bytes(seaweed.reader().get(bucket, key, 1 << 20))
    writer.put(bucket, key, original[:BLOCK] + bytes(len(original) - BLOCK))  # blocks 1.. zeroed
    remote = RemoteTokenDataset(seaweed.reader(), bucket, "tampered", "train", 32, tmp_path, hotkey=OWNER.address)
    remote.batch([3])  # sample 3 lies in the untouched first block
    with pytest.raises(DataError, match="does not match the dataset index"):
        remote.batch([100])  # bytes 6528.. lie in block 1
    with pytest.raises(WireError) as err:
        RemoteTokenDataset(seaweed.reader(), bucket, "tampered", "train", 32, tmp_path,
                           hotkey=Keypair.generate().address)
    assert err.value.reason == "wrong_hotkey"
