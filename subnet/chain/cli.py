"""`subnet chain`: run the local dev chain server."""
from __future__ import annotations

import argparse
import json
import logging
import os
import socket
from pathlib import Path

from subnet.files import atomic_write


def run_chain(args: argparse.Namespace) -> int:
    from aiohttp import web

    from subnet.chain.genesis import ChainParams, chain_metrics_port, load_chain_params
    from subnet.chain.node import ChainNode
    from subnet.chain.server import make_app

    params, file_block_time = (load_chain_params(args.neurons, args.wallet_dir) if args.neurons
                               else (ChainParams(), None))
    block_time = args.block_time if args.block_time is not None else (
        1.0 if file_block_time is None else file_block_time)
    metrics_port = args.metrics_port if args.metrics_port is not None else (
        chain_metrics_port(args.neurons) if args.neurons else None)
    listener = listen(args.host, args.port)  # before the db: a busy port is an error, not a new chain
    try:
        args.db.parent.mkdir(parents=True, exist_ok=True)
        resumed = args.db.exists()
        node = ChainNode(args.db, params)
    except BaseException:
        listener.close()
        raise
    if resumed and args.neurons and node.params != params:
        print(f"note: {args.db} already holds a chain; its own genesis is kept, {args.neurons} is ignored")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    mode = "dev mode: blocks on POST /dev/advance" if block_time == 0 else f"block time {block_time}s"
    port = listener.getsockname()[1]  # the one the system chose for --port 0
    print(f"tessera dev chain on http://{args.host}:{port} ({mode}); db {args.db}, "
          f"{'resumed at' if resumed else 'genesis'} block {node.block}, genesis {node.genesis_hash[:16]}",
          flush=True)
    metrics = None
    if metrics_port is not None:
        from subnet.metrics import ChainMetrics, serve
        metrics = ChainMetrics()
        metrics_port = serve(metrics.registry, metrics_port, args.host).server_port
        print(f"metrics on http://{args.host}:{metrics_port}/metrics", flush=True)
    if args.port_file:
        # Written once both sockets are bound: whoever started us with port 0 learns the ports with no
        # window in which another process could take them (free-then-reuse is a race).
        write_port_file(args.port_file, port, metrics_port)
    web.run_app(make_app(node, block_time, metrics), sock=listener, print=None)
    return 0


def write_port_file(path: Path, port: int, metrics_port: int | None) -> None:
    atomic_write(path, json.dumps({"port": port, "metrics_port": metrics_port}) + "\n")


def read_port_file(path: Path) -> tuple[int, int | None]:
    """(port, metrics_port) from a --port-file the chain wrote (atomically: whole or absent)."""
    bound = json.loads(Path(path).read_text())
    return bound["port"], bound["metrics_port"]


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise OSError(f"cannot listen on {host}:{port}: {os.strerror(exc.errno) if exc.errno else exc}") from None


def non_negative_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds >= 0, got {text}")
    return value


def port_number(text: str) -> int:
    """A TCP port to listen on; 0 lets the system choose (see --port-file)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port in [0, 65535], got {value}")
    return value


def add_chain_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("chain", help="run the local dev chain (dTAO emission, Yuma consensus)",
                              description="Run the local dev chain: an aiohttp JSON API (docs/chain-api.md) "
                                          "over sqlite state; a restart resumes where it stopped.")
    p.add_argument("--db", type=Path, default=Path("data/chain.db"), help="sqlite state file (default data/chain.db)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=port_number, default=9944, help="port; 0 lets the system choose (default 9944)")
    p.add_argument("--port-file", type=Path, metavar="FILE",
                   help='once listening, write {"port": P, "metrics_port": M} here (for --port 0)')
    p.add_argument("--block-time", type=non_negative_seconds,
                   help="seconds per block; 0 = dev mode, blocks only on POST /dev/advance "
                        "(default: the neurons file's, else 1)")
    p.add_argument("--neurons", type=Path, metavar="FILE",
                   help="neurons.yaml whose `chain:` section holds the genesis balances and subnets")
    p.add_argument("--genesis", type=Path, dest="neurons", help=argparse.SUPPRESS)  # the old name
    p.add_argument("--wallet-dir", type=Path, help="where wallet names in the neurons file are looked up")
    p.add_argument("--metrics-port", type=port_number, metavar="PORT",
                   help="serve Prometheus metrics on HOST:PORT/metrics (default: the neurons file's "
                        "chain.metrics_port, else none; 0 lets the system choose; docs/metrics.md)")
    p.set_defaults(func=run_chain)
