"""`amm` command line: `amm simulate SCENARIO.yaml ...` and `amm scenarios`."""

from __future__ import annotations

import argparse
import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from amm.plan import compile_plan
from amm.reference import run_reference
from amm.report import render_table, write_csv, write_json, write_plot
from amm.scenario import ScenarioError, bundled_scenarios, load_scenario
from amm.shares import MODELS
from amm.simulate import run_vectorised


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="amm", description="Dynamic-TAO economics simulator.")
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate", help="run a scenario and report prices, emission and payouts")
    sim.add_argument("scenario", help="scenario YAML file, or the name of a shipped one (see `amm scenarios`)")
    sim.add_argument("--blocks", type=int, help="horizon in blocks (default: the scenario's)")
    sim.add_argument("--model", choices=MODELS, help="subnet share model (default: the scenario's)")
    sim.add_argument("--seed", type=int, help="seed of the stochastic traders (default: the scenario's)")
    sim.add_argument("--json", metavar="OUT", help="write the results (and time series) as JSON")
    sim.add_argument("--csv", metavar="OUT", help="write the per-subnet table as CSV")
    sim.add_argument("--plot", metavar="OUT.png", help="plot price, emission share and payouts over time")
    sim.add_argument("--engine", choices=("vectorised", "reference"), default="vectorised",
                     help="reference = the exact per-block loop through amm.coinbase (slow)")
    sim.add_argument("--quiet", action="store_true", help="no progress bar or table")
    sub.add_parser("scenarios", help="list the shipped example scenarios")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # rich wraps at 80 columns when not on a terminal; the table needs more
    console = Console(width=None if sys.stdout.isatty() else 160)
    if args.command == "scenarios":
        for name, path in sorted(bundled_scenarios().items()):
            try:
                desc = " ".join(load_scenario(path).description.split())
            except ScenarioError as exc:
                desc = f"(invalid: {exc})"
            console.print(f"[bold]{name}[/bold]  {path}\n    {desc}")
        return 0

    try:
        scenario = load_scenario(args.scenario)
        if args.blocks is not None and args.blocks < 1:
            raise ScenarioError("--blocks must be >= 1")
        plan = compile_plan(scenario, blocks=args.blocks, model=args.model, seed=args.seed)
    except (ScenarioError, OSError) as exc:
        print(f"amm: {exc}", file=sys.stderr)
        return 2

    started = time.perf_counter()
    if args.engine == "reference":
        result = run_reference(plan, audit_every=plan.record_every)
    elif args.quiet:
        result = run_vectorised(plan)
    else:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console, transient=True) as progress:
            task = progress.add_task(f"{scenario.name} ({plan.params.model})", total=plan.blocks)
            result = run_vectorised(plan, progress=lambda done: progress.update(task, completed=done),
                                    progress_every=max(1, plan.blocks // 200))
    elapsed = time.perf_counter() - started

    if not args.quiet:
        render_table(result, console)
        console.print(f"simulated {plan.n_subnets} subnets x {plan.blocks:,} blocks in {elapsed:.1f} s "
                      f"({result.engine})")
    if args.json:
        write_json(result, args.json)
    if args.csv:
        write_csv(result, args.csv)
    if args.plot:
        write_plot(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
