"""Who a miner or validator process is and where it talks to: resolved once at start-up.

Two ways to start, as operators expect: from the local network file (`--neurons neurons.yaml --name
miner1`: wallet, bucket settings and chain come from it and from `subnet storage`'s output), or
explicitly for a real deployment (`--wallet`, `--netuid`, `--chain URL`, `--storage FILE`,
`--preset`, `--data`). Either way the result is one `NodeSettings`; nothing later reads flags.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from subnet.chain.backend import parse_chain
from subnet.config import Preset, load_preset
from subnet.errors import InputRejected
from subnet.storage.config import NeuronStorage, load_neuron_storage
from subnet.wallet import Wallet, load_wallet

DEFAULT_CHAIN_URL = "http://127.0.0.1:9944"
DEFAULT_DATA_ROOT = Path("data")


class SettingsError(InputRejected):
    """The process cannot be set up as asked; the message names the file or flag."""

    def __init__(self, message: str):
        super().__init__("bad_settings", message)


@dataclass(frozen=True)
class NodeSettings:
    name: str
    role: str                 # "miner" | "validator"
    wallet: Wallet
    netuid: int
    chain_url: str            # `--chain`: the dev chain's URL or a Bittensor network (subnet/chain/backend.py)
    storage: NeuronStorage    # own bucket (write key) and the shared read key to commit
    preset: Preset
    data_dir: Path
    state_dir: Path
    stake: int | None = None  # rao a validator stakes on itself at start-up (neurons.yaml)
    behaviour: object = None  # subnet.neurons.Behaviour for adversaries, else None
    device: str = "cpu"
    threads: int = 1
    metrics_port: int | None = None  # Prometheus metrics (docs/metrics.md); None: not served


def default_dataset(vocab_size: int, root: Path = DEFAULT_DATA_ROOT) -> Path:
    """The bundled corpus prepared once for this vocabulary. Several processes may start at once:
    each prepares aside and renames into place; the first rename wins, the others discard theirs."""
    from subnet.data import prepare_dataset

    final = root / f"default-v{vocab_size}"
    if (final / "manifest.json").is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".default-v{vocab_size}."))
    try:
        prepare_dataset(staging, vocab_size=vocab_size)
        try:
            os.rename(staging, final)
        except OSError:
            if not (final / "manifest.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def from_neurons_file(path: Path, name: str, role: str, *, wallet_dir: Path | None = None,
                      chain_url: str | None = None, preset: str = "tiny", data: Path | None = None,
                      state_dir: Path | None = None, device: str = "cpu", threads: int = 1,
                      metrics_port: int | None = None, storage_file: Path | None = None) -> NodeSettings:
    """A neuron of the local network file; `storage_file` replaces the bucket settings `subnet storage`
    wrote for it (the same bucket through another endpoint, e.g. a proxy)."""
    from subnet.neurons import NeuronsError, load_network

    network = load_network(path, wallet_dir=wallet_dir, with_chain=True)
    try:
        neuron = network.neuron(name)
    except KeyError:
        raise NeuronsError(f"{path}: no neuron named {name!r} (neurons: {', '.join(network.names)})") from None
    if neuron.role != role:
        raise NeuronsError(f"{path}: neuron {name!r} has role {neuron.role!r}, not {role!r}")
    if not network.chain.subnets:
        raise NeuronsError(f"{path}: chain: no subnet to join")
    if storage_file is None:
        storage_file = network.storage.dir / "neurons" / f"{name}.json"
        if not storage_file.is_file():
            raise SettingsError(f"{storage_file} not found: start `subnet storage --neurons {path}` first")
    elif not Path(storage_file).is_file():
        raise SettingsError(f"--storage {storage_file}: no such file")
    loaded = load_preset(preset)
    return NodeSettings(
        name=name, role=role, wallet=load_wallet(neuron.wallet, wallet_dir), netuid=network.chain.subnets[0].netuid,
        chain_url=parse_chain(chain_url or DEFAULT_CHAIN_URL).endpoint, storage=load_neuron_storage(storage_file), preset=loaded,
        data_dir=data or default_dataset(loaded.model.vocab_size),
        state_dir=state_dir or DEFAULT_DATA_ROOT / "state" / name, stake=neuron.stake,
        behaviour=neuron.behaviour, device=device, threads=threads,
        metrics_port=metrics_port if metrics_port is not None else neuron.metrics_port)


def from_flags(role: str, *, wallet: str, netuid: int, chain_url: str, storage_file: Path,
               wallet_dir: Path | None = None, hotkey: str = "default", preset: str = "tiny", data: Path | None = None,
               state_dir: Path | None = None, stake: int | None = None, device: str = "cpu",
               threads: int = 1, metrics_port: int | None = None) -> NodeSettings:
    if not Path(storage_file).is_file():
        raise SettingsError(f"--storage {storage_file}: no such file")
    loaded = load_preset(preset)
    return NodeSettings(
        name=wallet, role=role, wallet=load_wallet(wallet, wallet_dir, hotkey=hotkey), netuid=netuid,
        chain_url=parse_chain(chain_url).endpoint,
        storage=load_neuron_storage(storage_file), preset=loaded,
        data_dir=data or default_dataset(loaded.model.vocab_size),
        state_dir=state_dir or DEFAULT_DATA_ROOT / "state" / wallet, stake=stake, device=device, threads=threads,
        metrics_port=metrics_port)
