import json
import pydoc_data.topics

import numpy as np
import pytest
from tokenizers import Tokenizer

from subnet.data import DataError, TokenDataset, prepare_dataset, read_documents


@pytest.fixture(scope="module")
def prose_dir(tmp_path_factory):
    """Python's reference docs (stdlib prose) as a small corpus of many documents."""
    corpus = tmp_path_factory.mktemp("corpus")
    for name, text in list(pydoc_data.topics.topics.items())[:40]:
        (corpus / f"{name}.txt").write_text(text)
    return corpus


@pytest.fixture(scope="module")
def prepared(prose_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    stages = []
    report = prepare_dataset(out, corpus=prose_dir, vocab_size=512, shard_tokens=4096, val_every=10,
                             progress=lambda stage, done, total: stages.append((stage, done, total)))
    return out, report, stages


def test_bundled_corpus_is_real_english_text():
    docs = read_documents()
    assert sum(len(d) for d in docs) >= 2_000_000
    assert len(docs) >= 20
    assert " the " in docs[0] and "\x00" not in docs[0]


def test_prepare_writes_verified_shards(prepared):
    out, report, stages = prepared
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["vocab_size"] == report.vocab_size <= 512
    assert {s["split"] for s in manifest["shards"]} == {"train", "val"}
    assert report.shards > 2  # 4096-token shards force several
    for shard in manifest["shards"]:
        tokens = np.load(out / shard["file"], allow_pickle=False)
        assert tokens.dtype == np.uint16 and tokens.size == shard["tokens"]
        assert tokens.max() < manifest["vocab_size"]
    assert stages[-1][0] == "encode" and stages[-1][1] == stages[-1][2]


def test_tokenizer_roundtrips_text(prepared, prose_dir):
    out, _, _ = prepared
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    text = (prose_dir / sorted(p.name for p in prose_dir.iterdir())[0]).read_text()[:500]
    assert tok.decode(tok.encode(text).ids) == text


def test_samples_are_consecutive_tokens(prepared):
    out, _, _ = prepared
    ds = TokenDataset(out, "train", seq_len=16)
    batch = ds.batch([0, 1])
    assert batch.shape == (2, 17)
    assert batch[0, -1] == batch[1, 0]  # sample i+1 starts where sample i's target ends
    with pytest.raises(IndexError):
        ds.batch([ds.num_samples])


def test_corrupt_shard_is_detected(prepared, tmp_path):
    out, _, _ = prepared
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in out.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    shard = copy / "train-00000.npy"
    raw = bytearray(shard.read_bytes())
    raw[-1] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="sha256 does not match"):
        TokenDataset(copy, "train", 16)


def test_missing_dataset_says_how_to_prepare(tmp_path):
    with pytest.raises(DataError, match="subnet data prepare"):
        TokenDataset(tmp_path, "train", 16)


def test_bad_vocab_and_missing_corpus(tmp_path):
    with pytest.raises(DataError, match="vocab_size"):
        prepare_dataset(tmp_path, vocab_size=100)
    with pytest.raises(DataError, match="no such corpus"):
        prepare_dataset(tmp_path, corpus=tmp_path / "nope.txt")
