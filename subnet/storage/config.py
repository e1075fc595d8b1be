"""A neuron's storage settings file: its own bucket and write key, and the shared read key.

`subnet storage` writes DIR/neurons/NAME.json with `write_neuron_storage`; neurons read it with
`load_neuron_storage`. For another S3 service (MinIO, R2, AWS) write the same fields by hand:
endpoint (omit or null for AWS), bucket, access_key, secret_key, read_access_key, read_secret_key,
and optionally region and addressing_style. `commitment` is written for reference (the chain
string of the read access); when present it must match the other fields.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from subnet.files import atomic_write
from subnet.storage.commitment import BucketCommitment, CommitmentError, format_commitment
from subnet.storage.s3config import S3Config

_KEYS = ("endpoint", "region", "addressing_style", "bucket", "access_key", "secret_key", "read_access_key",
         "read_secret_key", "commitment")
_ADDRESSING_STYLES = ("path", "virtual", "auto")


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


def neuron_storage(endpoint: str | None, bucket: str, write_key: tuple[str, str], read_key: tuple[str, str],
                   region: str = "us-east-1", addressing_style: str = "path") -> NeuronStorage:
    """Settings from (access key, secret key) pairs; both keys share the endpoint."""
    common = {"endpoint_url": endpoint, "region": region, "addressing_style": addressing_style}
    return NeuronStorage(bucket=bucket, write=S3Config(access_key=write_key[0], secret_key=write_key[1], **common),
                         read=S3Config(access_key=read_key[0], secret_key=read_key[1], **common))


def write_neuron_storage(path: str | os.PathLike, settings: NeuronStorage) -> None:
    """DIR/neurons/NAME.json, 0600 (it holds the write key), written atomically."""
    document = {"endpoint": settings.write.endpoint_url, "region": settings.write.region,
                "addressing_style": settings.write.addressing_style, "bucket": settings.bucket,
                "access_key": settings.write.access_key, "secret_key": settings.write.secret_key,
                "read_access_key": settings.read.access_key, "read_secret_key": settings.read.secret_key}
    if settings.read.endpoint_url is not None:
        document["commitment"] = settings.commitment()
    atomic_write(path, json.dumps(document, indent=1), mode=0o600)


def load_neuron_storage(path: str | os.PathLike) -> NeuronStorage:
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise StorageConfigError(f"{path}: cannot read storage settings: {exc}") from None
    if not isinstance(document, dict):
        raise StorageConfigError(f"{path}: expected a JSON object")
    for key in document:
        if key not in _KEYS:
            raise StorageConfigError(f"{path}: unknown key {key!r} (known: {', '.join(_KEYS)})")
    for key in ("bucket", "access_key", "secret_key", "read_access_key", "read_secret_key"):
        if not isinstance(document.get(key), str) or not document[key]:
            raise StorageConfigError(f"{path}: missing or empty {key!r}")
    endpoint = document.get("endpoint")
    if endpoint is not None and (not isinstance(endpoint, str) or not endpoint):
        raise StorageConfigError(f"{path}: 'endpoint' must be a URL or null, got {endpoint!r}")
    region = document.get("region", "us-east-1")
    if not isinstance(region, str) or not region:
        raise StorageConfigError(f"{path}: 'region' must be a non-empty string, got {region!r}")
    style = document.get("addressing_style", "path")
    if style not in _ADDRESSING_STYLES:
        raise StorageConfigError(f"{path}: 'addressing_style' must be one of {', '.join(_ADDRESSING_STYLES)}")
    settings = neuron_storage(endpoint, document["bucket"], (document["access_key"], document["secret_key"]),
                              (document["read_access_key"], document["read_secret_key"]), region, style)
    if "commitment" in document:
        try:
            matches = endpoint is not None and document["commitment"] == settings.commitment()
        except CommitmentError as exc:
            raise StorageConfigError(f"{path}: 'commitment' cannot be formed: {exc}") from None
        if not matches:
            raise StorageConfigError(f"{path}: 'commitment' does not match endpoint, bucket and read key")
    return settings
