"""Chain parameters and genesis state, loaded strictly from the `chain:` section of neurons.yaml.

Amounts in the file are in TAO (or alpha) and are converted exactly to integer rao by
`amm.units.to_rao` (the rule amm scenarios use too); anything that does not convert exactly, an
unknown key or a wrong type is an error naming the key and the file.
Accounts are SS58 addresses or wallet names (a wallet's coldkey; `owner_hotkey` takes its hotkey).
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

from amm import units
from amm.shares import check_model
from amm.units import RAO_PER_TAO
from subnet.config import value_has_type
from subnet.files import load_yaml
from subnet.keys import is_valid_address


class GenesisError(ValueError):
    pass


@dataclass(frozen=True)
class SubnetGenesis:
    netuid: int
    owner: str              # coldkey address: receives the owner cut
    owner_hotkey: str       # registered as uid 0 at genesis; the owner cut is staked to it
    pool_tao: int           # initial reserves, rao
    pool_alpha: int
    tempo: int = 360
    burn: int = RAO_PER_TAO  # registration cost, recycled
    max_uids: int = 256
    max_validators: int = 64
    immunity_period: int = 4096
    activity_cutoff: int = 5000
    kappa: float = 0.5
    bond_alpha: float = 0.1
    bonds_penalty: float = 1.0
    yuma3: bool = False
    emission_enabled: bool = True


@dataclass(frozen=True)
class ChainParams:
    emission_model: str = "current"
    tao_weight: float = 0.18
    max_commitment_bytes: int = 512
    max_call_bytes: int = 64 * 1024
    max_calls_per_block: int = 32   # signed calls one signer may make in one block (a flood is refused)
    balances: dict[str, int] = field(default_factory=dict)
    subnets: tuple[SubnetGenesis, ...] = ()
    root_stake: dict[str, int] = field(default_factory=dict)  # hotkey -> TAO staked on root at genesis


_AMOUNT_KEYS = {"pool_tao", "pool_alpha", "burn"}


def to_rao(value: object, where: str) -> int:
    """An amount of TAO from the file as exact rao; `where` names the key in the error."""
    try:
        return units.to_rao(value, exact=True)
    except ValueError as exc:
        raise GenesisError(f"{where}: {exc}") from None


def _resolve(name: str, where: str, wallet_dir: Path | None, hotkey: bool = False) -> str:
    if is_valid_address(name):
        return name
    from subnet.wallet import WalletError, load_wallet
    try:
        wallet = load_wallet(name, wallet_dir)
    except WalletError as exc:
        raise GenesisError(f"{where}: {name!r} is neither an SS58 address nor a wallet ({exc})") from None
    return wallet.hotkey.address if hotkey else wallet.coldkey_address


def _subnet(data: object, where: str, wallet_dir: Path | None) -> SubnetGenesis:
    if not isinstance(data, dict):
        raise GenesisError(f"{where}: must be a mapping")
    hints = typing.get_type_hints(SubnetGenesis)
    known = {f.name for f in dataclasses.fields(SubnetGenesis)}
    for key in data:
        if key not in known:
            raise GenesisError(f"{where}.{key}: unknown key (known: {', '.join(sorted(known))})")
    kwargs = {}
    for key, value in data.items():
        if key in _AMOUNT_KEYS:
            kwargs[key] = to_rao(value, f"{where}.{key}")
        elif key in ("owner", "owner_hotkey"):
            kwargs[key] = _resolve(str(value), f"{where}.{key}", wallet_dir, hotkey=key == "owner_hotkey")
        else:
            expected = hints[key]
            if not value_has_type(value, expected):
                raise GenesisError(f"{where}.{key}: must be {expected.__name__}, got {value!r}")
            kwargs[key] = float(value) if expected is float else value
    if "owner" in kwargs and "owner_hotkey" not in kwargs and not is_valid_address(str(data["owner"])):
        kwargs["owner_hotkey"] = _resolve(str(data["owner"]), f"{where}.owner", wallet_dir, hotkey=True)
    for required in ("netuid", "owner", "owner_hotkey", "pool_tao", "pool_alpha"):
        if required not in kwargs:
            raise GenesisError(f"{where}: missing '{required}'")
    subnet = SubnetGenesis(**kwargs)
    checks = [
        (subnet.netuid >= 1, "netuid must be >= 1 (0 is root)"),
        (subnet.tempo >= 1, "tempo must be >= 1"),
        (1 <= subnet.max_uids <= 4096, "max_uids must be in [1, 4096]"),
        (1 <= subnet.max_validators <= subnet.max_uids, "max_validators must be in [1, max_uids]"),
        (0 < subnet.kappa < 1, "kappa must be in (0, 1)"),
        (0 < subnet.bond_alpha <= 1, "bond_alpha must be in (0, 1]"),
        (0 <= subnet.bonds_penalty <= 1, "bonds_penalty must be in [0, 1]"),
        (subnet.pool_tao > 0 and subnet.pool_alpha > 0, "pool reserves must be > 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise GenesisError(f"{where}: {message}")
    return subnet


def parse_chain_params(data: object, path: str = "<genesis>", wallet_dir: Path | None = None) -> ChainParams:
    if data is None:
        return ChainParams()
    if not isinstance(data, dict):
        raise GenesisError(f"{path}: chain: must be a mapping")
    known = {"emission_model", "tao_weight", "max_commitment_bytes", "max_calls_per_block", "balances", "subnets",
             "root_stake", "block_time", "metrics_port"}
    for key in data:
        if key not in known:
            raise GenesisError(f"{path}: chain.{key}: unknown key (known: {', '.join(sorted(known))})")
    model = data.get("emission_model", "current")
    try:
        check_model(model)
    except ValueError as exc:
        raise GenesisError(f"{path}: chain.emission_model: {exc}") from None
    tao_weight = data.get("tao_weight", 0.18)
    if not isinstance(tao_weight, (int, float)) or not 0 <= tao_weight <= 1:
        raise GenesisError(f"{path}: chain.tao_weight must be a number in [0, 1]")
    max_commit = data.get("max_commitment_bytes", 512)
    if not isinstance(max_commit, int) or not 16 <= max_commit <= 65536:
        raise GenesisError(f"{path}: chain.max_commitment_bytes must be an int in [16, 65536]")
    max_calls = data.get("max_calls_per_block", 32)
    if not isinstance(max_calls, int) or isinstance(max_calls, bool) or not 1 <= max_calls <= 100_000:
        raise GenesisError(f"{path}: chain.max_calls_per_block must be an int in [1, 100000]")

    def accounts(section: str, hotkey: bool) -> dict[str, int]:
        raw = data.get(section) or {}
        if not isinstance(raw, dict):
            raise GenesisError(f"{path}: chain.{section} must map accounts to amounts")
        out: dict[str, int] = {}
        for name, amount in raw.items():
            where = f"{path}: chain.{section}.{name}"
            address = _resolve(str(name), where, wallet_dir, hotkey=hotkey)
            out[address] = out.get(address, 0) + to_rao(amount, where)
        return out

    raw_subnets = data.get("subnets") or []
    if not isinstance(raw_subnets, list):
        raise GenesisError(f"{path}: chain.subnets must be a list")
    subnets = tuple(_subnet(s, f"{path}: chain.subnets[{i}]", wallet_dir) for i, s in enumerate(raw_subnets))
    netuids = [s.netuid for s in subnets]
    if len(set(netuids)) != len(netuids):
        raise GenesisError(f"{path}: chain.subnets: duplicate netuid")
    return ChainParams(emission_model=model, tao_weight=float(tao_weight), max_commitment_bytes=max_commit,
                       max_calls_per_block=max_calls, balances=accounts("balances", False), subnets=subnets,
                       root_stake=accounts("root_stake", True))


def load_chain_params(path: Path, wallet_dir: Path | None = None) -> tuple[ChainParams, float | None]:
    """(params, block_time from the file or None) from a neurons.yaml-style file's `chain:` section."""
    doc = load_yaml(path, error=GenesisError, what="genesis file")
    section = (doc or {}).get("chain") if isinstance(doc, dict) else None
    block_time = section.get("block_time") if isinstance(section, dict) else None
    if block_time is not None and (isinstance(block_time, bool) or not isinstance(block_time, (int, float))
                                   or not 0 <= block_time < 3600):
        raise GenesisError(f"{path}: chain.block_time must be a number of seconds in [0, 3600), got {block_time!r}")
    return parse_chain_params(section, str(path), wallet_dir), block_time


def chain_metrics_port(path: Path) -> int | None:
    """The `chain:` section's metrics_port (where `subnet chain` serves Prometheus metrics), or None."""
    doc = load_yaml(path, error=GenesisError, what="genesis file")
    section = (doc or {}).get("chain") if isinstance(doc, dict) else None
    port = section.get("metrics_port") if isinstance(section, dict) else None
    if port is not None and (type(port) is not int or not 0 <= port <= 65535):   # 0: the OS picks one
        raise GenesisError(f"{path}: chain.metrics_port: must be an int in [0, 65535], got {port!r}")
    return port
