"""Retention: a node deletes its own objects of windows that are over (names from wire/names.py).

Kept apart from the S3 client, which knows nothing of windows. Asyncio callers run it in a thread:
``await asyncio.to_thread(delete_windows_before, storage.client, bucket, window)``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from subnet.wire.names import window_of_key

if TYPE_CHECKING:
    from subnet.storage.client import StorageClient


def delete_windows_before(client: StorageClient, bucket: str, window: int,
                          keep: set[str] | None = None) -> list[str]:
    """Delete every object of ``bucket`` whose name carries a window below ``window`` (gradients,
    aggregates, scores, checkpoints/{w}/...), except the keys in ``keep``; never LATEST.json or a
    name without a window. Returns the deleted keys."""
    keep = keep or set()
    doomed = [info.key for info in client.list(bucket)
              if info.key not in keep and (w := window_of_key(info.key)) is not None and w < window]
    client.delete(bucket, doomed)
    return doomed
