"""A real dev chain server (subprocess, real sockets) for the chain's integration tests."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import urllib.request
import yaml

from subnet.keys import Keypair

TAO = 10**9


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ChainProcess:
    url: str
    db: Path
    genesis: Path
    port: int
    block_time: float
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.db.with_suffix(".log"), "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "subnet.cli", "chain", "--db", str(self.db), "--port", str(self.port),
             "--block-time", str(self.block_time), "--genesis", str(self.genesis)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/head", timeout=1).read()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"chain exited: {self.db.with_suffix('.log').read_text()}")
                time.sleep(0.1)
        raise RuntimeError("chain did not start in 30 s")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=10)


@dataclass
class Actors:
    owner: Keypair
    owner_hot: Keypair
    validator_cold: Keypair
    validator_hot: Keypair
    miners_cold: list[Keypair]
    miners_hot: list[Keypair]


@pytest.fixture
def actors() -> Actors:
    gen = Keypair.generate
    return Actors(gen(), gen(), gen(), gen(), [gen() for _ in range(3)], [gen() for _ in range(3)])


def write_genesis(path: Path, actors: Actors, tempo: int = 10) -> Path:
    balances = {actors.owner.address: 100, actors.validator_cold.address: 1000}
    balances.update({c.address: 50 for c in actors.miners_cold})
    doc = {"chain": {"balances": balances, "subnets": [{
        "netuid": 1, "owner": actors.owner.address, "owner_hotkey": actors.owner_hot.address,
        "pool_tao": 100, "pool_alpha": 100, "tempo": tempo, "burn": 1, "max_uids": 8,
        "immunity_period": 5, "max_validators": 2}]}}
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def chain(tmp_path, actors):
    """A dev-mode chain (blocks only on advance) with one subnet; killed after the test."""
    port = free_port()
    proc = ChainProcess(url=f"http://127.0.0.1:{port}", db=tmp_path / "chain.db",
                        genesis=write_genesis(tmp_path / "neurons.yaml", actors), port=port, block_time=0)
    proc.start()
    yield proc
    proc.kill(signal.SIGTERM)
