"""Real miners and validators on one machine: utilisation, agreement and aggregation delay (printed,
never asserted).

    python bench/neurons.py --preset tiny --miners 4 --validators 2 --windows 8 --json OUT
                            [--block-time S|auto] [--root DIR] [--threads N] [--time-limit S]

Starts `subnet storage`, `subnet chain`, the validators (staked; the first with the most stake, so it
leads) and the miners through `subnet.localnet.LocalNetwork`, waits until every miner has logged
`--windows` windows after its first one, stops everything and summarises the metrics.jsonl files.

`--block-time auto` sizes the window to the miners' training on this machine: one window's inner
phase (plus compression, the validator's outer step and the follower's apply) is timed in-process
with the same thread count, training is scaled by the expected CPU contention (every process shares
the cores), and the window is train / 0.92 plus the part of the expected aggregation delay that
training ahead does not hide, plus the upload intent's wait (target: miner utilisation >= 0.90).
Utilisation = sum of train_s over the windows after a miner's first / the wall-clock time those
windows took (from the moment the bench saw window 1's metrics line to the moment it saw the last
one's).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from subnet.config import Preset, ProtocolConfig, load_preset  # noqa: E402
from subnet.protocol import clock  # noqa: E402

PROG = "neurons.py"
UTILISATION_TARGET = 0.92    # the window is sized so training fills this share of it (target >= 0.90)
MIN_BLOCK_TIME = 0.1         # the chain handles about 20 blocks/s
POLL_S = 0.1                 # subnet/node/boot.py wait_for_block and follow.py POLL_SECONDS
# Storage and chain round trips, measured on this machine with 4 miners + 2 validators (tiny):
VALIDATOR_IO_S = 0.1         # fetch every gradient, store aggregate + manifest (aggregate_delay_s 0.05-0.19 s)
MINER_IO_S = 0.2             # metagraph refresh, aggregate fetch, the lead's scores, metagraph (~0.1 s of wall_s)
DEADLINE_SAFETY = 1.5        # the aggregate must land within aggregate_deadline_blocks: keep a margin for load
VALIDATOR_EVAL_SHARE = 0.5   # validators evaluate for about half of the miners' training (evaluate_s / train_s)
LEAD_STAKE_TAO, OTHER_STAKE_TAO = 300.0, 100.0
METRICS_POLL_S = 0.05
INTENT_WAIT_S = 0.5          # miner/loop.py: after the upload intent, wait into the next whole second


# --- calibration ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Calibration:
    train_s: float        # one window's inner phase, alone, median of a few runs
    compress_s: float     # error feedback + top-k + encode
    aggregate_s: float    # validator: decode every miner's gradient, outer step, encode the aggregate
    apply_s: float        # follower: decode the aggregate and apply it
    contention: float     # expected slow-down of each process's compute while all of them share the cores

    @property
    def window_train_s(self) -> float:
        """Training + compression of one window as the miners will see it."""
        return (self.train_s + self.compress_s) * self.contention

    @property
    def aggregation_delay_s(self) -> float:
        """Upload slot closed -> a miner starts the next window's training: the validator notices the
        block (<= 1 poll), aggregates and stores; the miner notices (<= 1 poll), fetches and applies it,
        reads scores and the metagraph, once a block proves the aggregate was stored in time (S3 stamps
        whole seconds: up to a second more). Validators aggregate while miners wait: no contention."""
        return (2 * POLL_S + VALIDATOR_IO_S + MINER_IO_S + self.aggregate_s + self.apply_s
                + clock.STORAGE_TIME_RESOLUTION_S)

    @property
    def validator_deadline_s(self) -> float:
        """Upload slot closed -> the lead's aggregate is stored (it notices the slot's close up to one
        poll late) a whole stamp second before the deadline's end (`clock.stored_before`); this must fit
        in aggregate_deadline_blocks, or every node refuses it as late."""
        return (POLL_S + VALIDATOR_IO_S + self.aggregate_s) * DEADLINE_SAFETY + clock.STORAGE_TIME_RESOLUTION_S


def expected_contention(miners: int, validators: int, threads: int, cores: int) -> float:
    """Miners train at the same moment (right after the aggregate lands) while validators evaluate:
    that many busy threads on `cores` cores. Measured on tiny (4 + 2 on 2 cores): 2.3-2.9x the lone run."""
    return max(1.0, (miners + VALIDATOR_EVAL_SHARE * validators) * threads / max(cores, 1))


def pick_block_time(cal: Calibration, p: ProtocolConfig) -> tuple[float, str]:
    """(block time, what bounds it): blocks_per_window x block_time = training / UTILISATION_TARGET +
    aggregation delay, unless the validator's aggregate deadline or the chain's rate needs longer."""
    # Miners train ahead while the aggregate is on its way (miner/overlap.py), up to half the
    # window's steps; only the part of the wait longer than that is lost. Plus the upload intent's
    # wait into the next whole second (half a second on average).
    hidden = cal.window_train_s / 2
    window_s = (cal.window_train_s / UTILISATION_TARGET + max(0.0, cal.aggregation_delay_s - hidden)
                + INTENT_WAIT_S)
    options = [(window_s / p.blocks_per_window, "training"),
               (cal.validator_deadline_s / p.aggregate_deadline_blocks, "aggregate deadline"),
               (MIN_BLOCK_TIME, "chain rate")]
    return max(options)


def calibrate(preset: Preset, data: Path, threads: int, miners: int, validators: int, repeats: int = 3) -> Calibration:
    """Time one window's compute in this process, with `threads` torch threads, on the prepared data."""
    import torch

    from subnet.compression.spec import CodecSpec
    from subnet.data import TokenDataset
    from subnet.keys import Keypair
    from subnet.model import build_model, get_params, model_hash
    from subnet.protocol.window import aggregate_result, apply_aggregate, compress_update, inner_phase
    from subnet.sampler import assigned_samples
    from subnet.train import make_optimizer
    from subnet.wire.aggregate import GENESIS_PREV, AggregateExpectation, decode_aggregate, encode_aggregate
    from subnet.wire.gradient import GradientExpectation, decode_gradient, encode_gradient

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        spec = CodecSpec.from_preset(preset)
        train = TokenDataset(data, "train", preset.model.seq_len)
        model = build_model(preset.model, preset.seed)
        optimizer = make_optimizer(model, preset.train)
        theta = get_params(model)
        base = model_hash(theta)
        error = {n: torch.zeros(s) for n, s in spec.shapes.items()}
        keys = [Keypair.generate() for _ in range(max(miners, 1))]
        train_times, compress_times, objects = [], [], []
        for w in range(repeats + 1):  # the first run warms up and is not counted
            ids = assigned_samples(preset.seed, w, 1, preset.samples_per_window, train.num_samples)
            batches = list(train.batches(ids, preset.train.batch_size))
            started = time.perf_counter()
            result = inner_phase(model, optimizer, theta, batches, preset.train, w * preset.train.inner_steps)
            trained = time.perf_counter()
            error, packet = compress_update(error, result.pseudo_gradient, preset.compression)
            obj = encode_gradient(packet, keys[w % len(keys)], 0, w % len(keys), base)
            if w:
                train_times.append(trained - started)
                compress_times.append(time.perf_counter() - trained)
            objects.append((w % len(keys), obj))
        uploads = {uid: obj for uid, obj in objects}  # one per miner uid (the later wins)
        started = time.perf_counter()
        gradients = [decode_gradient(obj, spec, GradientExpectation(window=0, uid=uid, hotkey=keys[uid].address,
                                                                    base_model_hash=base, norm_bound=math.inf))
                     for uid, obj in sorted(uploads.items())]
        new_theta = aggregate_result(theta, gradients, preset.outer.lr)
        lead = Keypair.generate()
        aggregate = encode_aggregate(0, [uploads[u] for u in sorted(uploads)], lead, base_model_hash=base,
                                     result_model_hash=model_hash(new_theta), prev_aggregate_sha256=GENESIS_PREV)
        aggregate_s = time.perf_counter() - started
        started = time.perf_counter()
        decoded = decode_aggregate(aggregate, spec, AggregateExpectation(
            window=0, hotkey=lead.address, base_model_hash=base, prev_aggregate_sha256=GENESIS_PREV,
            max_parts=max(len(uploads), 1), norm_bound=math.inf))
        apply_aggregate(theta, decoded, preset.outer.lr)
        apply_s = time.perf_counter() - started
    finally:
        torch.set_num_threads(previous)
    return Calibration(train_s=statistics.median(train_times), compress_s=statistics.median(compress_times),
                       aggregate_s=aggregate_s, apply_s=apply_s,
                       contention=expected_contention(miners, validators, threads, os.cpu_count() or 1))


