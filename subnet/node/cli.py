"""Command-line shell shared by `miner run` and `validator run`: the same flags, the same errors."""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path

from subnet.chain.cli import port_number
from subnet.cli import DEFAULT_PRESET, OneLineUsageParser, positive_int, run_command
from subnet.chain.backend import parse_chain
from subnet.node.settings import (DEFAULT_CHAIN_URL, NodeSettings, SettingsError, from_flags, from_neurons_file,
                                  load_run_config)
from subnet.wallet import BITTENSOR_WALLET_DIR


def build_parser(role: str, description: str) -> argparse.ArgumentParser:
    parser = OneLineUsageParser(prog=role, description=description)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineUsageParser)
    run = commands.add_parser("run", help=f"run the {role} process",
                              description=f"Run the {role}. Either --neurons FILE --name NAME (the local network), "
                                          "or --wallet, --netuid, --chain and --storage (a real deployment).")
    local = run.add_argument_group("from neurons.yaml")
    local.add_argument("--neurons", type=Path, metavar="FILE", help="the local network file (neurons.yaml)")
    local.add_argument("--name", help="this neuron's name in FILE")
    explicit = run.add_argument_group("explicit")
    explicit.add_argument("--config", type=Path, metavar="FILE",
                          help="YAML with the explicit settings (chain, netuid, wallet, storage, stake, register, preset, "
                               "data, state_dir, device, threads, metrics_port); flags override it (docs/bittensor.md)")
    explicit.add_argument("--wallet", help="wallet name (coldkey pays registration, hotkey signs)")
    explicit.add_argument("--hotkey", default="default", help="hotkey name in the wallet (default: default)")
    explicit.add_argument("--netuid", type=int, help="subnet to join")
    explicit.add_argument("--storage", type=Path, metavar="FILE",
                          help="bucket settings JSON: endpoint, bucket, write key, read key (with --neurons: "
                               "replaces the file's storage for this neuron, e.g. to reach it through a proxy)")
    explicit.add_argument("--stake", type=float, metavar="TAO", help="validator: TAO to stake on its hotkey at start")
    explicit.add_argument("--register", action="store_true",
                          help="on Bittensor: pay the subnet's registration burn if the hotkey is not registered "
                               "(the dev chain always registers)")
    run.add_argument("--chain", metavar="URL|NETWORK",
                     help=f"the dev chain's http(s) URL (default {DEFAULT_CHAIN_URL}), or Bittensor: finney, test, "
                          "local (a subtensor node on this machine) or a node's ws(s):// URL (docs/bittensor.md)")
    run.add_argument("--wallet-dir", type=Path, metavar="DIR",
                     help="wallets directory, Bittensor's layout (default ~/.tessera/wallets; with a Bittensor "
                          "--chain, ~/.bittensor/wallets, where btcli keeps them)")
    run.add_argument("--preset", default=DEFAULT_PRESET, help=f"hparams preset (default {DEFAULT_PRESET})")
    run.add_argument("--data", type=Path, metavar="DIR", help="prepared dataset (default: the bundled corpus)")
    run.add_argument("--state-dir", type=Path, metavar="DIR", help="local state (default data/state/NAME)")
    run.add_argument("--device", default="cpu", help="cpu or cuda (bf16 autocast for the inner steps)")
    run.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    run.add_argument("--windows", type=positive_int, help="stop after this many windows (default: run until stopped)")
    run.add_argument("--metrics-port", type=port_number, metavar="PORT",
                     help="serve Prometheus metrics on 127.0.0.1:PORT/metrics (default: the neurons file's "
                          "metrics_port, else none; 0 lets the system choose, logged; docs/metrics.md)")
    parser.run_parser = run   # --config sets this parser's defaults
    return parser


def with_config(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str] | None) -> argparse.Namespace:
    """The arguments again, with --config FILE's values as defaults under the flags given."""
    if getattr(args, "config", None) is None:
        return args
    parser.run_parser.set_defaults(**load_run_config(args.config))
    return parser.parse_args(argv)


def settings_from_args(args: argparse.Namespace, role: str) -> NodeSettings:
    if args.device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            raise SettingsError(f"--device {args.device}: CUDA is not available on this machine")
    if args.neurons is not None:
        if not args.name:
            raise SettingsError("--neurons needs --name (which neuron of the file this process is)")
        return from_neurons_file(args.neurons, args.name, role, wallet_dir=args.wallet_dir, chain_url=args.chain,
                                 preset=args.preset, data=args.data, storage_file=args.storage,
                                 state_dir=args.state_dir, device=args.device, threads=args.threads,
                                 metrics_port=args.metrics_port)
    if args.wallet_dir is None and args.chain and parse_chain(args.chain).kind == "bittensor":
        args.wallet_dir = BITTENSOR_WALLET_DIR.expanduser()   # where btcli keeps an operator's wallets
    missing = [flag for flag, value in (("--wallet", args.wallet), ("--netuid", args.netuid),
                                        ("--storage", args.storage)) if value is None]
    if missing:
        raise SettingsError(f"give --neurons FILE --name NAME, or {' '.join(missing)}")
    from amm.units import to_rao
    stake = to_rao(args.stake) if getattr(args, "stake", None) else None
    return from_flags(role, wallet=args.wallet, netuid=args.netuid, chain_url=args.chain or DEFAULT_CHAIN_URL,
                      storage_file=args.storage, wallet_dir=args.wallet_dir, hotkey=args.hotkey,
                      preset=args.preset, data=args.data,
                      state_dir=args.state_dir, stake=stake, device=args.device, threads=args.threads,
                      metrics_port=args.metrics_port, register=args.register)


def log_line(name: str):
    def log(message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {name}: {message}", flush=True)
    return log


def run_process(process_factory, args: argparse.Namespace, role: str) -> int:
    """Build the process, run it until --windows or SIGTERM/SIGINT (it stops between windows)."""
    settings = settings_from_args(args, role)
    process = process_factory(settings, log_line(settings.name))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await process.run(max_windows=args.windows, stop=stop)
        except asyncio.CancelledError:
            print(f"{role}: stopped", file=sys.stderr)

    asyncio.run(main())
    return 0


def main_for(role: str, description: str, process_factory, argv: list[str] | None = None) -> int:
    parser = build_parser(role, description)
    args = parser.parse_args(argv)
    return run_command(role, lambda a: run_process(process_factory, with_config(parser, a, argv), role), args)
