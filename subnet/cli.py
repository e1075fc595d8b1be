"""`subnet`: the Tessera command line (data preparation, training simulation, wallets, ...)."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from subnet.chain.cli import add_chain_commands
from subnet.config import ConfigError, load_preset
from subnet.storage.cli import add_storage_commands
from subnet.wallet import add_wallet_commands

DEFAULT_DATA_ROOT = Path("data")


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description:<22}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TextColumn("{task.fields[note]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, transient=False)


def prepare_with_progress(out: Path, corpus: Path | None, vocab_size: int, shard_tokens: int,
                          console: Console):
    from subnet.data import prepare_dataset

    with _progress(console) as bar:
        tasks = {"tokenizer": bar.add_task("training tokenizer", total=1, note=f"vocab {vocab_size}"),
                 "encode": bar.add_task("tokenizing documents", total=None, note="")}

        def on_progress(stage: str, done: int, total: int) -> None:
            bar.update(tasks[stage], completed=done, total=total)

        return prepare_dataset(out, corpus=corpus, vocab_size=vocab_size, shard_tokens=shard_tokens,
                               progress=on_progress)


def cmd_data_prepare(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    vocab = args.vocab_size or load_preset(args.preset).model.vocab_size
    report = prepare_with_progress(args.out, args.corpus, vocab, args.shard_tokens, console)
    console.print(f"[green]prepared[/green] {report.out_dir}: {report.documents} documents, vocab "
                  f"{report.vocab_size}, {report.train_tokens:,} train tokens, {report.val_tokens:,} "
                  f"held-out tokens in {report.shards} shards (manifest.json, tokenizer.json)")
    return 0


def _dataset_for(preset, data_dir: Path | None, console: Console) -> Path:
    """The given dataset dir, or the default corpus prepared once for this vocabulary size."""
    if data_dir is not None:
        return data_dir
    default = DEFAULT_DATA_ROOT / f"default-v{preset.model.vocab_size}"
    if not (default / "manifest.json").is_file():
        console.print(f"preparing the default corpus into {default} (once)")
        prepare_with_progress(default, None, preset.model.vocab_size, 1 << 20, console)
    return default


def cmd_train_sim(args: argparse.Namespace) -> int:
    from subnet.data import TokenDataset
    from subnet.trainsim import RUN_NAMES, run_train_sim

    console = Console(stderr=True)
    preset = load_preset(args.preset)
    if args.diloco_lr is not None or args.diloco_momentum is not None:
        outer = preset.outer
        outer = replace(outer, diloco_lr=outer.diloco_lr if args.diloco_lr is None else args.diloco_lr,
                        diloco_momentum=outer.diloco_momentum if args.diloco_momentum is None
                        else args.diloco_momentum)
        for key, message in outer.problems():
            raise ConfigError(f"--{key.replace('_', '-')}: {message}")
        preset = replace(preset, outer=outer)
    data_dir = _dataset_for(preset, args.data, console)
    train = TokenDataset(data_dir, "train", preset.model.seq_len)
    val = TokenDataset(data_dir, "val", preset.model.seq_len)
    runs = tuple(args.runs.split(",")) if args.runs else RUN_NAMES
    console.print(f"train-sim: preset [bold]{preset.name}[/bold], {args.miners} miners, {args.rounds} rounds "
                  f"of H={preset.train.inner_steps} inner steps, batch {preset.train.batch_size} x "
                  f"{preset.model.seq_len} tokens")
    with _progress(console) as bar:
        tasks = {name: bar.add_task(name, total=args.rounds, note="") for name in runs}

        def on_progress(run: str, done: int, total: int, loss: float | None) -> None:
            bar.update(tasks[run], completed=done, **({"note": f"held-out loss {loss:.4f}"} if loss else {}))

        result = run_train_sim(preset, train, val, args.miners, args.rounds, eval_samples=args.eval_samples,
                               progress=on_progress, runs=runs)

    table = Table(title=f"held-out loss after {args.rounds} rounds ({result.parameters:,} parameters, "
                        f"start {result.initial_eval_loss:.4f})")
    table.add_column("run")
    table.add_column("eval loss", justify="right")
    table.add_column("vs compressed", justify="right")
    table.add_column("bytes per miner per round", justify="right")
    reference = result.runs.get("compressed")
    for name, run in result.runs.items():
        rel = f"{(run.eval_loss / reference.eval_loss - 1) * 100:+.2f}%" if reference else "-"
        sent = f"{run.bytes_per_round:,}" if run.bytes_per_round else "- (no communication)"
        table.add_row(name, f"{run.eval_loss:.4f}", rel, sent)
    out = Console()
    out.print(table)
    if reference:
        out.print(f"compression ratio vs dense fp32: {result.compression_ratio:.1f}x; index bits per kept "
                  f"value {result.index_bits_per_value:.3f} (floor log2 C(n,k)/k = {result.index_bits_floor:.3f}, "
                  f"+{(result.index_bits_per_value / result.index_bits_floor - 1) * 100:.1f}%)")
    if args.json:
        args.json.write_text(json.dumps(result.to_json(), indent=1))
        out.print(f"wrote {args.json}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="subnet", description="Tessera: incentivised decentralised LLM training.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="prepare training data").add_subparsers(dest="data_command",
                                                                                   required=True, metavar="ACTION")
    prep = data.add_parser("prepare", help="train a byte-level BPE tokenizer and write token shards + manifest",
                           description="Train a byte-level BPE tokenizer on a corpus and write uint16 token "
                                       "shards, tokenizer.json and manifest.json (sha256 per shard).")
    prep.add_argument("--corpus", type=Path, help="text file (documents split at form feeds) or a directory of "
                                                  ".txt/.xz files; default: the bundled public-domain corpus")
    prep.add_argument("--out", type=Path, required=True, help="output directory")
    prep.add_argument("--vocab-size", type=int, help="tokenizer vocabulary (default: the preset's)")
    prep.add_argument("--preset", default="small", help="preset whose vocab_size to use (default: small)")
    prep.add_argument("--shard-tokens", type=int, default=1 << 20, help="tokens per shard (default 1048576)")
    prep.set_defaults(func=cmd_data_prepare)

    sim = commands.add_parser("train-sim", help="compare the compressed protocol with DiLoCo and AdamW",
                              description="Run, on the same data and seed: the compressed protocol, dense "
                                          "DiLoCo, AdamW with one miner's compute, and AdamW on all miners' "
                                          "tokens; print held-out losses and bytes sent.")
    sim.add_argument("--preset", default="tiny", help="hparams preset name or YAML path (default: tiny)")
    sim.add_argument("--miners", type=int, default=4, help="number of miners (default 4)")
    sim.add_argument("--rounds", type=int, default=60, help="outer rounds (default 60)")
    sim.add_argument("--data", type=Path, help="prepared dataset dir (default: the bundled corpus, prepared once "
                                               "into ./data/)")
    sim.add_argument("--eval-samples", type=int, default=256, help="held-out samples for the loss (default 256)")
    sim.add_argument("--runs", help="comma-separated subset of compressed,diloco,adamw_same_compute,"
                                    "adamw_same_tokens")
    sim.add_argument("--diloco-lr", type=float, help="override the dense DiLoCo baseline's outer lr (preset: 0.7)")
    sim.add_argument("--diloco-momentum", type=float,
                     help="override the DiLoCo baseline's outer Nesterov momentum (preset: 0.9)")
    sim.add_argument("--json", type=Path, help="write results as JSON to this file")
    sim.set_defaults(func=cmd_train_sim)

    add_wallet_commands(commands)
    add_chain_commands(commands)
    add_storage_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("miners", "rounds", "eval_samples"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            print(f"subnet: error: --{name.replace('_', '-')} must be >= 1", file=sys.stderr)
            return 2
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"subnet: config error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:
        print(f"subnet: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