# --- summarising (pure) --------------------------------------------------------------------------

def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def summarise_miner(lines: list[dict], windows: int) -> dict:
    """A miner's figures over its first `windows` windows after its first one. Lines carry
    `observed_at` (seconds, when the bench read them); without it the span falls back to the
    windows' own idle_s + wall_s (which leaves out the loop's bookkeeping between windows)."""
    if not lines:
        return {"utilisation": 0.0, "idle_s": 0.0, "wait_aggregate_s": 0.0, "upload_s": 0.0,
                "alpha_stake_start": 0, "alpha_stake_end": 0, "windows_measured": 0, "train_s": 0.0,
                "missed_upload_slot": 0}
    measured = lines[1:windows + 1]
    train = sum(float(line.get("train_s", 0.0)) for line in measured)
    if measured and "observed_at" in lines[0] and "observed_at" in measured[-1]:
        span = float(measured[-1]["observed_at"]) - float(lines[0]["observed_at"])
    else:
        span = sum(float(line.get("idle_s", 0.0)) + float(line.get("wall_s", 0.0)) for line in measured)
    last = measured[-1] if measured else lines[0]
    return {
        "utilisation": train / span if span > 0 else 0.0,
        "idle_s": _mean([float(line.get("idle_s", 0.0)) for line in measured]),
        "wait_aggregate_s": _mean([float(line.get("wait_aggregate_s", 0.0)) for line in measured]),
        "upload_s": _mean([float(line.get("upload_s", 0.0)) for line in measured]),
        "alpha_stake_start": int(lines[0].get("alpha_stake", 0)),
        "alpha_stake_end": int(last.get("alpha_stake", 0)),
        "windows_measured": len(measured),
        "train_s": _mean([float(line.get("train_s", 0.0)) for line in measured]),
        "missed_upload_slot": sum("missed the upload slot" in str(line.get("note", "")) for line in measured),
    }


