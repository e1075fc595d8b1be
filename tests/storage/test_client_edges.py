"""The storage client's decisions at their edges: how each S3 failure is named, when a call is retried
and how long it waits, where multipart begins, what the byte tallies count, pagination, batched deletes,
and that a failed multipart upload leaves nothing behind. Pure cases need no server; the rest run
against the real SeaweedFS."""
from __future__ import annotations

import os
import random

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from subnet.storage.client import (RetryPolicy, StorageClient, StorageError, TransferPolicy, _total_size, classify,
                                   with_retries)
from subnet.storage.s3config import S3Config

MiB = 1 << 20


def client_error(code: str = "", status: int | None = None) -> ClientError:
    response: dict = {"Error": {"Code": code, "Message": "m"}}
    if status is not None:
        response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, "GetObject")


@pytest.mark.parametrize("code", ["NoSuchKey", "404", "NotFound", "NoSuchBucket"])
def test_not_found_codes(code):
    assert classify(client_error(code)).reason == "not_found"


@pytest.mark.parametrize("code", ["AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"])
def test_denied_codes(code):
    error = classify(client_error(code))
    assert error.reason == "access_denied" and code in str(error) and "GetObject" in str(error)


@pytest.mark.parametrize("code", ["SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
                                  "TooManyRequests", "RequestTimeout", "RequestTimeTooSkewed", "InternalError",
                                  "ServiceUnavailable", "503", "500", "502", "504"])
def test_transient_codes(code):
    error = classify(client_error(code))
    assert error.reason == "unavailable" and code in str(error) and "GetObject" in str(error)


@pytest.mark.parametrize("status, reason", [(404, "not_found"), (403, "access_denied"), (429, "unavailable"),
                                            (500, "unavailable"), (503, "unavailable"), (599, "unavailable"),
                                            (499, "error"), (400, "error"), (412, "error"), (None, "error")])
def test_status_alone_names_the_failure(status, reason):
    """An unknown code: the HTTP status decides (500 and above, and 429, are worth retrying; 499 is not)."""
    assert classify(client_error("Odd", status)).reason == reason


@pytest.mark.parametrize("code", ["PreconditionFailed", "412"])
def test_precondition_failed_is_changed(code):
    error = classify(client_error(code))
    assert error.reason == "changed" and code in str(error) and "GetObject" in str(error)


def test_a_reply_without_an_error_section_is_named_by_its_status():
    assert classify(ClientError({"ResponseMetadata": {"HTTPStatusCode": 404}}, "HeadObject")).reason == "not_found"
    assert classify(ClientError({"ResponseMetadata": {"HTTPStatusCode": 503}}, "HeadObject")).reason == "unavailable"


def test_classify_keeps_the_message_and_passes_storage_errors_through():
    error = classify(client_error("NoSuchKey"))
    assert "NoSuchKey" in str(error)
    original = StorageError("too_large", "big")
    assert classify(original) is original
    assert classify(client_error()).reason == "error"   # no code, no status


@pytest.mark.parametrize("error", [EndpointConnectionError(endpoint_url="http://x"),
                                   ReadTimeoutError(endpoint_url="http://x"),
                                   ConnectionResetError("reset"), TimeoutError("slow")])
def test_connection_failures_are_transient_and_named(error):
    classified = classify(error)
    assert classified.reason == "unavailable" and type(error).__name__ in str(classified)


def test_other_exceptions_are_errors_named_by_type():
    classified = classify(ValueError("odd"))
    assert classified.reason == "error" and "ValueError: odd" in str(classified)


