"""Adversarial miners for tests and the local network (the `behaviour:` of a neuron in neurons.yaml).

Each kind replaces the honest miner's upload; every upload function returns the bytes to store as
``gradient-{window}-{uid}``:

  garbage  random bytes: refused by the validators' wire checks
  noise    a valid signed gradient of Gaussian noise: passes every wire check, should score badly
  copycat  another miner's upload of the same window, re-signed under the copier's hotkey and uid
  stale    trains honestly, but against the global model of `lag` versions ago while declaring the
           current model's hash (`StaleModel` keeps the old models)
  free_rider  trains nothing: uploads a valid, signed update of zeros, or noise of `scale`
  lazy     trains, but on random samples instead of its assigned ones
  late     trains honestly and uploads `delay_blocks` after its upload slot closed
  poisoner trains honestly and uploads its update times `scale` (default -1: the update negated)

Every one signs correctly and declares what an honest miner would (the current model's hash, its
window and uid): what catches it must be a real check, not a label.
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np
import torch

from subnet.compression.codec import Packet, encode_tensors, packet_from_bytes
from subnet.compression.spec import CodecSpec
from subnet.keys import Keypair
from subnet.model import Params
from subnet.wire.gradient import encode_gradient

BEHAVIOURS = frozenset({"garbage", "noise", "copycat", "stale", "free_rider", "lazy", "late", "poisoner"})

DEFAULT_GARBAGE_SIZE = 4096    # bytes
DEFAULT_NOISE_SCALE = 0.01     # per-element standard deviation, about a pseudo-gradient's size

# Parameters each kind accepts, and whether it requires them.
_PARAMS = {"garbage": {"size": False}, "noise": {"scale": False}, "copycat": {"victim": True},
           "stale": {"lag": True}, "free_rider": {"scale": False}, "lazy": {}, "late": {"delay_blocks": False},
           "poisoner": {"scale": False}}


def garbage_bytes(rng: np.random.Generator, size: int) -> bytes:
    """``size`` random bytes."""
    return rng.bytes(size)


def noise_upload(spec: CodecSpec, keypair: Keypair, window: int, uid: int, base_model_hash: str,
                 scale: float, rng: np.random.Generator) -> bytes:
    """A signed gradient of N(0, scale^2) noise for every parameter, compressed like an honest one."""
    noise = {name: torch.from_numpy(rng.normal(0.0, scale, size=shape).astype(np.float32))
             for name, shape in spec.shapes.items()}
    packet, _ = encode_tensors(noise, spec.codec)
    return encode_gradient(packet, keypair, window, uid, base_model_hash)


def copy_upload(victim_object: bytes, spec: CodecSpec, keypair: Keypair, window: int, uid: int,
                base_model_hash: str) -> bytes:
    """The victim's signed gradient re-signed as the copier's own: same streams, so the same top-k
    indices and values. A malformed victim object raises the codec's `CodecError`."""
    victim = packet_from_bytes(victim_object, spec)
    # Drop the victim's wire metadata (its hotkey, uid, signature); encode_gradient writes the copier's.
    packet = Packet(codec=victim.codec, tensors=victim.tensors, metadata={})
    return encode_gradient(packet, keypair, window, uid, base_model_hash)


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


def _finite_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _positive_number(value: object) -> bool:
    return _finite_number(value) and value > 0


def _positive_int(value: object, minimum: int = 1) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= minimum


def check_behaviour(kind: str, params: dict[str, object]) -> None:
    """Refuse an unknown kind, a missing or unknown parameter, or a value of the wrong type."""
    if kind not in BEHAVIOURS:
        raise ValueError(f"behaviour kind {kind!r} is not one of {', '.join(sorted(BEHAVIOURS))}")
    accepted = _PARAMS[kind]
    for name in params:
        if name not in accepted:
            known = ", ".join(sorted(accepted))
            raise ValueError(f"behaviour {kind!r}: unknown parameter {name!r} (known: {known})")
    for name, required in accepted.items():
        if required and name not in params:
            raise ValueError(f"behaviour {kind!r}: missing parameter {name!r}")
    if kind == "copycat" and not (isinstance(params["victim"], str) and params["victim"]):
        raise ValueError(f"behaviour 'copycat': victim must be a neuron name, got {params['victim']!r}")
    if kind == "stale" and not _positive_int(params["lag"]):
        raise ValueError(f"behaviour 'stale': lag must be an integer >= 1, got {params['lag']!r}")
    if kind == "noise" and "scale" in params and not _positive_number(params["scale"]):
        raise ValueError(f"behaviour 'noise': scale must be a finite number > 0, got {params['scale']!r}")
    if kind == "free_rider" and "scale" in params and not (_finite_number(params["scale"]) and params["scale"] >= 0):
        raise ValueError(f"behaviour 'free_rider': scale must be a finite number >= 0, got {params['scale']!r}")
    if kind == "late" and "delay_blocks" in params and not _positive_int(params["delay_blocks"]):
        raise ValueError(f"behaviour 'late': delay_blocks must be an integer >= 1, got {params['delay_blocks']!r}")
    if kind == "poisoner" and "scale" in params and not (_finite_number(params["scale"]) and params["scale"] != 1):
        raise ValueError(f"behaviour 'poisoner': scale must be a finite number other than 1, got {params['scale']!r}")
    if kind == "garbage" and "size" in params and not _positive_int(params["size"]):
        raise ValueError(f"behaviour 'garbage': size must be an integer > 0, got {params['size']!r}")
