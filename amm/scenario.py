"""Scenario files: strict YAML loading into dataclasses.

Every unknown key, wrong type or impossible value raises ScenarioError naming the file and the key
path (e.g. ``pump.yaml: subnets[2].tempo: must be >= 1, got 0``). Amounts in the file are in whole
TAO / alpha (floats allowed) and become integer rao here. See docs/amm.md for the format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from amm.shares import MODELS
from amm.units import (BLOCKS_PER_DAY, DEFAULT_EMA_HALVING_BLOCKS, DEFAULT_MOVING_ALPHA,
                       DEFAULT_TAO_WEIGHT, DEFAULT_TEMPO, RAO_PER_TAO, TOTAL_SUPPLY_RAO, to_rao)

SIZE_DISTRIBUTIONS = ("lognormal", "exponential", "fixed")
ROOT_NAME = "root"


class ScenarioError(ValueError):
    pass


@dataclass(frozen=True)
class SubnetSpec:
    name: str
    tao: int  # initial pool TAO reserve, rao
    alpha: int  # initial pool alpha reserve, rao
    outstanding_alpha: int = 0  # alpha already staked outside the pool (held, never traded)
    tempo: int = DEFAULT_TEMPO
    emission: bool = True
    ema_price: float | None = None  # initial moving price; default min(spot, 1)
    age_blocks: int = 1_000_000  # blocks since the subnet started (EMA warm-up)


@dataclass(frozen=True)
class SizeSpec:
    dist: str
    mean_tao: float
    sigma: float = 1.0  # lognormal only


@dataclass(frozen=True)
class TraderSpec:
    subnets: tuple[str, ...]  # resolved names
    rate_per_day: float
    size: SizeSpec
    buy_prob: float = 0.5
    balance_tao: int = 0  # rao of TAO the traders of each subnet start with
    alpha: int = 0  # rao of alpha they start holding on each subnet


@dataclass(frozen=True)
class EventSpec:
    block: int
    account: str
    subnet: str  # a subnet name or "root"
    action: str  # "stake" | "unstake"
    amount: int | None  # rao of TAO (stake) or alpha (unstake); None with fraction
    fraction: float | None = None  # unstake this fraction of the account's holding


@dataclass(frozen=True)
class Scenario:
    name: str
    source: str
    description: str = ""
    blocks: int = BLOCKS_PER_DAY * 30
    model: str = "current"
    seed: int = 0
    root_stake: int = 0
    tao_weight: float = DEFAULT_TAO_WEIGHT
    moving_alpha: float = DEFAULT_MOVING_ALPHA
    ema_halving_blocks: int = DEFAULT_EMA_HALVING_BLOCKS
    record_points: int = 400
    accounts: dict[str, int] = field(default_factory=dict)
    subnets: tuple[SubnetSpec, ...] = ()
    traders: tuple[TraderSpec, ...] = ()
    events: tuple[EventSpec, ...] = ()


# ----- helpers ---------------------------------------------------------------------------------
class _Reader:
    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, message: str):
        raise ScenarioError(f"{self.source}: {path}: {message}")

    def mapping(self, value: Any, path: str, allowed: set[str], required: set[str] = frozenset()):
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, got {type(value).__name__}")
        for key in value:
            if not isinstance(key, str) or key not in allowed:
                self.fail(f"{path}.{key}" if path else str(key),
                          f"unknown key (allowed: {', '.join(sorted(allowed))})")
        for key in required:
            if key not in value:
                self.fail(f"{path}.{key}" if path else key, "required key missing")
        return value

    def number(self, value, path, minimum=None, maximum=None, strict_min=False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(path, f"must be a number, got {type(value).__name__}")
        if not math.isfinite(value):
            self.fail(path, f"must be finite, got {value}")
        if minimum is not None and (value <= minimum if strict_min else value < minimum):
            self.fail(path, f"must be {'>' if strict_min else '>='} {minimum}, got {value}")
        if maximum is not None and value > maximum:
            self.fail(path, f"must be <= {maximum}, got {value}")
        return float(value)

    def integer(self, value, path, minimum=None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"must be an integer, got {type(value).__name__}")
        if minimum is not None and value < minimum:
            self.fail(path, f"must be >= {minimum}, got {value}")
        return value

    def string(self, value, path) -> str:
        if not isinstance(value, str) or not value:
            self.fail(path, f"must be a non-empty string, got {value!r}")
        return value

    def boolean(self, value, path) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"must be true or false, got {value!r}")
        return value

    def rao(self, value, path, minimum=0.0, strict_min=False, exact=True) -> int:
        """An amount of TAO / alpha as rao by `amm.units.to_rao` (the chain genesis rule); a written
        amount finer than one rao is refused, a computed one (`exact=False`) rounds half-even."""
        self.number(value, path, minimum, strict_min=strict_min)
        try:
            return to_rao(value, exact=exact)
        except ValueError as exc:
            self.fail(path, str(exc))


def _spread(reader: _Reader, value, path: str, count: int, strict_min: bool) -> list[int]:
    """A scalar amount, or [low, high] spaced geometrically over `count` copies."""
    if isinstance(value, list):
        if len(value) != 2:
            reader.fail(path, "a range must be [low, high]")
        low = reader.number(value[0], f"{path}[0]", 0.0, strict_min=True)
        high = reader.number(value[1], f"{path}[1]", 0.0, strict_min=True)
        written = [reader.rao(value[0], f"{path}[0]"), reader.rao(value[1], f"{path}[1]")]  # whole rao each
        if count == 1:
            return written[:1]
        return [reader.rao(low * (high / low) ** (k / (count - 1)), path, exact=False) for k in range(count)]
    return [reader.rao(value, path, strict_min=strict_min)] * count


_SUBNET_KEYS = {"name", "count", "tao", "alpha", "outstanding_alpha", "tempo", "emission",
                "ema_price", "age_blocks"}
_TRADER_KEYS = {"subnets", "rate_per_day", "size_tao", "buy_prob", "balance_tao", "alpha"}
_SIZE_KEYS = {"dist", "mean", "sigma"}
_EVENT_KEYS = {"block", "account", "subnet", "stake_tao", "unstake_alpha", "unstake_fraction"}
_TOP_KEYS = {"name", "description", "blocks", "model", "seed", "root", "params", "accounts",
             "subnets", "traders", "events", "record_points"}
_ROOT_KEYS = {"stake_tao", "tao_weight"}
_PARAM_KEYS = {"moving_alpha", "ema_halving_blocks"}


def _subnets(r: _Reader, raw) -> list[SubnetSpec]:
    if not isinstance(raw, list) or not raw:
        r.fail("subnets", "must be a non-empty list")
    out: list[SubnetSpec] = []
    for i, entry in enumerate(raw):
        p = f"subnets[{i}]"
        r.mapping(entry, p, _SUBNET_KEYS, {"name", "tao", "alpha"})
        name = r.string(entry["name"], f"{p}.name")
        count = r.integer(entry.get("count", 1), f"{p}.count", 1)
        taos = _spread(r, entry["tao"], f"{p}.tao", count, strict_min=True)
        alphas = _spread(r, entry["alpha"], f"{p}.alpha", count, strict_min=True)
        outs = _spread(r, entry.get("outstanding_alpha", 0), f"{p}.outstanding_alpha", count, False)
        tempo = r.integer(entry.get("tempo", DEFAULT_TEMPO), f"{p}.tempo", 1)
        emission = r.boolean(entry.get("emission", True), f"{p}.emission")
        ema = entry.get("ema_price")
        if ema is not None:
            ema = r.number(ema, f"{p}.ema_price", 0.0)
        age = r.integer(entry.get("age_blocks", 1_000_000), f"{p}.age_blocks", 0)
        for k in range(count):
            sub_name = name if count == 1 else f"{name}{k + 1}"
            if taos[k] == 0 or alphas[k] == 0:
                r.fail(p, "reserves must be > 0")
            out.append(SubnetSpec(sub_name, taos[k], alphas[k], outs[k], tempo, emission, ema, age))
    names = [s.name for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1} | ({ROOT_NAME} & set(names)))
    if dupes:
        r.fail("subnets", f"duplicate or reserved subnet names: {', '.join(dupes)}")
    return out


def _traders(r: _Reader, raw, names: list[str]) -> list[TraderSpec]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        r.fail("traders", "must be a list")
    out, claimed = [], {}
    for i, entry in enumerate(raw):
        p = f"traders[{i}]"
        r.mapping(entry, p, _TRADER_KEYS, {"subnets", "rate_per_day", "size_tao"})
        sel = entry["subnets"]
        if sel == "all":
            chosen = list(names)
        elif isinstance(sel, list) and sel and all(isinstance(s, str) for s in sel):
            for s in sel:
                if s not in names:
                    r.fail(f"{p}.subnets", f"unknown subnet {s!r}")
            chosen = list(sel)
        else:
            r.fail(f"{p}.subnets", "must be 'all' or a list of subnet names")
        for s in chosen:
            if s in claimed:
                r.fail(f"{p}.subnets", f"subnet {s!r} already has traders (traders[{claimed[s]}])")
            claimed[s] = i
        rate = r.number(entry["rate_per_day"], f"{p}.rate_per_day", 0.0)
        if rate > BLOCKS_PER_DAY:
            r.fail(f"{p}.rate_per_day", f"at most one trade per block ({BLOCKS_PER_DAY}/day), got {rate}")
        size_raw = r.mapping(entry["size_tao"], f"{p}.size_tao", _SIZE_KEYS, {"dist", "mean"})
        dist = r.string(size_raw["dist"], f"{p}.size_tao.dist")
        if dist not in SIZE_DISTRIBUTIONS:
            r.fail(f"{p}.size_tao.dist", f"must be one of {', '.join(SIZE_DISTRIBUTIONS)}, got {dist!r}")
        mean = r.number(size_raw["mean"], f"{p}.size_tao.mean", 0.0, strict_min=True)
        sigma = r.number(size_raw.get("sigma", 1.0), f"{p}.size_tao.sigma", 0.0)
        buy_prob = r.number(entry.get("buy_prob", 0.5), f"{p}.buy_prob", 0.0, 1.0)
        balance = r.rao(entry.get("balance_tao", 0), f"{p}.balance_tao")
        alpha = r.rao(entry.get("alpha", 0), f"{p}.alpha")
        out.append(TraderSpec(tuple(chosen), rate, SizeSpec(dist, mean, sigma), buy_prob, balance, alpha))
    return out


def _events(r: _Reader, raw, names: list[str], accounts: dict[str, int]) -> list[EventSpec]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        r.fail("events", "must be a list")
    out = []
    for i, entry in enumerate(raw):
        p = f"events[{i}]"
        r.mapping(entry, p, _EVENT_KEYS, {"block", "account", "subnet"})
        block = r.integer(entry["block"], f"{p}.block", 0)
        account = r.string(entry["account"], f"{p}.account")
        if account not in accounts:
            r.fail(f"{p}.account", f"unknown account {account!r} (declare it under accounts)")
        subnet = r.string(entry["subnet"], f"{p}.subnet")
        if subnet != ROOT_NAME and subnet not in names:
            r.fail(f"{p}.subnet", f"unknown subnet {subnet!r}")
        actions = [k for k in ("stake_tao", "unstake_alpha", "unstake_fraction") if k in entry]
        if len(actions) != 1:
            r.fail(p, "needs exactly one of stake_tao, unstake_alpha, unstake_fraction")
        key = actions[0]
        if key == "stake_tao":
            out.append(EventSpec(block, account, subnet, "stake", r.rao(entry[key], f"{p}.{key}", strict_min=True)))
        elif key == "unstake_alpha":
            out.append(EventSpec(block, account, subnet, "unstake", r.rao(entry[key], f"{p}.{key}", strict_min=True)))
        else:
            frac = r.number(entry[key], f"{p}.{key}", 0.0, 1.0, strict_min=True)
            out.append(EventSpec(block, account, subnet, "unstake", None, frac))
    return out


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    r = _Reader(source)
    r.mapping(data, "", _TOP_KEYS, {"name", "subnets"})
    name = r.string(data["name"], "name")
    description = data.get("description", "")
    if not isinstance(description, str):
        r.fail("description", "must be a string")
    blocks = r.integer(data.get("blocks", BLOCKS_PER_DAY * 30), "blocks", 1)
    model = r.string(data.get("model", "current"), "model")
    if model not in MODELS:
        r.fail("model", f"must be one of {', '.join(MODELS)}, got {model!r}")
    seed = r.integer(data.get("seed", 0), "seed", 0)
    record_points = r.integer(data.get("record_points", 400), "record_points", 2)
    root = r.mapping(data.get("root", {}), "root", _ROOT_KEYS)
    root_stake = r.rao(root.get("stake_tao", 0), "root.stake_tao")
    tao_weight = r.number(root.get("tao_weight", DEFAULT_TAO_WEIGHT), "root.tao_weight", 0.0, 1.0)
    params = r.mapping(data.get("params", {}), "params", _PARAM_KEYS)
    moving_alpha = r.number(params.get("moving_alpha", DEFAULT_MOVING_ALPHA), "params.moving_alpha", 0.0, 1.0)
    halving = r.integer(params.get("ema_halving_blocks", DEFAULT_EMA_HALVING_BLOCKS), "params.ema_halving_blocks", 1)
    accounts_raw = data.get("accounts", {}) or {}
    r.mapping(accounts_raw, "accounts", set(accounts_raw) if isinstance(accounts_raw, dict) else set())
    accounts = {}
    for acct, bal in accounts_raw.items():
        if acct.startswith("trader:") or acct in ("owner", "miners", "validators", "holders"):
            r.fail(f"accounts.{acct}", "reserved account name")
        accounts[acct] = r.rao(bal, f"accounts.{acct}")
    subnets = _subnets(r, data["subnets"])
    names = [s.name for s in subnets]
    traders = _traders(r, data.get("traders"), names)
    events = _events(r, data.get("events"), names, accounts)
    # impossible starting points: more than the 21M supply issued
    trader_tao = {n: t.balance_tao for t in traders for n in t.subnets}
    trader_alpha = {n: t.alpha for t in traders for n in t.subnets}
    initial_tao = (sum(accounts.values()) + root_stake + sum(s.tao for s in subnets)
                   + sum(trader_tao.values()))
    if initial_tao >= TOTAL_SUPPLY_RAO:
        r.fail("initial TAO", f"accounts + root + pools + trader balances = {initial_tao / RAO_PER_TAO:,.0f} TAO, "
                              "at or above the 21M supply")
    for s in subnets:
        if s.alpha + s.outstanding_alpha + trader_alpha.get(s.name, 0) >= TOTAL_SUPPLY_RAO:
            r.fail(f"subnets.{s.name}", "initial alpha issuance at or above the 21M supply")
    return Scenario(name=name, source=source, description=description, blocks=blocks, model=model,
                    seed=seed, root_stake=root_stake, tao_weight=tao_weight, moving_alpha=moving_alpha,
                    ema_halving_blocks=halving, record_points=record_points, accounts=accounts,
                    subnets=tuple(subnets), traders=tuple(traders), events=tuple(events))


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario file; a bare name (e.g. ``pump-and-dump``) finds a shipped example."""
    data, source = read_scenario_data(path)
    return parse_scenario(data, source)


def read_scenario_data(path: str | Path) -> tuple[object, str]:
    """The parsed YAML of a scenario file (or a shipped one by name) and the path it came from,
    not yet checked (`parse_scenario` does that)."""
    p = Path(path)
    if not p.exists():
        shipped = bundled_scenarios().get(str(path).removesuffix(".yaml"))
        if shipped is None:
            raise ScenarioError(f"{path}: no such file (shipped: {', '.join(sorted(bundled_scenarios()))})")
        p = shipped
    try:
        return yaml.safe_load(p.read_text()), str(p)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{p}: not valid YAML: {exc}") from exc


def bundled_scenarios() -> dict[str, Path]:
    # next to this module (package data), not importlib.resources: a tests/amm folder on sys.path
    # can shadow the package name as a namespace package
    folder = Path(__file__).resolve().parent / "scenarios"
    return {f.stem: f for f in sorted(folder.glob("*.yaml"))}