def measured_windows(miner_lines: dict[str, list[dict]], windows: int) -> list[int]:
    """Windows in which every miner was already past its first window, up to the last one measured
    for the miner that started last."""
    firsts = [lines[0]["window"] for lines in miner_lines.values() if lines]
    lasts = [lines[min(windows, len(lines) - 1)]["window"] for lines in miner_lines.values() if lines]
    if not firsts:
        return []
    return list(range(max(firsts) + 1, max(lasts) + 1))


def summarise(preset: str, window_s: float, miner_lines: dict[str, list[dict]],
              validator_lines: dict[str, list[dict]], lead: str, validator_of_uid: dict[int, str],
              windows: int) -> dict:
    """The benchmark's JSON from the metrics lines of every node. `lead` names the validator whose
    held_out_loss is the global loss; `validator_of_uid` maps an aggregate_from uid to a validator."""
    span = measured_windows(miner_lines, windows)
    by_window = {name: {line["window"]: line for line in lines} for name, lines in
                 [*miner_lines.items(), *validator_lines.items()]}
    rows, lead_missing = [], []
    for w in span:
        lead_line = by_window.get(lead, {}).get(w)
        if lead_line is None:
            lead_missing.append(w)  # no global loss: the lead was catching up (or not yet up)
            continue
        hashes = [by_window[name].get(w, {}).get("model_hash") for name in miner_lines]
        hashes += [by_window[name].get(w, {}).get("result_hash") for name in validator_lines]
        chosen_uid = lead_line.get("aggregate_from")
        chosen = validator_of_uid.get(chosen_uid) if chosen_uid is not None else None
        chosen_line = by_window.get(chosen, {}).get(w) if chosen is not None else None
        delay = chosen_line.get("aggregate_delay_s") if chosen_line else None
        rows.append({
            "window": w,
            "global_loss": float(lead_line.get("held_out_loss") or 0.0),
            "hashes_equal": bool(hashes) and None not in hashes and "" not in hashes and len(set(hashes)) == 1,
            # A skipped window (no aggregate chosen) has no delay; it is flagged by `skipped` and reports 0.
            "aggregate_delay_s": float(delay) if delay is not None else 0.0,
            "aggregate_from": chosen if chosen is not None else (None if chosen_uid is None else f"uid {chosen_uid}"),
            "peers": list(chosen_line.get("peers", [])) if chosen_line else [],
            "skipped": chosen_uid is None,
        })
    validators = {}
    for name, lines in validator_lines.items():
        inside = [line for line in lines if line["window"] in set(span)] or lines
        evaluated = sum(len(line.get("evaluated", [])) for line in inside)
        validators[name] = {
            "evaluated_per_window": _mean([len(line.get("evaluated", [])) for line in inside]),
            "forward_passes_per_evaluated_miner": (sum(int(line.get("forward_passes", 0)) for line in inside)
                                                   / evaluated if evaluated else 0.0),
            "weights_set": sum(bool(line.get("weights_set")) for line in inside),
            "windows_logged": len(inside),
        }
    return {"preset": preset, "window_s": window_s, "windows": rows, "windows_without_lead": lead_missing,
            "miners": {name: summarise_miner(lines, windows) for name, lines in miner_lines.items()},
            "validators": validators}