def test_backoff_is_full_jitter_exponential_and_capped():
    policy = RetryPolicy(attempts=9, base_delay=0.5, max_delay=3.0)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (8, 3.0)]:
        delays = [policy.delay(attempt, random.Random(seed)) for seed in range(400)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.9 * ceiling   # the whole range is used, not a fraction of it
        assert min(delays) < 0.1 * ceiling


def test_retries_stop_after_exactly_the_allowed_attempts():
    calls, sleeps = [], []

    def always_throttled():
        calls.append(1)
        raise client_error("SlowDown", 503)

    with pytest.raises(StorageError) as err:
        with_retries(always_throttled, RetryPolicy(attempts=4, base_delay=0.01), sleeps.append, random.Random(1))
    assert err.value.reason == "unavailable"
    assert len(calls) == 4 and len(sleeps) == 3
    assert isinstance(err.value.__cause__, ClientError)   # the original failure is kept

    calls.clear()
    with pytest.raises(StorageError):
        with_retries(always_throttled, RetryPolicy(attempts=1), sleeps.append)
    assert len(calls) == 1


def test_a_success_on_the_last_attempt_is_returned():
    calls = []

    def third_time_lucky():
        calls.append(1)
        if len(calls) < 3:
            raise TimeoutError("slow")
        return "ok"

    assert with_retries(third_time_lucky, RetryPolicy(attempts=3, base_delay=0), lambda s: None) == "ok"


@pytest.mark.parametrize("reason", ["not_found", "too_large", "changed", "error"])
def test_permanent_failures_are_not_retried(reason):
    calls = []

    def fails():
        calls.append(1)
        raise StorageError(reason, "x")

    with pytest.raises(StorageError) as err:
        with_retries(fails, RetryPolicy(attempts=5), lambda s: None)
    assert err.value.reason == reason and len(calls) == 1


@pytest.mark.parametrize("content_range, received, total", [
    ("bytes 0-99/12345", 100, 12345), ("bytes 0-0/1", 1, 1), ("bytes 0-99/*", 100, 100),
    ("", 77, 77), (None, 5, 5), ("bytes 0-99/12a", 100, 100), ("garbage", 3, 3),
    ("bytes 0-9/x/100", 10, 100),      # the total is what follows the last slash
    ("bytes 0-9/7/x", 10, 10)])
def test_total_size_from_the_content_range(content_range, received, total):
    response = {} if content_range is None else {"ContentRange": content_range}
    assert _total_size(response, received) == total


# --- against the real server -------------------------------------------------------------------------


def test_a_put_at_its_limit_is_stored_and_the_tallies_count_object_bytes(seaweed):
    writer, reader = seaweed.writer("miner-0"), seaweed.reader()
    bucket = seaweed.bucket("miner-0")
    data = os.urandom(4096)
    etag = writer.put(bucket, "edge/at-limit.bin", data, max_bytes=len(data))
    assert writer.bytes_sent == len(data) and writer.bytes_received == 0
    info = reader.head(bucket, "edge/at-limit.bin")
    assert (info.key, info.size, info.etag) == ("edge/at-limit.bin", len(data), etag)
    assert reader.list(bucket, "edge/nothing-here/") == []
    got = reader.get(bucket, "edge/at-limit.bin", max_bytes=len(data))
    assert got == data and type(got) is bytes   # one part: the body itself, no second buffer
    assert reader.get_range(bucket, "edge/at-limit.bin", 10, 20) == data[10:30]
    assert reader.get_range(bucket, "edge/at-limit.bin", 4090, 100) == data[4090:]   # short at the end
    assert reader.get_range(bucket, "edge/at-limit.bin", 0, 0) == b""
    assert reader.bytes_received == len(data) + 20 + 6 and reader.bytes_sent == 0


def test_multipart_begins_exactly_at_the_threshold(seaweed):
    policy = TransferPolicy(multipart_threshold=5 * MiB + 1, part_size=5 * MiB, concurrency=2)
    writer, reader = seaweed.writer("miner-1", policy), seaweed.reader(policy)
    bucket = seaweed.bucket("miner-1")
    below, at = os.urandom(5 * MiB), os.urandom(5 * MiB + 1)
    assert "-" not in writer.put(bucket, "edge/below.bin", below).strip('"')
    assert writer.put(bucket, "edge/at.bin", at).strip('"').endswith("-2")   # two parts: 5 MiB and 1 byte
    assert writer.bytes_sent == len(below) + len(at)
    got = reader.get(bucket, "edge/at.bin", max_bytes=len(at))
    assert bytes(got) == at and reader.bytes_received == len(at)
    # One part exactly: the first ranged GET has it all.
    assert reader.get(bucket, "edge/below.bin", max_bytes=len(below)) == below
    # Three parts: every byte is read once, none twice.
    three = os.urandom(11 * MiB)
    writer.put(bucket, "edge/three.bin", three)
    before = reader.bytes_received
    assert bytes(reader.get(bucket, "edge/three.bin", max_bytes=len(three))) == three
    assert reader.bytes_received - before == len(three)


class _Wrapped:
    """A boto3 client with one call replaced by a subclass (every other call passes through)."""

    def __init__(self, s3):
        self._s3 = s3

    def __getattr__(self, name):
        return getattr(self._s3, name)


class _FailingParts(_Wrapped):
    """The second part of a multipart upload fails for good."""

    def upload_part(self, **kwargs):
        if kwargs["PartNumber"] == 2:
            raise client_error("AccessDenied", 403)
        return self._s3.upload_part(**kwargs)


def test_a_failed_multipart_upload_is_aborted_and_stores_nothing(seaweed):
    policy = TransferPolicy(multipart_threshold=6 * MiB, part_size=5 * MiB, concurrency=1)
    writer = seaweed.writer("miner-1", policy)
    bucket = seaweed.bucket("miner-1")
    writer.s3 = _FailingParts(writer.s3)
    with pytest.raises(StorageError) as err:
        writer.put(bucket, "edge/aborted.bin", os.urandom(11 * MiB))
    assert err.value.reason == "access_denied"
    assert writer.bytes_sent == 0
    assert not seaweed.reader().exists(bucket, "edge/aborted.bin")
    pending = writer.s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u for u in pending if u["Key"] == "edge/aborted.bin"] == []


