"""S3 client (boto3) for any endpoint: SeaweedFS, MinIO, R2, AWS.

- put/get with size limits; a get starts with a ranged GET of the first part, which also tells the
  object's size, so small objects cost one request and large ones continue with parallel ranged
  GETs into one preallocated buffer (each part checked against the first part's ETag, so an object
  replaced mid-download is detected).
- large puts use multipart upload with parallel parts (aborted on failure).
- retries with exponential backoff and jitter on throttling, 5xx and connection errors (botocore's
  own retries are off so there is one policy, and streaming-body failures are retried too).
- head with LastModified, list by prefix, delete (retention of window objects: storage/retention.py).
- `AsyncStorage` runs the same calls in worker threads so an event loop never blocks.
"""
from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from subnet.errors import InputRejected
from subnet.storage.s3config import S3Config

T = TypeVar("T")
MiB = 1 << 20

_THROTTLE_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests",
                   "RequestTimeout", "RequestTimeTooSkewed", "InternalError", "ServiceUnavailable",
                   "503", "500", "502", "504"}
_NOT_FOUND_CODES = {"NoSuchKey", "404", "NotFound", "NoSuchBucket"}
_DENIED_CODES = {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"}


class StorageError(InputRejected):
    """An S3 operation failed or its reply was refused; `reason` is one of not_found,
    access_denied, too_large, changed, unavailable, error."""

    @property
    def code(self) -> str:  # the name this error used before `InputRejected`
        return self.reason


@dataclass(frozen=True)
class TransferPolicy:
    multipart_threshold: int = 32 * MiB  # puts at or above this use multipart
    part_size: int = 16 * MiB            # multipart part and ranged-GET part size
    concurrency: int = 4  # measured: more threads do not help on a 2-core host


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 5.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff before retry number ``attempt`` (1-based)."""
        return rng.uniform(0, min(self.max_delay, self.base_delay * (2 ** (attempt - 1))))


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime  # server-set, timezone-aware UTC
    etag: str


def classify(error: BaseException) -> StorageError:
    """A StorageError naming the kind of failure of a boto3 call."""
    if isinstance(error, StorageError):
        return error
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _NOT_FOUND_CODES or status == 404:
            return StorageError("not_found", str(error))
        if code in _DENIED_CODES or status == 403:
            return StorageError("access_denied", str(error))
        if code in _THROTTLE_CODES or (status is not None and status >= 500) or status == 429:
            return StorageError("unavailable", str(error))
        if code in ("PreconditionFailed", "412"):
            return StorageError("changed", str(error))
        return StorageError("error", str(error))
    if isinstance(error, (BotoCoreError, ConnectionError, TimeoutError)):
        return StorageError("unavailable", f"{type(error).__name__}: {error}")
    return StorageError("error", f"{type(error).__name__}: {error}")


def with_retries(call: Callable[[], T], policy: RetryPolicy, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None) -> T:
    """Run ``call``; retry only transient failures (code ``unavailable``) with backoff."""
    rng = rng or random.Random()
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except Exception as exc:  # classified below; anything not transient is re-raised as is
            error = classify(exc)
            if error.reason != "unavailable" or attempt >= policy.attempts:
                raise error from exc
            sleep(policy.delay(attempt, rng))


class StorageClient:
    """Blocking S3 client; thread-safe (boto3 clients are)."""

    def __init__(self, config: S3Config, transfer: TransferPolicy | None = None, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.transfer = transfer or TransferPolicy()
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = random.Random()
        self._tally_lock = threading.Lock()
        self.bytes_sent = 0        # object bytes this client stored (puts, parts)
        self.bytes_received = 0    # object bytes it read (every range of every get)
        self.s3 = boto3.session.Session().client(
            "s3", endpoint_url=config.endpoint_url, aws_access_key_id=config.access_key,
            aws_secret_access_key=config.secret_key, region_name=config.region,
            config=Config(s3={"addressing_style": config.addressing_style},
                          retries={"total_max_attempts": 1}, connect_timeout=config.connect_timeout,
                          read_timeout=config.read_timeout,
                          max_pool_connections=max(10, 2 * self.transfer.concurrency),
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"))

    def _retry(self, call: Callable[[], T]) -> T:
        return with_retries(call, self.retry, self._sleep, self._rng)

    # --- buckets ---------------------------------------------------------------------------

    def ensure_bucket(self, bucket: str) -> None:
        def create():
            try:
                self.s3.create_bucket(Bucket=bucket)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
        self._retry(create)

    # --- put -------------------------------------------------------------------------------

    def put(self, bucket: str, key: str, data: bytes, max_bytes: int | None = None,
            content_type: str = "application/octet-stream") -> str:
        """Upload ``data``; returns the ETag. Multipart at or above the threshold."""
        if max_bytes is not None and len(data) > max_bytes:
            raise StorageError("too_large", f"{key}: {len(data)} bytes exceeds the limit of {max_bytes}")
        if len(data) >= self.transfer.multipart_threshold:
            etag = self._put_multipart(bucket, key, data, content_type)
        else:
            etag = self._retry(lambda: self.s3.put_object(Bucket=bucket, Key=key, Body=data,
                                                          ContentType=content_type))["ETag"]
        self._count(sent=len(data))
        return etag

    def _count(self, sent: int = 0, received: int = 0) -> None:
        with self._tally_lock:   # parts of one object move on several threads
            self.bytes_sent += sent
            self.bytes_received += received

    def _put_multipart(self, bucket: str, key: str, data: bytes, content_type: str) -> str:
        upload_id = self._retry(lambda: self.s3.create_multipart_upload(
            Bucket=bucket, Key=key, ContentType=content_type))["UploadId"]
        view = memoryview(data)
        size = self.transfer.part_size
        starts = list(range(0, len(data), size))

        def upload(index_start):
            number, start = index_start[0] + 1, index_start[1]
            part = view[start:start + size]
            response = self._retry(lambda: self.s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id,
                                                               PartNumber=number, Body=part.tobytes()))
            return {"PartNumber": number, "ETag": response["ETag"]}

        try:
            with ThreadPoolExecutor(self.transfer.concurrency) as pool:
                parts = list(pool.map(upload, enumerate(starts)))
            response = self._retry(lambda: self.s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}))
        except BaseException:
            try:
                self.s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            except Exception:  # the original failure matters more than a failed clean-up
                pass
            raise
        return response["ETag"]

    # --- get -------------------------------------------------------------------------------

    def _get_range(self, bucket: str, key: str, first: int, last: int) -> tuple[dict, bytes]:
        def call():
            response = self.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={first}-{last}")
            return response, response["Body"].read()  # inside the retry: body errors are retried too
        response, body = self._retry(call)
        self._count(received=len(body))
        return response, body

    def get(self, bucket: str, key: str, max_bytes: int) -> bytes | bytearray:
        """The whole object (a bytearray when it took several parts); StorageError('too_large')
        before downloading more than ``max_bytes``."""
        return self.get_with_info(bucket, key, max_bytes)[0]

    def get_with_info(self, bucket: str, key: str, max_bytes: int) -> tuple[bytes | bytearray, ObjectInfo]:
        """`get`, and what `head` would say of the object read (from the same response: one call
        fewer, and the stamp is the one of the bytes received)."""
        part = self.transfer.part_size
        try:
            response, first = self._get_range(bucket, key, 0, part - 1)
        except StorageError as exc:
            # A zero-byte object has no byte 0, so its ranged GET fails with InvalidRange.
            if "InvalidRange" in str(exc):
                info = self.head(bucket, key)
                if info.size == 0:
                    return b"", info
            raise
        total = _total_size(response, len(first))
        if total > max_bytes:
            raise StorageError("too_large", f"{key}: {total} bytes exceeds the limit of {max_bytes}")
        etag = response.get("ETag")
        if not isinstance(response.get("LastModified"), datetime):   # a peer's endpoint may be anything
            raise StorageError("error", f"{key}: the server's reply has no Last-Modified")
        info = ObjectInfo(key=key, size=total, last_modified=response["LastModified"], etag=etag or "")
        if total <= len(first):
            return first, info
        buffer = bytearray(total)
        view = memoryview(buffer)
        view[:len(first)] = first

        def fetch(start):
            last = min(start + part, total) - 1
            got, body = self._get_range(bucket, key, start, last)
            if got.get("ETag") != etag or len(body) != last - start + 1:
                raise StorageError("changed", f"{key} changed during download")
            view[start:last + 1] = body

        with ThreadPoolExecutor(self.transfer.concurrency) as pool:
            list(pool.map(fetch, range(part, total, part)))
        return buffer, info  # a bytearray: no second copy of a large object

    def get_range(self, bucket: str, key: str, start: int, length: int) -> bytes:
        """``length`` bytes from ``start`` (fewer at the end of the object)."""
        if length <= 0:
            return b""
        return self._get_range(bucket, key, start, start + length - 1)[1]

    # --- metadata, listing, deletion ---------------------------------------------------------

    def head(self, bucket: str, key: str) -> ObjectInfo:
        response = self._retry(lambda: self.s3.head_object(Bucket=bucket, Key=key))
        return ObjectInfo(key=key, size=int(response["ContentLength"]), last_modified=response["LastModified"],
                          etag=response.get("ETag", ""))

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.head(bucket, key)
        except StorageError as exc:
            if exc.reason == "not_found":
                return False
            raise
        return True

    def list(self, bucket: str, prefix: str = "") -> list[ObjectInfo]:
        out, token = [], None
        while True:
            kwargs = {"Bucket": bucket, "Prefix": prefix, **({"ContinuationToken": token} if token else {})}
            response = self._retry(lambda: self.s3.list_objects_v2(**kwargs))
            for item in response.get("Contents", []):
                out.append(ObjectInfo(key=item["Key"], size=int(item["Size"]), last_modified=item["LastModified"],
                                      etag=item.get("ETag", "")))
            if not response.get("IsTruncated"):
                return out
            token = response["NextContinuationToken"]

    def delete(self, bucket: str, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start:start + 1000]]
            response = self._retry(lambda: self.s3.delete_objects(Bucket=bucket, Delete={"Objects": batch,
                                                                                          "Quiet": True}))
            if response.get("Errors"):
                first = response["Errors"][0]
                raise classify(ClientError({"Error": first}, "DeleteObjects"))


def _total_size(response: dict, received: int) -> int:
    content_range = response.get("ContentRange") or ""
    if "/" in content_range and content_range.rsplit("/", 1)[1].isdigit():
        return int(content_range.rsplit("/", 1)[1])
    return received  # a server that ignored the Range header sent the whole object


class AsyncStorage:
    """The same operations for asyncio callers, each run in a worker thread."""

    def __init__(self, client: StorageClient):
        self.client = client

    async def put(self, bucket: str, key: str, data: bytes, max_bytes: int | None = None) -> str:
        return await asyncio.to_thread(self.client.put, bucket, key, data, max_bytes)

    async def get(self, bucket: str, key: str, max_bytes: int) -> bytes:
        return await asyncio.to_thread(self.client.get, bucket, key, max_bytes)

    async def get_with_info(self, bucket: str, key: str, max_bytes: int) -> tuple[bytes | bytearray, ObjectInfo]:
        return await asyncio.to_thread(self.client.get_with_info, bucket, key, max_bytes)

    async def get_range(self, bucket: str, key: str, start: int, length: int) -> bytes:
        return await asyncio.to_thread(self.client.get_range, bucket, key, start, length)

    async def head(self, bucket: str, key: str) -> ObjectInfo:
        return await asyncio.to_thread(self.client.head, bucket, key)

    async def exists(self, bucket: str, key: str) -> bool:
        return await asyncio.to_thread(self.client.exists, bucket, key)

    async def list(self, bucket: str, prefix: str = "") -> list[ObjectInfo]:
        return await asyncio.to_thread(self.client.list, bucket, prefix)

    async def delete(self, bucket: str, keys: list[str]) -> None:
        await asyncio.to_thread(self.client.delete, bucket, keys)