# --- running the network -------------------------------------------------------------------------

class MetricsTail:
    """Reads the complete lines appended to one metrics.jsonl, stamping each with when it was seen."""

    def __init__(self, path: Path, started: float):
        self.path, self.started, self.offset, self.lines = path, started, 0, []

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n") + 1
        now = time.monotonic() - self.started
        for raw in chunk[:end].splitlines():
            if raw.strip():
                line = json.loads(raw)
                line["observed_at"] = now
                self.lines.append(line)
        self.offset += end


async def _validator_uids(chain_url: str, netuid: int, hotkeys: dict[str, str]) -> dict[int, str]:
    """uid -> validator name, from the chain's metagraph and the wallets' hotkeys."""
    from subnet.chain.client import ChainClient

    async with ChainClient(chain_url) as chain:
        mg = await chain.metagraph(netuid)
    return {uid: hotkeys[hk] for uid, hk in zip(mg.uids, mg.hotkeys) if hk in hotkeys}


async def _staked(chain_url: str, netuid: int, hotkeys: set[str]) -> bool:
    from subnet.chain.client import ChainClient

    async with ChainClient(chain_url) as chain:
        mg = await chain.metagraph(netuid)
    stake = dict(zip(mg.hotkeys, mg.stake))
    return all(stake.get(hk, 0) > 0 for hk in hotkeys)


@dataclass
class RunResult:
    miner_lines: dict[str, list[dict]]
    validator_lines: dict[str, list[dict]]
    validator_of_uid: dict[int, str]
    complete: bool
    problem: str = ""