class _SmallPages(_Wrapped):
    """Every listing returns at most two keys per page."""

    pages = 0

    def list_objects_v2(self, **kwargs):
        self.pages += 1
        return self._s3.list_objects_v2(MaxKeys=2, **kwargs)


def test_listing_follows_every_page(seaweed):
    writer = seaweed.writer("validator-0")
    bucket = seaweed.bucket("validator-0")
    keys = [f"paged/{i}.bin" for i in range(5)]
    for i, key in enumerate(keys):
        writer.put(bucket, key, b"x" * i)
    reader = seaweed.reader()
    reader.s3 = pages = _SmallPages(reader.s3)
    listed = reader.list(bucket, "paged/")
    assert [i.key for i in listed] == keys and [i.size for i in listed] == [0, 1, 2, 3, 4]
    assert pages.pages == 3
    assert all(i.etag and i.last_modified.tzinfo is not None for i in listed)


def test_delete_sends_batches_of_at_most_a_thousand(seaweed):
    writer = seaweed.writer("validator-0")
    bucket = seaweed.bucket("validator-0")
    keys = [f"many/{i:04d}" for i in range(1001)]
    batches = []

    class Recording(_Wrapped):
        def delete_objects(self, **kwargs):
            batches.append([o["Key"] for o in kwargs["Delete"]["Objects"]])
            return self._s3.delete_objects(**kwargs)

    writer.put(bucket, "many/keep", b"k")
    for key in keys[-2:]:
        writer.put(bucket, key, b"d")
    writer.s3 = Recording(writer.s3)
    writer.delete(bucket, keys)
    assert [len(b) for b in batches] == [1000, 1] and sum(batches, []) == keys
    assert [i.key for i in seaweed.reader().list(bucket, "many/")] == ["many/keep"]


def test_delete_reports_a_refused_key(seaweed):
    """A reader may not delete: the server's per-key error comes back as a named StorageError."""
    bucket = seaweed.bucket("validator-0")
    seaweed.writer("validator-0").put(bucket, "guarded.bin", b"g")
    with pytest.raises(StorageError) as err:
        seaweed.reader().delete(bucket, ["guarded.bin"])
    assert err.value.reason == "access_denied" and "DeleteObjects" in str(err.value)
    assert seaweed.reader().exists(bucket, "guarded.bin")


