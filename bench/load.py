"""Load: hundreds of registered miners on one subnet against one real validator, chain and S3 server.

    python bench/load.py [--miners 256] [--windows 6] [--block-time 1.0] [--json OUT] [--root DIR]

Starts storage, the chain and one validator as real processes (`subnet.localnet.LocalNetwork`, the
tiny preset), then runs the miners as protocol-level clients inside this process: each has its own
wallet, registers its hotkey (burning from its own coldkey), commits its own bucket, and every window
does what a miner's process does on the wire: reads the head, the metagraph, the commitments, the
weights and the pool from the chain, stores a signed intent and, a second later, a signed gradient
against the current global model (`Follower`, the miners' shared copy of it) inside the upload slot.
The gradients are noise compressed like an honest update (one distinct packet per miner, made once):
they pass every wire check and cost the validator a full check, not a shortcut.

Printed, never asserted, over the windows after every miner has uploaded once:
- uploads_checked_per_window: the validator's verdicts per window other than `missing` (median);
- validator_peak_rss_mb: the validator's peak resident memory (VmHWM);
- chain_calls_per_s: API requests the chain answered per second (its own metrics counter);
- block_interval_max_dev: the largest |block interval - block time| in seconds over the run.

`--json` writes exactly {"miners", "window_s", "uploads_checked_per_window", "validator_peak_rss_mb",
"chain_calls_per_s", "block_interval_max_dev"} (plus the per-window detail under "windows").
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.procs import rss_mb  # noqa: E402
from subnet.chain.client import ChainClient  # noqa: E402
from subnet.config import load_preset  # noqa: E402
from subnet.localnet import LocalNetwork, NeuronSpec  # noqa: E402
from subnet.protocol import clock  # noqa: E402
from subnet.storage.client import StorageClient  # noqa: E402
from subnet.storage.config import load_neuron_storage  # noqa: E402
from subnet.storage.discovery import read_bucket_commitments  # noqa: E402
from subnet.wallet import load_wallet  # noqa: E402
from subnet.wire import names  # noqa: E402
from subnet.wire.gradient import encode_gradient, encode_intent  # noqa: E402

PROG = "load.py"
NETUID = 1
STORAGE_THREADS = 16
IN_FLIGHT = 32   # miners talking to the chain at once (registration, each window's reads)
REQUESTS = re.compile(r'^tessera_chain_requests_total\{[^}]*\} ([0-9.e+]+)$', re.M)


@dataclass
class LightMiner:
    name: str
    wallet: object
    storage: object
    client: StorageClient
    packet: object = None
    uid: int | None = None


async def at_most(limit: int, coroutines: list) -> None:
    """Run the coroutines, no more than `limit` at a time."""
    gate = asyncio.Semaphore(limit)

    async def gated(coroutine) -> None:
        async with gate:
            await coroutine
    await asyncio.gather(*(gated(c) for c in coroutines))


def chain_requests(url: str) -> float:
    """Requests the chain has answered so far (the sum of its counter over kinds)."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return sum(float(v) for v in REQUESTS.findall(text))


def block_interval_max_dev(timestamps: list[float], block_time: float) -> float:
    gaps = [b - a for a, b in zip(timestamps, timestamps[1:])]
    return max((abs(g - block_time) for g in gaps), default=0.0)


