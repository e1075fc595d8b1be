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

from subnet.chain.backend import ChainSettingsError, chain_settings, parse_chain
from subnet.config import Preset, load_preset
from subnet.errors import InputRejected
from subnet.files import load_yaml
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
    # May start-up pay the registration burn? On the dev chain always; on Bittensor (real TAO) only when
    # asked (`--register`), else an unregistered hotkey stops the process with what to do.
    register: bool = True


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
               threads: int = 1, metrics_port: int | None = None, register: bool = False) -> NodeSettings:
    if not Path(storage_file).is_file():
        raise SettingsError(f"--storage {storage_file}: no such file")
    loaded = load_preset(preset)
    chain = parse_chain(chain_url)
    return NodeSettings(
        name=wallet, role=role, wallet=load_wallet(wallet, wallet_dir, hotkey=hotkey), netuid=netuid,
        chain_url=chain.endpoint,
        storage=load_neuron_storage(storage_file), preset=loaded,
        data_dir=data or default_dataset(loaded.model.vocab_size),
        state_dir=state_dir or DEFAULT_DATA_ROOT / "state" / wallet, stake=stake, device=device, threads=threads,
        metrics_port=metrics_port, register=register or chain.kind == "local")


RUN_CONFIG_KEYS = ("chain", "netuid", "wallet", "storage", "stake", "register", "preset", "data", "state_dir",
                   "device", "threads", "metrics_port")
_WALLET_KEYS = {"name": "wallet", "hotkey": "hotkey", "dir": "wallet_dir"}


def load_run_config(path: Path) -> dict:
    """`miner run --config FILE` / `validator run --config FILE`: the explicit flags as one YAML file,
    for a real deployment (systemd units, containers). Returns argparse defaults (flag dests); flags
    given on the command line win. Strict: an unknown key or a wrong type names itself. Relative paths
    are relative to the file.

        chain: {kind: bittensor, network: test}    # or a --chain string
        netuid: 3
        wallet: {name: tessera-miner, hotkey: default, dir: ~/.bittensor/wallets}   # or just the name
        storage: miner-storage.json
        preset: base150m
        data: data/base150m
        state_dir: state/miner
        device: cuda
        threads: 4
        stake: 100           # validator: TAO staked on its hotkey at start
        register: true       # on Bittensor: may pay the registration burn if the hotkey is not registered
        metrics_port: 9100
    """
    path = Path(path)
    document = load_yaml(path, lambda message: SettingsError(f"--config {' '.join(message.split())[:300]}"))
    if not isinstance(document, dict):
        raise SettingsError(f"--config {path}: must be a mapping of {', '.join(RUN_CONFIG_KEYS)}")
    unknown = sorted(set(map(str, document)) - set(RUN_CONFIG_KEYS))
    if unknown:
        raise SettingsError(f"--config {path}: unknown key {unknown[0]!r} (known: {', '.join(RUN_CONFIG_KEYS)})")

    def here(value: object, key: str) -> Path:
        if not isinstance(value, str) or not value:
            raise SettingsError(f"--config {path}: {key} must be a path")
        chosen = Path(value).expanduser()
        return chosen if chosen.is_absolute() else path.parent / chosen

    def number(value: object, key: str, kind: type) -> int | float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
            raise SettingsError(f"--config {path}: {key} must be {'an integer' if kind is int else 'a number'}")
        return value

    defaults: dict = {}
    for key, value in document.items():
        if key == "chain":
            try:
                chain = chain_settings(value, f"{path}: chain") if isinstance(value, dict) else parse_chain(str(value))
            except ChainSettingsError as exc:
                raise SettingsError(exc.detail) from None
            defaults["chain"] = chain.endpoint
        elif key == "wallet":
            entry = {"name": value} if isinstance(value, str) else value
            if not isinstance(entry, dict) or not set(entry) <= set(_WALLET_KEYS) or "name" not in entry:
                raise SettingsError(f"--config {path}: wallet must be a name or {{name, hotkey, dir}}")
            for field, dest in _WALLET_KEYS.items():
                if field in entry:
                    defaults[dest] = here(entry[field], "wallet.dir") if field == "dir" else str(entry[field])
        elif key in ("storage", "data", "state_dir"):
            defaults[key] = here(value, key)
        elif key in ("netuid", "threads", "metrics_port"):
            defaults[key] = number(value, key, int)
        elif key == "stake":
            defaults[key] = number(value, key, float)
        elif key == "register":
            if not isinstance(value, bool):
                raise SettingsError(f"--config {path}: register must be true or false")
            defaults[key] = value
        else:
            if not isinstance(value, str):
                raise SettingsError(f"--config {path}: {key} must be a string")
            defaults[key] = value
    return defaults