def test_exists_reports_other_failures_instead_of_false(seaweed):
    creds = seaweed.layout.read
    wrong = StorageClient(S3Config(seaweed.endpoint, creds.access_key, "not-the-secret-key"),
                          retry=RetryPolicy(attempts=1))
    seaweed.writer("miner-0").put(seaweed.bucket("miner-0"), "edge/there.bin", b"t")
    with pytest.raises(StorageError) as err:
        wrong.exists(seaweed.bucket("miner-0"), "edge/there.bin")
    assert err.value.reason == "access_denied"
    assert seaweed.reader().exists(seaweed.bucket("miner-0"), "edge/there.bin")
    assert not seaweed.reader().exists(seaweed.bucket("miner-0"), "edge/absent.bin")


def test_ensure_bucket_is_idempotent_and_reports_refusals(seaweed):
    creds = seaweed.layout.admin
    admin = StorageClient(S3Config(seaweed.endpoint, creds.access_key, creds.secret_key))
    admin.ensure_bucket("tessera-edge-new")
    admin.ensure_bucket("tessera-edge-new")          # already there: no error
    admin.ensure_bucket(seaweed.bucket("miner-0"))  # made at start-up: no error
    admin.put("tessera-edge-new", "x", b"x")
    assert admin.get("tessera-edge-new", "x", max_bytes=1) == b"x"
    with pytest.raises(StorageError) as err:
        seaweed.writer("miner-0").ensure_bucket("tessera-someone-else")
    assert err.value.reason == "access_denied"


def test_the_async_facade_passes_every_argument_through(seaweed):
    """Each AsyncStorage call gives what the blocking call gives: limits, ranges, metadata, prefixes."""
    import asyncio

    from subnet.storage.client import AsyncStorage

    bucket = seaweed.bucket("miner-1")
    writer, reader = AsyncStorage(seaweed.writer("miner-1")), AsyncStorage(seaweed.reader())
    data = os.urandom(3000)

    async def main():
        await writer.put(bucket, "facade/a.bin", data)
        await writer.put(bucket, "facade/b.bin", b"bb", max_bytes=2)
        await writer.put(bucket, "other/c.bin", b"c")
        with pytest.raises(StorageError) as err:
            await writer.put(bucket, "facade/too-big.bin", b"123", max_bytes=2)
        assert err.value.reason == "too_large"
        with pytest.raises(StorageError) as err:
            await reader.get(bucket, "facade/a.bin", max_bytes=2999)
        assert err.value.reason == "too_large"
        assert await reader.get(bucket, "facade/a.bin", max_bytes=3000) == data
        assert await reader.get_range(bucket, "facade/a.bin", 100, 7) == data[100:107]
        assert (await reader.head(bucket, "facade/a.bin")).size == 3000
        assert await reader.exists(bucket, "facade/b.bin") and not await reader.exists(bucket, "facade/too-big.bin")
        assert sorted(i.key for i in await reader.list(bucket, "facade/")) == ["facade/a.bin", "facade/b.bin"]
        assert {"facade/a.bin", "other/c.bin"} <= {i.key for i in await reader.list(bucket)}   # no prefix: all
        await writer.delete(bucket, ["facade/a.bin"])
        assert not await reader.exists(bucket, "facade/a.bin") and await reader.exists(bucket, "other/c.bin")

    asyncio.run(main())


def test_a_one_byte_range_is_one_byte(seaweed):
    bucket = seaweed.bucket("miner-0")
    seaweed.writer("miner-0").put(bucket, "edge/range.bin", b"0123456789")
    reader = seaweed.reader()
    assert reader.get_range(bucket, "edge/range.bin", 3, 1) == b"3"
    assert reader.get_range(bucket, "edge/range.bin", 9, 1) == b"9"
    assert reader.get_range(bucket, "edge/range.bin", 0, -1) == b""


def test_the_content_type_is_stored_for_single_and_multipart_puts(seaweed):
    policy = TransferPolicy(multipart_threshold=6 * MiB, part_size=5 * MiB, concurrency=2)
    writer = seaweed.writer("miner-1", policy)
    bucket = seaweed.bucket("miner-1")
    # Names without an extension and a type of our own: the server cannot guess it from the name.
    writer.put(bucket, "edge/small-typed", b"{}", content_type="application/x-tessera")
    writer.put(bucket, "edge/large-typed", b" " * (7 * MiB), content_type="application/x-tessera")
    for key in ("edge/small-typed", "edge/large-typed"):
        assert writer.s3.head_object(Bucket=bucket, Key=key)["ContentType"] == "application/x-tessera"


