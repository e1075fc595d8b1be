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
    writer.put(bucket, LATEST_KEY, latest)     # the signed pointer back: the edit alone was the bad signature
    with pytest.raises(WireError) as err:
        fetch_checkpoint(reader, bucket, tmp_path, hotkey=LEAD.address)
    assert err.value.reason == "part_mismatch"


def _resign(writer, bucket: str, window: int, change) -> None:
    """What a buggy or hostile lead could publish: its own manifest for `window`, altered by
    `change`, signed with its key, and LATEST.json pointing at it."""
    from subnet.storage.checkpoint import checkpoint_manifest_key
    from subnet.wire.signing import sign_json

    reader_key = checkpoint_manifest_key(window)
    document = json.loads(bytes(writer.get(bucket, reader_key, 1 << 20)))
    document.pop("signature")
    document.pop("hotkey")
    change(document)
    manifest = sign_json(document, LEAD)
    writer.put(bucket, reader_key, manifest)
    writer.put(bucket, LATEST_KEY, sign_json({"wire_format": document["wire_format"], "kind": "checkpoint_latest",
                                              "window": window, "manifest_key": reader_key,
                                              "manifest_sha256": sha256_hex(manifest)}, LEAD))


@pytest.mark.parametrize("name", ["../../escaped.json", "/etc/passwd", "sub/dir.json", ".hidden", "manifest.json"])
def test_a_signed_manifest_naming_a_path_outside_the_checkpoint_is_refused(seaweed, tiny_preset, tokenizer_json,
                                                                            tmp_path, name):
    writer, reader = seaweed.writer("validator-0"), seaweed.reader()
    bucket = seaweed.bucket("validator-0")
    publish_checkpoint(writer, bucket, 40, build_model(tiny_preset.model, seed=4), tokenizer_json, LEAD,
                       aggregate_sha256="cd" * 32)
    _resign(writer, bucket, 40, lambda doc: doc["files"].update({name: {"sha256": "00" * 32, "size": 2}}))
    dest = tmp_path / "checkpoints"
    with pytest.raises(WireError) as err:
        fetch_checkpoint(reader, bucket, dest, hotkey=LEAD.address)
    assert err.value.reason == "bad_metadata"
    assert not (tmp_path / "escaped.json").exists()
    assert not dest.exists()             # refused before anything was written


def test_weights_that_do_not_hash_to_the_manifests_model_are_refused_on_load(seaweed, tiny_preset, tokenizer_json,
                                                                               tmp_path):
    writer, reader = seaweed.writer("validator-0"), seaweed.reader()
    bucket = seaweed.bucket("validator-0")
    model = build_model(tiny_preset.model, seed=5)
    publish_checkpoint(writer, bucket, 41, model, tokenizer_json, LEAD, aggregate_sha256="cd" * 32)
    _resign(writer, bucket, 41, lambda doc: doc.update(model_hash="ef" * 32))   # files intact, claim wrong
    info, directory = fetch_checkpoint(reader, bucket, tmp_path, hotkey=LEAD.address)
    assert info.model_hash == "ef" * 32
    with pytest.raises(WireError) as err:
        load_checkpoint_model(directory, info)
    assert err.value.reason == "wrong_model"
    assert model_hash(load_checkpoint_model(directory)) == model_hash(model)   # the files themselves are fine


def _latest(**changes) -> bytes:
    from subnet.storage.checkpoint import checkpoint_manifest_key
    from subnet.wire.signing import WIRE_VERSION, sign_json
    document = {"wire_format": WIRE_VERSION, "kind": "checkpoint_latest", "window": 9,
                "manifest_key": checkpoint_manifest_key(9), "manifest_sha256": "ab" * 32}
    document.update(changes)
    return sign_json(document, LEAD)


@pytest.mark.parametrize("changes", [
    {"window": -1}, {"window": "9"}, {"window": 9.0}, {"window": None},
    {"manifest_key": "checkpoints/8/manifest.json"}, {"manifest_key": "checkpoints/9/../../x.json"},
    {"manifest_sha256": "AB" * 32}, {"manifest_sha256": "ab" * 31}, {"manifest_sha256": None},
])
def test_a_malformed_latest_pointer_is_refused(seaweed, changes):
    writer, reader = seaweed.writer("validator-0"), seaweed.reader()
    bucket = seaweed.bucket("validator-0")
    writer.put(bucket, LATEST_KEY, _latest())
    assert read_latest(reader, bucket, LEAD.address)[0] == 9
    writer.put(bucket, LATEST_KEY, _latest(**changes))
    with pytest.raises(WireError, match="LATEST.json is malformed") as err:
        read_latest(reader, bucket, LEAD.address)
    assert err.value.reason == "bad_metadata"


