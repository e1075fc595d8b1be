"""Training parity: the compressed protocol against the best dense DiLoCo at equal rounds, over seeds.

    python bench/parity.py --preset tiny|small [--rounds 30,60] [--seeds 3] [--miners 4]
                           [--dense K=V,...]... [--compressed K=V,...]... [--jobs 2]
                           [--json OUT] [--plot OUT.png] [--cache FILE]

Every run is `subnet.trainsim.run_train_sim` (the protocol's own path for the compressed side: error
feedback, codec, signed gradient, wire checks, the sparse outer step) on the preset with some knobs
changed. Both sides see the same data, the same tokens per miner and the same seeds: seed s uses
`preset.seed + s` for the model's initialisation and every miner's sample assignment. One run per
(setting, seed) goes to the longest `--rounds` and is evaluated on the held-out set at each listed
round, so the 30- and 60-round figures come from the same runs.

The dense side is DiLoCo's outer Nesterov SGD over its grid (outer lr x momentum, default
{0.5, 0.7, 1.0} x {0, 0.5, 0.9}); "best dense" is the lowest mean at each listed round. The compressed
side is the list of settings below (the search that chose the presets' defaults) or the
`--compressed` settings given. Knobs (flat names):

    dense       outer_lr momentum inner_lr inner_steps batch_size weight_decay
    compressed  outer_lr ef_decay topk tile value_bits use_dct inner_lr inner_steps batch_size
                weight_decay

Finished runs are kept in `--cache` (JSON lines keyed by every preset section the side's run reads,
the seed, the side and the rounds), so an interrupted sweep resumes where it stopped and a changed
default never reuses a stale figure. Figures are printed, never asserted. A tiny run takes ~35 s
with two side by side, a small one ~10 min.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROG = "parity.py"
DENSE, COMPRESSED = "dense", "compressed"

# knob -> (section, field) of the preset, per side
SHARED_KNOBS = {"inner_lr": ("train", "lr"), "inner_steps": ("train", "inner_steps"),
                "batch_size": ("train", "batch_size"), "weight_decay": ("train", "weight_decay")}
KNOBS = {
    DENSE: {"outer_lr": ("baseline", "diloco_lr"), "momentum": ("baseline", "diloco_momentum"), **SHARED_KNOBS},
    COMPRESSED: {"outer_lr": ("outer", "lr"), "ef_decay": ("compression", "ef_decay"),
                 "topk": ("compression", "topk"), "tile": ("compression", "tile"),
                 "value_bits": ("compression", "value_bits"), "use_dct": ("compression", "use_dct"),
                 **SHARED_KNOBS},
}
DENSE_GRID = [{"outer_lr": lr, "momentum": mu} for lr in (0.5, 0.7, 1.0) for mu in (0.0, 0.5, 0.9)]
# The compressed search on tiny, coarse to fine (docs/results.md, "Training parity"): the preset's own
# setting first, then one knob at a time around it.
# The search on tiny, coarse to fine (docs/results.md, "Training parity"): one knob at a time around
# the earlier default, 64 of 64x64 tiles (`WAS`), with Templar's and the SparseLoCo paper's values among
# them; its best, 16 of 32x32, is the presets' default now (and so the entry `{}`). Small runs the two
# defaults only: a run there costs ~25x a tiny one on the 2-core box.
WAS = {"tile": 64, "topk": 64}
COMPRESSED_SEARCH = {
    "tiny": [{}, WAS,
             {**WAS, "ef_decay": 0.85}, {**WAS, "ef_decay": 0.95},                # Templar: 0.95
             {"tile": 64, "topk": 128}, {"tile": 128, "topk": 256},
             {**WAS, "value_bits": 8}, {"tile": 64, "topk": 72, "value_bits": 1},  # 1 bit buys 12% more k
             {**WAS, "use_dct": True},                                           # DeMo's transform
             {**WAS, "outer_lr": 0.7}, {**WAS, "outer_lr": 1.5},
             {**WAS, "inner_lr": 0.005}, {**WAS, "inner_lr": 0.008}, {**WAS, "inner_lr": 0.012},
             {**WAS, "weight_decay": 0.0},
             {**WAS, "inner_steps": 5, "batch_size": 16}, {**WAS, "inner_steps": 20, "batch_size": 4}],  # same tokens
    "small": [{}, WAS],
}


@dataclass(frozen=True)
class Trial:
    side: str
    overrides: tuple[tuple[str, object], ...]   # knob -> value, sorted

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.overrides) or "preset"


def parse_setting(text: str, side: str) -> dict:
    """'k=v,k=v' -> {k: v} with numbers and booleans read as such; unknown knobs are refused."""
    out: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not value.strip():
            raise ValueError(f"{side} setting '{text}': '{part}' is not KEY=VALUE")
        if key not in KNOBS[side]:
            raise ValueError(f"{side} setting '{text}': unknown knob '{key}' (known: {', '.join(sorted(KNOBS[side]))})")
        value = value.strip()
        if value.lower() in ("true", "false"):
            out[key] = value.lower() == "true"
        else:
            try:
                out[key] = int(value)
            except ValueError:
                try:
                    out[key] = float(value)
                except ValueError:
                    raise ValueError(f"{side} setting '{text}': {key}={value} is not a number") from None
    return out


def with_settings(preset, side: str, overrides: dict, seed_offset: int = 0):
    """The preset with the side's knobs set (and its seed moved by `seed_offset`); a bad knob or an
    impossible value is a ConfigError naming it."""
    from subnet.config import ConfigError

    sections: dict[str, dict] = {}
    for key, value in overrides.items():
        if key not in KNOBS[side]:
            raise ConfigError(f"{side}: unknown knob '{key}' (known: {', '.join(sorted(KNOBS[side]))})")
        section, name = KNOBS[side][key]
        current = getattr(getattr(preset, section), name)
        if isinstance(current, bool) != isinstance(value, bool) or (isinstance(current, int) and isinstance(value, float)):
            raise ConfigError(f"{side}: {key}={value!r} must be {type(current).__name__}")
        sections.setdefault(section, {})[name] = type(current)(value)
    changed = {section: dataclasses.replace(getattr(preset, section), **fields) for section, fields in sections.items()}
    for section, config in changed.items():
        for key, message in config.problems():
            raise ConfigError(f"{side}: {section}.{key}: {message}")
    return dataclasses.replace(preset, seed=preset.seed + seed_offset, **changed)


def knob_values(preset, side: str) -> dict:
    """Every knob of the side as the (resolved) preset has it: the flat `settings` of the report."""
    return {key: getattr(getattr(preset, section), name) for key, (section, name) in KNOBS[side].items()}


# What each side's run reads of the preset: the cache key covers exactly these, so a change elsewhere
# (the other side's defaults, the protocol's timing) keeps finished runs valid.
SECTIONS_READ = {DENSE: ("model", "train", "baseline"), COMPRESSED: ("model", "train", "compression", "outer")}


def run_key(resolved, side: str, rounds: int, eval_every: int, miners: int) -> str:
    read = {name: dataclasses.asdict(getattr(resolved, name)) for name in SECTIONS_READ[side]}
    blob = json.dumps([read, resolved.seed, side, rounds, eval_every, miners], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_one(preset_name: str, side: str, overrides: dict, seed: int, rounds: int, eval_every: int,
            miners: int, tag: str = "") -> dict:
    """One (setting, seed) run: held-out loss at every `eval_every` rounds, the compression ratio."""
    from subnet.config import load_preset
    from subnet.data import TokenDataset
    from subnet.node.settings import default_dataset
    from subnet.trainsim import run_train_sim

    preset = with_settings(load_preset(preset_name), side, overrides, seed)
    data = default_dataset(preset.model.vocab_size)
    train = TokenDataset(data, "train", preset.model.seq_len)
    val = TokenDataset(data, "val", preset.model.seq_len)
    started = time.perf_counter()
    step = max(1, rounds // 6)

    def progress(run: str, done: int, total: int, loss: float | None) -> None:
        if tag and done % step == 0 and done < total:   # a small-preset run takes minutes: show it moving
            print(f"  ... {tag}: round {done}/{total} ({time.perf_counter() - started:.0f} s)", flush=True)

    result = run_train_sim(preset, train, val, miners, rounds, eval_every=eval_every, progress=progress,
                           runs=("compressed",) if side == COMPRESSED else ("diloco",))
    run = result.runs["compressed" if side == COMPRESSED else "diloco"]
    return {"losses": {str(r): loss for r, loss in run.curve},
            "compression_ratio": result.compression_ratio if side == COMPRESSED else 1.0,
            "seconds": round(time.perf_counter() - started, 1)}


def summarise(losses: list[float]) -> dict:
    return {"eval_loss_mean": statistics.fmean(losses),
            "eval_loss_std": statistics.stdev(losses) if len(losses) > 1 else 0.0}


def build_report(preset_name: str, rounds: list[int], seeds: int, miners: int,
                 trials: list[Trial], results: dict[Trial, list[dict]], settings: dict[Trial, dict]) -> dict:
    """The JSON report. `eval_loss_mean/std` are at the last listed round; `by_rounds` has each."""
    def entry(trial: Trial) -> dict:
        runs = results[trial]
        by_rounds = {str(r): summarise([run["losses"][str(r)] for run in runs]) for r in rounds}
        out = {"settings": settings[trial], **by_rounds[str(rounds[-1])], "by_rounds": by_rounds,
               "label": trial.label}
        if trial.side == COMPRESSED:
            out = {"settings": settings[trial],
                   "compression_ratio": statistics.fmean(run["compression_ratio"] for run in runs), **out}
        return out

    dense = [entry(t) for t in trials if t.side == DENSE]
    compressed = [entry(t) for t in trials if t.side == COMPRESSED]
    best_by_rounds = {}
    for r in rounds:
        best = min(dense, key=lambda e: e["by_rounds"][str(r)]["eval_loss_mean"]) if dense else None
        if best:
            best_by_rounds[str(r)] = {"settings": best["settings"], **best["by_rounds"][str(r)]}
    for item in compressed:
        item["vs_best_dense"] = {r: item["by_rounds"][r]["eval_loss_mean"] / best["eval_loss_mean"] - 1
                                 for r, best in best_by_rounds.items()}
    return {"preset": preset_name, "rounds": rounds, "seeds": seeds, "miners": miners,
            "best_dense": best_by_rounds.get(str(rounds[-1]), {"settings": {}, "eval_loss_mean": math.nan,
                                                               "eval_loss_std": math.nan}),
            "best_dense_by_rounds": best_by_rounds, "dense": dense, "compressed": compressed}


def print_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    rounds = [str(r) for r in report["rounds"]]
    table = Table(title=f"{report['preset']}: held-out loss, mean ± std over {report['seeds']} seeds, "
                        f"{report['miners']} miners")
    table.add_column("side")
    table.add_column("setting")
    table.add_column("ratio", justify="right")
    for r in rounds:
        table.add_column(f"{r} rounds", justify="right")
        table.add_column(f"vs best dense @{r}", justify="right")
    best = report["best_dense_by_rounds"]
    for side in (DENSE, COMPRESSED):
        for item in report[side]:
            cells = []
            for r in rounds:
                stats = item["by_rounds"][r]
                cells.append(f"{stats['eval_loss_mean']:.4f} ± {stats['eval_loss_std']:.4f}")
                rel = stats["eval_loss_mean"] / best[r]["eval_loss_mean"] - 1 if r in best else math.nan
                cells.append(f"{rel * 100:+.2f}%")
            ratio = f"{item['compression_ratio']:.1f}x" if side == COMPRESSED else "1x"
            table.add_row(side, item["label"], ratio, *cells)
    Console(width=150).print(table)


def plot(report: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rounds = [str(r) for r in report["rounds"]]
    fig, axes = plt.subplots(1, len(rounds), figsize=(6 * len(rounds), 4.5), squeeze=False)
    for ax, r in zip(axes[0], rounds):
        items = report["compressed"]
        xs = [item["compression_ratio"] for item in items]
        ys = [item["by_rounds"][r]["eval_loss_mean"] for item in items]
        errs = [item["by_rounds"][r]["eval_loss_std"] for item in items]
        ax.errorbar(xs, ys, yerr=errs, fmt="o", capsize=3, label="compressed settings")
        # Most settings sit at the same ratio: name the best, the worst and those off the cluster, so
        # labels stay readable; the table and JSON name every point.
        order = sorted(range(len(items)), key=ys.__getitem__)
        named = set(order[:2] + order[-2:]) | {i for i, x in enumerate(xs) if abs(x / xs[order[0]] - 1) > 0.1}
        for i in sorted(named):
            ax.annotate(items[i]["label"], (xs[i], ys[i]), fontsize=7, xytext=(4, -3), textcoords="offset points")
        best = report["best_dense_by_rounds"].get(r)
        if best:
            ax.axhline(best["eval_loss_mean"], color="C3", linestyle="--",
                       label=f"best dense ({best['settings']['outer_lr']}/{best['settings']['momentum']}): "
                             f"{best['eval_loss_mean']:.4f}")
            ax.axhspan(best["eval_loss_mean"] - best["eval_loss_std"], best["eval_loss_mean"] + best["eval_loss_std"],
                       color="C3", alpha=0.12)
        ax.set_xscale("log")
        low, high = min(xs) / 1.3, max(xs) * 1.3
        ax.set_xlim(low, high)
        ax.set_xticks([t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if low <= t <= high])
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("compression ratio vs dense fp32")
        ax.set_ylabel("held-out loss")
        ax.set_title(f"{report['preset']}, {r} rounds, {report['seeds']} seeds")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


class RunCache:
    """Finished runs as JSON lines; appended one line per run so a killed sweep loses at most one run."""

    def __init__(self, path: Path | None):
        self.path, self.runs = path, {}
        if path and path.is_file():
            text = path.read_text()
            if text and not text.endswith("\n"):     # a torn last line: drop it so appends start clean
                text = text[:text.rfind("\n") + 1]
                path.write_text(text)
            for line in text.splitlines():
                try:
                    record = json.loads(line)
                    self.runs[record["key"]] = record["result"]
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line from a killed run: that run is simply redone

    def get(self, key: str) -> dict | None:
        return self.runs.get(key)

    def put(self, key: str, result: dict) -> None:
        self.runs[key] = result
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write(json.dumps({"key": key, "result": result}) + "\n")


def run_trials(preset_name: str, trials: list[Trial], rounds: list[int], seeds: int, miners: int,
               jobs: int, cache: RunCache, say) -> tuple[dict, dict]:
    from subnet.config import load_preset

    preset = load_preset(preset_name)
    eval_every = math.gcd(*rounds)
    longest = rounds[-1]
    settings, results, pending = {}, {t: [None] * seeds for t in trials}, []
    for trial in trials:
        overrides = dict(trial.overrides)
        settings[trial] = knob_values(with_settings(preset, trial.side, overrides), trial.side)
        for seed in range(seeds):
            key = run_key(with_settings(preset, trial.side, overrides, seed), trial.side, longest, eval_every, miners)
            cached = cache.get(key)
            if cached is not None:
                results[trial][seed] = cached
            else:
                pending.append((trial, seed, key))
    say(f"{len(trials)} settings x {seeds} seeds: {len(pending)} runs to do "
        f"({sum(len(v) for v in results.values()) - len(pending)} cached), {jobs} at a time")
    if pending:
        started = time.perf_counter()
        with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                                 initargs=(max(1, 2 // jobs),)) as pool:
            futures = {pool.submit(run_one, preset_name, t.side, dict(t.overrides), seed, longest, eval_every,
                                   miners, f"{t.side} {t.label} seed {seed}"): (t, seed, key)
                       for t, seed, key in pending}
            from concurrent.futures import as_completed

            for done, future in enumerate(as_completed(futures), 1):
                trial, seed, key = futures[future]
                result = future.result()
                cache.put(key, result)
                results[trial][seed] = result
                losses = ", ".join(f"{r}: {result['losses'][str(r)]:.4f}" for r in rounds)
                elapsed = time.perf_counter() - started
                say(f"[{done}/{len(pending)}] {trial.side} {trial.label} seed {seed}: {losses} "
                    f"({result['seconds']:.0f} s; ~{elapsed / done * (len(pending) - done) / 60:.0f} min left)")
    return results, settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--preset", default="tiny", help="tiny or small (or a preset file)")
    parser.add_argument("--rounds", default="30,60", help="rounds at which to compare, comma-separated (default 30,60)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per setting (default 3)")
    parser.add_argument("--miners", type=int, default=4, help="miners per round (default 4)")
    parser.add_argument("--dense", action="append", metavar="K=V,...",
                        help="a dense setting (repeatable; default the 3x3 grid of outer_lr x momentum)")
    parser.add_argument("--compressed", action="append", metavar="K=V,...",
                        help="a compressed setting (repeatable; default the preset's search list; '' = the preset)")
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side (default 2, one torch thread each)")
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--plot", type=Path, help="write a PNG of held-out loss against compression ratio")
    parser.add_argument("--cache", default=str(ROOT / "data" / "parity-cache.jsonl"),
                        help="finished runs (default data/parity-cache.jsonl); --cache '' keeps none")
    args = parser.parse_args(argv)
    from subnet.config import ConfigError, load_preset

    try:
        rounds = sorted({int(r) for r in args.rounds.split(",") if r.strip()})
        if not rounds or rounds[0] < 1:
            raise ValueError
    except ValueError:
        parser.error(f"--rounds {args.rounds!r}: expected positive integers, e.g. 30,60")
    if args.seeds < 1 or args.miners < 1 or args.jobs < 1:
        parser.error("--seeds, --miners and --jobs must be >= 1")
    try:
        preset = load_preset(args.preset)
        dense = [parse_setting(s, DENSE) for s in args.dense] if args.dense else DENSE_GRID
        compressed = ([parse_setting(s, COMPRESSED) for s in args.compressed] if args.compressed
                      else COMPRESSED_SEARCH.get(preset.name, [{}]))
        trials = ([Trial(DENSE, tuple(sorted(s.items()))) for s in dense]
                  + [Trial(COMPRESSED, tuple(sorted(s.items()))) for s in compressed])
        trials = list(dict.fromkeys(trials))
        for trial in trials:
            with_settings(preset, trial.side, dict(trial.overrides))   # refuse a bad value before any run
    except (ValueError, ConfigError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    cache = RunCache(Path(args.cache) if args.cache else None)
    results, settings = run_trials(args.preset, trials, rounds, args.seeds, args.miners, args.jobs, cache,
                                   lambda line: print(line, flush=True))
    report = build_report(preset.name, rounds, args.seeds, args.miners, trials, results, settings)
    print_table(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.plot:
        plot(report, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
