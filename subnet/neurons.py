"""neurons.yaml, the local network file, loaded strictly in one place.

Sections, each optional:
  chain:    the dev chain's genesis, parsed by subnet/chain/genesis.py (wallet names resolved there)
  storage:  where `subnet storage` serves: host (127.0.0.1), port (8333), dir (data/storage; a
            relative path is relative to the working directory, like the command-line flags)
  neurons:  a list of mappings:
              name       letters, digits, '_', '.', '-' (max 48, not starting with '_', '.', '-');
                         it also names the neuron's bucket and settings file, so it is unique
              role       miner | validator | owner
              wallet     the wallet holding its keys (default: the name)
              stake      TAO its hotkey stakes (optional)
              behaviour  how an adversary misbehaves (optional): a kind (`lazy`), or a mapping
                         with `kind` and parameters of plain values (`{kind: noisy, scale: 3.0}`);
                         what a kind means is up to the neuron that runs it (miner/behaviour_kinds.py)
              metrics_port  where the process serves Prometheus metrics (optional; 0: a port the OS
                            picks, written to STATE_DIR/metrics.port; docs/metrics.md)
An unknown key, a wrong type or a duplicate name is a NeuronsError naming the file and the key.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from subnet.files import load_yaml
from subnet.wallet import WALLET_NAME

if TYPE_CHECKING:
    from subnet.chain.genesis import ChainParams

# subnet/chain/genesis.py (amm, numpy) is imported when a file is loaded, not when `subnet` starts.

ROLES = ("miner", "validator", "owner")
NEURON_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")
RESERVED_NAMES = frozenset({"dataset"})  # the dataset publisher's bucket owner in `subnet storage`
_KIND = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_PARAM = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_SECTIONS = ("chain", "storage", "neurons")
_NEURON_KEYS = ("name", "role", "wallet", "stake", "behaviour", "metrics_port")


class NeuronsError(ValueError):
    """neurons.yaml (or a part of it) is not valid; the message names the file and the key."""


@dataclass(frozen=True)
class StorageSettings:
    host: str = "127.0.0.1"
    port: int = 8333
    dir: Path = Path("data/storage")


@dataclass(frozen=True)
class Behaviour:
    kind: str
    params: dict[str, object] = field(default_factory=dict)  # str, int, float, bool, None or lists of them


@dataclass(frozen=True)
class Neuron:
    name: str
    role: str
    wallet: str
    stake: int | None = None          # rao
    behaviour: Behaviour | None = None
    metrics_port: int | None = None


@dataclass(frozen=True)
class Network:
    path: Path
    storage: StorageSettings
    neurons: tuple[Neuron, ...]
    chain: ChainParams | None         # None when loaded without the chain section
    block_time: float | None = None   # the chain section's block_time, when it has one

    def neuron(self, name: str) -> Neuron:
        for neuron in self.neurons:
            if neuron.name == name:
                return neuron
        raise KeyError(f"{self.path}: no neuron named {name!r}")

    @property
    def names(self) -> list[str]:
        return [neuron.name for neuron in self.neurons]


def _mapping(value: object, where: str, known: tuple[str, ...]) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise NeuronsError(f"{where}: must be a mapping, got {type(value).__name__}")
    for key in value:
        if key not in known:
            raise NeuronsError(f"{where}.{key}: unknown key (known: {', '.join(known)})")
    return value


def _string(value: object, where: str, pattern: re.Pattern, rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise NeuronsError(f"{where}: must be {rule}, got {value!r}")
    return value


def parse_port(value: object, where: str, any_port: bool = False) -> int:
    """A TCP port; with ``any_port``, 0 too (the OS picks one and the process reports it)."""
    low = 0 if any_port else 1
    if type(value) is not int or not low <= value <= 65535:
        raise NeuronsError(f"{where}: must be an int in [{low}, 65535], got {value!r}")
    return value


def parse_storage(data: object, path: str) -> StorageSettings:
    section = _mapping(data, f"{path}: storage", ("host", "port", "dir"))
    defaults = StorageSettings()
    host = _string(section.get("host", defaults.host), f"{path}: storage.host", _HOST, "a host name or IPv4 address")
    port = parse_port(section.get("port", defaults.port), f"{path}: storage.port")
    directory = section.get("dir", str(defaults.dir))
    if not isinstance(directory, str) or not directory.strip():
        raise NeuronsError(f"{path}: storage.dir: must be a non-empty path, got {directory!r}")
    return StorageSettings(host=host, port=port, dir=Path(directory))


def _plain(value: object) -> bool:
    scalar = (str, int, float, bool, type(None))
    return isinstance(value, scalar) or (isinstance(value, list) and all(isinstance(v, scalar) for v in value))


def parse_behaviour(data: object, where: str) -> Behaviour:
    kind_rule = "a kind of lowercase letters, digits, '_', '-'"
    if isinstance(data, str):
        return Behaviour(kind=_string(data, where, _KIND, kind_rule))
    if not isinstance(data, dict):
        raise NeuronsError(f"{where}: must be a kind or a mapping with `kind`, got {type(data).__name__}")
    if "kind" not in data:
        raise NeuronsError(f"{where}: missing 'kind'")
    params = {}
    for key, value in data.items():
        if key == "kind":
            continue
        _string(key, f"{where}: parameter", _PARAM, "a name of lowercase letters, digits, '_'")
        if not _plain(value):
            raise NeuronsError(f"{where}.{key}: must be a string, number, bool, null or a list of them")
        params[key] = value
    return Behaviour(kind=_string(data["kind"], f"{where}.kind", _KIND, kind_rule), params=params)


def parse_neuron(data: object, where: str) -> Neuron:
    if not isinstance(data, dict):
        raise NeuronsError(f"{where}: must be a mapping with `name` and `role`, got {data!r:.80}")
    entry = _mapping(data, where, _NEURON_KEYS)
    for required in ("name", "role"):
        if required not in entry:
            raise NeuronsError(f"{where}: missing '{required}'")
    name = _string(entry["name"], f"{where}.name", NEURON_NAME,
                   "letters, digits, '_', '.', '-' (max 48, starting with a letter or digit)")
    if name in RESERVED_NAMES:
        raise NeuronsError(f"{where}.name: {name!r} is reserved")
    role = entry["role"]
    if role not in ROLES:
        raise NeuronsError(f"{where}.role: must be one of {', '.join(ROLES)}, got {role!r}")
    wallet = _string(entry.get("wallet", name), f"{where}.wallet", WALLET_NAME,
                     "a wallet name (letters, digits, '_', '.', '-')")
    stake = None
    if entry.get("stake") is not None:
        from subnet.chain.genesis import GenesisError, to_rao
        try:
            stake = to_rao(entry["stake"], f"{where}.stake")
        except GenesisError as exc:
            raise NeuronsError(str(exc)) from None
    behaviour = parse_behaviour(entry["behaviour"], f"{where}.behaviour") if "behaviour" in entry else None
    metrics_port = (parse_port(entry["metrics_port"], f"{where}.metrics_port", any_port=True)
                    if "metrics_port" in entry else None)
    return Neuron(name=name, role=role, wallet=wallet, stake=stake, behaviour=behaviour, metrics_port=metrics_port)


def parse_neurons(data: object, path: str) -> tuple[Neuron, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        raise NeuronsError(f"{path}: neurons: must be a list, got {type(data).__name__}")
    neurons, seen = [], set()
    for i, entry in enumerate(data):
        neuron = parse_neuron(entry, f"{path}: neurons[{i}]")
        if neuron.name in seen:
            raise NeuronsError(f"{path}: neurons[{i}].name: duplicate name {neuron.name!r}")
        seen.add(neuron.name)
        neurons.append(neuron)
    return tuple(neurons)


def load_network(path: str | os.PathLike, wallet_dir: Path | None = None, with_chain: bool = True) -> Network:
    """The whole of neurons.yaml. ``with_chain`` parses the chain section too, which looks up its
    wallet names in ``wallet_dir``; without it (e.g. `subnet storage`, which needs no wallets) the
    section must only be a mapping."""
    path = Path(path)
    document = load_yaml(path, NeuronsError, "neurons file")
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise NeuronsError(f"{path}: must be a mapping of sections ({', '.join(_SECTIONS)})")
    for key in document:
        if key not in _SECTIONS:
            raise NeuronsError(f"{path}: {key}: unknown section (known: {', '.join(_SECTIONS)})")
    chain, block_time = None, None
    if with_chain:
        from subnet.chain.genesis import GenesisError, load_chain_params
        try:
            chain, block_time = load_chain_params(path, wallet_dir)
        except GenesisError as exc:
            raise NeuronsError(str(exc)) from None
    elif not isinstance(document.get("chain"), (dict, type(None))):
        raise NeuronsError(f"{path}: chain: must be a mapping")
    return Network(path=path, storage=parse_storage(document.get("storage"), str(path)),
                   neurons=parse_neurons(document.get("neurons"), str(path)), chain=chain, block_time=block_time)
