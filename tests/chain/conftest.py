"""A real dev chain server (subprocess, real sockets) for the chain's integration tests."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import urllib.request
import yaml

from subnet.chain.cli import read_port_file
from subnet.keys import Keypair

TAO = 10**9


@dataclass
class ChainProcess:
    """`subnet chain` as a subprocess. Port 0 (the default) lets the system choose; `start` reads the ports
    the server bound from its port file, so no port is picked, released and then hoped to be still free.
    A restart keeps the port it learned (the same URL, as an operator's restart would)."""
    db: Path
    genesis: Path
    block_time: float
    port: int = 0
    metrics_port: int | None = None
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the chain has not started yet: its port is not known")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.db.with_suffix(".log"), "ab")
        port_file = self.db.with_suffix(".port")
        port_file.unlink(missing_ok=True)
        metrics = [] if self.metrics_port is None else ["--metrics-port", str(self.metrics_port)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "subnet.cli", "chain", "--db", str(self.db), "--port", str(self.port),
             "--port-file", str(port_file), "--block-time", str(self.block_time), "--genesis", str(self.genesis),
             *metrics], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            if port_file.is_file():
                self.port, self.metrics_port = read_port_file(port_file)
                urllib.request.urlopen(self.url + "/head", timeout=5).read()
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"chain exited: {self.db.with_suffix('.log').read_text()}")
            time.sleep(0.05)
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
    proc = ChainProcess(db=tmp_path / "chain.db", genesis=write_genesis(tmp_path / "neurons.yaml", actors),
                        block_time=0)
    proc.start()
    yield proc
    proc.kill(signal.SIGTERM)
