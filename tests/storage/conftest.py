"""One SeaweedFS server per test session, on free ports, stopped at the end."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from subnet.storage.client import StorageClient, TransferPolicy
from subnet.storage.s3config import S3Config
from subnet.storage.seaweed import SeaweedServer, StorageLayout, load_or_create_layout

NEURONS = ["miner-0", "miner-1", "validator-0"]


@dataclass(frozen=True)
class Seaweed:
    server: SeaweedServer
    layout: StorageLayout

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def writer(self, name: str, transfer: TransferPolicy | None = None) -> StorageClient:
        """Client holding ``name``'s write key."""
        creds = self.layout.owner(name).write
        return StorageClient(S3Config(self.endpoint, creds.access_key, creds.secret_key), transfer)

    def reader(self, transfer: TransferPolicy | None = None) -> StorageClient:
        creds = self.layout.read
        return StorageClient(S3Config(self.endpoint, creds.access_key, creds.secret_key), transfer)

    def bucket(self, name: str) -> str:
        return self.layout.owner(name).bucket


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("seaweed")
    layout = load_or_create_layout(data_dir, NEURONS)
    # SIGTERM would wait ~15 s for SeaweedFS's gRPC streams; tests let SIGKILL end it sooner.
    server = SeaweedServer(data_dir, layout, stop_timeout=2.0).start()
    try:
        yield Seaweed(server, layout)
    finally:
        server.stop()
