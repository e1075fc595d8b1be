"""Incentive fairness with real processes: honest miners against one miner of every adversarial
behaviour, and the same network without the adversaries (printed, never asserted).

    python bench/fairness.py [--windows 20] [--honest 4] [--validators 2] [--block-time 2.0]
                             [--preset tiny] [--root DIR] [--json OUT]

Each network is `subnet up --windows N` on a generated neurons.yaml (what a user runs), in its own
run directory under --root. Earnings are each miner's alpha stake at the end: miners start with none
and only Yuma's incentive payouts add to it, so a miner's share of the alpha paid to miners is its
share of all miner incentive over the run (the owner's uid is not a miner and is left out).

Adversaries (miner/behaviours.py): copier (of the first honest miner, with noise 0.05 x the
update's RMS), noisy, stale (2 versions behind), free_rider, lazy, late, poisoner (update negated),
malformed (a different invalid payload each window) and a sybil pair (one miner's work under two
hotkeys). `--json` writes exactly:
  {"windows", "miners": {NAME: {"behaviour", "incentive_share", "alpha_earned"}},
   "loss_with_adversaries", "loss_honest_only"}
with loss the global model's held-out loss after the N-th trained window of each run.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROG = "fairness.py"
SECONDS_PER_WINDOW_BUDGET = 60   # a run that takes longer than this per window (plus start-up) is stopped
START_UP_BUDGET_S = 600

ADVERSARIES = {
    "copier": {"kind": "copier", "victim": "honest1", "noise": 0.05},
    "noisy": {"kind": "noisy"},
    "stale": {"kind": "stale", "lag": 2},
    "free_rider": {"kind": "free_rider"},
    "lazy": {"kind": "lazy"},
    "late": {"kind": "late"},
    "poisoner": {"kind": "poisoner"},
    "malformed": {"kind": "malformed"},
    "sybil_a": {"kind": "sybil", "twin": "sybil_b"},
    "sybil_b": {"kind": "sybil", "twin": "sybil_a"},
}


def network_file(honest: int, validators: int, block_time: float, adversaries: bool) -> dict:
    miners = [{"name": f"honest{i + 1}", "role": "miner"} for i in range(honest)]
    if adversaries:
        miners += [{"name": name, "role": "miner", "behaviour": behaviour} for name, behaviour in ADVERSARIES.items()]
    # The first validator holds the most stake: it leads; the others follow and vote.
    vals = [{"name": f"validator{i + 1}", "role": "validator", "stake": 300 if i == 0 else 100}
            for i in range(validators)]
    balances = {"owner": 1000, **{v["name"]: 1000 for v in vals}, **{m["name"]: 100 for m in miners}}
    return {
        "chain": {"block_time": block_time, "balances": balances, "subnets": [{
            "netuid": 1, "owner": "owner", "pool_tao": 100, "pool_alpha": 100, "tempo": 20, "burn": 1,
            "max_uids": 64, "max_validators": 16, "activity_cutoff": 100}]},
        "neurons": vals + miners,
    }


def run_network(name: str, document: dict, args, data: Path) -> dict:
    """`subnet up` on the document; its summary.json (also after a stop on the time budget)."""
    run_dir = args.root / name
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    neurons = run_dir.parent / f"{name}.yaml"
    neurons.write_text(yaml.safe_dump(document, sort_keys=False))
    argv = [sys.executable, "-m", "subnet.cli", "up", str(neurons), "--windows", str(args.windows), "--run-dir",
            str(run_dir), "--preset", args.preset, "--data", str(data), "--no-dashboard"]
    budget = START_UP_BUDGET_S + SECONDS_PER_WINDOW_BUDGET * args.windows
    started = time.monotonic()
    print(f"{name}: {len(document['neurons'])} neurons, {args.windows} windows (log {run_dir.parent / (name + '-up.log')})",
          flush=True)
    with open(run_dir.parent / f"{name}-up.log", "w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        try:
            proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            print(f"{name}: over the {budget} s budget; stopping it", flush=True)
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=120)
    summary_path = run_dir / "summary.json"
    if proc.returncode != 0 or not summary_path.is_file():
        tail = (run_dir.parent / f"{name}-up.log").read_text(errors="replace").strip().splitlines()[-5:]
        raise SystemExit(f"{PROG}: {name}: subnet up exited {proc.returncode}: {' | '.join(tail)}")
    summary = json.loads(summary_path.read_text())
    print(f"{name}: {len(summary['windows'])} trained windows in {time.monotonic() - started:.0f} s", flush=True)
    return summary


def figures(summary: dict, behaviours: dict[str, str], windows: int) -> tuple[dict, float | None]:
    """(miners' behaviour / share / alpha, held-out loss after the `windows`-th trained window)."""
    earned = {name: int(miner["alpha_stake"] or 0) for name, miner in summary["miners"].items()}
    total = sum(earned.values())
    miners = {name: {"behaviour": behaviours[name], "incentive_share": earned[name] / total if total else 0.0,
                     "alpha_earned": earned[name]} for name in earned}
    losses = [row["held_out_loss"] for row in summary["windows"]]
    loss = losses[min(windows, len(losses)) - 1] if losses else None
    return miners, loss


def behaviour_label(entry: dict) -> str:
    behaviour = entry.get("behaviour")
    return "honest" if behaviour is None else behaviour["kind"]


def report(out: dict) -> str:
    miners = out["miners"]
    honest = {n: m for n, m in miners.items() if m["behaviour"] == "honest"}
    sybil = {n: m for n, m in miners.items() if m["behaviour"] == "sybil"}
    rest = {n: m for n, m in miners.items() if m["behaviour"] not in ("honest", "sybil")}
    lines = [f"{'miner':<12} {'behaviour':<11} {'share':>7} {'alpha':>10}"]
    for name, m in sorted(miners.items(), key=lambda nm: -nm[1]["alpha_earned"]):
        lines.append(f"{name:<12} {m['behaviour']:<11} {m['incentive_share']:7.3f} {m['alpha_earned'] / 1e9:10.4f}")
    outside_sybil = 1.0 - sum(m["incentive_share"] for m in sybil.values())
    honest_share = sum(m["incentive_share"] for m in honest.values())
    worst_honest = min((m["alpha_earned"] for m in honest.values()), default=0)
    best_honest = max((m["alpha_earned"] for m in honest.values()), default=0)
    lines.append(f"honest share of the incentive not paid to the sybil pair: "
                 f"{honest_share / outside_sybil if outside_sybil else 0.0:.3f} (target >= 0.90)")
    beaten = [n for n, m in rest.items() if m["alpha_earned"] >= worst_honest]
    lines.append(f"adversaries earning at least the worst honest miner: {', '.join(beaten) or 'none'}")
    if sybil:
        pair = sum(m["alpha_earned"] for m in sybil.values())
        lines.append(f"sybil pair earned {pair / 1e9:.4f} alpha, best honest {best_honest / 1e9:.4f} (target: pair <= best)")
    a, b = out["loss_with_adversaries"], out["loss_honest_only"]
    if a is not None and b is not None:
        lines.append(f"held-out loss after {out['windows']} windows: {a:.4f} with adversaries, {b:.4f} honest only "
                     f"({(a / b - 1) * 100:+.2f}%, target within 5%)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=20, help="trained windows per network (default 20)")
    parser.add_argument("--honest", type=int, default=4, help="honest miners (default 4)")
    parser.add_argument("--validators", type=int, default=2, help="validators (default 2)")
    parser.add_argument("--block-time", type=float, default=2.0,
                        help="seconds per block (default 2.0: 16 processes share this machine's cores)")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--root", type=Path, help="run directories (default: a temporary directory)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.windows < 1 or args.honest < 2 or args.validators < 1 or not args.block_time > 0:
        parser.error("need --windows >= 1, --honest >= 2 (the copier's victim is honest1), --validators >= 1, "
                     "--block-time > 0")
    from subnet.config import load_preset
    from subnet.node.settings import default_dataset

    temporary = args.root is None
    args.root = Path(tempfile.mkdtemp(prefix="fairness-")) if temporary else args.root.resolve()
    data = default_dataset(load_preset(args.preset).model.vocab_size).resolve()
    try:
        with_adv = network_file(args.honest, args.validators, args.block_time, adversaries=True)
        honest_only = network_file(args.honest, args.validators, args.block_time, adversaries=False)
        labels = {e["name"]: behaviour_label(e) for e in with_adv["neurons"] if e["role"] == "miner"}
        summary = run_network("with-adversaries", with_adv, args, data)
        miners, loss_with = figures(summary, labels, args.windows)
        _, loss_honest = figures(run_network("honest-only", honest_only, args, data), labels, args.windows)
    finally:
        if temporary:
            shutil.rmtree(args.root, ignore_errors=True)
    out = {"windows": args.windows, "miners": miners, "loss_with_adversaries": loss_with,
           "loss_honest_only": loss_honest}
    print(report(out))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
