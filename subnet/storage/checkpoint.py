"""Checkpoints of the global model in a bucket, readable with `AutoModelForCausalLM.from_pretrained`.

Layout under the publisher's bucket:
  checkpoints/{window}/model.safetensors, config.json, generation_config.json, tokenizer.json
  checkpoints/{window}/manifest.json   signed JSON: window, model_hash, aggregate_sha256 (the last
                                       aggregate applied, or the genesis anchor), version,
                                       and the sha256 and size of every file
  checkpoints/LATEST.json              signed JSON: window, manifest key and manifest sha256

Files go up first, then the manifest, then LATEST.json, so a reader that starts from LATEST.json
only ever reaches complete checkpoints; every file it fetches is checked against the manifest, so
one overwritten under it is refused rather than mixed in. Nothing is unpickled: weights are
safetensors and loading passes `use_safetensors=True`.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from subnet.files import atomic_write
from subnet.hashing import is_hex64, sha256_hex
from subnet.keys import Keypair
from subnet.model import model_hash
from subnet.storage.client import StorageClient
from subnet.wire.aggregate import GENESIS_PREV
from subnet.wire.names import LATEST_CHECKPOINT_KEY as LATEST_KEY
from subnet.wire.names import checkpoint_manifest_key, checkpoint_prefix
from subnet.wire.signing import WIRE_VERSION, WireError, sign_json, verify_json

MAX_CHECKPOINT_FILE_BYTES = 64 << 30
# A checkpoint holds JSON and safetensors only: no name that a loader might unpickle (.bin, .pt, ...).
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_FILE_TYPES = (".json", ".safetensors")


@dataclass(frozen=True)
class CheckpointInfo:
    window: int
    model_hash: str
    aggregate_sha256: str
    files: dict[str, dict]  # name -> {"sha256", "size"}
    hotkey: str
    version: int = 0        # aggregates applied since genesis: the inner lr schedule's position


def checkpoint_files(model: torch.nn.Module, tokenizer_json: bytes) -> dict[str, bytes]:
    """The files `save_pretrained` writes (safetensors weights, config) plus tokenizer.json."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a process's log is one line per event, not a progress bar
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        files = {path.name: path.read_bytes() for path in sorted(Path(tmp).iterdir()) if path.is_file()}
    if not any(name.endswith(".safetensors") for name in files):
        raise ValueError("save_pretrained wrote no safetensors weights")
    files["tokenizer.json"] = bytes(tokenizer_json)
    return files


def publish_checkpoint(client: StorageClient, bucket: str, window: int, model: torch.nn.Module,
                       tokenizer_json: bytes, keypair: Keypair, aggregate_sha256: str = GENESIS_PREV,
                       version: int = 0, after_upload: Callable[[str], None] | None = None) -> CheckpointInfo:
    """Upload the checkpoint of ``window``: files, then the signed manifest, then LATEST.json.
    ``after_upload(key)`` is called after each object (tests use it to look in mid-write)."""
    files = checkpoint_files(model, tokenizer_json)
    prefix = checkpoint_prefix(window)
    entries = {}
    for name, data in files.items():
        client.put(bucket, prefix + name, data)
        entries[name] = {"sha256": sha256_hex(data), "size": len(data)}
        if after_upload:
            after_upload(prefix + name)
    info = CheckpointInfo(window=int(window), model_hash=model_hash(model), aggregate_sha256=aggregate_sha256,
                          files=entries, hotkey=keypair.address, version=int(version))
    manifest = sign_json({"wire_format": WIRE_VERSION, "kind": "checkpoint_manifest", "window": info.window,
                          "model_hash": info.model_hash, "aggregate_sha256": aggregate_sha256, "files": entries,
                          "version": info.version},
                         keypair)
    client.put(bucket, prefix + "manifest.json", manifest, content_type="application/json")
    if after_upload:
        after_upload(prefix + "manifest.json")
    latest = sign_json({"wire_format": WIRE_VERSION, "kind": "checkpoint_latest", "window": info.window,
                        "manifest_key": prefix + "manifest.json", "manifest_sha256": sha256_hex(manifest)},
                       keypair)
    client.put(bucket, LATEST_KEY, latest, content_type="application/json")
    if after_upload:
        after_upload(LATEST_KEY)
    return info


