"""`amm` command line: `amm simulate SCENARIO ...`, `amm sweep SCENARIO --set KEY=V1,V2 ...` and
`amm scenarios`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from amm.plan import compile_plan
from amm.reference import run_reference
from amm.report import render_sweep, render_table, write_csv, write_json, write_plot, write_sweep_plot
from amm.scenario import ScenarioError, bundled_scenarios, load_scenario, read_scenario_data
from amm.shares import MODELS
from amm.simulate import run_vectorised
from amm.sweep import parse_setting, run_sweep, sweep_json


ENGINES = ("compiled", "vectorised", "reference")
PIPE_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for a program its closed output pipe stopped


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


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineUsageParser(prog="amm", description="Dynamic-TAO economics simulator.")
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate", help="run a scenario and report prices, emission and payouts")
    sim.add_argument("scenario", help="scenario YAML file, or the name of a shipped one (see `amm scenarios`)")
    sim.add_argument("--blocks", type=positive_int, help="horizon in blocks (default: the scenario's)")
    sim.add_argument("--model", choices=MODELS, help="subnet share model (default: the scenario's)")
    sim.add_argument("--seed", type=int, help="seed of the stochastic traders (default: the scenario's)")
    sim.add_argument("--json", metavar="OUT", help="write the results (and time series) as JSON")
    sim.add_argument("--csv", metavar="OUT", help="write the per-subnet table as CSV")
    sim.add_argument("--plot", metavar="OUT.png", help="plot price, emission share and payouts over time")
    sim.add_argument("--engine", choices=ENGINES, default="compiled",
                     help="compiled (default): the numba kernel, exact int64 rao; vectorised: numpy per block "
                          "(float64 money, refuses balances above 2^53 rao); reference: the exact per-block loop "
                          "through amm.coinbase (slow). All three give the same results")
    sim.add_argument("--quiet", action="store_true", help="no progress bar or table")
    sweep = sub.add_parser("sweep", help="run a scenario over a grid of settings x seeds, in parallel",
                           description="Run SCENARIO for every combination of the --set values and every "
                                       "seed, over the machine's cores, and print per setting the median and "
                                       "10-90% range over seeds of each subnet's final price, emission "
                                       "share and payouts. Example: amm sweep year-128 --set "
                                       "root.tao_weight=0.1,0.18,0.3 --set model=flow,current --seeds 8")
    sweep.add_argument("scenario", help="scenario YAML file, or the name of a shipped one")
    sweep.add_argument("--set", dest="settings", metavar="KEY=V1,V2,...", action="append", required=True,
                       help="a dotted key of the scenario file (root.tao_weight, params.moving_alpha, "
                            "subnets.0.tao, model, ...) and the values to try; repeat for a grid")
    sweep.add_argument("--seeds", type=positive_int, default=8, help="seeds per grid point (default 8)")
    sweep.add_argument("--jobs", type=positive_int, help="worker processes (default: one per core)")
    sweep.add_argument("--blocks", type=positive_int, help="horizon in blocks (default: the scenario's)")
    sweep.add_argument("--json", metavar="OUT", help="write the summary per grid point as JSON")
    sweep.add_argument("--plot", metavar="OUT.png", help="plot median price and share over time, 10-90%% bands")
    sweep.add_argument("--all-subnets", action="store_true", help="list every subnet (default: the 24 largest)")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar or tables")
    sub.add_parser("scenarios", help="list the shipped example scenarios")
    return parser


def list_scenarios(console: Console) -> int:
    for name, path in sorted(bundled_scenarios().items()):
        try:
            desc = " ".join(load_scenario(path).description.split())
        except ScenarioError as exc:
            desc = f"(invalid: {exc})"
        console.print(f"[bold]{name}[/bold]  {path}\n    {desc}")
    return 0


def simulate(args: argparse.Namespace, console: Console) -> int:
    scenario = load_scenario(args.scenario)
    plan = compile_plan(scenario, blocks=args.blocks, model=args.model, seed=args.seed)
    started = time.perf_counter()
    if args.engine == "reference":
        result = run_reference(plan, audit_every=plan.record_every)
    elif args.quiet:
        result = run_engine(args.engine, plan)
    else:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console, transient=True) as progress:
            task = progress.add_task(f"{scenario.name} ({plan.params.model})", total=plan.blocks)
            result = run_engine(args.engine, plan, lambda done: progress.update(task, completed=done))
    elapsed = time.perf_counter() - started

    if not args.quiet:
        render_table(result, console)
        kernel = result.extra.get("kernel_seconds")
        note = f"; {kernel:.1f} s of it loading the kernel" if kernel is not None else ""
        console.print(f"simulated {plan.n_subnets} subnets x {plan.blocks:,} blocks in {elapsed:.1f} s "
                      f"({result.engine}{note})")
    if args.json:
        write_json(result, args.json)
    if args.csv:
        write_csv(result, args.csv)
    if args.plot:
        write_plot(result, args.plot)
    return 0


def sweep(args: argparse.Namespace, console: Console) -> int:
    data, source = read_scenario_data(args.scenario)
    settings = [parse_setting(text) for text in args.settings]
    if args.blocks is not None:
        if not isinstance(data, dict):
            raise ScenarioError(f"{source}: must be a mapping")
        data = dict(data, blocks=args.blocks)
    if args.quiet:
        result = run_sweep(data, source, settings, args.seeds, args.jobs)
    else:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console, transient=True) as progress:
            task = progress.add_task("runs", total=None)
            result = run_sweep(data, source, settings, args.seeds, args.jobs,
                               progress=lambda done, total: progress.update(task, completed=done, total=total))
        render_sweep(result, console, limit=None if args.all_subnets else 24)
        runs = sum(point["runs"] for point in result["grid"])
        console.print(f"swept {len(result['grid'])} settings x {args.seeds} seeds = {runs} runs in "
                      f"{result['seconds']:.1f} s on {result['jobs']} processes")
    if args.json:
        Path(args.json).write_text(json.dumps(sweep_json(result), indent=1) + "\n")
    if args.plot:
        write_sweep_plot(result, args.plot)
    return 0


def run_engine(engine: str, plan, progress=None):
    """The plan run by the compiled or vectorised engine, ``progress(blocks_done)`` as it goes."""
    if engine == "compiled":
        from amm.compiled import run_compiled   # numba loads here, not for `amm scenarios` or --help

        return run_compiled(plan, progress=progress)
    return run_vectorised(plan, progress=progress, progress_every=max(1, plan.blocks // 200))


def main(argv: list[str] | None = None) -> int:
    """Runs a command; an expected failure is one line `amm: error: ...` (2: a bad scenario, 1: a
    file that cannot be read or written), anything else a bug with its traceback."""
    args = build_parser().parse_args(argv)
    # rich wraps at 80 columns when not on a terminal; the table needs more
    console = StdoutConsole(width=None if sys.stdout.isatty() else 160)
    try:
        commands = {"scenarios": lambda: list_scenarios(console), "simulate": lambda: simulate(args, console),
                    "sweep": lambda: sweep(args, console)}
        code = commands[args.command]()
        sys.stdout.flush()  # a closed pipe surfaces here, not in the flush at exit
        return code
    except KeyboardInterrupt:
        print("amm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`amm scenarios | head -n 1`): stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # or the flush at exit complains
        except (OSError, ValueError):
            pass
        return PIPE_CLOSED
    except (ScenarioError, OSError, OverflowError) as exc:
        print(f"amm: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2 if isinstance(exc, ScenarioError) else 1


if __name__ == "__main__":
    sys.exit(main())