def test_latest_at_window_zero_and_its_size_limit(seaweed):
    from subnet.storage.checkpoint import checkpoint_manifest_key
    writer, reader = seaweed.writer("validator-0"), seaweed.reader()
    bucket = seaweed.bucket("validator-0")
    writer.put(bucket, LATEST_KEY, _latest(window=0, manifest_key=checkpoint_manifest_key(0)))
    assert read_latest(reader, bucket, LEAD.address) == (0, checkpoint_manifest_key(0), "ab" * 32)
    from subnet.storage.client import StorageError
    writer.put(bucket, LATEST_KEY, _latest(padding="x" * 4096))      # over the 4 KiB a pointer may take
    with pytest.raises(StorageError, match="exceeds the limit of 4096") as err:
        read_latest(reader, bucket, LEAD.address)
    assert err.value.reason == "too_large"


def test_what_is_stored_and_in_which_order(seaweed, tiny_preset, tokenizer_json):
    from subnet.storage.checkpoint import checkpoint_files
    from subnet.wire.signing import WIRE_VERSION, verify_json
    writer, reader = seaweed.writer("validator-0"), seaweed.reader()
    bucket = seaweed.bucket("validator-0")
    model = build_model(tiny_preset.model, seed=6)
    uploads = []
    info = publish_checkpoint(writer, bucket, 50, model, tokenizer_json, LEAD, aggregate_sha256="ef" * 32,
                              version=12, after_upload=uploads.append)
    files = checkpoint_files(model, tokenizer_json)
    assert "tokenizer.json" in files and "config.json" in files
    assert uploads == [f"checkpoints/50/{name}" for name in files] + ["checkpoints/50/manifest.json", LATEST_KEY]
    for name, data in files.items():
        assert bytes(reader.get(bucket, f"checkpoints/50/{name}", 1 << 30)) == data, name
    raw = bytes(reader.get(bucket, "checkpoints/50/manifest.json", 1 << 20))
    manifest = verify_json(raw, expected_hotkey=LEAD.address, expected_kind="checkpoint_manifest")
    assert {k: v for k, v in manifest.items() if k != "signature"} == {
        "wire_format": WIRE_VERSION, "kind": "checkpoint_manifest", "window": 50, "model_hash": model_hash(model),
        "aggregate_sha256": "ef" * 32, "version": 12, "hotkey": LEAD.address,
        "files": {name: {"sha256": sha256_hex(data), "size": len(data)} for name, data in files.items()}}
    assert info.files == manifest["files"] and info.version == 12 and info.hotkey == LEAD.address
    assert read_latest(reader, bucket, LEAD.address) == (50, "checkpoints/50/manifest.json", sha256_hex(raw))


def test_fetch_by_window_refetch_and_a_manifest_not_the_one_latest_names(seaweed, tiny_preset, tokenizer_json,
                                                                          tmp_path):
    writer, reader = seaweed.writer("validator-0"), seaweed.reader()
    bucket = seaweed.bucket("validator-0")
    old, new = build_model(tiny_preset.model, seed=7), build_model(tiny_preset.model, seed=8)
    publish_checkpoint(writer, bucket, 60, old, tokenizer_json, LEAD)
    publish_checkpoint(writer, bucket, 61, new, tokenizer_json, LEAD)
    info, directory = fetch_checkpoint(reader, bucket, tmp_path, hotkey=LEAD.address, window=60)   # not LATEST's
    assert info.window == 60 and directory == tmp_path / "60"
    assert model_hash(load_checkpoint_model(directory, info)) == model_hash(old)
    (directory / "stray").write_text("left by an earlier fetch")
    info, directory = fetch_checkpoint(reader, bucket, tmp_path, hotkey=LEAD.address, window=60)    # again: replaced
    assert not (directory / "stray").exists() and sorted(p.name for p in directory.iterdir()) == sorted(
        [*info.files, "manifest.json"])
    # LATEST.json names window 61's manifest by hash: a re-signed manifest put there is refused
    latest = bytes(reader.get(bucket, LATEST_KEY, 4096))
    _resign(writer, bucket, 61, lambda doc: doc.update(version=5))
    writer.put(bucket, LATEST_KEY, latest)
    with pytest.raises(WireError, match="checkpoints/61/manifest.json does not match LATEST.json") as err:
        fetch_checkpoint(reader, bucket, tmp_path, hotkey=LEAD.address)
    assert err.value.reason == "part_mismatch"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["60"]       # no staging directory left behind


def test_a_file_of_another_size_is_refused_before_its_bytes(seaweed, tiny_preset, tokenizer_json, tmp_path):
    from subnet.storage.client import StorageError
    writer, reader = seaweed.writer("validator-0"), seaweed.reader()
    bucket = seaweed.bucket("validator-0")
    publish_checkpoint(writer, bucket, 70, build_model(tiny_preset.model, seed=9), tokenizer_json, LEAD)
    writer.put(bucket, "checkpoints/70/tokenizer.json", tokenizer_json + b" ")     # one byte longer
    with pytest.raises(StorageError, match="exceeds the limit") as err:
        fetch_checkpoint(reader, bucket, tmp_path, hotkey=LEAD.address)
    assert err.value.reason == "too_large"
    writer.put(bucket, "checkpoints/70/tokenizer.json", tokenizer_json[:-1])        # one byte shorter
    with pytest.raises(WireError, match="checkpoint file tokenizer.json does not match the manifest"):
        fetch_checkpoint(reader, bucket, tmp_path, hotkey=LEAD.address)
    assert list(tmp_path.iterdir()) == []


