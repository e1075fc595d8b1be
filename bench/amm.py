"""Benchmark of the amm simulator: prints figures, asserts nothing about time.

    python bench/amm.py [--json OUT] [--quick]

1. Equality: the vectorised engine against the exact per-block reference loop (amm.reference, i.e.
   amm.coinbase.run_block + Pool + Ledger) on short horizons, every model; states whether every
   output is identical (to the rao and to the bit of every float).
2. Growth: time at three sizes (subnets x blocks), to show how cost grows.
3. Target: a one-year run (2,628,000 blocks) of the shipped 128-subnet scenario with stochastic
   traders and tempo payouts (target: under 60 s on the 2-core dev machine).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amm.plan import compile_plan  # noqa: E402
from amm.reference import run_reference  # noqa: E402
from amm.result import FINAL_FIELDS  # noqa: E402
from amm.scenario import bundled_scenarios, parse_scenario  # noqa: E402
from amm.simulate import run_vectorised  # noqa: E402


def year_scenario(subnets: int | None = None):
    data = yaml.safe_load(bundled_scenarios()["year-128"].read_text())
    if subnets is not None:
        data["subnets"][0]["count"] = subnets
        data["name"] = f"year-{subnets}"
    return parse_scenario(data, "year-128.yaml")


def identical(a, b) -> tuple[bool, float]:
    """(every output bit-identical, largest absolute difference of any money amount in rao)."""
    same, worst = True, 0.0
    for key in FINAL_FIELDS:
        x, y = np.asarray(a.final[key]), np.asarray(b.final[key])
        if not np.array_equal(x, y):
            same = False
        if x.dtype.kind == "i":
            worst = max(worst, float(np.max(np.abs(x - y))))
    for key in ("series_price", "series_share", "series_paid"):
        same &= bool(np.array_equal(getattr(a, key), getattr(b, key)))
    same &= a.total_issuance == b.total_issuance and a.trades_executed == b.trades_executed
    return same, worst


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", help="also write the figures as JSON")
    ap.add_argument("--quick", action="store_true", help="smaller sizes, no one-year run")
    args = ap.parse_args()
    report: dict = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                    "python": platform.python_version(), "numpy": np.__version__}

    print("== vectorised engine vs exact per-block reference loop ==")
    checks = []
    cases = [(year_scenario(), 1000 if not args.quick else 100, m) for m in ("launch", "flow", "current")]
    shipped = bundled_scenarios()
    for name, blocks in (("pump-and-dump", 16_000), ("launch-vs-flow", 5_000)):
        data = yaml.safe_load(shipped[name].read_text())
        cases.append((parse_scenario(data, name), blocks if not args.quick else blocks // 4, None))
    for scenario, blocks, model in cases:
        plan = compile_plan(scenario, blocks=blocks, model=model)
        ref, t_ref = timed(lambda: run_reference(plan, audit_every=1))
        vec, t_vec = timed(lambda: run_vectorised(plan))
        same, worst = identical(vec, ref)
        row = {"scenario": scenario.name, "model": plan.params.model, "subnets": plan.n_subnets,
               "blocks": blocks, "trades": ref.trades_executed, "identical": same,
               "max_rao_difference": worst, "reference_s": round(t_ref, 3), "vectorised_s": round(t_vec, 3)}
        checks.append(row)
        print(f"  {scenario.name:15s} {plan.params.model:8s} {plan.n_subnets:4d} subnets x {blocks:6d} blocks, "
              f"{ref.trades_executed:5d} trades: {'IDENTICAL' if same else 'DIFFERENT'} "
              f"(max diff {worst:.0f} rao; reference {t_ref:.2f} s, vectorised {t_vec:.3f} s)")
    all_same = all(c["identical"] for c in checks)
    statement = ("results equal the per-block reference loop on every short-horizon check "
                 "(all outputs identical to the rao, floats bit-identical; ledger audited every block)"
                 if all_same else "MISMATCH between the vectorised engine and the reference loop")
    print("  => " + statement)
    report["equality"] = {"statement": statement, "all_identical": all_same, "checks": checks}

    print("== cost growth (vectorised, model current, stochastic traders, tempo payouts) ==")
    sizes = ([(32, 72_000), (128, 72_000), (512, 72_000), (128, 288_000)] if not args.quick
             else [(32, 7_200), (128, 7_200), (512, 7_200)])
    growth = []
    for subnets, blocks in sizes:
        plan = compile_plan(year_scenario(subnets), blocks=blocks)
        res, t = timed(lambda: run_vectorised(plan))
        us = 1e6 * t / blocks
        growth.append({"subnets": subnets, "blocks": blocks, "seconds": round(t, 3),
                       "us_per_block": round(us, 2), "trades": res.trades_executed})
        print(f"  {subnets:4d} subnets x {blocks:9,d} blocks: {t:6.2f} s  ({us:5.1f} us/block, "
              f"{1e9 * t / (blocks * subnets):6.1f} ns per subnet-block, {res.trades_executed:,} trades)")
    report["growth"] = growth
    models = []
    blocks = 72_000 if not args.quick else 7_200
    for model in ("launch", "flow", "current"):
        plan = compile_plan(year_scenario(128), blocks=blocks, model=model)
        _, t = timed(lambda: run_vectorised(plan))
        models.append({"model": model, "subnets": 128, "blocks": blocks, "seconds": round(t, 3)})
        print(f"  model {model:8s} 128 subnets x {blocks:,} blocks: {t:.2f} s ({1e6 * t / blocks:.1f} us/block)")
    report["models"] = models

    if not args.quick:
        print("== target: one year, 128 subnets ==")
        scenario = year_scenario()
        (plan, t_plan) = timed(lambda: compile_plan(scenario))
        res, t = timed(lambda: run_vectorised(plan))
        total = t + t_plan
        print(f"  128 subnets x {plan.blocks:,} blocks: {total:.1f} s (draw trades {t_plan:.1f} s, run {t:.1f} s); "
              f"{res.trades_executed:,} trades; target < 60 s: {'MET' if total < 60 else 'MISSED'}")
        print(f"  conservation: {res.conservation}")
        report["year"] = {"subnets": 128, "blocks": plan.blocks, "seconds": round(total, 2),
                          "trades": res.trades_executed, "target_s": 60, "met": total < 60,
                          "conservation": res.conservation}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0 if all_same else 1


if __name__ == "__main__":
    sys.exit(main())
