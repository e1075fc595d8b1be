"""What a simulation run produces (both engines fill the same structure)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from amm.units import RAO_PER_TAO

# Per-subnet final quantities; money is int64 rao, prices float TAO per alpha.
FINAL_FIELDS = (
    "price", "ema_price", "flow_ema", "tao_reserve", "alpha_reserve", "tao_emitted", "tao_injected",
    "alpha_injected", "alpha_out", "owner_paid", "miner_paid", "validator_paid", "pending",
    "protocol_alpha", "alpha_recycled", "alpha_issuance", "trader_tao", "trader_alpha",
)


@dataclass
class SimResult:
    scenario: str
    model: str
    seed: int
    blocks: int
    names: tuple[str, ...]
    final: dict[str, np.ndarray]
    total_issuance: int
    root_stake: int
    trades_executed: int
    trades_skipped: int
    events_skipped: int
    sample_blocks: np.ndarray  # blocks at which the series were sampled
    series_price: np.ndarray  # [samples, subnets]
    series_share: np.ndarray  # TAO emission share in the sampled block
    series_paid: np.ndarray  # cumulative alpha paid out (owner + miners + validators)
    conservation: str = "not checked"
    engine: str = ""
    extra: dict = field(default_factory=dict)

    def emission_share(self) -> np.ndarray:
        """Share of all TAO emitted over the run that went to each subnet."""
        total = self.final["tao_emitted"].sum()
        return self.final["tao_emitted"] / total if total else np.zeros(len(self.names))

    def rows(self) -> list[dict]:
        share = self.emission_share()
        out = []
        for i, name in enumerate(self.names):
            row = {"subnet": name, "netuid": i + 1, "emission_share": float(share[i])}
            for key in FINAL_FIELDS:
                v = self.final[key][i]
                row[key] = float(v) if key in ("price", "ema_price", "flow_ema") else int(v)
            out.append(row)
        return out

    def to_dict(self, series: bool = True) -> dict:
        d = {
            "scenario": self.scenario, "model": self.model, "seed": self.seed, "blocks": self.blocks,
            "engine": self.engine, "units": f"money in rao (1 TAO = {RAO_PER_TAO} rao); prices in TAO per alpha",
            "total_issuance": int(self.total_issuance), "root_stake": int(self.root_stake),
            "trades_executed": self.trades_executed, "trades_skipped": self.trades_skipped,
            "events_skipped": self.events_skipped, "conservation": self.conservation,
            "subnets": self.rows(),
        }
        if series:
            d["series"] = {
                "block": [int(b) for b in self.sample_blocks],
                "price": self.series_price.tolist(),
                "share": self.series_share.tolist(),
                "paid_alpha": self.series_paid.astype(np.int64).tolist(),
            }
        return d

    def differences(self, other: "SimResult") -> dict[str, float]:
        """Largest absolute difference of each final quantity and series against another run."""
        diff = {}
        for key in FINAL_FIELDS:
            a = np.asarray(self.final[key], dtype=np.float64)
            b = np.asarray(other.final[key], dtype=np.float64)
            diff[key] = float(np.max(np.abs(a - b))) if len(a) else 0.0
        diff["total_issuance"] = float(abs(self.total_issuance - other.total_issuance))
        for key in ("series_price", "series_share", "series_paid"):
            diff[key] = float(np.max(np.abs(getattr(self, key) - getattr(other, key))))
        return diff
