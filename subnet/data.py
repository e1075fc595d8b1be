"""Corpus -> byte-level BPE tokenizer -> token shards with a sha256 manifest, and their reader.

Layout of a prepared dataset directory:
  tokenizer.json              the Hugging Face `tokenizers` file
  manifest.json               {"format", "vocab_size", "eot_id", "shards": [{file, split, tokens, sha256}]}
  train-00000.npy ...         uint16 token ids, documents joined by the end-of-text token
  val-00000.npy               held-out documents (every `val_every`-th document)
A sample is a block of seq_len + 1 consecutive tokens (inputs plus next-token targets); sample i of a
split is block i of its shards taken in order, never crossing a shard boundary.
"""
from __future__ import annotations

import hashlib
import io
import json
import lzma
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from subnet.files import atomic_write

DEFAULT_CORPUS = Path(__file__).resolve().parent / "corpus" / "shakespeare.txt.xz"
MANIFEST_FORMAT = "tessera-tokens-v1"
EOT = "<|endoftext|>"


class DataError(ValueError):
    """A corpus or prepared dataset is missing, corrupt or unusable."""


def _read_text(path: Path) -> str:
    if path.suffix == ".xz":
        with lzma.open(path, "rt", encoding="utf-8") as f:
            return f.read()
    return path.read_text(encoding="utf-8", errors="replace")


def read_documents(corpus: Path | None = None) -> list[str]:
    """Documents of a corpus: a file (documents split at form-feed lines) or a directory of .txt/.xz."""
    corpus = Path(corpus) if corpus is not None else DEFAULT_CORPUS
    if corpus.is_dir():
        files = sorted(p for p in corpus.rglob("*") if p.suffix in (".txt", ".xz") and p.is_file())
        if not files:
            raise DataError(f"{corpus}: no .txt or .xz files in this directory")
        docs = [_read_text(f) for f in files]
    elif corpus.is_file():
        docs = _read_text(corpus).split("\f\n")
    else:
        raise DataError(f"{corpus}: no such corpus file or directory")
    docs = [d.strip() for d in docs if d.strip()]
    if not docs:
        raise DataError(f"{corpus}: corpus holds no text")
    return docs


