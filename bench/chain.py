#!/usr/bin/env python3
"""Dev chain figures: signed-call throughput and latency under load, block regularity, query and epoch cost.

Starts a real `subnet chain` server (subprocess) with one subnet of 256 neurons, then from this process
256 concurrent clients each loop set_weights (256 uids) and commit for --seconds. Prints calls/s,
latency percentiles, block intervals against --block-time, metagraph query time for 256 neurons and
the tempo epoch time for 256 neurons (in-process, real sqlite).

  python bench/chain.py [--clients 256] [--seconds 15] [--block-time 1.0] [--json OUT]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from subnet.chain.envelope import call_message  # noqa: E402
from subnet.chain.client import ChainClient  # noqa: E402
from subnet.chain.genesis import ChainParams, SubnetGenesis  # noqa: E402
from subnet.chain.node import ChainNode  # noqa: E402
from subnet.keys import Keypair  # noqa: E402

TAO = 10**9
N = 256


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keys(n: int, tag: int) -> list[Keypair]:
    return [Keypair.from_seed(bytes([tag]) + i.to_bytes(4, "big") + bytes(27)) for i in range(n)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def epoch_timing() -> dict:
    """Epoch for 256 neurons with full weights, in-process on a real sqlite file."""
    colds, hots = keys(N, 1), keys(N, 2)
    owner, owner_hot = Keypair.from_seed(b"o" * 32), hots[0]
    params = ChainParams(balances={c.address: 1000 * TAO for c in colds},
                         subnets=(SubnetGenesis(netuid=1, owner=owner.address, owner_hotkey=owner_hot.address,
                                                pool_tao=10_000 * TAO, pool_alpha=10_000 * TAO, tempo=50,
                                                max_uids=N, max_validators=N),))
    with tempfile.TemporaryDirectory() as tmp:
        node = ChainNode(Path(tmp) / "c.db", params)
        nonce = 0

        def call(kp, name, **p):
            nonlocal nonce
            nonce += 1
            sig = kp.sign(call_message(name, p, kp.address, nonce, node.genesis_hash)).hex()
            return node.apply_call({"call": name, "params": p, "signer": kp.address, "nonce": nonce, "signature": sig})

        for c, h in zip(colds[1:], hots[1:]):
            call(c, "burned_register", netuid=1, hotkey=h.address)
            call(c, "add_stake", netuid=1, hotkey=h.address, amount=10 * TAO)
        rng = random.Random(0)
        while not node.produce_block()["epochs"]:
            pass
        for h in hots[1:]:
            call(h, "set_weights", netuid=1, uids=list(range(N)), weights=[rng.randint(1, 65535) for _ in range(N)])
        plain, epoch = [], []
        for _ in range(120):
            t0 = time.perf_counter()
            info = node.produce_block()
            (epoch if info["epochs"] else plain).append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in range(20):
            node.metagraph(1)
        meta = (time.perf_counter() - t0) / 20
        assert node.audit()["ok"]
    return {"epoch_block_ms": 1000 * statistics.median(epoch), "plain_block_ms": 1000 * statistics.median(plain),
            "metagraph_inprocess_ms": 1000 * meta}


def start_chain(tmp: Path, block_time: float, clients: int) -> tuple[subprocess.Popen, str, list, list]:
    colds, hots = keys(clients, 3), keys(clients, 4)
    owner, owner_hot = Keypair.from_seed(b"p" * 32), Keypair.from_seed(b"q" * 32)
    doc = {"chain": {"balances": {c.address: 1000 for c in colds}, "subnets": [{
        "netuid": 1, "owner": owner.address, "owner_hotkey": owner_hot.address, "pool_tao": 10000,
        "pool_alpha": 10000, "tempo": 10, "max_uids": clients + 1, "max_validators": clients + 1}]}}
    (tmp / "g.yaml").write_text(yaml.safe_dump(doc))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "subnet.cli", "chain", "--db", str(tmp / "c.db"), "--port",
                             str(port), "--block-time", str(block_time), "--genesis", str(tmp / "g.yaml")],
                            stdout=open(tmp / "chain.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}", colds, hots


async def load(url: str, colds, hots, seconds: float, block_time: float) -> dict:
    async with ChainClient(url, retries=20) as setup:
        await setup.get_current_block()
        await asyncio.gather(*(setup.burned_register(c, 1, h.address) for c, h in zip(colds, hots)))
        await asyncio.gather(*(setup.add_stake(c, 1, h.address, 10 * TAO) for c, h in zip(colds, hots)))
        while True:  # wait for the epoch that hands out validator permits
            mg = await setup.metagraph(1)
            if all(mg.validator_permit[1:]):
                break
            await asyncio.sleep(block_time / 2)
        t0 = time.perf_counter()
        for _ in range(20):
            await setup.metagraph(1)
        metagraph_ms = (time.perf_counter() - t0) / 20 * 1000
        start_block = await setup.get_current_block()
    n = mg.n
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds
    client = ChainClient(url, retries=0, timeout=30)

    async def worker(i: int):
        nonlocal errors
        rng = random.Random(i)
        hot = hots[i]
        k = 0
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                if k % 2 == 0:
                    await client.set_weights(hot, 1, list(range(n)), [rng.randint(1, 65535) for _ in range(n)])
                else:
                    await client.commit(hot, 1, f"v1|http://127.0.0.1:8333|bucket-{i}|{k}")
            except Exception:
                errors += 1
            latencies.append(time.perf_counter() - t0)
            k += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(len(hots))))
    elapsed = time.perf_counter() - t0
    async with ChainClient(url) as after:
        end_block = await after.get_current_block()
        stamps = [await after.get_block_timestamp(b) for b in range(start_block, end_block + 1)]
        audit_ok = (await after.audit())["ok"]
    await client.close()
    intervals = [b - a for a, b in zip(stamps, stamps[1:])]
    within = sum(abs(x - block_time) <= 0.1 * block_time for x in intervals)
    return {"calls": len(latencies), "errors": errors, "seconds": elapsed, "calls_per_s": len(latencies) / elapsed,
            "latency_p50_ms": 1000 * percentile(latencies, 0.5), "latency_p99_ms": 1000 * percentile(latencies, 0.99),
            "blocks": len(intervals), "block_interval_mean_s": statistics.mean(intervals) if intervals else None,
            "block_interval_max_dev_pct": 100 * max(abs(x - block_time) for x in intervals) / block_time
            if intervals else None, "blocks_within_10pct": f"{within}/{len(intervals)}",
            "metagraph_http_ms": metagraph_ms, "neurons": n, "conservation_ok": audit_ok}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--block-time", type=float, default=1.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {"epoch": epoch_timing()}
    e = results["epoch"]
    print(f"in-process, {N} neurons: epoch block {e['epoch_block_ms']:.1f} ms, plain block "
          f"{e['plain_block_ms']:.1f} ms, metagraph {e['metagraph_inprocess_ms']:.2f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, colds, hots = start_chain(Path(tmp), args.block_time, args.clients)
        try:
            results["load"] = r = asyncio.run(load(url, colds, hots, args.seconds, args.block_time))
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
    print(f"load: {args.clients} clients, {r['neurons']} neurons, {r['calls']} signed calls in {r['seconds']:.1f} s "
          f"= {r['calls_per_s']:.0f} calls/s ({r['errors']} errors); latency p50 {r['latency_p50_ms']:.1f} ms, "
          f"p99 {r['latency_p99_ms']:.1f} ms")
    print(f"blocks under load: {r['blocks']} intervals, mean {r['block_interval_mean_s']:.3f} s "
          f"(target {args.block_time}), max deviation {r['block_interval_max_dev_pct']:.1f}%, "
          f"within 10%: {r['blocks_within_10pct']}")
    print(f"metagraph over HTTP ({r['neurons']} neurons): {r['metagraph_http_ms']:.2f} ms; "
          f"conservation after load: {r['conservation_ok']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
