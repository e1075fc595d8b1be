"""The chain commitment of a neuron's bucket: where it is and the read key that opens it.

Format (one ASCII string, at most 512 characters):  ``v1|endpoint|bucket|access_key|secret_key``
  endpoint    http:// or https:// host[:port], nothing else (no user, path, query or fragment)
  bucket      an S3 bucket name (3..63 of a-z 0-9 . -, starting and ending alphanumeric)
  access_key  8..128 of A-Z a-z 0-9
  secret_key  8..128 of A-Z a-z 0-9 / + = _ -
Read keys are public by design (as in Templar); write keys never leave the neuron. The parser takes
a string from the chain, i.e. from anyone, and rejects anything else with a CommitmentError.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from subnet.errors import InputRejected
from subnet.storage.s3config import S3Config

COMMITMENT_VERSION = "v1"
MAX_COMMITMENT_CHARS = 512
_ENDPOINT = re.compile(r"^(https?)://([A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)(?::(\d{1,5}))?$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ACCESS_KEY = re.compile(r"^[A-Za-z0-9]{8,128}$")
_SECRET_KEY = re.compile(r"^[A-Za-z0-9/+=_-]{8,128}$")


class CommitmentError(InputRejected):
    """A commitment string is not a valid bucket commitment; the message says which part."""

    def __init__(self, message: str, reason: str = "bad_commitment"):
        super().__init__(reason, message)


@dataclass(frozen=True)
class BucketCommitment:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str = field(repr=False)

    def s3_config(self, region: str = "us-east-1") -> S3Config:
        return S3Config(endpoint_url=self.endpoint, access_key=self.access_key, secret_key=self.secret_key,
                        region=region)


def _check(commitment: BucketCommitment) -> None:
    match = _ENDPOINT.fullmatch(commitment.endpoint)
    if not match or ".." in match.group(2):
        raise CommitmentError(f"endpoint {commitment.endpoint[:80]!r} is not http(s)://host[:port]")
    if match.group(3) is not None and not 1 <= int(match.group(3)) <= 65535:
        raise CommitmentError(f"endpoint port {match.group(3)} is out of range")
    if not _BUCKET.fullmatch(commitment.bucket) or ".." in commitment.bucket:
        raise CommitmentError(f"bucket {commitment.bucket[:80]!r} is not a valid S3 bucket name")
    if not _ACCESS_KEY.fullmatch(commitment.access_key):
        raise CommitmentError("access key must be 8..128 letters and digits")
    if not _SECRET_KEY.fullmatch(commitment.secret_key):
        raise CommitmentError("secret key must be 8..128 of letters, digits and / + = _ -")


def format_commitment(commitment: BucketCommitment) -> str:
    _check(commitment)
    text = "|".join((COMMITMENT_VERSION, commitment.endpoint, commitment.bucket, commitment.access_key,
                     commitment.secret_key))
    if len(text) > MAX_COMMITMENT_CHARS:
        raise CommitmentError(f"commitment is {len(text)} characters, more than {MAX_COMMITMENT_CHARS}")
    return text


def parse_commitment(text: object) -> BucketCommitment:
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise CommitmentError("commitment is not ASCII") from None
    if not isinstance(text, str):
        raise CommitmentError(f"commitment must be a string, got {type(text).__name__}")
    if len(text) > MAX_COMMITMENT_CHARS:
        raise CommitmentError(f"commitment is {len(text)} characters, more than {MAX_COMMITMENT_CHARS}")
    if not text.isascii():
        raise CommitmentError("commitment is not ASCII")
    fields = text.split("|")
    if fields[0] != COMMITMENT_VERSION:
        raise CommitmentError(f"unknown commitment version {fields[0][:16]!r}, expected {COMMITMENT_VERSION!r}")
    if len(fields) != 5:
        raise CommitmentError(f"commitment has {len(fields)} fields, expected 5")
    commitment = BucketCommitment(*fields[1:])
    _check(commitment)
    return commitment
