"""The checkpoint manifest's checks one field at a time, each at its edge (a parsed, signature-checked
document in, `CheckpointInfo` or a named refusal out; no storage)."""
from __future__ import annotations

import copy

import pytest

from subnet.storage.checkpoint import MAX_CHECKPOINT_FILE_BYTES, _parse_manifest
from subnet.wire.signing import WireError

HEX = "ab" * 32


def manifest(**changes) -> dict:
    document = {"wire_format": 1, "kind": "checkpoint_manifest", "window": 7, "model_hash": "12" * 32,
                "aggregate_sha256": "34" * 32, "version": 3, "hotkey": "5Hotkey",
                "files": {"model.safetensors": {"sha256": HEX, "size": 10},
                          "config.json": {"sha256": HEX, "size": 0}}}
    document.update(changes)
    return document


def refused(document: dict, window: int = 7) -> WireError:
    with pytest.raises(WireError) as info:
        _parse_manifest(document, window)
    return info.value


def test_a_good_manifest_parses_to_its_fields():
    info = _parse_manifest(manifest(), 7)
    assert (info.window, info.model_hash, info.aggregate_sha256, info.version, info.hotkey) == (
        7, "12" * 32, "34" * 32, 3, "5Hotkey")
    assert info.files == manifest()["files"]
    assert _parse_manifest({k: v for k, v in manifest().items() if k != "version"}, 7).version == 0   # older writers


def test_a_manifest_for_another_window_is_refused():
    error = refused(manifest(), window=8)
    assert error.reason == "wrong_window" and "manifest is for window 7, expected 8" in str(error)
    assert refused(manifest(window="7")).reason == "wrong_window"


@pytest.mark.parametrize("key", ["model_hash", "aggregate_sha256"])
@pytest.mark.parametrize("value", ["AB" * 32, "ab" * 31, "ab" * 33, None, 12])
def test_hashes_must_be_64_lowercase_hex(key, value):
    error = refused(manifest(**{key: value}))
    assert error.reason == "bad_metadata" and f"manifest {key} must be 64 lowercase hex digits" in str(error)


def many_files(count: int) -> dict:
    files = {f"shard-{i}.safetensors": {"sha256": HEX, "size": 1} for i in range(count - 1)}
    return {**files, "config.json": {"sha256": HEX, "size": 1}}


def test_between_one_and_64_files():
    assert len(_parse_manifest(manifest(files=many_files(64)), 7).files) == 64
    for files in (many_files(65), {}, [], None, "config.json"):
        error = refused(manifest(files=files))
        assert error.reason == "bad_metadata" and "manifest must list 1..64 files" in str(error)


@pytest.mark.parametrize("name", ["a" * 59 + ".json", "0.json", "_x.safetensors", "A-b_c.9.json"])
def test_file_names_that_are_accepted(name):
    files = {**manifest()["files"], name: {"sha256": HEX, "size": 1}}
    assert name in _parse_manifest(manifest(files=files), 7).files


@pytest.mark.parametrize("name", ["a" * 60 + ".json", "", ".hidden.json", "-dash.json", "a/b.json", "a\\b.json",
                                  "...json", "a b.json", "é.json", "manifest.json", "x.json\n",
                                  # no format a loader might unpickle, and nothing without a known type
                                  "pytorch_model.bin", "model.pt", "model.pth", "x.pkl", "x.ckpt", "a" * 64,
                                  "x.json.bin", "x.safetensors.pt"])
def test_file_names_that_are_refused(name):
    files = {**manifest()["files"], name: {"sha256": HEX, "size": 1}}
    error = refused(manifest(files=files))
    assert error.reason == "bad_metadata" and "is malformed" in str(error)


@pytest.mark.parametrize("entry", [
    None, [], {"sha256": HEX}, {"size": 1}, {"sha256": HEX, "size": 1, "extra": 0},
    {"sha256": "AB" * 32, "size": 1}, {"sha256": 5, "size": 1}, {"sha256": "ab" * 31, "size": 1},
    {"sha256": HEX, "size": -1}, {"sha256": HEX, "size": MAX_CHECKPOINT_FILE_BYTES + 1},
    {"sha256": HEX, "size": 1.0}, {"sha256": HEX, "size": True}, {"sha256": HEX, "size": "1"},
])
def test_malformed_file_entries_are_refused(entry):
    files = {**manifest()["files"], "tokenizer.json": entry}
    error = refused(manifest(files=files))
    assert error.reason == "bad_metadata" and "manifest entry 'tokenizer.json' is malformed" in str(error)


def test_file_sizes_at_their_bounds_are_accepted():
    for size in (0, MAX_CHECKPOINT_FILE_BYTES):
        files = {**manifest()["files"], "tokenizer.json": {"sha256": HEX, "size": size}}
        assert _parse_manifest(manifest(files=files), 7).files["tokenizer.json"]["size"] == size


def test_a_long_hostile_name_is_cut_in_the_message():
    files = {**manifest()["files"], "x" * 500: {"sha256": HEX, "size": 1}}
    message = str(refused(manifest(files=files)))
    assert repr("x" * 64) in message and "x" * 65 not in message


@pytest.mark.parametrize("drop", ["config.json", "model.safetensors"])
def test_config_and_weights_are_required(drop):
    document = manifest()
    files = copy.deepcopy(document["files"])
    del files[drop]
    files["other.json"] = {"sha256": HEX, "size": 1}
    error = refused(manifest(files=files))
    assert error.reason == "bad_metadata" and "manifest lacks config.json or safetensors weights" in str(error)


def test_weights_under_any_safetensors_name_count():
    files = {"config.json": {"sha256": HEX, "size": 1}, "model-00001-of-00002.safetensors": {"sha256": HEX, "size": 1}}
    assert _parse_manifest(manifest(files=files), 7).files == files


@pytest.mark.parametrize("version", [-1, 1.0, "3", None, True])
def test_version_must_be_a_non_negative_integer(version):
    error = refused(manifest(version=version))
    assert error.reason == "bad_metadata" and "manifest version must be a non-negative integer" in str(error)
    assert _parse_manifest(manifest(version=0), 7).version == 0
