"""Benchmark of the amm simulator: prints figures, asserts nothing about time.

    python bench/amm.py [--json OUT] [--quick]

1. Equality: the compiled engine against the exact per-block reference loop (amm.reference, i.e.
   amm.coinbase.run_block + Pool + Ledger) on short horizons, every model, mainnet-sized balances
   included; and against the vectorised engine on every shipped scenario it can run, over the whole
   horizon. States whether every output is identical (to the rao and to the bit of every float).
2. Kernel: seconds to compile it (a fresh numba cache) and to load it from the cache.
3. Speed, as `amm simulate` times it (trades drawn + run): year-128 (128 subnets, one year) with both
   engines, 1024 subnets x 1 year, 128 subnets x 10 years (the halvings inside), mainnet-2026.
4. Sweep: `amm sweep year-128` over 5 values of root.tao_weight x 8 seeds, on every core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from amm.compiled import run_compiled  # noqa: E402
from amm.plan import compile_plan  # noqa: E402
from amm.reference import run_reference  # noqa: E402
from amm.result import FINAL_FIELDS  # noqa: E402
from amm.scenario import bundled_scenarios, parse_scenario, read_scenario_data  # noqa: E402
from amm.simulate import run_vectorised  # noqa: E402
from amm.sweep import parse_setting, run_sweep  # noqa: E402

BLOCKS_PER_YEAR = 2_628_000


def year_scenario(subnets: int = 128, blocks: int | None = None):
    data, source = read_scenario_data("year-128")
    data["subnets"][0]["count"] = subnets
    data["name"] = f"year-{subnets}"
    if blocks is not None:
        data["blocks"] = blocks
    return parse_scenario(data, source)


def identical(a, b) -> tuple[bool, float]:
    """(every output bit-identical, largest absolute difference of any money amount in rao)."""
    same, worst = True, 0.0
    for key in FINAL_FIELDS:
        x, y = np.asarray(a.final[key]), np.asarray(b.final[key])
        if not np.array_equal(x, y):
            same = False
        if x.dtype.kind == "i":
            worst = max(worst, float(np.max(np.abs(x - y))))
    for key in ("sample_blocks", "series_price", "series_share", "series_paid"):
        same &= bool(np.array_equal(getattr(a, key), getattr(b, key)))
    same &= (a.total_issuance, a.root_stake, a.trades_executed, a.trades_skipped, a.events_skipped) == \
        (b.total_issuance, b.root_stake, b.trades_executed, b.trades_skipped, b.events_skipped)
    return same, worst


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def simulate_timed(scenario, engine=run_compiled):
    """(result, seconds) as `amm simulate` reports them: the trades drawn, then the run."""
    started = time.perf_counter()
    result = engine(compile_plan(scenario))
    return result, time.perf_counter() - started


def kernel_seconds() -> dict:
    """Seconds to compile the kernel into an empty numba cache, then to load it from that cache, each
    in a fresh process (what a first and a later `amm simulate` pay)."""
    code = ("import time; t = time.perf_counter(); from amm.compiled import run_compiled; "
            "from amm.plan import compile_plan; from amm.scenario import load_scenario; "
            "r = run_compiled(compile_plan(load_scenario('launch-vs-flow'), blocks=1)); "
            "print(r.extra['kernel_seconds'], time.perf_counter() - t)")
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
        for label in ("compile", "cached"):
            got = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            kernel, total = (float(x) for x in got.stdout.split())
            out[f"{label}_kernel_s"], out[f"{label}_process_s"] = round(kernel, 2), round(total, 2)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", help="also write the figures as JSON")
    ap.add_argument("--quick", action="store_true", help="short horizons only (no year-long runs, small sweep)")
    args = ap.parse_args()
    report: dict = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                    "cores": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__}
    shipped = {name: parse_scenario(*read_scenario_data(name)) for name in bundled_scenarios()}

    print("== compiled engine vs exact per-block reference loop ==")
    checks = []
    cases = [(year_scenario(), 1000 if not args.quick else 100, m) for m in ("launch", "flow", "current")]
    cases += [(shipped["pump-and-dump"], 16_000 if not args.quick else 4_000, "flow"),
              (shipped["launch-vs-flow"], 5_000 if not args.quick else 1_250, None),
              (shipped["mainnet-2026"], 300 if not args.quick else 30, None)]
    for scenario, blocks, model in cases:
        plan = compile_plan(scenario, blocks=blocks, model=model)
        ref, t_ref = timed(lambda: run_reference(plan, audit_every=1))
        got, t_got = timed(lambda: run_compiled(plan))
        same, worst = identical(got, ref)
        checks.append({"against": "reference", "scenario": scenario.name, "model": plan.params.model,
                       "subnets": plan.n_subnets, "blocks": blocks, "trades": ref.trades_executed,
                       "identical": same, "max_rao_difference": worst, "reference_s": round(t_ref, 3),
                       "compiled_s": round(t_got, 3)})
        print(f"  {scenario.name:15s} {plan.params.model:8s} {plan.n_subnets:4d} subnets x {blocks:6d} blocks, "
              f"{ref.trades_executed:5d} trades: {'IDENTICAL' if same else 'DIFFERENT'} "
              f"(max diff {worst:.0f} rao; reference {t_ref:.2f} s, compiled {t_got:.3f} s)")

    print("== compiled engine vs vectorised engine, whole horizons of the shipped scenarios ==")
    for name, scenario in shipped.items():
        if name == "mainnet-2026":
            continue   # beyond the vectorised engine's float64 range: the reference check above covers it
        blocks = scenario.blocks if not args.quick else min(scenario.blocks, 20_000)
        plan = compile_plan(scenario, blocks=blocks)
        vec, t_vec = timed(lambda: run_vectorised(plan))
        got, t_got = timed(lambda: run_compiled(plan))
        same, worst = identical(got, vec)
        checks.append({"against": "vectorised", "scenario": name, "model": plan.params.model,
                       "subnets": plan.n_subnets, "blocks": blocks, "trades": vec.trades_executed,
                       "identical": same, "max_rao_difference": worst, "vectorised_s": round(t_vec, 3),
                       "compiled_s": round(t_got, 3)})
        print(f"  {name:15s} {plan.params.model:8s} {plan.n_subnets:4d} subnets x {blocks:9,d} blocks: "
              f"{'IDENTICAL' if same else 'DIFFERENT'} (vectorised {t_vec:.2f} s, compiled {t_got:.2f} s)")
    all_same = all(c["identical"] for c in checks)
    statement = ("the compiled engine equals the per-block reference and the vectorised engine on every "
                 "check (all outputs identical to the rao, floats bit-identical)" if all_same
                 else "MISMATCH between the compiled engine and another engine")
    print("  => " + statement)
    report["equality"] = {"statement": statement, "all_identical": all_same, "checks": checks}

    print("== kernel compile and load (fresh processes) ==")
    report["kernel"] = kernel_seconds()
    k = report["kernel"]
    print(f"  first run: compile {k['compile_kernel_s']:.1f} s (process {k['compile_process_s']:.1f} s); "
          f"later runs: load {k['cached_kernel_s']:.2f} s (process {k['cached_process_s']:.1f} s)")

    print("== speed (trades drawn + run, as amm simulate times it) ==")
    runs = []
    sizes = ([("year-128", year_scenario(), True), ("1024 subnets x 1 year", year_scenario(1024), False),
              ("128 subnets x 10 years", year_scenario(128, 10 * BLOCKS_PER_YEAR), False),
              ("mainnet-2026", shipped["mainnet-2026"], False)] if not args.quick
             else [("year-128, 72,000 blocks", year_scenario(128, 72_000), True)])
    for label, scenario, with_vectorised in sizes:
        res, t = simulate_timed(scenario)
        row = {"run": label, "subnets": len(scenario.subnets), "blocks": scenario.blocks, "compiled_s": round(t, 2),
               "ns_per_subnet_block": round(1e9 * t / (scenario.blocks * len(scenario.subnets)), 2),
               "trades": res.trades_executed, "total_issuance_tao": res.total_issuance / 1e9,
               "conservation": res.conservation}
        line = (f"  {label:24s} {row['subnets']:5d} x {scenario.blocks:11,d} blocks: compiled {t:6.2f} s "
                f"({row['ns_per_subnet_block']:.1f} ns per subnet-block, {res.trades_executed:,} trades)")
        if with_vectorised:
            _, tv = simulate_timed(scenario, run_vectorised)
            row["vectorised_s"], row["speedup"] = round(tv, 2), round(tv / t, 1)
            line += f"; vectorised {tv:.1f} s ({tv / t:.0f}x)"
        runs.append(row)
        print(line)
    report["speed"] = runs

    print("== sweep: year-128, root.tao_weight x seeds, all cores ==")
    data, source = read_scenario_data("year-128")
    values, seeds = ("0.05,0.1,0.18,0.3,0.5", 8) if not args.quick else ("0.1,0.3", 2)
    if args.quick:
        data["blocks"] = 72_000
    setting = parse_setting(f"root.tao_weight={values}")
    sweep, t = timed(lambda: run_sweep(data, source, [setting], seeds))
    n_runs = len(setting.values) * seeds
    report["sweep"] = {"settings": f"root.tao_weight={values}", "seeds": seeds, "runs": n_runs,
                       "blocks": int(sweep["grid"][0]["series"]["block"][-1]) + 1, "jobs": sweep["jobs"],
                       "wall_s": round(t, 1), "run_s_median": round(float(np.median(
                           [g["run_seconds_median"] for g in sweep["grid"]])), 2),
                       "conservation": sorted({g["conservation"] for g in sweep["grid"]})}
    print(f"  {len(setting.values)} x {seeds} = {n_runs} runs on {sweep['jobs']} processes: {t:.1f} s wall "
          f"(a run {report['sweep']['run_s_median']:.1f} s); conservation: {', '.join(report['sweep']['conservation'])}")

    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0 if all_same else 1


if __name__ == "__main__":
    sys.exit(main())
