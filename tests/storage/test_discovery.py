"""Bucket read keys committed on the real chain and used against the real SeaweedFS."""
import asyncio
import signal

import pytest

from subnet.chain.client import ChainClient
from subnet.storage.client import StorageClient
from subnet.storage.commitment import BucketCommitment
from subnet.storage.discovery import commit_bucket, read_bucket_commitments
from tests.chain.conftest import ChainProcess, write_genesis


@pytest.fixture
def chain_and_actors(tmp_path):
    from tests.chain.conftest import Actors
    from subnet.keys import Keypair
    gen = Keypair.generate
    actors = Actors(gen(), gen(), gen(), gen(), [gen() for _ in range(3)], [gen() for _ in range(3)])
    proc = ChainProcess(db=tmp_path / "chain.db", genesis=write_genesis(tmp_path / "g.yaml", actors), block_time=0)
    proc.start()
    yield proc, actors
    proc.kill(signal.SIGTERM)


def test_peer_reads_a_miners_bucket_through_its_chain_commitment(seaweed, chain_and_actors):
    chain, a = chain_and_actors
    miner_hot, junk_hot = a.miners_hot[0], a.miners_hot[1]
    bucket = seaweed.bucket("miner-0")
    seaweed.writer("miner-0").put(bucket, "gradient-5-1.safetensors", b"payload")
    read = seaweed.layout.read

    async def scenario():
        async with ChainClient(chain.url) as client:
            await client.burned_register(a.miners_cold[0], 1, miner_hot.address)
            await client.burned_register(a.miners_cold[1], 1, junk_hot.address)
            await commit_bucket(client, miner_hot, 1, BucketCommitment(seaweed.endpoint, bucket, read.access_key,
                                                                       read.secret_key))
            await client.commit(junk_hot, 1, "v1|ftp://evil|B|x|y")
            return await read_bucket_commitments(client, 1)

    peers = asyncio.run(scenario())
    assert set(peers.buckets) == {miner_hot.address}
    assert "endpoint" in peers.rejected[junk_hot.address]
    found = peers.buckets[miner_hot.address]
    reader = StorageClient(found.s3_config())
    assert reader.get(found.bucket, "gradient-5-1.safetensors", max_bytes=1024) == b"payload"
