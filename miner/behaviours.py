"""Adversarial miners for tests and the local network (the `behaviour:` of a neuron in neurons.yaml).

Each kind replaces or alters the honest miner's upload of ``gradient-{window}-{uid}``:

  malformed   invalid payloads, a different one each window (behaviour_kinds.MALFORMED_VARIANTS): random bytes, a
              signed gradient cut short, a signed gradient whose values are not finite, one whose
              norm is far past the bound; refused by the validators' wire checks
  noisy       a valid signed gradient of Gaussian noise, of about an honest update's size
  copier      another miner's upload of the same window (`victim: NAME`), re-signed under the
              copier's hotkey and uid; with `noise: r` Gaussian noise of r x the update's RMS is
              added and the result compressed again, so neither bytes nor values match
  stale       trains honestly, but against the global model of `lag` versions ago while declaring
              the current model's hash (`StaleModel` keeps the old models)
  free_rider  trains nothing: uploads a valid, signed update of zeros, or noise of `scale`
  lazy        trains, but on random samples instead of its assigned ones
  late        trains honestly and uploads `delay_blocks` after its upload slot closed
  poisoner    trains honestly and uploads its update times `scale` (default -1: the update negated)
  sybil       one operator's work under two hotkeys (`twin: NAME` on both neurons): the pair's
              first name in sort order trains honestly and shares its upload with the other
              through a file (`SybilShare`); both claim and store it at the same moment

Every one signs correctly and declares what an honest miner would (the current model's hash, its
window and uid): what catches it must be a real check, not a label.
"""
from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from subnet.compression.codec import Packet, decode_packet, encode_tensors, packet_from_bytes
from subnet.compression.spec import CodecSpec
from subnet.files import atomic_write
from subnet.keys import Keypair
from subnet.model import Params
from subnet.wire.gradient import encode_gradient

DEFAULT_MALFORMED_SIZE = 4096  # bytes of the random variant
DEFAULT_NOISE_SCALE = 0.01     # per-element standard deviation, about a pseudo-gradient's size
HUGE_NORM_FACTOR = 1e6         # the huge_norm variant's values: far past any norm bound


