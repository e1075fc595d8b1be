"""`subnet`: the Tessera command line (data preparation, training simulation, wallets, ...)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from subnet.chain.cli import add_chain_commands
from subnet.config import ConfigError, load_preset
from subnet.storage.cli import add_storage_commands
from subnet.wallet_cli import add_wallet_commands

DEFAULT_DATA_ROOT = Path("data")
DEFAULT_PRESET = "tiny"  # every command's --preset; the README's commands use it too


class StdoutConsole(Console):
    """rich's Console on stdout, except that a closed pipe is left to main, which stops the same way
    whatever wrote last (rich alone would exit with 1)."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


class OneLineUsageParser(argparse.ArgumentParser):
    """A usage error is one line as well, ``PROG: error: ...``, pointing at --help rather than
    printing the usage (subcommand parsers inherit the class)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog.split()[0]}: error: {message} (see `{self.prog} --help`)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _progress(console: Console) -> Progress:
    # Bars only on a terminal: into a file or pipe rich would write their last frame when the
    # command ends, even when it ends with an error (which must then be the only line).
    return Progress(TextColumn("{task.description:<22}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TextColumn("{task.fields[note]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, transient=False, disable=not console.is_terminal)


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
    from subnet.data import DataError, TokenDataset

    console = Console(stderr=True)
    preset = load_preset(args.preset)
    if args.diloco_lr is not None or args.diloco_momentum is not None:
        baseline = preset.baseline
        baseline = replace(baseline, diloco_lr=baseline.diloco_lr if args.diloco_lr is None else args.diloco_lr,
                           diloco_momentum=baseline.diloco_momentum if args.diloco_momentum is None
                           else args.diloco_momentum)
        for key, message in baseline.problems():
            raise ConfigError(f"--{key.replace('_', '-')}: {message}")
        preset = replace(preset, baseline=baseline)
    data_dir = _dataset_for(preset, args.data, console)
    train = TokenDataset(data_dir, "train", preset.model.seq_len)
    val = TokenDataset(data_dir, "val", preset.model.seq_len)
    if train.vocab_size > preset.model.vocab_size:
        raise DataError(f"{data_dir}: vocabulary {train.vocab_size} exceeds preset {preset.name}'s "
                        f"{preset.model.vocab_size}; prepare it with --preset {preset.name}")
    from subnet.trainsim import PAPER_DILOCO, RUN_NAMES, run_train_sim  # torch: only once the inputs are known good

    runs = tuple(args.runs.split(",")) if args.runs else RUN_NAMES
    unknown = [name for name in runs if name not in RUN_NAMES]
    if unknown:
        raise ConfigError(f"--runs: unknown {', '.join(unknown)}; choose from {','.join(RUN_NAMES)}")
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
    table.caption = "diloco (lr/momentum): dense pseudo-gradients, outer Nesterov SGD"
    table.add_column("run")
    table.add_column("eval loss", justify="right")
    table.add_column("vs compressed", justify="right")
    table.add_column("bytes / miner / round", justify="right")
    reference = result.runs.get("compressed")
    outer = {"diloco": (preset.baseline.diloco_lr, preset.baseline.diloco_momentum), "diloco_paper": PAPER_DILOCO}
    for name, run in result.runs.items():
        rel = f"{(run.eval_loss / reference.eval_loss - 1) * 100:+.2f}%" if reference else "-"
        sent = f"{run.bytes_per_round:,}" if run.bytes_per_round else "- (no communication)"
        label = f"{name} ({outer[name][0]:g}/{outer[name][1]:g})" if name in outer else name
        table.add_row(label, f"{run.eval_loss:.4f}", rel, sent)
    out = StdoutConsole()
    out.print(table)
    if reference:
        out.print(f"compression ratio vs dense fp32: {result.compression_ratio:.1f}x; index bits per kept "
                  f"value {result.index_bits_per_value:.3f} (floor log2 C(n,k)/k = {result.index_bits_floor:.3f}, "
                  f"+{(result.index_bits_per_value / result.index_bits_floor - 1) * 100:.1f}%)")
    if args.json:
        args.json.write_text(json.dumps(result.to_json(), indent=1))
        out.print(f"wrote {args.json}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from subnet.config import load_preset
    from subnet.up import UpSettings, run_up

    load_preset(args.preset)   # a bad preset is a usage error before anything starts
    summary = run_up(UpSettings(neurons_file=args.neurons, run_dir=args.run_dir, preset=args.preset,
                                windows=args.windows, threads=args.threads, data=args.data, chain_port=args.chain_port,
                                storage_port=args.storage_port, metrics_port=args.metrics_port,
                                dashboard=not args.no_dashboard))
    return 0 if summary is not None or args.windows is None else 1


def cmd_status(args: argparse.Namespace) -> int:
    from subnet.up import status

    status(args.run_dir)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineUsageParser(prog="subnet", description="Tessera: incentivised decentralised LLM training.")
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
    prep.add_argument("--preset", default=DEFAULT_PRESET,
                      help=f"hparams preset name or YAML path whose vocab_size to use (default: {DEFAULT_PRESET})")
    prep.add_argument("--shard-tokens", type=int, default=1 << 20, help="tokens per shard (default 1048576)")
    prep.set_defaults(func=cmd_data_prepare)

    sim = commands.add_parser("train-sim", help="compare the compressed protocol with DiLoCo and AdamW",
                              description="Run, on the same data and seed: the compressed protocol, dense "
                                          "DiLoCo, AdamW with one miner's compute, and AdamW on all miners' "
                                          "tokens; print held-out losses and bytes sent.")
    sim.add_argument("--preset", default=DEFAULT_PRESET,
                     help=f"hparams preset name or YAML path (default: {DEFAULT_PRESET})")
    sim.add_argument("--miners", type=positive_int, default=4, help="number of miners (default 4)")
    sim.add_argument("--rounds", type=positive_int, default=60, help="outer rounds (default 60)")
    sim.add_argument("--data", type=Path, help="prepared dataset dir (default: the bundled corpus, prepared once "
                                               "into ./data/)")
    sim.add_argument("--eval-samples", type=positive_int, default=256,
                     help="held-out samples for the loss (default 256)")
    sim.add_argument("--runs", help="comma-separated subset of compressed,diloco,diloco_paper,"
                                    "adamw_same_compute,adamw_same_tokens (default all)")
    sim.add_argument("--diloco-lr", type=float,
                     help="override the dense DiLoCo baseline's outer lr (preset: the best dense found by bench/parity.py)")
    sim.add_argument("--diloco-momentum", type=float,
                     help="override the DiLoCo baseline's outer Nesterov momentum (diloco_paper stays at 0.7/0.9)")
    sim.add_argument("--json", type=Path, help="write results as JSON to this file")
    sim.set_defaults(func=cmd_train_sim)

    up = commands.add_parser("up", help="run the whole local network from neurons.yaml with a live dashboard",
                             description="Start storage, the dev chain, every validator and miner of the "
                                         "neurons file as real processes, and show a live dashboard. Ctrl-C "
                                         "stops everything; --windows N stops after N windows and writes "
                                         "summary.json and summary.png into the run directory. A process that "
                                         "exits is started again, after a backoff that doubles with each quick "
                                         "death (1 s to 60 s); restart counts are on the dashboard, in "
                                         "summary.json and at --metrics-port.")
    up.add_argument("neurons", nargs="?", type=Path, default=Path("neurons.yaml"),
                    help="the network file (default neurons.yaml)")
    up.add_argument("--windows", type=positive_int, help="stop after this many completed windows")
    up.add_argument("--run-dir", type=Path, default=Path("data/run"),
                    help="logs, state, chain and storage data (default data/run; reused across runs)")
    up.add_argument("--preset", default=DEFAULT_PRESET, help=f"hparams preset (default: {DEFAULT_PRESET})")
    up.add_argument("--data", type=Path, help="prepared dataset for every neuron (default: the bundled corpus, "
                                              "prepared once into ./data/)")
    up.add_argument("--threads", type=positive_int, default=1, help="torch threads per process (default 1)")
    up.add_argument("--chain-port", type=int, default=0, help="chain port (default: a free one)")
    up.add_argument("--storage-port", type=int, default=0, help="storage port (default: a free one)")
    up.add_argument("--metrics-port", type=int, default=0,
                    help="Prometheus port of `subnet up` itself: restarts and liveness per process (default: one the OS "
                         "hands out, printed at start and in run.json)")
    up.add_argument("--no-dashboard", action="store_true", help="no live dashboard (logs only)")
    up.set_defaults(func=cmd_up)

    st = commands.add_parser("status", help="the local network's numbers once (running or stopped)",
                             description="Print the dashboard of `subnet up` once: from the running chain, or "
                                         "after a run from its chain database and the processes' metrics.")
    st.add_argument("--run-dir", type=Path, default=Path("data/run"), help="the run directory (default data/run)")
    st.set_defaults(func=cmd_status)

    add_wallet_commands(commands)
    add_chain_commands(commands)
    add_storage_commands(commands)
    return parser


# Failures a user causes and can fix, as (module, class): one line on stderr, no traceback; anything
# else is a bug and keeps its traceback. A class is looked up only when its module is loaded (an
# error of a module never imported cannot have been raised), so `subnet` need not import boto3 or
# aiohttp at start-up to recognise a storage or chain error (tests/test_cli.py checks every name).
USAGE_ERRORS = (  # the command as given cannot run: exit 2, like a bad flag
    ("subnet.config", "ConfigError"), ("subnet.neurons", "NeuronsError"), ("subnet.chain.genesis", "GenesisError"),
)
RUNTIME_ERRORS = (  # exit 1
    ("subnet.errors", "InputRejected"), ("subnet.wallet", "WalletError"), ("subnet.data", "DataError"),
    ("subnet.storage.client", "StorageError"), ("subnet.storage.config", "StorageConfigError"),
    ("subnet.storage.seaweed", "SeaweedError"), ("subnet.storage.commitment", "CommitmentError"),
    ("subnet.chain.client", "ChainCallError"), ("subnet.chain.client", "ChainUnavailable"),
    ("subnet.localnet", "NetworkStartError"), ("subnet.up", "RunDirError"),
    ("builtins", "OSError"),  # files, ports, connections
)
PIPE_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for a program its closed output pipe stopped


def _is_one_of(error: BaseException, classes: tuple[tuple[str, str], ...]) -> bool:
    return any(isinstance(error, getattr(sys.modules[module], name))
               for module, name in classes if module in sys.modules)


def exit_code_for(error: BaseException) -> int | None:
    """2 for a usage error, 1 for another expected failure, None for a bug."""
    if _is_one_of(error, USAGE_ERRORS):
        return 2
    if _is_one_of(error, RUNTIME_ERRORS):
        return 1
    return None


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def stop_on_closed_pipe() -> int:
    """The reader of stdout went away (`subnet wallet list | head -n 1`): stop quietly. stdout is
    pointed at /dev/null first, or Python's flush at exit meets the closed pipe again and complains."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (captured in tests)
        pass
    return PIPE_CLOSED


def run_command(prog: str, command, args: argparse.Namespace) -> int:
    """``command(args)``'s exit code; an expected failure is one line ``PROG: error: ...`` on stderr."""
    try:
        code = command(args)
        sys.stdout.flush()  # a closed pipe surfaces here, not in the flush at exit
        return code
    except BrokenPipeError:
        return stop_on_closed_pipe()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT
    except Exception as error:  # noqa: BLE001 (re-raised below unless it is an expected failure)
        code = exit_code_for(error)
        if code is None:
            raise
        print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
        return code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("subnet", args.func, args)


if __name__ == "__main__":
    sys.exit(main())
