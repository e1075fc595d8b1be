"""A prepared dataset (subnet/data.py) in a dataset bucket, read by ranged GETs with a local cache.

Upload: every file of the prepared directory goes to ``dataset/{name}/{file}``; then a signed
``dataset/{name}/index.json`` lists each file's size and sha256 and the sha256 of each fixed-size
block of it. The index goes last, so a dataset without one is incomplete.

Read: `RemoteTokenDataset` has the `TokenDataset` interface (num_samples, batch). It fetches only
the blocks its samples touch, each by one ranged GET, checks the block against the signed index,
and keeps it in a content-addressed cache (``cache_dir/blocks/{sha256}``); a cached block is
re-hashed when read, so a corrupted cache entry is fetched again rather than used.
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from subnet.data import MANIFEST_FORMAT, DataError, SampleSource
from subnet.files import atomic_write
from subnet.hashing import is_hex64, sha256_hex
from subnet.keys import Keypair
from subnet.storage.client import StorageClient
from subnet.wire.names import DATASET_PREFIX, dataset_key
from subnet.wire.signing import WIRE_VERSION, sign_json, verify_json

DEFAULT_BLOCK_BYTES = 1 << 20
MAX_INDEX_BYTES = 16 << 20
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def upload_dataset(client: StorageClient, bucket: str, name: str, local_dir: Path, keypair: Keypair,
                   block_bytes: int = DEFAULT_BLOCK_BYTES) -> dict:
    """Upload a prepared dataset directory; returns the index document."""
    local_dir = Path(local_dir)
    manifest = json.loads((local_dir / "manifest.json").read_text())
    if manifest.get("format") != MANIFEST_FORMAT:
        raise DataError(f"{local_dir}: not a prepared dataset (manifest format {manifest.get('format')!r})")
    names = [shard["file"] for shard in manifest["shards"]] + ["tokenizer.json", "manifest.json"]
    files = {}
    for file in names:
        data = (local_dir / file).read_bytes()
        client.put(bucket, dataset_key(name, file), data)
        files[file] = {"size": len(data), "sha256": sha256_hex(data),
                       "blocks": [sha256_hex(data[i:i + block_bytes]) for i in range(0, len(data), block_bytes)]}
    index = {"wire_format": WIRE_VERSION, "kind": "dataset_index", "name": name, "block_bytes": block_bytes,
             "files": files}
    client.put(bucket, dataset_key(name, "index.json"), sign_json(index, keypair), content_type="application/json")
    return index


def _check_index(document: dict, name: str) -> None:
    block = document.get("block_bytes")
    files = document.get("files")
    if document.get("name") != name:
        raise DataError(f"dataset index names {document.get('name')!r}, expected {name!r}")
    if type(block) is not int or not 4096 <= block <= 1 << 30 or not isinstance(files, dict):
        raise DataError("dataset index is malformed (block_bytes or files)")
    for file, entry in files.items():
        if (not _FILE_NAME.fullmatch(file) or not isinstance(entry, dict)
                or type(entry.get("size")) is not int or entry["size"] < 0
                or not is_hex64(entry.get("sha256"))
                or not isinstance(entry.get("blocks"), list)
                or len(entry["blocks"]) != -(-entry["size"] // block)
                or not all(is_hex64(b) for b in entry["blocks"])):
            raise DataError(f"dataset index entry {file[:64]!r} is malformed")


@dataclass(frozen=True)
class _Shard:
    file: str
    data_offset: int  # where the uint16 tokens start in the .npy file
    tokens: int


class BlockCache:
    """Blocks of remote files by sha256, fetched by ranged GET and verified before use."""

    def __init__(self, client: StorageClient, bucket: str, prefix: str, files: dict, block_bytes: int,
                 cache_dir: Path):
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self.files, self.block_bytes = files, block_bytes
        self.directory = Path(cache_dir) / "blocks"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fetched = 0  # blocks downloaded (cache misses), for figures and tests
        self.hits = 0

    def block(self, file: str, number: int) -> bytes:
        expected = self.files[file]["blocks"][number]
        path = self.directory / expected
        if path.exists():
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() == expected:
                self.hits += 1
                return data
        start = number * self.block_bytes
        length = min(self.block_bytes, self.files[file]["size"] - start)
        data = bytes(self.client.get_range(self.bucket, self.prefix + file, start, length))
        if hashlib.sha256(data).hexdigest() != expected:
            raise DataError(f"{self.prefix}{file} block {number} does not match the dataset index "
                            "(changed or corrupt object)")
        self.fetched += 1
        atomic_write(path, data)
        return data

    def read(self, file: str, start: int, length: int) -> bytes:
        size = self.files[file]["size"]
        if start < 0 or length < 0 or start + length > size:
            raise DataError(f"read of {length} bytes at {start} is outside {file} ({size} bytes)")
        first, last = start // self.block_bytes, (start + length - 1) // self.block_bytes
        joined = b"".join(self.block(file, n) for n in range(first, last + 1)) if length else b""
        offset = start - first * self.block_bytes
        return joined[offset:offset + length]


def _npy_layout(head: bytes, file: str) -> tuple[int, int]:
    """(data offset, element count) of a 1-D little-endian uint16 .npy file, from its first bytes.
    The header is a Python dict literal: parsed with ast.literal_eval (never executed)."""
    if head[:6] != b"\x93NUMPY" or len(head) < 10:
        raise DataError(f"{file}: not a .npy file")
    major = head[6]
    if major == 1:
        header_len, start = int.from_bytes(head[8:10], "little"), 10
    elif major in (2, 3):
        header_len, start = int.from_bytes(head[8:12], "little"), 12
    else:
        raise DataError(f"{file}: unsupported .npy version {major}")
    if header_len > 4096 or start + header_len > len(head):
        raise DataError(f"{file}: .npy header is too long")
    try:
        header = ast.literal_eval(head[start:start + header_len].decode("latin1"))
    except (ValueError, SyntaxError) as exc:
        raise DataError(f"{file}: unreadable .npy header: {exc}") from None
    if (not isinstance(header, dict) or header.get("descr") != "<u2" or header.get("fortran_order") is not False
            or not isinstance(header.get("shape"), tuple) or len(header["shape"]) != 1):
        raise DataError(f"{file}: expected a 1-D little-endian uint16 array")
    return start + header_len, int(header["shape"][0])


class RemoteTokenDataset(SampleSource):
    """`TokenDataset` over a dataset bucket: same samples, fetched block by block."""

    def __init__(self, client: StorageClient, bucket: str, name: str, split: str, seq_len: int,
                 cache_dir: Path, hotkey: str):
        index = verify_json(client.get(bucket, dataset_key(name, "index.json"), max_bytes=MAX_INDEX_BYTES),
                            max_bytes=MAX_INDEX_BYTES, expected_hotkey=hotkey, expected_kind="dataset_index")
        _check_index(index, name)
        files = index["files"]
        self.cache = BlockCache(client, bucket, f"{DATASET_PREFIX}/{name}/", files, index["block_bytes"], cache_dir)
        if "manifest.json" not in files:
            raise DataError(f"dataset {name!r} has no manifest.json in its index")
        manifest = json.loads(self.cache.read("manifest.json", 0, files["manifest.json"]["size"]))
        if manifest.get("format") != MANIFEST_FORMAT:
            raise DataError(f"dataset {name!r}: manifest format {manifest.get('format')!r}")
        self.vocab_size = int(manifest["vocab_size"])
        self.seq_len = seq_len
        self._shards: list[_Shard] = []
        for entry in manifest["shards"]:
            if entry["split"] != split:
                continue
            file = entry["file"]
            if file not in files or files[file]["sha256"] != entry["sha256"]:
                raise DataError(f"dataset {name!r}: shard {file} is not in the index or differs from the manifest")
            head = self.cache.read(file, 0, min(files[file]["size"], 256))
            offset, tokens = _npy_layout(head, file)
            if tokens != entry["tokens"] or offset + 2 * tokens != files[file]["size"]:
                raise DataError(f"dataset {name!r}: shard {file} size disagrees with the manifest")
            self._shards.append(_Shard(file, offset, tokens))
        if not self._shards:
            raise DataError(f"dataset {name!r} has no '{split}' shards")
        self._index([shard.tokens for shard in self._shards])

    def _read(self, shard: int, first: int, count: int) -> np.ndarray:
        entry = self._shards[shard]
        raw = self.cache.read(entry.file, entry.data_offset + 2 * first, 2 * count)
        return np.frombuffer(raw, dtype="<u2").astype(np.int64)
