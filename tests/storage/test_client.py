"""The boto3 client against the real SeaweedFS: limits, multipart, ranged GETs, listing, retention,
retries, and the asyncio facade."""
from __future__ import annotations

import asyncio
import os
import random
import time
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from subnet.storage.client import AsyncStorage, RetryPolicy, StorageClient, StorageError, TransferPolicy, with_retries
from subnet.storage.retention import delete_windows_before
from subnet.storage.s3config import S3Config
from subnet.storage.seaweed import free_ports
from subnet.wire.names import window_of_key

MiB = 1 << 20
# Small parts so multipart and parallel ranged GETs run on a few MiB (5 MiB is S3's minimum part).
SMALL_PARTS = TransferPolicy(multipart_threshold=6 * MiB, part_size=5 * MiB, concurrency=4)


def test_small_round_trip_head_and_limits(seaweed):
    writer, reader = seaweed.writer("miner-0"), seaweed.reader()
    bucket = seaweed.bucket("miner-0")
    data = os.urandom(12345)
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    writer.put(bucket, "small.bin", data)
    assert reader.get(bucket, "small.bin", max_bytes=len(data)) == data
    info = reader.head(bucket, "small.bin")
    assert info.size == len(data)
    assert before <= info.last_modified <= datetime.now(timezone.utc) + timedelta(seconds=5)
    with pytest.raises(StorageError) as err:
        reader.get(bucket, "small.bin", max_bytes=len(data) - 1)
    assert err.value.reason == "too_large"
    with pytest.raises(StorageError) as err:
        writer.put(bucket, "refused.bin", data, max_bytes=100)
    assert err.value.reason == "too_large"
    assert not reader.exists(bucket, "refused.bin")
    with pytest.raises(StorageError) as err:
        reader.get(bucket, "missing.bin", max_bytes=10)
    assert err.value.reason == "not_found"
    writer.put(bucket, "empty.bin", b"")
    assert reader.get(bucket, "empty.bin", max_bytes=0) == b""
    assert reader.get_range(bucket, "small.bin", 100, 50) == data[100:150]


def test_multipart_upload_and_parallel_ranged_get(seaweed):
    writer = seaweed.writer("miner-1", SMALL_PARTS)
    reader = seaweed.reader(SMALL_PARTS)
    bucket = seaweed.bucket("miner-1")
    data = os.urandom(17 * MiB + 123)  # 4 parts, the last one short
    etag = writer.put(bucket, "large.bin", data)
    assert "-" in etag.strip('"')  # a multipart ETag ends in -<parts>
    got = reader.get(bucket, "large.bin", max_bytes=len(data))
    assert len(got) == len(data) and got == data
    with pytest.raises(StorageError) as err:
        reader.get(bucket, "large.bin", max_bytes=len(data) - 1)
    assert err.value.reason == "too_large"


@pytest.mark.parametrize("size", [0, 1000, 9 * MiB + 5])   # empty, one part, several parts
def test_get_with_info_says_what_head_says_of_the_bytes_it_read(seaweed, size):
    writer, reader = seaweed.writer("miner-1", SMALL_PARTS), seaweed.reader(SMALL_PARTS)
    bucket, key = seaweed.bucket("miner-1"), f"info-{size}.bin"
    data = os.urandom(size)
    writer.put(bucket, key, data)
    got, info = reader.get_with_info(bucket, key, max_bytes=max(size, 1))
    assert bytes(got) == data
    assert info == reader.head(bucket, key)   # key, size, LastModified and ETag
    if size:
        with pytest.raises(StorageError) as err:
            reader.get_with_info(bucket, key, max_bytes=size - 1)
        assert err.value.reason == "too_large"


def test_list_by_prefix_and_retention(seaweed):
    writer, reader = seaweed.writer("validator-0"), seaweed.reader()
    bucket = seaweed.bucket("validator-0")
    keys = ["gradient-3-1.safetensors", "gradient-4-1.safetensors", "gradient-5-1.safetensors",
            "aggregate-3.safetensors", "aggregate-3.json", "aggregate-5.json", "scores-4.json", "scores-5.json",
            "checkpoints/3/model.safetensors", "checkpoints/5/manifest.json", "checkpoints/LATEST.json",
            "dataset/demo/train-00001.npy", "notes.txt"]
    for key in keys:
        writer.put(bucket, key, key.encode())
    assert sorted(i.key for i in reader.list(bucket, "gradient-")) == keys[:3]
    assert [i.key for i in reader.list(bucket, "checkpoints/3/")] == ["checkpoints/3/model.safetensors"]
    deleted = delete_windows_before(writer, bucket, 5, keep={"aggregate-3.json"})
    assert sorted(deleted) == sorted(["gradient-3-1.safetensors", "gradient-4-1.safetensors",
                                      "aggregate-3.safetensors", "scores-4.json", "checkpoints/3/model.safetensors"])
    left = {i.key for i in reader.list(bucket)}
    assert {"gradient-5-1.safetensors", "aggregate-3.json", "aggregate-5.json", "scores-5.json",
            "checkpoints/5/manifest.json", "checkpoints/LATEST.json", "dataset/demo/train-00001.npy",
            "notes.txt"} <= left
    assert not left & set(deleted)
    assert delete_windows_before(writer, bucket, 5) == ["aggregate-3.json"]  # the one kept before


