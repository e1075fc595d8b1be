"""Finding each other's buckets through the chain (as Templar does with R2 read keys).

A neuron commits `v1|endpoint|bucket|read_key|read_secret` under its hotkey; peers read all
commitments of the subnet and keep the ones that parse. A commitment is anyone's string, so junk is
set aside with its reason, never trusted.
"""
from __future__ import annotations

from dataclasses import dataclass

from subnet.chain.backend import Chain
from subnet.keys import Signer
from subnet.storage.commitment import BucketCommitment, CommitmentError, format_commitment, parse_commitment


async def commit_bucket(chain: Chain, hotkey: Signer, netuid: int, bucket: BucketCommitment) -> str:
    """Publish a bucket's read access under this hotkey; returns the committed string."""
    text = format_commitment(bucket)
    await chain.commit(hotkey, netuid, text)
    return text


@dataclass(frozen=True)
class PeerBuckets:
    buckets: dict[str, BucketCommitment]  # hotkey -> where its objects are and how to read them
    rejected: dict[str, str]              # hotkey -> why its commitment was not usable


async def read_bucket_commitments(chain: Chain, netuid: int) -> PeerBuckets:
    buckets, rejected = {}, {}
    for hotkey, text in (await chain.get_all_commitments(netuid)).items():
        try:
            buckets[hotkey] = parse_commitment(text)
        except CommitmentError as exc:
            rejected[hotkey] = str(exc)
    return PeerBuckets(buckets=buckets, rejected=rejected)