def run_network(root: Path, preset: str, data: Path, miners: int, validators: int, windows: int,
                block_time: float, window_s: float, threads: int, time_limit: float, say) -> RunResult:
    from subnet.localnet import LocalNetwork, NeuronSpec
    from subnet.wallet import load_wallet

    validator_names = [f"validator{i + 1}" for i in range(validators)]
    miner_names = [f"miner{i + 1}" for i in range(miners)]
    specs = [NeuronSpec(name, "validator", stake=LEAD_STAKE_TAO if i == 0 else OTHER_STAKE_TAO)
             for i, name in enumerate(validator_names)]
    specs += [NeuronSpec(name, "miner") for name in miner_names]
    net = LocalNetwork(root, specs, block_time=block_time, preset=preset, data=data, threads=threads)
    started = time.monotonic()
    deadline = started + time_limit
    tails = {name: MetricsTail(net.state_dir(name) / "metrics.jsonl", started)
             for name in validator_names + miner_names}
    complete, problem, uids = False, "", {}
    try:
        net.start_infrastructure()
        say(f"chain and storage up after {time.monotonic() - started:.1f} s; starting validators")
        hotkeys = {load_wallet(name, net.wallet_dir).hotkey.address: name for name in validator_names}
        # One at a time: a later stake buys alpha at a higher price, so staking order decides the lead.
        for name in validator_names:
            net.start_neuron(name)
            hotkey = load_wallet(name, net.wallet_dir).hotkey.address
            while not asyncio.run(_staked(net.chain_url, 1, {hotkey})):
                if net.procs[name].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not stake; see {net.log_path(name)}")
                time.sleep(0.2)
        say(f"validators staked after {time.monotonic() - started:.1f} s; starting miners")
        for name in miner_names:
            net.start_neuron(name)
        while True:
            for tail in tails.values():
                tail.poll()
            if all(len(tails[n].lines) >= windows + 1 for n in miner_names):
                complete = True
                break
            dead = [n for n in validator_names + miner_names if net.procs[n].poll() is not None]
            if dead:
                problem = f"{', '.join(dead)} exited; see {root / 'logs'}"
                break
            if time.monotonic() > deadline:
                have = ", ".join(f"{n} {max(len(tails[n].lines) - 1, 0)}" for n in miner_names)
                problem = f"time limit {time_limit:.0f} s reached (windows after the first: {have})"
                break
            time.sleep(METRICS_POLL_S)
        if complete:
            # Validators log a window after evaluating it, during the next one: let them finish the last.
            last = max(tails[n].lines[windows]["window"] for n in miner_names)
            grace = time.monotonic() + 2 * window_s
            while time.monotonic() < grace and not all(
                    tails[n].lines and tails[n].lines[-1]["window"] >= last for n in validator_names):
                time.sleep(METRICS_POLL_S)
                for name in validator_names:
                    tails[name].poll()
        uids = asyncio.run(_validator_uids(net.chain_url, 1, hotkeys))
    except (RuntimeError, OSError) as exc:  # a process that never came up, the chain gone
        problem = str(exc)
    finally:
        net.stop_all()
    for tail in tails.values():
        tail.poll()
    return RunResult({n: tails[n].lines for n in miner_names}, {n: tails[n].lines for n in validator_names},
                     uids, complete, problem)


# --- output --------------------------------------------------------------------------------------

def print_report(report: dict, calibration: Calibration | None, block_time: float) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 150)
    head = (f"preset {report['preset']}: window {report['window_s']:.2f} s (block time {block_time:.3f} s, "
            f"bound by {report['block_time_bound']})")
    if calibration is not None:
        head += (f"; calibrated train {calibration.train_s:.3f} s + compress {calibration.compress_s:.3f} s alone, "
                 f"contention x{calibration.contention:.1f}, aggregate {calibration.aggregate_s:.3f} s, "
                 f"apply {calibration.apply_s:.3f} s; expected delay {calibration.aggregation_delay_s:.2f} s")
    console.print(head)
    table = Table(title="windows")
    for col in ("window", "global loss", "hashes equal", "aggregate from", "delay s", "peers"):
        table.add_column(col, justify="right")
    for row in report["windows"]:
        table.add_row(str(row["window"]), f"{row['global_loss']:.4f}", "yes" if row["hashes_equal"] else "NO",
                      str(row["aggregate_from"] or "skipped"), f"{row['aggregate_delay_s']:.2f}",
                      ",".join(map(str, row["peers"])))
    console.print(table)
    if report.get("windows_without_lead"):
        console.print(f"no figures from the lead for windows {report['windows_without_lead']} (it was catching up, or was stopped first)")
    table = Table(title="miners (windows after the first)")
    for col in ("miner", "windows", "utilisation", "train s", "idle s", "wait agg s", "upload s", "missed slot",
                "alpha start", "alpha end"):
        table.add_column(col, justify="right")
    for name, m in report["miners"].items():
        table.add_row(name, str(m["windows_measured"]), f"{m['utilisation']:.3f}", f"{m['train_s']:.3f}",
                      f"{m['idle_s']:.3f}", f"{m['wait_aggregate_s']:.3f}", f"{m['upload_s']:.3f}",
                      str(m["missed_upload_slot"]), f"{m['alpha_stake_start']:,}", f"{m['alpha_stake_end']:,}")
    console.print(table)
    table = Table(title="validators")
    for col in ("validator", "windows", "evaluated/window", "forward passes/evaluated", "weights set"):
        table.add_column(col, justify="right")
    for name, v in report["validators"].items():
        table.add_row(name, str(v["windows_logged"]), f"{v['evaluated_per_window']:.2f}",
                      f"{v['forward_passes_per_evaluated_miner']:.1f}", str(v["weights_set"]))
    console.print(table)


