"""A whole network on one machine, as real processes: storage, chain, validators and miners.

Used by the integration tests and `bench/neurons.py` (and the base of `subnet up`). Every part is
the real program (`subnet storage`, `subnet chain`, `validator run`, `miner run`) started as a
subprocess with its own log file, talking over sockets; nothing is faked.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from subnet.chain.cli import read_port_file
from subnet.metrics import METRICS_PORT_FILE
from subnet.wallet import create_wallet


class NetworkStartError(RuntimeError):
    """A part of the local network did not come up (its log says why)."""


def free_port() -> int:
    """A port the OS just handed out (bound to 0). The caller passes it straight to the server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class NeuronSpec:
    name: str
    role: str                      # miner | validator
    stake: float | None = None     # TAO (validators)
    behaviour: object = None       # neurons.yaml behaviour entry (adversaries)


@dataclass
class LocalNetwork:
    root: Path
    neurons: list[NeuronSpec]
    block_time: float = 1.0
    preset: str = "tiny"
    tempo: int = 10
    max_uids: int = 64
    data: Path | None = None
    threads: int = 1
    chain_port: int = 0            # 0: the chain binds one the system chooses and reports it (start_infrastructure)
    storage_port: int = 0
    prepared: bool = False         # neurons.yaml and wallets are already in `root` (subnet up)
    # name ("chain", "supervisor" too) -> a fixed Prometheus port; a process given none binds one from
    # the OS and reports it (metrics_port)
    metrics_ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    extra_args: dict[str, list[str]] = field(default_factory=dict)   # a neuron's extra flags, for restarts

    @property
    def wallet_dir(self) -> Path:
        return self.root / "wallets"

    @property
    def neurons_file(self) -> Path:
        return self.root / "neurons.yaml"

    @property
    def chain_url(self) -> str:
        return f"http://127.0.0.1:{self.chain_port}"

    def state_dir(self, name: str) -> Path:
        return self.root / "state" / name

    def metrics(self, name: str) -> list[dict]:
        """The rows of a neuron's metrics.jsonl so far (a line still being written is left out)."""
        path = self.state_dir(name) / "metrics.jsonl"
        if not path.is_file():
            return []
        rows = []
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
        return rows

    def metrics_port(self, name: str) -> int | None:
        """The port process `name` serves its metrics on: the one it bound and reported (a neuron in its
        state dir, the chain in its port file), else the one the file names; None if not known yet."""
        if name == "chain":
            path = self.root / "chain.port"
            if path.is_file():
                return read_port_file(path)[1]
        reported = self.state_dir(name) / METRICS_PORT_FILE
        if reported.is_file():
            try:
                return int(reported.read_text())
            except ValueError:
                return None
        port = self.metrics_ports.get(name)
        return port or None

    def log_path(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def write_files(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        self.storage_port = self.storage_port or free_port()
        if self.prepared:
            return
        balances = {"owner": 100}
        for wallet in ["owner", *(n.name for n in self.neurons)]:
            if not (self.wallet_dir / wallet).exists():
                create_wallet(wallet, self.wallet_dir)
        for n in self.neurons:
            balances[n.name] = 1000 if n.role == "validator" else 100
        entries = []
        for n in self.neurons:
            # 0: the neuron binds a port the OS hands out and writes it to its state dir (metrics_port)
            entry = {"name": n.name, "role": n.role, "wallet": n.name, "metrics_port": self.metrics_ports.get(n.name, 0)}
            if n.stake is not None:
                entry["stake"] = n.stake
            if n.behaviour is not None:
                entry["behaviour"] = n.behaviour
            entries.append(entry)
        document = {
            "chain": {"block_time": self.block_time, "metrics_port": self.metrics_ports.get("chain", 0),
                      "balances": balances,
                      "subnets": [{
                "netuid": 1, "owner": "owner", "pool_tao": 100, "pool_alpha": 100, "tempo": self.tempo,
                "burn": 1, "max_uids": self.max_uids, "max_validators": 16,
                # Non-voting stake (owner, miners) stops counting after this many blocks (neurons.yaml).
                "activity_cutoff": 100}]},
            "storage": {"host": "127.0.0.1", "port": self.storage_port, "dir": str(self.root / "storage")},
            "neurons": entries,
        }
        self.neurons_file.write_text(yaml.safe_dump(document, sort_keys=False))

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.log_path(name), "ab")
        env = {**os.environ, "TESSERA_WALLET_DIR": str(self.wallet_dir), "OMP_NUM_THREADS": str(self.threads),
               "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen([sys.executable, "-m", *argv], stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=self.root, start_new_session=True)
        self.procs[name] = proc
        return proc

    def _wait_file(self, path: Path, name: str, timeout: float = 60.0) -> None:
        """Until process `name` has written `path` (atomically)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.is_file():
                return
            self._check_running(name)
            time.sleep(0.1)
        raise NetworkStartError(f"{name} did not write {path} in {timeout:.0f} s ({self.log_path(name)})")

    def _check_running(self, name: str) -> None:
        if self.procs[name].poll() is not None:
            lines = self.log_path(name).read_text(errors="replace").strip().splitlines() or ["(empty log)"]
            raise NetworkStartError(f"{name} exited ({self.log_path(name)}): {lines[-1][:300]}")

    def _wait_http(self, url: str, name: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url, timeout=1).read()
                return
            except OSError as exc:
                if getattr(exc, "code", None) is not None:  # an HTTP error reply: the server is up
                    return
                self._check_running(name)
                time.sleep(0.2)
        raise NetworkStartError(f"{name} did not come up in {timeout:.0f} s ({self.log_path(name)})")

    def _spawn_storage(self) -> subprocess.Popen:
        return self._spawn("storage", ["subnet.cli", "storage", "--neurons", str(self.neurons_file)])

    def _spawn_chain(self) -> subprocess.Popen:
        # Once the first start has chosen a port, a restart binds the same one (neurons know the URL).
        return self._spawn("chain", ["subnet.cli", "chain", "--neurons", str(self.neurons_file), "--db",
                                     str(self.root / "chain.db"), "--port", str(self.chain_port), "--port-file",
                                     str(self.root / "chain.port"), "--block-time", str(self.block_time)])

    def restart(self, name: str) -> subprocess.Popen:
        """Start process `name` again as it was started (its log is appended to; its state kept)."""
        if name == "storage":
            return self._spawn_storage()
        if name == "chain":
            return self._spawn_chain()
        return self.start_neuron(name, self.extra_args.get(name))

    def start_infrastructure(self) -> None:
        self.write_files()
        self._spawn_storage()
        port_file = self.root / "chain.port"
        port_file.unlink(missing_ok=True)
        self._spawn_chain()
        self._wait_file(port_file, "chain")
        self.chain_port, _ = read_port_file(port_file)   # its metrics port: metrics_port("chain")
        self._wait_http(self.chain_url + "/head", "chain")
        self._wait_http(f"http://127.0.0.1:{self.storage_port}/", "storage")
        deadline = time.monotonic() + 60
        while not all((self.root / "storage" / "neurons" / f"{n.name}.json").is_file() for n in self.neurons):
            if time.monotonic() > deadline:
                raise NetworkStartError("storage wrote no neuron settings in 60 s")
            time.sleep(0.2)

    def start_neuron(self, name: str, extra: list[str] | None = None) -> subprocess.Popen:
        spec = next(n for n in self.neurons if n.name == name)
        self.extra_args[name] = list(extra or [])
        (self.state_dir(name) / METRICS_PORT_FILE).unlink(missing_ok=True)   # a port of an earlier run
        argv = [f"{spec.role}.cli", "run", "--neurons", str(self.neurons_file), "--name", name,
                "--chain", self.chain_url, "--preset", self.preset, "--state-dir", str(self.state_dir(name)),
                "--threads", str(self.threads), *(["--data", str(self.data)] if self.data else []), *(extra or [])]
        return self._spawn(name, argv)

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop_neurons(self) -> dict[str, int]:
        """SIGTERM every miner and validator (the chain and storage stay up); their exit codes."""
        names = [n for n in self.procs if n not in ("chain", "storage")]
        for name in names:
            self.stop(name)
        return {name: self.procs[name].returncode for name in names}

    def stop_all(self) -> None:
        self.stop_neurons()
        self.stop("chain")
        self.stop("storage", timeout=5.0)