def test_window_of_key():
    assert window_of_key("gradient-12-7.safetensors") == 12
    assert window_of_key("aggregate-9.json") == 9
    assert window_of_key("aggregate-9.safetensors") == 9
    assert window_of_key("scores-8.json") == 8
    assert window_of_key("checkpoints/40/config.json") == 40
    assert window_of_key("checkpoints/LATEST.json") is None
    assert window_of_key("checkpoints/40") is None
    assert window_of_key("dataset/x/train-00001.npy") is None
    assert window_of_key("gradients-3-1.safetensors") is None


def test_with_retries_backs_off_on_transient_errors_only():
    sleeps, calls = [], []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise EndpointConnectionError(endpoint_url="http://x")
        if len(calls) == 2:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "throttled"},
                               "ResponseMetadata": {"HTTPStatusCode": 503}}, "PutObject")
        return "done"

    policy = RetryPolicy(attempts=5, base_delay=0.1, max_delay=1.0)
    assert with_retries(flaky, policy, sleeps.append, random.Random(0)) == "done"
    assert len(calls) == 3 and len(sleeps) == 2 and all(0 <= s <= 0.2 for s in sleeps)

    def denied():
        calls.append(1)
        raise StorageError("access_denied", "no")

    calls.clear()
    with pytest.raises(StorageError):
        with_retries(denied, policy, sleeps.append)
    assert len(calls) == 1


def test_connection_errors_are_retried_then_reported():
    (port,) = free_ports(1)  # nothing listens here
    sleeps = []
    client = StorageClient(S3Config(f"http://127.0.0.1:{port}", "AKIAEXAMPLE0000", "secret-secret"),
                           retry=RetryPolicy(attempts=3, base_delay=0.01), sleep=sleeps.append)
    with pytest.raises(StorageError) as err:
        client.get("tessera-miner-0", "x", max_bytes=10)
    assert err.value.reason == "unavailable" and len(sleeps) == 2


def test_async_facade_runs_concurrently(seaweed):
    """Two gets are in flight at once (each waits, in its worker thread, for the other to start),
    and the event loop keeps running meanwhile (the first get waits for a loop task to release it):
    a facade that blocked the loop, or ran calls one at a time, times out at the barrier instead."""
    import threading

    creds = seaweed.layout.read
    bucket = seaweed.bucket("miner-0")
    both_started = threading.Barrier(2, timeout=10)
    in_flight, loop_ran = threading.Event(), threading.Event()

    class Rendezvous(StorageClient):
        def _get_range(self, bucket_name, key, first, last):
            if key in ("async/0.bin", "async/1.bin"):
                both_started.wait()                 # BrokenBarrierError after 10 s alone
                if key == "async/0.bin":
                    in_flight.set()
                    if not loop_ran.wait(timeout=10):
                        raise AssertionError("the event loop did not run while a get was in flight")
            return super()._get_range(bucket_name, key, first, last)

    writer = AsyncStorage(seaweed.writer("miner-0"))
    reader = AsyncStorage(Rendezvous(S3Config(seaweed.endpoint, creds.access_key, creds.secret_key)))

    async def main():
        payloads = {f"async/{i}.bin": os.urandom(1000 + i) for i in range(8)}
        await asyncio.gather(*(writer.put(bucket, k, v) for k, v in payloads.items()))

        async def release_when_both_started():
            deadline = time.monotonic() + 20
            while not in_flight.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            if in_flight.is_set():
                loop_ran.set()                      # only a running loop can get here

        releaser = asyncio.create_task(release_when_both_started())
        got = await asyncio.gather(*(reader.get(bucket, k, 10_000) for k in payloads))
        await releaser
        listed = await reader.list(bucket, "async/")
        return payloads, got, listed

    payloads, got, listed = asyncio.run(main())
    assert list(got) == list(payloads.values())
    assert loop_ran.is_set() and not both_started.broken
    assert sorted(i.key for i in listed) == sorted(payloads)


def test_an_object_replaced_during_a_ranged_download_is_refused(seaweed):
    """Another writer replaces the object between the first part and the rest: the parts would mix
    two objects, so the download stops with `changed` (the storage's ETag moved)."""
    writer = seaweed.writer("miner-0")
    bucket, key = seaweed.bucket("miner-0"), "replaced-mid-download"
    writer.put(bucket, key, b"a" * (3 * MiB))
    creds = seaweed.layout.read

    class RacedReader(StorageClient):
        replaced = False

        def _get_range(self, bucket_name, object_key, first, last):
            got = super()._get_range(bucket_name, object_key, first, last)
            if not self.replaced:   # the first part is in: now the object changes under us
                self.replaced = True
                writer.put(bucket, key, b"b" * (3 * MiB))
            return got

    reader = RacedReader(S3Config(seaweed.endpoint, creds.access_key, creds.secret_key),
                         TransferPolicy(multipart_threshold=6 * MiB, part_size=1 * MiB, concurrency=1))
    with pytest.raises(StorageError) as info:
        reader.get(bucket, key, max_bytes=4 * MiB)
    assert info.value.reason == "changed"
    # Read again, whole: the new object, not a mix.
    assert bytes(seaweed.reader().get(bucket, key, max_bytes=4 * MiB)) == b"b" * (3 * MiB)
