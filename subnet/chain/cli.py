"""`subnet chain`: run the local dev chain server."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path


def run_chain(args: argparse.Namespace) -> int:
    from aiohttp import web

    from subnet.chain.genesis import ChainParams, load_chain_params
    from subnet.chain.node import ChainNode
    from subnet.chain.server import make_app

    params, file_block_time = (load_chain_params(args.genesis, args.wallet_dir) if args.genesis
                               else (ChainParams(), None))
    block_time = args.block_time if args.block_time is not None else (
        1.0 if file_block_time is None else file_block_time)
    if block_time < 0:
        raise ValueError("--block-time must be >= 0")
    args.db.parent.mkdir(parents=True, exist_ok=True)
    resumed = args.db.exists()
    node = ChainNode(args.db, params)
    if resumed and args.genesis and node.params != params:
        print(f"note: {args.db} already holds a chain; its own genesis is kept, {args.genesis} is ignored")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    mode = "dev mode: blocks on POST /dev/advance" if block_time == 0 else f"block time {block_time}s"
    print(f"tessera dev chain on http://{args.host}:{args.port} ({mode}); db {args.db}, "
          f"{'resumed at' if resumed else 'genesis'} block {node.block}, genesis {node.genesis_hash[:16]}",
          flush=True)
    web.run_app(make_app(node, block_time), host=args.host, port=args.port, print=None)
    return 0


def add_chain_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("chain", help="run the local dev chain (dTAO emission, Yuma consensus)",
                              description="Run the local dev chain: an aiohttp JSON API (docs/chain-api.md) "
                                          "over sqlite state; a restart resumes where it stopped.")
    p.add_argument("--db", type=Path, default=Path("data/chain.db"), help="sqlite state file (default data/chain.db)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9944, help="port (default 9944)")
    p.add_argument("--block-time", type=float, help="seconds per block; 0 = dev mode, blocks only on "
                                                    "POST /dev/advance (default: the genesis file's, else 1)")
    p.add_argument("--genesis", type=Path, help="neurons.yaml whose `chain:` section holds balances and subnets")
    p.add_argument("--wallet-dir", type=Path, help="where wallet names in the genesis file are looked up")
    p.set_defaults(func=run_chain)