class Swarm:
    def __init__(self, net: LocalNetwork, miners: list[str], preset):
        from subnet.compression.spec import CodecSpec
        from subnet.node.follow import Follower, genesis_state
        from subnet.node.network import NetworkView

        self.net, self.preset, self.protocol = net, preset, preset.protocol
        self.spec = CodecSpec.from_preset(preset)
        self.chain = ChainClient(net.chain_url, timeout=30.0)
        self.pool = ThreadPoolExecutor(STORAGE_THREADS)
        self.miners = []
        for name in miners:
            storage = load_neuron_storage(net.root / "storage" / "neurons" / f"{name}.json")
            self.miners.append(LightMiner(name, load_wallet(name, net.wallet_dir), storage,
                                          StorageClient(storage.write)))
        self.view = NetworkView(self.chain, NETUID)
        self.follower = Follower(preset, self.spec, self.view, genesis_state(preset), log=lambda m: None)
        self.uploads: dict[int, int] = {}   # window -> gradients stored in its slot

    async def _blocking(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def make_packets(self) -> None:
        import torch

        from subnet.compression.codec import encode_tensors
        rng = np.random.default_rng(0)
        for miner in self.miners:
            noise = {n: torch.from_numpy(rng.normal(0.0, 1e-3, size=s).astype(np.float32))
                     for n, s in self.spec.shapes.items()}
            miner.packet, _ = encode_tensors(noise, self.spec.codec)

    async def join(self) -> None:
        """Register every hotkey and commit every bucket (a few in flight at once, as many miners would)."""
        async def one(miner: LightMiner) -> None:
            await self.chain.burned_register(miner.wallet.coldkey, NETUID, miner.wallet.hotkey.address)
            await self.chain.commit(miner.wallet.hotkey, NETUID, miner.storage.commitment())
        await at_most(IN_FLIGHT, [one(m) for m in self.miners])
        mg = await self.chain.metagraph(NETUID)
        for miner in self.miners:
            miner.uid = mg.uids[mg.hotkeys.index(miner.wallet.hotkey.address)]

    async def reads(self) -> None:
        """Each miner's chain reads of one window (what NetworkView.refresh and the head poll send)."""
        async def one() -> None:
            await asyncio.gather(self.chain.get_current_block(), self.chain.metagraph(NETUID),
                                 read_bucket_commitments(self.chain, NETUID), self.chain.get_weights(NETUID),
                                 self.chain.get_pool(NETUID))
        await at_most(IN_FLIGHT, [one() for _ in self.miners])

    async def upload(self, window: int) -> None:
        base = self.follower.state.hash
        objects = {m.name: encode_gradient(m.packet, m.wallet.hotkey, window, m.uid, base) for m in self.miners}

        def intent(miner: LightMiner) -> None:
            note = encode_intent(objects[miner.name], miner.wallet.hotkey, window, miner.uid)
            miner.client.put(miner.storage.bucket, names.gradient_intent_key(window, miner.uid), note)

        def gradient(miner: LightMiner) -> None:
            miner.client.put(miner.storage.bucket, names.gradient_key(window, miner.uid), objects[miner.name])

        await asyncio.gather(*(self._blocking(intent, m) for m in self.miners))
        now = time.time()
        await asyncio.sleep(math.floor(now) + 1.05 - now)   # the intent's whole second, as a miner waits
        if await self.chain.get_current_block() > clock.upload_deadline(window, self.protocol):
            self.uploads[window] = 0
            return
        await asyncio.gather(*(self._blocking(gradient, m) for m in self.miners))
        self.uploads[window] = len(self.miners)

    async def run_window(self, window: int) -> dict:
        started = time.monotonic()
        await self.view.refresh()
        await self.upload(window)
        uploaded = time.monotonic()
        await self.reads()
        read = time.monotonic()
        await self.follower.advance(window)
        return {"window": window, "uploaded": self.uploads.get(window, 0), "upload_s": round(uploaded - started, 2),
                "chain_reads_s": round(read - uploaded, 2), "wait_aggregate_s": round(time.monotonic() - read, 2),
                "model_version": self.follower.state.version}


async def wait_for_window_start(chain: ChainClient, protocol, after: int) -> int:
    while True:
        window = clock.window_of(await chain.get_current_block(), protocol)
        if window > after:
            return window
        await asyncio.sleep(0.05)


async def drive(net: LocalNetwork, swarm: Swarm, windows: int, block_time: float, peaks: list[float]) -> dict:
    protocol = swarm.protocol
    print(f"registering {len(swarm.miners)} miners", flush=True)
    started = time.monotonic()
    await swarm.join()
    print(f"  registered and committed in {time.monotonic() - started:.1f} s", flush=True)
    first_block = await swarm.chain.get_current_block()
    metrics_url = f"http://127.0.0.1:{net.metrics_port('chain')}/metrics"
    calls_before, clock_before = chain_requests(metrics_url), time.monotonic()
    rows, window = [], clock.window_of(first_block, protocol)
    while len([r for r in rows if r["uploaded"]]) < windows:
        window = await wait_for_window_start(swarm.chain, protocol, window)
        row = await swarm.run_window(window)
        memory = rss_mb(net.procs["v1"].pid)
        if memory:
            peaks.append(memory[1])
        rows.append(row)
        print(f"  window {window}: {row['uploaded']} uploaded ({row['upload_s']} s), chain reads {row['chain_reads_s']} s, "
              f"aggregate wait {row['wait_aggregate_s']} s, model v{row['model_version']}, validator "
              f"{memory[0] if memory else 0:.0f} MiB", flush=True)
        if len(rows) > windows + 20:
            print("  the uploads keep missing their slot: stopping", flush=True)
            break
    calls = chain_requests(metrics_url) - calls_before
    elapsed = time.monotonic() - clock_before
    last_block = await swarm.chain.get_current_block()
    stamps = [await swarm.chain.get_block_timestamp(b) for b in range(first_block, last_block + 1)]
    await swarm.chain.close()
    return {"rows": rows, "chain_calls_per_s": calls / elapsed,
            "block_interval_max_dev": block_interval_max_dev(stamps, block_time)}


def validator_windows(net: LocalNetwork, uploaded: set[int]) -> list[dict]:
    out = []
    for row in net.metrics("v1"):
        if row["window"] in uploaded:
            verdicts = row.get("verdicts") or {}
            out.append({"window": row["window"], "checked": sum(1 for v in verdicts.values() if v != "missing"),
                        "ok": sum(1 for v in verdicts.values() if v == "ok"),
                        "fetch_s": round(row.get("fetch_s") or 0.0, 2),
                        "aggregate_delay_s": round(row.get("aggregate_delay_s") or 0.0, 2),
                        "evaluated": len(row.get("evaluated") or []), "peers": len(row.get("peers") or [])})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--miners", type=int, default=256, help="registered miners (default 256)")
    parser.add_argument("--windows", type=int, default=6, help="windows with every miner uploading (default 6)")
    parser.add_argument("--block-time", type=float, default=1.0, help="chain block time in seconds (default 1.0)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--root", type=Path, help="run directory (default: a temporary one, removed after)")
    args = parser.parse_args(argv)
    if not 1 <= args.miners <= 4000 or args.windows < 1 or args.block_time <= 0:
        parser.error("--miners must be in [1, 4000], --windows at least 1, --block-time positive")
    preset = load_preset("tiny")
    from subnet.node.settings import default_dataset
    data = default_dataset(preset.model.vocab_size, ROOT / "data")
    names_ = [f"m{i:04d}" for i in range(args.miners)]
    specs = [NeuronSpec("v1", "validator", stake=300.0), *(NeuronSpec(n, "miner") for n in names_)]
    root = args.root or Path(tempfile.mkdtemp(prefix="tessera-bench-load-"))
    net = LocalNetwork(root, specs, block_time=args.block_time, preset="tiny", data=data,
                       max_uids=args.miners + 8)
    peaks: list[float] = []
    try:
        print(f"starting storage, chain and the validator in {root}", flush=True)
        net.start_infrastructure()
        net.start_neuron("v1")
        swarm = Swarm(net, names_, preset)
        started = time.monotonic()
        swarm.make_packets()
        print(f"  {args.miners} distinct gradients made in {time.monotonic() - started:.1f} s", flush=True)
        result = asyncio.run(drive(net, swarm, args.windows, args.block_time, peaks))
        time.sleep(preset.protocol.blocks_per_window * args.block_time)   # the last window's verdicts
        checked = validator_windows(net, {r["window"] for r in result["rows"] if r["uploaded"]})
        memory = rss_mb(net.procs["v1"].pid)
        if memory:
            peaks.append(memory[1])
    finally:
        net.stop_all()
        if args.root is None:
            shutil.rmtree(root, ignore_errors=True)
    if not checked:
        print(f"{PROG}: error: the validator judged none of the uploaded windows", file=sys.stderr)
        return 1
    out = {"miners": args.miners, "window_s": preset.protocol.blocks_per_window * args.block_time,
           "uploads_checked_per_window": statistics.median(w["checked"] for w in checked),
           "validator_peak_rss_mb": round(max(peaks), 1) if peaks else None,
           "chain_calls_per_s": round(result["chain_calls_per_s"], 1),
           "block_interval_max_dev": round(result["block_interval_max_dev"], 3),
           "windows": {"miners": result["rows"], "validator": checked}}
    print(f"{'window':>6} {'checked':>7} {'ok':>4} {'fetch s':>7} {'agg delay s':>11} {'evaluated':>9}")
    for w in checked:
        print(f"{w['window']:>6} {w['checked']:>7} {w['ok']:>4} {w['fetch_s']:>7} {w['aggregate_delay_s']:>11} "
              f"{w['evaluated']:>9}")
    for key in ("miners", "window_s", "uploads_checked_per_window", "validator_peak_rss_mb", "chain_calls_per_s",
                "block_interval_max_dev"):
        print(f"{key}: {out[key]}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
