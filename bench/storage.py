"""Storage and wire-format figures (printed, never asserted).

    python bench/storage.py [--quick] [--skip-decode] [--skip-fuzz] [--fuzz N]

1. Client throughput against raw boto3 on the same embedded SeaweedFS, for 1 MB and 100 MB
   objects (median of several runs; ratio = client MB/s / raw boto3 MB/s; target >= 0.9).
2. Decoding a gradient payload for the 150M-parameter preset (base150m): signature, checks and the
   dense scatter, and the checks alone (target < 1 s).
3. The decoder fuzz of tests/test_wire.py: count, crashes, acceptances of a changed payload and the
   histogram of rejection reasons.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import torch  # noqa: E402
from botocore.config import Config  # noqa: E402

from subnet.storage.client import StorageClient  # noqa: E402
from subnet.storage.s3config import S3Config  # noqa: E402
from subnet.storage.seaweed import SeaweedServer, load_or_create_layout  # noqa: E402

MB = 1_000_000


def _median_seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_throughput(quick: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        layout = load_or_create_layout(Path(tmp), ["bench"])
        owner = layout.owner("bench")
        with SeaweedServer(Path(tmp), layout, stop_timeout=3.0) as server:
            raw = boto3.session.Session().client(
                "s3", endpoint_url=server.endpoint, aws_access_key_id=owner.write.access_key,
                aws_secret_access_key=owner.write.secret_key, region_name="us-east-1",
                config=Config(s3={"addressing_style": "path"}))
            ours = StorageClient(S3Config(server.endpoint, owner.write.access_key, owner.write.secret_key))
            bucket = owner.bucket
            print("client throughput vs raw boto3 (same SeaweedFS, median of runs)")
            print(f"{'size':>8} {'op':<9} {'raw MB/s':>9} {'client MB/s':>12} {'ratio':>6}")
            order = random.Random(0)
            for size, repeats in ((1 * MB, 5 if quick else 25), (100 * MB, 2 if quick else 7)):
                data = os.urandom(size)
                raw.put_object(Bucket=bucket, Key="warm", Body=data)  # warm volumes and connections
                ours.put(bucket, "warm2", data)
                runs = {"raw_put": lambda: raw.put_object(Bucket=bucket, Key="raw", Body=data),
                        "our_put": lambda: ours.put(bucket, "ours", data),
                        "raw_get": lambda: raw.get_object(Bucket=bucket, Key="raw")["Body"].read(),
                        "our_get": lambda: ours.get(bucket, "ours", size)}
                times = {name: [] for name in runs}
                # Raw and client runs in pairs, in random order, so drift on a shared machine hits both.
                for phase in ("put", "get"):
                    for _ in range(repeats):
                        pair = [f"raw_{phase}", f"our_{phase}"]
                        order.shuffle(pair)
                        for name in pair:
                            times[name].append(_median_seconds(runs[name], 1))
                raw_put, our_put, raw_get, our_get = (times[n] for n in ("raw_put", "our_put", "raw_get", "our_get"))
                for op, base, mine in (("upload", raw_put, our_put), ("download", raw_get, our_get)):
                    raw_rate = size / MB / statistics.median(base)
                    our_rate = size / MB / statistics.median(mine)
                    print(f"{size // MB:>6}MB {op:<9} {raw_rate:>9.1f} {our_rate:>12.1f} {our_rate / raw_rate:>6.2f}")


def bench_decode() -> None:
    import math

    from subnet.compression.codec import encode_tensors
    from subnet.compression.spec import CodecSpec
    from subnet.config import load_preset
    from subnet.keys import Keypair
    from subnet.wire.gradient import GradientExpectation, decode_gradient, encode_gradient

    preset = load_preset("base150m")
    spec = CodecSpec.from_preset(preset)
    total = sum(torch.Size(s).numel() for s in spec.shapes.values())
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    tensors = {name: torch.randn(shape, generator=generator) for name, shape in spec.shapes.items()}
    packet, _ = encode_tensors(tensors, preset.compression)
    del tensors
    miner = Keypair.generate()
    data = encode_gradient(packet, miner, 1, 0, "ab" * 32)
    # What a validator checks: its window, uid, hotkey and model; the figure is the checks' cost,
    # so no norm bound (one comparison either way).
    expect = GradientExpectation(window=1, uid=0, hotkey=miner.address, base_model_hash="ab" * 32,
                                 norm_bound=math.inf)
    print(f"\ngradient for base150m ({total / 1e6:.1f}M parameters): {len(data) / MB:.2f} MB "
          f"(limit {spec.max_gradient_bytes / MB:.1f} MB), encoded in "
          f"{time.perf_counter() - start:.1f} s")
    check = _median_seconds(lambda: decode_gradient(data, spec, expect), 3)
    full = _median_seconds(lambda: decode_gradient(data, spec, expect).dense(), 3)
    print(f"decode (signature + all checks, no scatter): {check:.3f} s")
    print(f"decode (checks + dense tensors):             {full:.3f} s   target < 1 s; "
          f"torch threads {torch.get_num_threads()}")


def bench_fuzz(count: int) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_wire import make_setup, run_fuzz

    with tempfile.TemporaryDirectory() as tmp:
        marker = Path(tmp) / "pwned"
        start = time.perf_counter()
        result = run_fuzz(make_setup(), count, seed=2026, marker=str(marker))
        elapsed = time.perf_counter() - start
        executed = marker.exists()
    print(f"\nfuzz: {result['count']} mutated gradient payloads in {elapsed:.1f} s: "
          f"{len(result['crashes'])} crashes, {result['changed_accepted']} changed payloads accepted, "
          f"{len(result['wrong_reason'])} structural mutants with an unexpected reason, "
          f"pickle executed: {executed}")
    for reason, n in sorted(result["reasons"].items(), key=lambda item: -item[1]):
        print(f"  {reason:<24} {n:>6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-decode", action="store_true")
    parser.add_argument("--skip-fuzz", action="store_true")
    parser.add_argument("--fuzz", type=int, default=10_000, help="mutations (default 10000)")
    args = parser.parse_args()
    if not args.skip_throughput:
        bench_throughput(args.quick)
    if not args.skip_decode:
        bench_decode()
    if not args.skip_fuzz:
        bench_fuzz(args.fuzz)


if __name__ == "__main__":
    main()