def test_a_same_size_file_with_other_bytes_is_refused(seaweed, tiny_preset, tokenizer_json, tmp_path):
    """The hash decides, not only the size: weights flipped in place (same length) are refused."""
    writer, reader = seaweed.writer("miner-1"), seaweed.reader()
    bucket = seaweed.bucket("miner-1")
    publish_checkpoint(writer, bucket, 33, build_model(tiny_preset.model, seed=8), tokenizer_json, LEAD)
    weights = bytearray(reader.get(bucket, "checkpoints/33/model.safetensors", 1 << 30))
    weights[-1] ^= 0x01
    writer.put(bucket, "checkpoints/33/model.safetensors", bytes(weights))
    with pytest.raises(WireError) as err:
        fetch_checkpoint(reader, bucket, tmp_path, hotkey=LEAD.address)
    assert err.value.reason == "part_mismatch" and "model.safetensors" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == []   # the staging directory went too


def test_fetch_makes_missing_parents_and_stages_beside_the_result(seaweed, tiny_preset, tokenizer_json, tmp_path):
    """The destination's parents are made; files are staged in a hidden directory named for the window
    inside the destination (the same filesystem, so the final rename is atomic), then renamed."""
    writer, reader = seaweed.writer("miner-1"), seaweed.reader()
    bucket = seaweed.bucket("miner-1")
    publish_checkpoint(writer, bucket, 34, build_model(tiny_preset.model, seed=9), tokenizer_json, LEAD)
    dest = tmp_path / "not" / "yet"
    seen = []

    class Watching(type(reader)):
        def get(self, bucket_name, key, max_bytes):
            if key.startswith("checkpoints/34/") and not key.endswith("manifest.json"):
                seen.append(sorted(p.name for p in dest.iterdir()))
            return super().get(bucket_name, key, max_bytes)

    watching = Watching(reader.config)
    info, directory = fetch_checkpoint(watching, bucket, dest, hotkey=LEAD.address)
    assert directory == dest / "34" and (directory / "config.json").is_file()
    assert seen and all(len(names) == 1 and names[0].startswith(".34.") for names in seen)
    assert sorted(p.name for p in dest.iterdir()) == ["34"]


def test_a_manifest_over_one_mib_is_not_read(seaweed, tmp_path):
    from subnet.storage.client import StorageError

    writer, reader = seaweed.writer("miner-1"), seaweed.reader()
    bucket = seaweed.bucket("miner-1")
    writer.put(bucket, "checkpoints/35/manifest.json", b" " * ((1 << 20) + 1))
    with pytest.raises(StorageError) as err:
        fetch_checkpoint(reader, bucket, tmp_path, hotkey=LEAD.address, window=35)
    assert err.value.reason == "too_large"
    writer.put(bucket, "checkpoints/35/manifest.json", b" " * (1 << 20))   # at the limit: read, then refused
    with pytest.raises(WireError):
        fetch_checkpoint(reader, bucket, tmp_path, hotkey=LEAD.address, window=35)


def test_publish_defaults_to_version_zero_and_stores_json_as_json(seaweed, tiny_preset, tokenizer_json):
    """The type is sent, not left to the server to guess from the name (SeaweedFS would; AWS would not)."""
    writer = seaweed.writer("miner-1")
    bucket = seaweed.bucket("miner-1")
    sent = {}
    s3 = writer.s3

    class Recording:
        def __getattr__(self, name):
            return getattr(s3, name)

        def put_object(self, **kwargs):
            sent[kwargs["Key"]] = kwargs.get("ContentType")
            return s3.put_object(**kwargs)

    writer.s3 = Recording()
    info = publish_checkpoint(writer, bucket, 36, build_model(tiny_preset.model, seed=10), tokenizer_json, LEAD)
    assert info.version == 0
    for key in ("checkpoints/36/manifest.json", LATEST_KEY):
        assert sent[key] == "application/json"
        assert s3.head_object(Bucket=bucket, Key=key)["ContentType"] == "application/json"


def test_loading_reads_safetensors_only_never_a_pickle(tiny_preset, tmp_path):
    """A directory with loadable weights only as pytorch_model.bin (what torch.save writes, a pickle) is
    refused: the loader is told to use safetensors, whatever else lies there."""
    model = build_model(tiny_preset.model, seed=11)
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(OSError):
        load_checkpoint_model(tmp_path)
