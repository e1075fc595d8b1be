"""subnet/faultproxy.py in front of real SeaweedFS: slow replies, a partition and its healing, an upload
held half-sent while its uploader is killed. What a neuron's storage client does in each is what the
fault benchmark (bench/faults.py) relies on."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from urllib.parse import urlparse

import pytest

from subnet.faultproxy import FaultProxy
from subnet.storage.client import RetryPolicy, StorageClient, StorageError
from subnet.storage.s3config import S3Config

QUICK = RetryPolicy(attempts=2, base_delay=0.05, max_delay=0.1)


@pytest.fixture
def proxy(seaweed):
    proxy = FaultProxy(upstream_port=urlparse(seaweed.endpoint).port).start()
    yield proxy
    proxy.stop()


def client_via(seaweed, proxy, name="miner-1", read_timeout=1.0) -> StorageClient:
    creds = seaweed.layout.owner(name).write
    config = S3Config(proxy.url, creds.access_key, creds.secret_key, connect_timeout=1.0, read_timeout=read_timeout)
    return StorageClient(config, retry=QUICK)


def test_bytes_pass_through_unchanged(seaweed, proxy):
    client, bucket = client_via(seaweed, proxy), seaweed.bucket("miner-1")
    data = os.urandom(3 << 20)
    client.put(bucket, "through.bin", data)
    assert client.get(bucket, "through.bin", max_bytes=len(data)) == data
    assert seaweed.reader().get(bucket, "through.bin", max_bytes=len(data)) == data   # stored as sent
    assert proxy.connections >= 1


def test_a_reply_slower_than_the_read_timeout_fails_as_unavailable_and_a_slow_one_within_it_succeeds(seaweed, proxy):
    bucket = seaweed.bucket("miner-1")
    seaweed.writer("miner-1").put(bucket, "slow.bin", b"x" * 100)
    proxy.delay_s = 0.3
    assert client_via(seaweed, proxy, read_timeout=2.0).get(bucket, "slow.bin", max_bytes=100) == b"x" * 100
    proxy.delay_s = 3.0
    with pytest.raises(StorageError) as refused:
        client_via(seaweed, proxy, read_timeout=0.5).get(bucket, "slow.bin", max_bytes=100)
    assert refused.value.reason == "unavailable"


def test_a_partition_times_out_and_healing_lets_the_same_client_through(seaweed, proxy):
    client, bucket = client_via(seaweed, proxy), seaweed.bucket("miner-1")
    client.put(bucket, "before.bin", b"before")
    proxy.partition()
    with pytest.raises(StorageError) as refused:
        client.put(bucket, "during.bin", b"during")
    assert refused.value.reason == "unavailable"
    assert not seaweed.reader().exists(bucket, "during.bin")
    proxy.heal()
    client.put(bucket, "after.bin", b"after")
    assert client.get(bucket, "after.bin", max_bytes=5) == b"after"


UPLOAD = """
import sys
from subnet.storage.client import StorageClient
from subnet.storage.s3config import S3Config
client = StorageClient(S3Config(sys.argv[1], sys.argv[2], sys.argv[3]))
client.put(sys.argv[4], "gradient-7-1.safetensors", b"g" * (1 << 20))
"""


def test_an_uploader_killed_mid_upload_leaves_no_object(seaweed, proxy):
    creds, bucket = seaweed.layout.owner("miner-1").write, seaweed.bucket("miner-1")
    proxy.hold_uploads(rb"/gradient-7-1\.safetensors ")
    uploader = subprocess.Popen([sys.executable, "-c", UPLOAD, proxy.url, creds.access_key, creds.secret_key, bucket],
                                start_new_session=True)
    try:
        assert proxy.upload_held.wait(60), "the upload never reached the proxy"
        assert proxy.held_request.startswith(b"PUT /" + bucket.encode() + b"/gradient-7-1.safetensors")
        os.killpg(uploader.pid, signal.SIGKILL)
        assert uploader.wait(10) == -signal.SIGKILL
    finally:
        if uploader.poll() is None:
            uploader.kill()
    proxy.hold_uploads(None)
    reader = seaweed.reader()
    assert not reader.exists(bucket, "gradient-7-1.safetensors")
    assert [o.key for o in reader.list(bucket, "gradient-7-")] == []
    client_via(seaweed, proxy).put(bucket, "gradient-7-1.safetensors", b"retried")   # the restart's upload
    assert reader.get(bucket, "gradient-7-1.safetensors", max_bytes=7) == b"retried"