class _CreateBucketFails:
    """A stand-in boto3 client whose create_bucket fails with one error code (unit test of ensure_bucket)."""

    def __init__(self, code):
        self.code, self.calls = code, 0

    def create_bucket(self, Bucket):
        self.calls += 1
        raise client_error(self.code)


@pytest.mark.parametrize("code, fails", [("BucketAlreadyOwnedByYou", False), ("BucketAlreadyExists", False),
                                         ("AccessDenied", True), ("InvalidBucketName", True)])
def test_ensure_bucket_accepts_only_an_existing_bucket(code, fails):
    client = StorageClient(S3Config("http://127.0.0.1:9", "AKIAEXAMPLE0000", "secret-secret"),
                           retry=RetryPolicy(attempts=1))
    client.s3 = _CreateBucketFails(code)
    if fails:
        with pytest.raises(StorageError):
            client.ensure_bucket("tessera-x")
    else:
        client.ensure_bucket("tessera-x")
    assert client.s3.calls == 1


class _IgnoresRange:
    """A stand-in S3 client that answers a ranged GET with the whole object and no Content-Range, as
    a server ignoring the Range header may (unit test of StorageClient.get)."""

    def __init__(self, data, stamped=True):
        self.data, self.stamped = data, stamped

    def get_object(self, Bucket, Key, Range):
        import io
        from datetime import datetime, timezone
        stamp = {"LastModified": datetime(2026, 12, 3, tzinfo=timezone.utc)} if self.stamped else {}
        return {"Body": io.BytesIO(self.data), "ETag": '"e"', **stamp}


def test_a_server_that_ignores_the_range_header_still_gives_the_whole_object():
    client = StorageClient(S3Config("http://127.0.0.1:9", "AKIAEXAMPLE0000", "secret-secret"),
                           TransferPolicy(multipart_threshold=6 * MiB, part_size=5 * MiB, concurrency=1))
    data = os.urandom(7 * MiB)
    client.s3 = _IgnoresRange(data)
    assert client.get("b", "k", max_bytes=len(data)) == data
    with pytest.raises(StorageError) as err:
        client.get("b", "k", max_bytes=len(data) - 1)
    assert err.value.reason == "too_large"
    client.s3 = _IgnoresRange(data, stamped=False)   # a peer's endpoint that leaves Last-Modified out
    with pytest.raises(StorageError, match="no Last-Modified") as err:
        client.get_with_info("b", "k", max_bytes=len(data))
    assert err.value.reason == "error"


@pytest.mark.parametrize("concurrency, pool", [(2, 10), (8, 16)])
def test_the_boto_client_is_configured_as_the_config_says(concurrency, pool):
    """One retry policy (ours: botocore's own off), the config's region, addressing, timeouts, a
    connection pool for the parallel parts, checksums only where S3 requires them."""
    config = S3Config("http://127.0.0.1:9", "AKIAEXAMPLE0000", "secret-secret", region="eu-west-3",
                      addressing_style="virtual", connect_timeout=3.5, read_timeout=7.5)
    client = StorageClient(config, TransferPolicy(concurrency=concurrency))
    meta = client.s3.meta.config
    assert client.config is config and client.s3.meta.region_name == "eu-west-3"
    assert meta.s3 == {"addressing_style": "virtual"} and meta.retries["total_max_attempts"] == 1
    assert (meta.connect_timeout, meta.read_timeout, meta.max_pool_connections) == (3.5, 7.5, pool)
    assert meta.request_checksum_calculation == meta.response_checksum_validation == "when_required"


def test_a_put_without_a_content_type_is_stored_as_octet_stream(seaweed):
    writer = seaweed.writer("miner-0")
    bucket = seaweed.bucket("miner-0")
    writer.put(bucket, "edge/plain.bin", b"\x00\x01")
    assert writer.s3.head_object(Bucket=bucket, Key="edge/plain.bin")["ContentType"] == "application/octet-stream"
