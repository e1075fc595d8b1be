"""In-process training simulation: the compressed protocol against its baselines.

All five runs start from the same seeded model and read the same prepared data:
  compressed          N miners, H inner AdamW steps, error feedback + top-k + 2-bit, sparse outer step
  diloco              the same miners and H, dense pseudo-gradients, outer Nesterov SGD at the preset's
                      baseline settings (the best dense DiLoCo found by bench/parity.py)
  diloco_paper        the same at the DiLoCo paper's outer settings (lr 0.7, momentum 0.9, tuned for H = 500)
  adamw_same_compute  one AdamW worker, H steps per round on miner 0's samples (compute of one miner)
  adamw_same_tokens   one AdamW worker, H steps per round on all miners' samples at once (N x batch):
                      the centralised, data-parallel reference on the same tokens
Miners keep their own AdamW state across rounds (as in DiLoCo); each round they restart from the global
model and train on `assigned_samples(seed, round, uid)`.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

import math

from subnet.compression.codec import packet_stats, packet_to_bytes
from subnet.compression.spec import CodecSpec
from subnet.config import Preset
from subnet.data import TokenDataset
from subnet.keys import Keypair
from subnet.model import build_model, get_params, model_hash, set_params
from subnet.outer import NesterovOuter, mean_update
from subnet.protocol.window import aggregate_result, compress_update, inner_first_step, inner_phase
from subnet.sampler import assigned_samples
from subnet.train import eval_loss, inner_steps, make_optimizer
from subnet.wire.gradient import GradientExpectation, decode_gradient, encode_gradient

RUN_NAMES = ("compressed", "diloco", "diloco_paper", "adamw_same_compute", "adamw_same_tokens")
PAPER_DILOCO = (0.7, 0.9)   # DiLoCo (arXiv 2311.08105): outer Nesterov lr 0.7, momentum 0.9
Params = dict[str, torch.Tensor]
Progress = Callable[[str, int, int, float | None], None]


@dataclass
class RunResult:
    eval_loss: float
    bytes_per_round: int
    curve: list[tuple[int, float]] = field(default_factory=list)  # (round, held-out loss)
    seconds: float = 0.0


@dataclass
class SimResult:
    preset: str
    miners: int
    rounds: int
    inner_steps: int
    parameters: int
    initial_eval_loss: float
    runs: dict[str, RunResult]
    compression_ratio: float
    index_bits_per_value: float
    index_bits_floor: float
    signed_object_bytes: int = 0  # mean size of a signed gradient object (packet + metadata + signature)

    def to_json(self) -> dict:
        return {
            "preset": self.preset, "miners": self.miners, "rounds": self.rounds,
            "inner_steps": self.inner_steps, "parameters": self.parameters,
            "initial_eval_loss": self.initial_eval_loss,
            "runs": {name: asdict(run) for name, run in self.runs.items()},
            "compression_ratio": self.compression_ratio,
            "index_bits_per_value": self.index_bits_per_value,
            "index_bits_floor": self.index_bits_floor,
            "signed_object_bytes": self.signed_object_bytes,
        }


class Worker:
    """One training process: a model and its AdamW state."""

    def __init__(self, preset: Preset):
        self.model = build_model(preset.model, preset.seed)
        self.optimizer = make_optimizer(self.model, preset.train)

    def load(self, theta: Params) -> None:
        set_params(self.model, theta)

    def params(self) -> Params:
        return get_params(self.model)


def run_train_sim(preset: Preset, train: TokenDataset, val: TokenDataset, miners: int, rounds: int,
                  eval_samples: int = 256, eval_every: int = 0,
                  progress: Progress | None = None, runs: tuple[str, ...] = RUN_NAMES) -> SimResult:
    if miners < 1 or rounds < 1:
        raise ValueError("miners and rounds must be >= 1")
    if train.vocab_size > preset.model.vocab_size:
        raise ValueError(f"dataset vocabulary ({train.vocab_size}) exceeds the model's ({preset.model.vocab_size})")
    unknown = set(runs) - set(RUN_NAMES)
    if unknown:
        raise ValueError(f"unknown runs {sorted(unknown)}; choose from {RUN_NAMES}")
    report = progress or (lambda run, done, total, loss: None)
    H, B = preset.train.inner_steps, preset.train.batch_size
    per_window = preset.samples_per_window
    eval_every = eval_every or max(1, rounds // 10)
    val_ids = list(range(min(eval_samples, val.num_samples)))
    val_batches = [val.batch(val_ids[i:i + 32]) for i in range(0, len(val_ids), 32)]

    def miner_batches(round_index: int, uid: int) -> list[torch.Tensor]:
        return train.batches(assigned_samples(preset.seed, round_index, uid, per_window, train.num_samples), B)

    probe = Worker(preset)
    theta0 = probe.params()
    spec = CodecSpec({name: tuple(t.shape) for name, t in theta0.items()}, preset.compression)
    n_params = sum(t.numel() for t in theta0.values())
    initial_loss = eval_loss(probe.model, val_batches)

    def evaluate(theta: Params) -> float:
        probe.load(theta)
        return eval_loss(probe.model, val_batches)

    results: dict[str, RunResult] = {}
    signed_object_bytes = 0
    codec_stats = []

    def finish(name: str, curve: list, started: float, bytes_per_round: int) -> None:
        # `checkpoint` always evaluates the last round, so the curve ends with the final loss.
        results[name] = RunResult(eval_loss=curve[-1][1], bytes_per_round=bytes_per_round, curve=curve,
                                  seconds=time.perf_counter() - started)

    def checkpoint(name: str, theta: Params, r: int, curve: list) -> None:
        loss = None
        if (r + 1) % eval_every == 0 or r + 1 == rounds:
            loss = evaluate(theta)
            curve.append((r + 1, loss))
        report(name, r + 1, rounds, loss)

    def miner_deltas(workers: list[Worker], theta: Params, r: int) -> list[Params]:
        """Each miner's inner phase of window r from theta (every round has an aggregate, so the
        version is r): its pseudo-gradient theta - local."""
        first_step = inner_first_step(r, preset.train)
        return [inner_phase(worker.model, worker.optimizer, theta, miner_batches(r, uid), preset.train,
                            first_step).pseudo_gradient
                for uid, worker in enumerate(workers)]

    if "compressed" in runs:
        # The protocol's own path: compress, sign, check as a validator does, aggregate.
        started = time.perf_counter()
        workers = [Worker(preset) for _ in range(miners)]
        keys = [Keypair.from_seed(bytes([uid % 256]) * 32) for uid in range(miners)]
        errors = [{n: torch.zeros_like(t) for n, t in theta0.items()} for _ in range(miners)]
        theta, curve, sizes, signed_sizes = dict(theta0), [], [], []
        for r in range(rounds):
            base = model_hash(theta)
            gradients = []
            for uid, delta in enumerate(miner_deltas(workers, theta, r)):
                errors[uid], packet = compress_update(errors[uid], delta, preset.compression)
                wire = encode_gradient(packet, keys[uid], r, uid, base)
                packet_bytes = len(packet_to_bytes(packet))  # the codec's size, as compression_ratio counts it
                sizes.append(packet_bytes)
                signed_sizes.append(len(wire))
                gradient = decode_gradient(wire, spec, GradientExpectation(
                    window=r, uid=uid, hotkey=keys[uid].address, base_model_hash=base, norm_bound=math.inf))
                codec_stats.append(packet_stats(gradient.packet, packet_bytes))
                gradients.append(gradient)
            theta = aggregate_result(theta, gradients, preset.outer.lr)
            checkpoint("compressed", theta, r, curve)
        finish("compressed", curve, started, round(sum(sizes) / len(sizes)))
        signed_object_bytes = round(sum(signed_sizes) / len(signed_sizes))

    for name, (outer_lr, momentum) in (("diloco", (preset.baseline.diloco_lr, preset.baseline.diloco_momentum)),
                                       ("diloco_paper", PAPER_DILOCO)):
        if name not in runs:
            continue
        started = time.perf_counter()
        workers = [Worker(preset) for _ in range(miners)]
        outer = NesterovOuter(outer_lr, momentum)
        theta, curve = dict(theta0), []
        for r in range(rounds):
            theta = outer.step(theta, mean_update(miner_deltas(workers, theta, r)))
            checkpoint(name, theta, r, curve)
        finish(name, curve, started, 4 * n_params)

    for name, batches_for in (
        ("adamw_same_compute", lambda r: miner_batches(r, 0)),
        ("adamw_same_tokens", lambda r: [torch.cat(step) for step in
                                         zip(*(miner_batches(r, uid) for uid in range(miners)))]),
    ):
        if name not in runs:
            continue
        started = time.perf_counter()
        worker, curve = Worker(preset), []
        for r in range(rounds):
            inner_steps(worker.model, worker.optimizer, batches_for(r), preset.train,
                        first_step=inner_first_step(r, preset.train))
            checkpoint(name, worker.params(), r, curve)
        finish(name, curve, started, 0)

    if codec_stats:
        ratio = sum(s.dense_fp32_bytes for s in codec_stats) / sum(s.packet_bytes for s in codec_stats)
        kept = sum(s.kept_values for s in codec_stats)
        index_bits = sum(s.index_bits for s in codec_stats) / kept
        floor = sum(s.index_floor_bits for s in codec_stats) / kept
    else:
        ratio = index_bits = floor = float("nan")
    return SimResult(preset=preset.name, miners=miners, rounds=rounds, inner_steps=H, parameters=n_params,
                     initial_eval_loss=initial_loss, runs=results, compression_ratio=ratio,
                     index_bits_per_value=index_bits, index_bits_floor=floor,
                     signed_object_bytes=signed_object_bytes)
