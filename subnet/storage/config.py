"""A neuron's storage settings: its own bucket and write key, and the shared read key.

The file is what `subnet storage` writes to DIR/neurons/NAME.json; for another S3 service (MinIO,
R2, AWS) write the same fields by hand: endpoint (omit or null for AWS), bucket, access_key,
secret_key, read_access_key, read_secret_key, and optionally region and addressing_style.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from subnet.storage.client import S3Config
from subnet.storage.commitment import BucketCommitment, format_commitment


class StorageConfigError(ValueError):
    """A neuron storage file is missing, unreadable or lacks a field; the message names it."""


@dataclass(frozen=True)
class NeuronStorage:
    bucket: str
    write: S3Config   # this neuron's key: its own bucket only
    read: S3Config    # the shared read key, committed on chain

    def commitment(self) -> str:
        """The chain commitment string publishing this bucket's read access."""
        if self.read.endpoint_url is None:
            raise StorageConfigError("a commitment needs an explicit endpoint URL")
        return format_commitment(BucketCommitment(self.read.endpoint_url, self.bucket, self.read.access_key,
                                                  self.read.secret_key))


def load_neuron_storage(path: Path) -> NeuronStorage:
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise StorageConfigError(f"{path}: cannot read storage settings: {exc}") from None
    if not isinstance(document, dict):
        raise StorageConfigError(f"{path}: expected a JSON object")
    for key in ("bucket", "access_key", "secret_key", "read_access_key", "read_secret_key"):
        if not isinstance(document.get(key), str) or not document[key]:
            raise StorageConfigError(f"{path}: missing or empty {key!r}")
    common = {"endpoint_url": document.get("endpoint"), "region": document.get("region", "us-east-1"),
              "addressing_style": document.get("addressing_style", "path")}
    return NeuronStorage(bucket=document["bucket"],
                         write=S3Config(access_key=document["access_key"], secret_key=document["secret_key"], **common),
                         read=S3Config(access_key=document["read_access_key"],
                                       secret_key=document["read_secret_key"], **common))
