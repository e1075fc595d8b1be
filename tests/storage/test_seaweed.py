"""The embedded SeaweedFS: per-bucket write keys, the shared read key, persistence, clean stop."""
from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path

import pytest

from subnet.storage.client import StorageClient, StorageError
from subnet.storage.s3config import S3Config
from subnet.storage.seaweed import (SeaweedError, SeaweedServer, bucket_name, identities_document,
                                    load_or_create_layout)


def test_neuron_writes_its_own_bucket_only(seaweed):
    miner = seaweed.writer("miner-0")
    miner.put(seaweed.bucket("miner-0"), "own.bin", b"mine")
    for other in ("miner-1", "validator-0", "dataset"):
        with pytest.raises(StorageError) as info:
            miner.put(seaweed.bucket(other), "intrusion.bin", b"not yours")
        assert info.value.reason == "access_denied"
        with pytest.raises(StorageError) as info:
            miner.delete(seaweed.bucket(other), ["anything"])
        assert info.value.reason == "access_denied"
    with pytest.raises(StorageError) as info:
        miner.ensure_bucket("tessera-new-bucket")
    assert info.value.reason == "access_denied"


def test_read_key_reads_every_bucket_and_cannot_write(seaweed):
    for name in ("miner-0", "miner-1", "validator-0"):
        seaweed.writer(name).put(seaweed.bucket(name), "hello.txt", name.encode())
    reader = seaweed.reader()
    for name in ("miner-0", "miner-1", "validator-0"):
        assert bytes(reader.get(seaweed.bucket(name), "hello.txt", 100)) == name.encode()
        assert "hello.txt" in [info.key for info in reader.list(seaweed.bucket(name))]
        with pytest.raises(StorageError) as info:
            reader.put(seaweed.bucket(name), "hello.txt", b"overwritten")
        assert info.value.reason == "access_denied"
        with pytest.raises(StorageError) as info:
            reader.delete(seaweed.bucket(name), ["hello.txt"])
        assert info.value.reason == "access_denied"
        assert bytes(reader.get(seaweed.bucket(name), "hello.txt", 100)) == name.encode()


def test_unknown_key_is_denied(seaweed):
    stranger = StorageClient(S3Config(seaweed.endpoint, "NOTAKEY000000000", "nope-nope-nope"))
    with pytest.raises(StorageError) as info:
        stranger.get(seaweed.bucket("miner-0"), "own.bin", 100)
    assert info.value.reason == "access_denied"


def test_layout_keys_persist_and_new_neurons_are_added(tmp_path):
    first = load_or_create_layout(tmp_path, ["a-1"])
    second = load_or_create_layout(tmp_path, ["b-2"])
    assert second.owner("a-1") == first.owner("a-1") and second.read == first.read
    assert second.owner("b-2").bucket == bucket_name("b-2") == "tessera-b-2"
    assert stat.S_IMODE(os.stat(tmp_path / "credentials.json").st_mode) == 0o600
    document = identities_document(second)
    actions = {i["name"]: i["actions"] for i in document["identities"]}
    assert actions["owner-a-1"] == [f"{a}:tessera-a-1" for a in ("Read", "Write", "List", "Tagging")]
    assert actions["reader"] == ["Read", "List"]
    with pytest.raises(SeaweedError):
        bucket_name("../evil")


@pytest.mark.slow
def test_data_persists_across_restart_and_stop_leaves_no_process(tmp_path):
    layout = load_or_create_layout(tmp_path, ["miner-9"])
    owner = layout.owner("miner-9")
    server = SeaweedServer(tmp_path, layout, stop_timeout=2.0).start()
    pid = server.process.pid
    try:
        client = StorageClient(S3Config(server.endpoint, owner.write.access_key, owner.write.secret_key))
        client.put(owner.bucket, "kept.json", json.dumps({"x": 1}).encode())
        ports = {str(p) for p in (server.ports.master_grpc, server.ports.volume_grpc, server.ports.s3_grpc)}
        sockets = [p for p in Path("/tmp").glob("seaweedfs-*.sock") if p.stem.rsplit("-", 1)[-1] in ports]
    finally:
        server.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # the whole process group is gone
    assert sockets and not any(p.exists() for p in sockets)  # weed's unix sockets were removed
    # Restart on other ports with the keys reloaded from disk.
    layout = load_or_create_layout(tmp_path, [])
    with SeaweedServer(tmp_path, layout, stop_timeout=2.0) as server:
        owner = layout.owner("miner-9")
        client = StorageClient(S3Config(server.endpoint, owner.write.access_key, owner.write.secret_key))
        assert json.loads(bytes(client.get(owner.bucket, "kept.json", 100))) == {"x": 1}



@pytest.mark.slow
def test_a_picked_port_taken_before_weed_binds_it_is_picked_again(tmp_path):
    """weed cannot bind port 0, so its ports are picked free ahead; another process may take one in
    between. The start picks again instead of failing; the fixed S3 port is kept."""
    import socket
    layout = load_or_create_layout(tmp_path, ["miner-9"])
    with socket.socket() as thief:
        thief.bind(("127.0.0.1", 0))
        thief.listen()
        stolen = thief.getsockname()[1]
        server = SeaweedServer(tmp_path, layout, stop_timeout=2.0)
        fixed_s3 = server.ports.s3
        server.s3_port = fixed_s3
        server.ports = dataclasses.replace(server.ports, master=stolen)   # taken after it was picked
        try:
            server.start()
            assert server.ports.master != stolen and server.ports.s3 == fixed_s3
            assert "address already in use" in server.log_path.read_text()   # the first start did hit it
            owner = layout.owner("miner-9")
            client = StorageClient(S3Config(server.endpoint, owner.write.access_key, owner.write.secret_key))
            client.put(owner.bucket, "after-repick", b"ok")
            assert bytes(client.get(owner.bucket, "after-repick", 10)) == b"ok"
        finally:
            server.stop()


def test_a_fixed_s3_port_in_use_is_an_error_not_a_retry(tmp_path):
    import socket
    layout = load_or_create_layout(tmp_path, ["miner-9"])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        server = SeaweedServer(tmp_path, layout, stop_timeout=2.0, s3_port=busy.getsockname()[1])
        with pytest.raises(SeaweedError, match="address already in use"):
            server.start(ready_timeout=30)
