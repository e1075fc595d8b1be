#!/usr/bin/env python3
"""Signing figures per key scheme: what an ed25519 or sr25519 hotkey costs a neuron.

A validator verifies every miner's upload (and each aggregate part) every window, so verification
per object is the figure that scales with the subnet. Prints sign and verify time per 32-byte digest
(what objects are signed over), and a whole signed gradient's verify (header canonical form plus the
signature), for ed25519 (PyNaCl) and sr25519 (the Bittensor SDK's core).

  python bench/keys.py [--repeats 2000] [--json OUT]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from subnet.keys import ED25519, SR25519, CoreKeypair, Keypair, verify  # noqa: E402


def per_call_us(fn, repeats: int) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats * 1e6


def gradient_object(key) -> tuple[bytes, object]:
    """A tiny-preset gradient signed by `key`, and its expectation for decoding."""
    import torch

    from subnet.compression.codec import encode_tensors
    from subnet.compression.spec import CodecSpec
    from subnet.config import load_preset
    from subnet.wire.gradient import encode_gradient

    preset = load_preset("tiny")
    spec = CodecSpec.from_preset(preset)
    generator = torch.Generator().manual_seed(0)
    tensors = {name: torch.randn(shape, generator=generator) for name, shape in spec.shapes.items()}
    packet, _ = encode_tensors(tensors, preset.compression)
    return encode_gradient(packet, key, window=1, uid=1, base_model_hash="ab" * 32), spec


def measure(repeats: int) -> dict:
    from subnet.wire.signing import verify_safetensors

    digest = hashlib.sha256(b"tessera").digest()
    figures = {}
    for scheme, key in ((ED25519, Keypair.generate()), (SR25519, CoreKeypair.generate(SR25519))):
        signature = key.sign(digest)
        data, spec = gradient_object(key)
        figures[scheme] = {
            "sign_us": per_call_us(lambda: key.sign(digest), repeats),
            "verify_us": per_call_us(lambda: verify(key.public_key, digest, signature, scheme), repeats),
            "verify_gradient_us": per_call_us(
                lambda: verify_safetensors(data, spec.max_gradient_bytes, 1 << 16, key.address), max(repeats // 10, 1)),
            "gradient_bytes": len(data),
        }
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--json", type=Path, metavar="OUT")
    args = parser.parse_args(argv)
    figures = measure(args.repeats)
    table = Table(title="Signing per scheme (one core, per call)")
    for column in ("scheme", "sign (µs)", "verify digest (µs)", "verify signed tiny gradient (µs)", "gradient bytes"):
        table.add_column(column, justify="right")
    for scheme, f in figures.items():
        table.add_row(scheme, f"{f['sign_us']:.1f}", f"{f['verify_us']:.1f}", f"{f['verify_gradient_us']:.1f}",
                      f"{f['gradient_bytes']:,}")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
