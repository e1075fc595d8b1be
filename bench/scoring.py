"""What the validator's tests see: honest miners' index overlap and how a stale or new miner scores
against the window's median (printed, never asserted). The figures behind `copy_overlap_threshold`,
`copy_grace_windows`, `par_ratio` and `par_warmup_evaluations` (docs/neurons.md).

    python bench/scoring.py --preset tiny --windows 20 [--honest 3] [--lag 2] [--join 6] [--json OUT]

In one process, with the protocol's own functions: `--honest` miners train from the current model;
one stale miner trains from the model of `--lag` versions ago (declaring the current one); one
newcomer joins at window `--join` with a fresh optimizer and error feedback; one lazy miner trains
on random samples instead of its assigned ones (what proof of training must catch). Every upload is signed
and checked as a validator checks it, then evaluated as `validator/evaluate.py` does (own samples and
one shared random batch, the preset's eval settings). The next model is the honest miners'
aggregate, so the run follows what an honest network would hold.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROG = "scoring.py"


def run(preset_name: str, windows: int, honest: int, lag: int, join: int, seed: int, threads: int, say) -> dict:
    import torch

    from subnet.compression.spec import CodecSpec
    from subnet.config import load_preset
    from subnet.data import TokenDataset
    from subnet.keys import Keypair
    from subnet.model import model_hash
    from subnet.node.settings import default_dataset
    from subnet.protocol.window import aggregate_result, compress_update, inner_first_step, inner_phase
    from subnet.sampler import assigned_samples, eval_subset
    from subnet.trainsim import Worker
    from subnet.wire.gradient import GradientExpectation, decode_gradient, encode_gradient
    from validator.copies import overlap_matrix
    from validator.evaluate import Evaluator
    from validator.gauntlet import relative_improvement

    torch.set_num_threads(threads)
    preset = load_preset(preset_name)
    p = preset.protocol
    train = TokenDataset(default_dataset(preset.model.vocab_size), "train", preset.model.seq_len)
    kinds = ["honest"] * honest + ["stale", "newcomer", "lazy"]
    workers = [Worker(preset) for _ in kinds]
    theta = workers[0].params()
    spec = CodecSpec({n: tuple(t.shape) for n, t in theta.items()}, preset.compression)
    keys = [Keypair.from_seed(bytes([uid + 1]) * 32) for uid in range(len(kinds))]
    errors = [{n: torch.zeros_like(t) for n, t in theta.items()} for _ in kinds]
    versions = [theta]                      # every model so far: version v is versions[v]
    scratch = Worker(preset).model
    rng = np.random.default_rng(seed)
    rows = []
    for w in range(windows):
        started = time.perf_counter()
        base = model_hash(theta)
        gradients = {}
        for uid, kind in enumerate(kinds):
            if kind == "newcomer" and w < join:
                continue
            start = versions[max(0, len(versions) - 1 - lag)] if kind == "stale" else theta
            ids = (rng.choice(train.num_samples, preset.samples_per_window, replace=False).tolist() if kind == "lazy"
                   else assigned_samples(preset.seed, w, uid, preset.samples_per_window, train.num_samples))
            result = inner_phase(workers[uid].model, workers[uid].optimizer, start,
                                 train.batches(ids, preset.train.batch_size), preset.train,
                                 inner_first_step(w, preset.train))
            errors[uid], packet = compress_update(errors[uid], result.pseudo_gradient, preset.compression)
            wire = encode_gradient(packet, keys[uid], w, uid, base)
            gradients[uid] = decode_gradient(wire, spec, GradientExpectation(
                window=w, uid=uid, hotkey=keys[uid].address, base_model_hash=base, norm_bound=math.inf))
        norms = sorted(g.norm for g in gradients.values())
        evaluator = Evaluator(scratch, theta, preset.outer.lr * p.eval_lr_scale, norms[(len(norms) - 1) // 2])
        random_batch = train.batch([int(i) for i in rng.choice(train.num_samples, p.random_eval_samples, replace=False)])
        random_before = evaluator.before(random_batch)
        scores, proofs = {}, {}
        for uid, gradient in gradients.items():
            assigned = assigned_samples(preset.seed, w, uid, preset.samples_per_window, train.num_samples)
            own = train.batch([int(i) for i in eval_subset(assigned, p.own_eval_samples, int(rng.integers(1 << 62)))])
            own_before, own_after, _, random_after = evaluator.evaluate(gradient, own, random_batch, random_before)
            scores[uid] = relative_improvement(random_before, random_after)
            # Proof of training: the update helps its own assigned samples more than random ones.
            proofs[uid] = relative_improvement(own_before, own_after) > scores[uid]
        median = statistics.median(scores.values())
        honest_uids = [uid for uid, kind in enumerate(kinds) if kind == "honest"]
        overlaps = overlap_matrix([gradients[uid] for uid in honest_uids])
        pairs = [overlaps[i, j] for i in range(len(honest_uids)) for j in range(i + 1, len(honest_uids))]
        ratio = {uid: (scores[uid] / median if median > 0 else None) for uid in scores}
        row = {"window": w, "median_score": median,
               "honest": [ratio[uid] for uid in honest_uids], "stale": ratio[honest],
               "newcomer": ratio.get(honest + 1), "lazy": ratio[honest + 2],
               "proof": {"honest": [proofs[uid] for uid in honest_uids], "lazy": proofs[honest + 2]},
               "honest_overlap_max": max(pairs) if pairs else None,
               "honest_overlap_mean": float(np.mean(pairs)) if pairs else None}
        rows.append(row)
        theta = aggregate_result(theta, [gradients[uid] for uid in honest_uids], preset.outer.lr)
        versions.append(theta)
        say(format_row(row) + f"  ({time.perf_counter() - started:.1f} s)")
    return {"preset": preset_name, "honest": honest, "lag": lag, "join": join, "par_ratio": p.par_ratio,
            "windows": rows, "summary": summarise(rows, p.par_ratio, join)}


def _fmt(x: float | None) -> str:
    return "   -" if x is None else f"{x:4.2f}"


def format_row(row: dict) -> str:
    honest = " ".join(_fmt(r) for r in row["honest"])
    return (f"window {row['window']:3d} median {row['median_score']:+.4f} | honest {honest} | stale "
            f"{_fmt(row['stale'])} | newcomer {_fmt(row['newcomer'])} | lazy {_fmt(row['lazy'])} | proof "
            f"{''.join('+' if x else '.' for x in row['proof']['honest'])}/{'+' if row['proof']['lazy'] else '.'} | overlap max "
            f"{_fmt(row['honest_overlap_max'])} mean {_fmt(row['honest_overlap_mean'])}")


def summarise(rows: list[dict], par_ratio: float, join: int) -> dict:
    judged = [r for r in rows if r["median_score"] > 0]

    def below(values: list[float | None]) -> float | None:
        values = [v for v in values if v is not None]
        return sum(v < par_ratio for v in values) / len(values) if values else None

    newcomer = [r["newcomer"] for r in judged if r["newcomer"] is not None]
    reached = next((i for i, v in enumerate(newcomer) if v >= par_ratio), None)
    return {
        "honest_below_par": below([v for r in judged for v in r["honest"]]),
        "stale_below_par": below([r["stale"] for r in judged]),
        "stale_ratio_median": statistics.median(r["stale"] for r in judged) if judged else None,
        "newcomer_windows_to_par": None if reached is None else reached + 1,
        "honest_proof_rate": float(np.mean([x for r in rows for x in r["proof"]["honest"]])),
        "lazy_proof_rate": float(np.mean([r["proof"]["lazy"] for r in rows])),
        "lazy_ratio_median": statistics.median(r["lazy"] for r in judged) if judged else None,
        "honest_overlap_max": max(r["honest_overlap_max"] for r in rows if r["honest_overlap_max"] is not None),
        "honest_overlap_max_after_window_3": max((r["honest_overlap_max"] for r in rows[3:]
                                                  if r["honest_overlap_max"] is not None), default=None),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--windows", type=int, default=20)
    parser.add_argument("--honest", type=int, default=3, help="honest miners (>= 2, for overlaps)")
    parser.add_argument("--lag", type=int, default=2, help="versions the stale miner lags (>= 1)")
    parser.add_argument("--join", type=int, default=6, help="window the newcomer joins in")
    parser.add_argument("--seed", type=int, default=0, help="the evaluation batches' randomness")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.windows < 1 or args.honest < 2 or args.lag < 1 or args.join < 0 or args.threads < 1:
        parser.error("need --windows >= 1, --honest >= 2, --lag >= 1, --join >= 0, --threads >= 1")
    from subnet.config import ConfigError
    try:
        report = run(args.preset, args.windows, args.honest, args.lag, args.join, args.seed, args.threads,
                     lambda line: print(line, flush=True))
    except (ConfigError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report["summary"], indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