def malformed_upload(variant: str, spec: CodecSpec, keypair: Keypair, window: int, uid: int,
                     base_model_hash: str, rng: np.random.Generator, size: int = DEFAULT_MALFORMED_SIZE) -> bytes:
    """An invalid payload of one kind (see `MALFORMED_VARIANTS`), signed where the kind allows."""
    if variant == "random_bytes":
        return rng.bytes(size)
    valid = noise_upload(spec, keypair, window, uid, base_model_hash, DEFAULT_NOISE_SCALE, rng)
    if variant == "truncated":
        return valid[: len(valid) // 2]
    packet = packet_from_bytes(valid, spec)
    factor = {"non_finite": math.nan, "huge_norm": HUGE_NORM_FACTOR}[variant]
    tensors = {name: replace(t, table=(t.table * np.float32(factor)).astype(np.float32))
               for name, t in packet.tensors.items()}
    return encode_gradient(Packet(codec=packet.codec, tensors=tensors, metadata={}), keypair, window, uid,
                           base_model_hash)


def noise_upload(spec: CodecSpec, keypair: Keypair, window: int, uid: int, base_model_hash: str,
                 scale: float, rng: np.random.Generator) -> bytes:
    """A signed gradient of N(0, scale^2) noise for every parameter, compressed like an honest one."""
    noise = {name: torch.from_numpy(rng.normal(0.0, scale, size=shape).astype(np.float32))
             for name, shape in spec.shapes.items()}
    packet, _ = encode_tensors(noise, spec.codec)
    return encode_gradient(packet, keypair, window, uid, base_model_hash)


def copy_upload(victim_object: bytes, spec: CodecSpec, keypair: Keypair, window: int, uid: int,
                base_model_hash: str, noise: float = 0.0, rng: np.random.Generator | None = None) -> bytes:
    """The victim's signed gradient re-signed as the copier's own: same streams, so the same top-k
    indices and values; with `noise` > 0 its decoded update plus N(0, (noise x RMS)^2) per element,
    compressed again. A malformed victim object raises the codec's `CodecError`."""
    victim = packet_from_bytes(victim_object, spec)
    if noise > 0:
        dense = decode_packet(victim)
        rng = rng if rng is not None else np.random.default_rng()
        nudged = {}
        for name, t in dense.items():
            rms = float(torch.sqrt((t.double() ** 2).mean())) if t.numel() else 0.0
            nudged[name] = t + torch.from_numpy(rng.normal(0.0, noise * rms, size=t.shape).astype(np.float32))
        packet, _ = encode_tensors(nudged, spec.codec)
    else:
        # Drop the victim's wire metadata (its hotkey, uid, signature); encode_gradient writes the copier's.
        packet = Packet(codec=victim.codec, tensors=victim.tensors, metadata={})
    return encode_gradient(packet, keypair, window, uid, base_model_hash)


class SybilShare:
    """How the two hotkeys of a sybil pair share one piece of work: the worker (the pair's first name)
    writes its signed upload and the moment both are to claim it into a directory both can read."""

    def __init__(self, directory: Path, worker: str):
        self.directory, self.worker = Path(directory), worker

    def _paths(self, window: int) -> tuple[Path, Path]:
        stem = self.directory / f"{self.worker}-{window}"
        return stem.with_suffix(".gradient"), stem.with_suffix(".json")

    def publish(self, window: int, data: bytes, claim_at: float) -> None:
        gradient, note = self._paths(window)
        self.directory.mkdir(parents=True, exist_ok=True)
        atomic_write(gradient, data)
        atomic_write(note, json.dumps({"claim_at": claim_at}))   # last: its presence means both are whole

    def read(self, window: int) -> tuple[bytes, float] | None:
        gradient, note = self._paths(window)
        try:
            claim_at = float(json.loads(note.read_text())["claim_at"])
            return gradient.read_bytes(), claim_at
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def prune(self, before_window: int) -> None:
        for path in self.directory.glob(f"{self.worker}-*.*"):
            window = path.stem.rsplit("-", 1)[-1]
            if window.isdigit() and int(window) < before_window:
                path.unlink(missing_ok=True)


def sybil_worker(name: str, twin: str) -> str:
    """Which of the pair trains: the first name in sort order."""
    return min(name, twin)


def free_rider_update(spec: CodecSpec, scale: float, rng: np.random.Generator) -> Params:
    """What a miner that trains nothing sends: zeros, or noise far below an honest update's size."""
    if scale == 0:
        return {name: torch.zeros(shape) for name, shape in spec.shapes.items()}
    return {name: torch.from_numpy(rng.normal(0.0, scale, size=shape).astype(np.float32))
            for name, shape in spec.shapes.items()}


def lazy_samples(rng: np.random.Generator, count: int, num_samples: int) -> list[int]:
    """Random sample ids in place of the assigned ones (the data a lazy miner happens to have)."""
    return [int(i) for i in rng.choice(num_samples, size=count, replace=False)]


def poisoned(update: Params, scale: float) -> Params:
    return {name: t * scale for name, t in update.items()}


class StaleModel:
    """The last global models, to train against the one ``lag`` versions ago (not windows: a
    skipped window keeps the model, and training on an unchanged model is honest work).

    ``push(version, theta)`` after each new global model (versions increasing, gaps allowed: a
    node that caught up skipped some); ``theta_for(version)`` is the newest model pushed for a
    version at most ``version - lag``, or the oldest one held while the history is still shorter.
    """

    def __init__(self, lag: int):
        if isinstance(lag, bool) or not isinstance(lag, int) or lag < 1:
            raise ValueError(f"lag must be an integer >= 1, got {lag!r}")
        self.lag = lag
        self._models: deque[tuple[int, Params]] = deque()

    def push(self, version: int, theta: Params) -> None:
        if self._models and version <= self._models[-1][0]:
            raise ValueError(f"version {version} pushed after version {self._models[-1][0]}")
        self._models.append((version, {name: t.detach().clone() for name, t in theta.items()}))
        # Keep the newest model old enough for this version and everything newer; later versions
        # never need an older one.
        while len(self._models) > 1 and self._models[1][0] <= version - self.lag:
            self._models.popleft()

    def theta_for(self, version: int) -> Params:
        if not self._models:
            raise KeyError("no global model pushed yet")
        chosen = self._models[0][1]
        for pushed, theta in self._models:
            if pushed > version - self.lag:
                break
            chosen = theta
        return chosen

    @property
    def versions(self) -> list[int]:
        """The versions whose models are held, oldest first."""
        return [version for version, _ in self._models]
