"""Objects a hostile miner can store in its own bucket to hurt the reader, read back over real SeaweedFS.

A bucket's owner chooses the headers stored with an object, `Content-Encoding` included. An HTTP
client that honoured it would inflate a gzip bomb in memory before any size limit could apply; the
reader must get the stored bytes, under its byte limit, and leave their meaning to the wire checks.
"""
from __future__ import annotations

import gzip

import pytest

from subnet.storage.client import StorageError, TransferPolicy


def bomb(expanded: int) -> bytes:
    return gzip.compress(bytes(expanded), compresslevel=9)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "gzip, gzip"])
def test_a_stored_content_encoding_is_not_decoded_by_the_reader(seaweed, encoding):
    writer, reader = seaweed.writer("miner-0"), seaweed.reader()
    bucket, key = seaweed.bucket("miner-0"), f"bomb-{encoding.replace(', ', '-')}.bin"
    body = bomb(64 << 20)   # 64 MiB of zeros in 65 KB
    writer.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentEncoding=encoding)
    got = reader.get(bucket, key, max_bytes=len(body))
    assert bytes(got) == body     # the stored bytes, not 64 MiB of zeros
    assert reader.head(bucket, key).size == len(body)


def test_a_bomb_over_the_limit_is_refused_before_its_body_is_read(seaweed):
    writer, reader = seaweed.writer("miner-0"), seaweed.reader()
    bucket = seaweed.bucket("miner-0")
    body = bomb(256 << 20)
    writer.s3.put_object(Bucket=bucket, Key="big-bomb.bin", Body=body, ContentEncoding="gzip")
    with pytest.raises(StorageError) as refused:
        reader.get(bucket, "big-bomb.bin", max_bytes=len(body) // 2)
    assert refused.value.reason == "too_large"
    # at most the first ranged part of the stored bytes came in, never the 256 MiB it inflates to
    assert reader.bytes_received <= min(len(body), TransferPolicy().part_size)