def block_time_arg(text: str) -> str | float:
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or seconds, got {text!r}") from None
    if not value >= MIN_BLOCK_TIME:
        raise argparse.ArgumentTypeError(f"block time must be at least {MIN_BLOCK_TIME} s")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (a killed bench) unwinds like Ctrl-C, so the network's processes are stopped too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--miners", type=positive_int, default=4)
    parser.add_argument("--validators", type=positive_int, default=2)
    parser.add_argument("--windows", type=positive_int, default=8, help="windows per miner after its first")
    parser.add_argument("--block-time", type=block_time_arg, default="auto", help="seconds, or auto (default)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads per process")
    parser.add_argument("--root", type=Path, help="network directory (default: a new temporary one, kept)")
    parser.add_argument("--time-limit", type=float, help="seconds before the run is stopped (default: from the window)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    try:
        preset = load_preset(args.preset)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    if args.root is not None and args.root.exists() and any(args.root.iterdir()):
        if not (args.root / "neurons.yaml").is_file():
            parser.error(f"{args.root} is not empty and holds no earlier network (no neurons.yaml)")
        shutil.rmtree(args.root)  # an earlier run's network: start fresh, never resume its snapshots
    root = args.root or Path(tempfile.mkdtemp(prefix="tessera-bench-neurons-"))

    from subnet.node.settings import default_dataset
    data = default_dataset(preset.model.vocab_size, ROOT / "data")
    p = preset.protocol
    calibration = None
    if args.block_time == "auto":
        calibration = calibrate(preset, data, args.threads, args.miners, args.validators)
        block_time, bound = pick_block_time(calibration, p)
    else:
        block_time, bound = args.block_time, "given"
    window_s = p.blocks_per_window * block_time
    # Start-up (processes, registration, staking, the first epoch's permits) plus the windows, with slack.
    time_limit = args.time_limit or 60.0 + (args.windows + 4) * window_s * 2
    print(f"{args.miners} miners, {args.validators} validators, preset {preset.name}: block time "
          f"{block_time:.3f} s ({bound}), window {window_s:.2f} s, time limit {time_limit:.0f} s; network in {root}",
          flush=True)
    result = run_network(root, args.preset, data, args.miners, args.validators, args.windows, block_time,
                         window_s, args.threads, time_limit, lambda text: print(text, flush=True))
    report = summarise(preset.name, window_s, result.miner_lines, result.validator_lines, "validator1",
                       result.validator_of_uid, args.windows)
    report["block_time"] = block_time
    report["block_time_bound"] = bound
    report["complete"] = result.complete
    if calibration is not None:
        report["calibration"] = {**asdict(calibration), "window_train_s": calibration.window_train_s,
                                 "aggregation_delay_s": calibration.aggregation_delay_s,
                                 "validator_deadline_s": calibration.validator_deadline_s}
    print_report(report, calibration, block_time)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    if not result.complete:
        print(f"{PROG}: error: {result.problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