def train_tokenizer(docs: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(docs, trainer=trainer)
    return tokenizer


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


@dataclass(frozen=True)
class PrepareReport:
    out_dir: Path
    documents: int
    vocab_size: int
    train_tokens: int
    val_tokens: int
    shards: int


def prepare_dataset(out_dir: Path, corpus: Path | None = None, vocab_size: int = 4096,
                    shard_tokens: int = 1 << 20, val_every: int = 20,
                    progress: Callable[[str, int, int], None] | None = None) -> PrepareReport:
    """Train the tokenizer and write shards + manifest into out_dir (manifest written last)."""
    if vocab_size < 257 or vocab_size > 65535:
        raise DataError(f"vocab_size {vocab_size} must be in [257, 65535] (byte alphabet + merges, uint16 ids)")
    if shard_tokens < 1024:
        raise DataError(f"shard_tokens {shard_tokens} must be >= 1024")
    report = progress or (lambda stage, done, total: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    docs = read_documents(corpus)
    if len(docs) < 2:
        # One document: split it into paragraphs-sized pieces so a validation split exists.
        text = docs[0]
        step = max(1, len(text) // 40)
        docs = [text[i:i + step] for i in range(0, len(text), step)]
    report("tokenizer", 0, 1)
    tokenizer = train_tokenizer(docs, vocab_size)
    report("tokenizer", 1, 1)
    eot_id = tokenizer.token_to_id(EOT)
    splits: dict[str, list[np.ndarray]] = {"train": [], "val": []}
    batch = 8
    for start in range(0, len(docs), batch):
        chunk = docs[start:start + batch]
        for offset, enc in enumerate(tokenizer.encode_batch(chunk)):
            index = start + offset
            split = "val" if val_every and index % val_every == val_every - 1 else "train"
            splits[split].append(np.asarray(enc.ids + [eot_id], dtype=np.uint16))
        report("encode", min(start + batch, len(docs)), len(docs))
    shards = []
    for split, arrays in splits.items():
        stream = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint16)
        for i, first in enumerate(range(0, len(stream), shard_tokens)):
            tokens = stream[first:first + shard_tokens]
            path = out_dir / f"{split}-{i:05d}.npy"
            atomic_write(path, _npy_bytes(tokens))
            shards.append({"file": path.name, "split": split, "tokens": int(tokens.size),
                           "sha256": sha256_file(path)})
    atomic_write(out_dir / "tokenizer.json", tokenizer.to_str(pretty=True))  # what tokenizer.save writes
    manifest = {"format": MANIFEST_FORMAT, "vocab_size": tokenizer.get_vocab_size(), "eot_id": eot_id,
                "tokenizer_sha256": sha256_file(out_dir / "tokenizer.json"), "shards": shards}
    atomic_write(out_dir / "manifest.json", json.dumps(manifest, indent=1))
    total = {s: sum(x["tokens"] for x in shards if x["split"] == s) for s in ("train", "val")}
    return PrepareReport(out_dir=out_dir, documents=len(docs), vocab_size=manifest["vocab_size"],
                         train_tokens=total["train"], val_tokens=total["val"], shards=len(shards))


class SampleSource:
    """Fixed-length samples (seq_len + 1 tokens) over a split's shards, in order, never crossing a
    shard boundary. Subclasses set `seq_len`, call `_index(token_counts)` and say how to read tokens."""

    seq_len: int
    num_samples: int
    _starts: np.ndarray

    def _index(self, token_counts: list[int]) -> None:
        counts = [max(0, (tokens - 1) // self.seq_len) for tokens in token_counts]
        self._starts = np.concatenate([[0], np.cumsum(counts)])
        self.num_samples = int(self._starts[-1])

    def _read(self, shard: int, first: int, count: int) -> np.ndarray:
        """`count` int64 token ids of shard number `shard` from token `first` on."""
        raise NotImplementedError

    def batches(self, sample_ids: np.ndarray, batch_size: int) -> list[torch.Tensor]:
        """Consecutive batches of the given samples, in order: how a miner consumes its window."""
        return [self.batch(sample_ids[i:i + batch_size]) for i in range(0, len(sample_ids), batch_size)]

    def batch(self, sample_ids: Iterable[int]) -> torch.Tensor:
        """(len(ids), seq_len + 1) int64 token ids."""
        ids = np.asarray(list(sample_ids), dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_samples):
            raise IndexError(f"sample id out of range [0, {self.num_samples})")
        shard_of = np.searchsorted(self._starts, ids, side="right") - 1
        rows = [self._read(int(shard), int(sid - self._starts[shard]) * self.seq_len, self.seq_len + 1)
                for sid, shard in zip(ids, shard_of)]
        return torch.from_numpy(np.stack(rows)) if rows else torch.zeros(0, self.seq_len + 1, dtype=torch.int64)


class TokenDataset(SampleSource):
    """Fixed-length samples of one split of a prepared dataset, verified against the manifest."""

    def __init__(self, data_dir: Path, split: str, seq_len: int, verify: bool = True):
        self.data_dir = Path(data_dir)
        manifest_path = self.data_dir / "manifest.json"
        if not manifest_path.is_file():
            raise DataError(f"{manifest_path}: missing; run `subnet data prepare --out {self.data_dir}`")
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") != MANIFEST_FORMAT:
            raise DataError(f"{manifest_path}: format {manifest.get('format')!r}, expected {MANIFEST_FORMAT!r}")
        self.vocab_size = int(manifest["vocab_size"])
        self.seq_len = seq_len
        self._shards: list[np.ndarray] = []
        for entry in manifest["shards"]:
            if entry["split"] != split:
                continue
            path = self.data_dir / entry["file"]
            if not path.is_file():
                raise DataError(f"{path}: shard listed in the manifest is missing")
            if verify and sha256_file(path) != entry["sha256"]:
                raise DataError(f"{path}: sha256 does not match the manifest (corrupt or changed shard)")
            self._shards.append(np.load(path, mmap_mode="r", allow_pickle=False))
        if not self._shards:
            raise DataError(f"{self.data_dir}: no '{split}' shards in the manifest")
        self._index([tokens.size for tokens in self._shards])
        if self.num_samples == 0:
            raise DataError(f"{self.data_dir}: '{split}' split is shorter than one sample of {seq_len + 1} tokens")

    def _read(self, shard: int, first: int, count: int) -> np.ndarray:
        return np.asarray(self._shards[shard][first:first + count], dtype=np.int64)