def _parse_manifest(document: dict, window: int) -> CheckpointInfo:
    files = document.get("files")
    if document.get("window") != window:
        raise WireError("wrong_window", f"manifest is for window {document.get('window')!r}, expected {window}")
    for key in ("model_hash", "aggregate_sha256"):
        if not is_hex64(document.get(key)):
            raise WireError("bad_metadata", f"manifest {key} must be 64 lowercase hex digits")
    if not isinstance(files, dict) or not files or len(files) > 64:
        raise WireError("bad_metadata", "manifest must list 1..64 files")
    for name, entry in files.items():
        if (not _FILE_NAME.fullmatch(name) or not name.endswith(_FILE_TYPES) or name == "manifest.json"
                or not isinstance(entry, dict)
                or set(entry) != {"sha256", "size"} or not isinstance(entry["sha256"], str)
                or not is_hex64(entry["sha256"]) or type(entry["size"]) is not int
                or not 0 <= entry["size"] <= MAX_CHECKPOINT_FILE_BYTES):
            raise WireError("bad_metadata", f"manifest entry {name[:64]!r} is malformed")
    if "config.json" not in files or not any(n.endswith(".safetensors") for n in files):
        raise WireError("bad_metadata", "manifest lacks config.json or safetensors weights")
    version = document.get("version", 0)
    if type(version) is not int or version < 0:
        raise WireError("bad_metadata", "manifest version must be a non-negative integer")
    return CheckpointInfo(window=window, model_hash=document["model_hash"], aggregate_sha256=document["aggregate_sha256"],
                          files=files, hotkey=document["hotkey"], version=version)


def read_latest(client: StorageClient, bucket: str, hotkey: str) -> tuple[int, str, str]:
    """(window, manifest key, manifest sha256) from LATEST.json, signature checked."""
    document = verify_json(client.get(bucket, LATEST_KEY, max_bytes=4096), expected_hotkey=hotkey,
                           expected_kind="checkpoint_latest")
    window, key, sha = document.get("window"), document.get("manifest_key"), document.get("manifest_sha256")
    if type(window) is not int or window < 0 or key != checkpoint_manifest_key(window) \
            or not is_hex64(sha):
        raise WireError("bad_metadata", "LATEST.json is malformed")
    return window, key, sha


def fetch_checkpoint(client: StorageClient, bucket: str, dest: Path, hotkey: str,
                     window: int | None = None) -> tuple[CheckpointInfo, Path]:
    """Download the latest checkpoint (or ``window``'s) into ``dest/{window}``, each file checked
    against the signed manifest; returns its info and directory. The directory appears whole
    (written aside, then renamed) or not at all."""
    if window is None:
        window, manifest_key, manifest_sha = read_latest(client, bucket, hotkey)
    else:
        manifest_key, manifest_sha = checkpoint_manifest_key(window), None
    raw = client.get(bucket, manifest_key, max_bytes=1 << 20)
    if manifest_sha is not None and sha256_hex(raw) != manifest_sha:
        raise WireError("part_mismatch", f"{manifest_key} does not match LATEST.json")
    info = _parse_manifest(verify_json(raw, expected_hotkey=hotkey, expected_kind="checkpoint_manifest"), window)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / str(window)
    staging = Path(tempfile.mkdtemp(dir=dest, prefix=f".{window}."))
    try:
        for name, entry in info.files.items():
            data = client.get(bucket, checkpoint_prefix(window) + name, max_bytes=entry["size"])
            if len(data) != entry["size"] or sha256_hex(data) != entry["sha256"]:
                raise WireError("part_mismatch", f"checkpoint file {name} does not match the manifest")
            atomic_write(staging / name, data)  # fsynced: the renamed directory never holds a torn file
        atomic_write(staging / "manifest.json", raw)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return info, final


def load_checkpoint_model(directory: Path, info: CheckpointInfo | None = None):
    """`AutoModelForCausalLM.from_pretrained` on a fetched checkpoint (safetensors only); with
    ``info``, the loaded parameters must hash to the manifest's model_hash."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = AutoModelForCausalLM.from_pretrained(str(directory), use_safetensors=True)
    if info is not None and model_hash(model) != info.model_hash:
        raise WireError("wrong_model", f"checkpoint {info.window} weights do not hash to its manifest's model_hash")
    return model
