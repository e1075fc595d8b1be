"""The validator process, window by window (DESIGN.md section 8).

    after the upload slot of w closes:
      fetch every miner's gradient-w-uid -> check (verdict per miner) -> select top-G ->
      aggregate (outer step) -> publish aggregate-w + manifest -> follow the rule (the lead's
      aggregate, or the next validator's) -> evaluate a secret pick of miners until window w+1's
      slot closes -> rate (OpenSkill) -> publish scores-w -> weights every weights_interval ->
      checkpoint every checkpoint_interval (in the background)

Aggregation comes first so miners wait seconds; evaluation overlaps their next window. Every step
is a function of the library (wire checks, selection, window.aggregate_result, gauntlet, ratings);
this file only sequences them and does the I/O.
"""
from __future__ import annotations

import asyncio
import json
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from subnet.chain.backend import open_chain
from subnet.chain.client import ChainCallError
from subnet.compression.spec import CodecSpec
from subnet.data import TokenDataset
from subnet.errors import InputRejected
from subnet.metrics import ValidatorMetrics
from subnet.model import build_model, model_hash, set_params
from subnet.node.boot import (
    Snapshot,
    catch_up,
    join_subnet,
    read_snapshot,
    serve_metrics,
    start_follower,
    survive,
    wait_for_block,
    write_snapshot,
)
from subnet.node.follow import Decision
from subnet.node.network import NetworkView
from subnet.node.settings import NodeSettings
from subnet.protocol import clock
from subnet.protocol.window import aggregate_result
from subnet.sampler import assigned_samples, eval_subset
from subnet.storage.client import StorageClient, StorageError
from subnet.train import eval_loss
from subnet.wire import names
from subnet.wire.aggregate import aggregate_manifest, encode_aggregate
from subnet.wire.gradient import Gradient, GradientExpectation, decode_gradient
from subnet.wire.signing import WIRE_VERSION, sign_json, verify_json
from validator.copies import copy_suspects, find_copies
from validator.evaluate import Evaluator
from validator.gauntlet import Evaluation
from validator.ratings import OK
from validator.selection import evaluation_picks, rank_ramp_weights, select_peers, to_u16_weights
from validator.state import load_validator_state, save_validator_state

HELD_OUT_SAMPLES = 64
UNCLAIMED_S = 0.5   # an upload without a valid intent counts as claimed this long after it was stored
MIN_FETCH_S = 0.5   # the least time the uploads of a window are given to be read (fetch_budget)


@dataclass
class Upload:
    uid: int
    stored_at: float
    data: bytes
    gradient: Gradient
    claimed_at: float  # when its content was first claimed (intent), for ordering identical uploads


@dataclass
class ValidatorWindow:
    window: int
    verdicts: dict[int, str] = field(default_factory=dict)
    peers: list[int] = field(default_factory=list)
    own_result_hash: str = ""
    aggregate_from: int | None = None
    result_hash: str = ""
    aggregate_delay_s: float | None = None    # after the upload slot closed, until our aggregate was stored
    selection_differs: int = 0                # miners in one selection and not the other (ours vs the chosen)
    evaluated: list[int] = field(default_factory=list)
    forward_passes: int = 0
    held_out_loss: float | None = None
    weights_set: bool = False
    fetch_s: float = 0.0
    aggregate_s: float = 0.0
    evaluate_s: float = 0.0
    wait_s: float = 0.0


def fetch_budget(window: int, p, slot: tuple[float, float], now: float, aggregate_s: float) -> float:
    """Seconds the uploads of `window` may take to read from `now`: until the last moment an aggregate
    can be stored and still count (`clock.stored_before` the deadline's end, estimated from the slot's
    block timestamps) less the time the last aggregate took to make and store, so one unanswering
    peer costs only its own upload; at least MIN_FETCH_S (an overloaded lead still reads what it can)."""
    first, last = clock.upload_slot(window, p)
    block_s = (slot[1] - slot[0]) / (last + 1 - first)
    deadline_end = slot[1] + p.aggregate_deadline_blocks * block_s
    step = clock.STORAGE_TIME_RESOLUTION_S   # stamps round down to this: any moment of the last
    last_store = math.floor((deadline_end - step) / step) * step + step   # passing stamp's second
    return max(MIN_FETCH_S, last_store - aggregate_s - now)


TIMED_OUT = object()   # results_within's mark of a call that did not finish in time


async def results_within(coroutines: list, timeout: float, timed_out):
    """The coroutines' results, run side by side for at most `timeout` seconds; `timed_out` in place
    of each that had not finished (cancelled: a thread it waits on may finish later, unread)."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    if not tasks:
        return []
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    return [task.result() if task in done else timed_out for task in tasks]


class Validator:
    def __init__(self, settings: NodeSettings, log: Callable[[str], None] = print):
        self.settings, self.log = settings, log
        self.preset = settings.preset
        self.protocol = self.preset.protocol
        self.spec = CodecSpec.from_preset(self.preset)
        self.chain = open_chain(settings.chain_url)
        self.view = NetworkView(self.chain, settings.netuid)
        self.writer = StorageClient(settings.storage.write)
        self.bucket = settings.storage.bucket
        self.scratch = build_model(self.preset.model, self.preset.seed)
        self.train = TokenDataset(settings.data_dir, "train", self.preset.model.seq_len)
        val = TokenDataset(settings.data_dir, "val", self.preset.model.seq_len)
        ids = list(range(min(HELD_OUT_SAMPLES, val.num_samples)))
        self.held_out = [val.batch(ids[i:i + 32]) for i in range(0, len(ids), 32)]
        self.tokenizer_json = (settings.data_dir / "tokenizer.json").read_bytes()
        self.ratings_path = settings.state_dir / "ratings.json"
        self.ratings, self.extra = load_validator_state(self.ratings_path, self.protocol)
        self.metrics_path = settings.state_dir / "metrics.jsonl"
        self.prometheus = ValidatorMetrics()
        self.weights: dict[int, float] = {}   # the last window's weights (set on chain or not)
        self._checkpoint_thread: threading.Thread | None = None
        self._last_aggregate_s = 0.2   # what making and storing the aggregate took last time (fetch_budget)

    # --- start-up -------------------------------------------------------------------------------
    async def _stake_and_announce(self) -> None:
        """Stake as neurons.yaml says, and set first weights (to the owner) so this validator is in
        the lead order from its first window."""
        wallet = self.settings.wallet
        hotkey = wallet.hotkey
        if self.settings.stake:
            have = await self.chain.get_stake(self.settings.netuid, hotkey.address, wallet.coldkey_address)
            if have == 0:   # the coldkey is unlocked (a password asked for) only now
                await self.chain.add_stake(wallet.coldkey, self.settings.netuid, hotkey.address, self.settings.stake)
                self.log(f"staked {self.settings.stake / 1e9:g} TAO on {hotkey.address}")
        await self.view.refresh()
        if self.uid not in self.view.weight_setters:
            await self._set_weights({self.view.owner_uid: 1.0})

    async def _set_weights(self, weights: dict[int, float]) -> bool:
        uids, values = to_u16_weights(weights)
        try:
            await self.chain.set_weights(self.settings.wallet.hotkey, self.settings.netuid, uids, values)
        except ChainCallError as exc:
            self.log(f"set_weights refused: {exc}")
            return False
        return True

    # --- one window -----------------------------------------------------------------------------
    async def _fetch_one(self, uid: int, window: int, base: str, bound: float, slot: tuple[float, float]):
        """(verdict, upload or None) for one miner's gradient of `window`."""
        reader, hotkey = self.view.reader(uid), self.view.hotkey_of(uid)
        if reader is None or hotkey is None:
            return "missing", None
        client, bucket = reader
        key = names.gradient_key(window, uid)
        try:
            data, info = await asyncio.to_thread(client.get_with_info, bucket, key, self.spec.max_gradient_bytes)
            data = bytes(data)
        except StorageError as exc:   # too_large among them, before the body is read
            return ("missing" if exc.reason == "not_found" else exc.reason), None
        stored = info.last_modified.timestamp()
        # S3 stores LastModified to the second (rounded down): allow that second on the early side.
        if stored < slot[0] - 1.0:
            return "early", None
        if stored > slot[1]:
            return "late", None
        try:
            gradient = decode_gradient(data, self.spec, GradientExpectation(
                window=window, uid=uid, hotkey=hotkey, base_model_hash=base, norm_bound=bound))
        except InputRejected as exc:
            return exc.reason, None
        # claimed_at as if it had no intent; read only for suspected copies (fetch_uploads)
        return "ok", Upload(uid, stored, data, gradient, stored + UNCLAIMED_S)

    async def _intent_time(self, upload: Upload, window: int, slot_start: float) -> float:
        """When this upload's content was first claimed: its intent's LastModified if the intent is
        signed by the miner, names this gradient and lies inside the slot; else half a second after
        the gradient's own time (so a claimed upload of the same second comes first)."""
        uid, stored, sha = upload.uid, upload.stored_at, upload.gradient.sha256
        reader, hotkey = self.view.reader(uid), self.view.hotkey_of(uid)
        if reader is None or hotkey is None:
            return stored + UNCLAIMED_S
        client, bucket = reader
        key = names.gradient_intent_key(window, uid)
        try:
            raw, info = await asyncio.to_thread(client.get_with_info, bucket, key, 4096)
            document = verify_json(bytes(raw), expected_hotkey=hotkey, expected_kind="gradient_intent")
        except InputRejected:
            return stored + UNCLAIMED_S
        claimed = info.last_modified.timestamp()
        if (document.get("window") != window or document.get("uid") != uid
                or document.get("gradient_sha256") != sha or not slot_start - 1.0 <= claimed <= stored):
            return stored + UNCLAIMED_S
        return claimed

    async def fetch_uploads(self, window: int, stats: ValidatorWindow) -> dict[int, Upload]:
        started = time.monotonic()
        state = self.follower.state
        first, last = clock.upload_slot(window, self.protocol)
        slot = (await self.view.block_timestamp(first), await self.view.block_timestamp(last + 1))
        bound = state.norm_bound(self.protocol.norm_bound_ratio)
        uids = [u for u in self.view.miner_uids() if u != self.uid]
        budget = fetch_budget(window, self.protocol, slot, time.time(), self._last_aggregate_s)
        # a peer that does not answer in time (down, partitioned, slow) loses only its upload
        results = await results_within([self._fetch_one(u, window, state.hash, bound, slot) for u in uids],
                                       budget, TIMED_OUT)
        late = [uid for uid, result in zip(uids, results) if result is TIMED_OUT]
        if late:
            self.log(f"window {window}: {len(late)} uploads not read within {budget:.2f} s (uids {late[:16]})")
        results = [("unavailable", None) if result is TIMED_OUT else result for result in results]
        uploads = {}
        for uid, (verdict, upload) in zip(uids, results):
            stats.verdicts[uid] = verdict
            if upload is not None:
                uploads[uid] = upload
        if window >= self.protocol.copy_grace_windows:
            threshold = self.protocol.copy_overlap_threshold
            listed = list(uploads.values())
            # Intents decide who came first among copies: read them for the suspects only (honest
            # uploads overlap little: at 256 miners this halves the storage calls of a window)
            suspects = [listed[i] for i in copy_suspects([u.gradient for u in listed], threshold)]
            # within what is left of the budget: an intent not read in time leaves its upload
            # unclaimed, which only ever puts it later (a copier gains nothing by stalling its own)
            left = max(MIN_FETCH_S / 2, budget - (time.monotonic() - started))
            claims = await results_within([self._intent_time(u, window, slot[0]) for u in suspects], left, TIMED_OUT)
            for upload, claimed in zip(suspects, claims):
                if claimed is not TIMED_OUT:
                    upload.claimed_at = claimed
            copies = find_copies([(u.uid, u.claimed_at, u.gradient) for u in suspects], threshold)
            for uid, (original, overlap) in copies.items():
                stats.verdicts[uid] = "copied"
                uploads.pop(uid, None)
                self.log(f"window {window}: uid {uid} copied uid {original} (overlap {overlap:.2f})")
        stats.fetch_s = time.monotonic() - started
        return uploads

    async def publish_aggregate(self, window: int, uploads: dict[int, Upload], stats: ValidatorWindow) -> None:
        started = time.monotonic()
        state = self.follower.state
        peers = select_peers(sorted(uploads), self.ratings, self.protocol)
        stats.peers = peers
        if not peers:
            # An empty aggregate: "nothing this window". Followers skip the window as soon as they
            # read it instead of waiting for the deadline. No manifest: it is not part of the lineage.
            empty = encode_aggregate(window, [], self.settings.wallet.hotkey, base_model_hash=state.hash,
                                     result_model_hash=state.hash, prev_aggregate_sha256=state.prev_sha)
            await asyncio.to_thread(self.writer.put, self.bucket, names.aggregate_key(window), empty)
            stats.aggregate_s = time.monotonic() - started
            return
        gradients = [uploads[u].gradient for u in peers]
        theta = await asyncio.to_thread(aggregate_result, state.theta, gradients, self.preset.outer.lr)
        stats.own_result_hash = model_hash(theta)
        obj = encode_aggregate(window, [uploads[u].data for u in peers], self.settings.wallet.hotkey,
                               base_model_hash=state.hash, result_model_hash=stats.own_result_hash,
                               prev_aggregate_sha256=state.prev_sha)
        manifest = aggregate_manifest(obj, self.settings.wallet.hotkey)
        await asyncio.to_thread(self.writer.put, self.bucket, names.aggregate_key(window), obj)
        await asyncio.to_thread(self.writer.put, self.bucket, names.aggregate_manifest_key(window), manifest)
        stats.aggregate_s = time.monotonic() - started

    def _own_batch(self, window: int, uid: int, rng: np.random.Generator) -> torch.Tensor:
        assigned = assigned_samples(self.preset.seed, window, uid, self.preset.samples_per_window,
                                    self.train.num_samples)
        picked = eval_subset(assigned, self.protocol.own_eval_samples, int(rng.integers(1 << 62)))
        return self.train.batch([int(i) for i in picked])

    async def evaluate(self, window: int, theta_w, uploads: dict[int, Upload], stats: ValidatorWindow,
                       stop_block: int) -> list[Evaluation]:
        """Evaluate a secret, staleness-weighted pick of miners until `stop_block`."""
        started = time.monotonic()
        if not uploads:
            return []
        rng = np.random.default_rng(secrets.randbits(64))  # the validator's own randomness: unpredictable
        picks = evaluation_picks(sorted(uploads), self.ratings, window,
                                 min(self.protocol.evaluations_per_window, len(uploads)), rng)
        norms = sorted(u.gradient.norm for u in uploads.values())
        median = norms[(len(norms) - 1) // 2]
        evaluator = Evaluator(self.scratch, theta_w, self.preset.outer.lr * self.protocol.eval_lr_scale, median)
        random_ids = rng.choice(self.train.num_samples, size=self.protocol.random_eval_samples, replace=False)
        random_batch = self.train.batch([int(i) for i in random_ids])
        random_before = await asyncio.to_thread(evaluator.before, random_batch)
        out = []
        for uid in picks:
            if await self.chain.get_current_block() >= stop_block:
                break  # the rest carry over: the next window's picks favour them
            own = self._own_batch(window, uid, rng)
            losses = await asyncio.to_thread(evaluator.evaluate, uploads[uid].gradient, own, random_batch,
                                             random_before)
            out.append(Evaluation(uid, self.view.hotkey_of(uid) or "", *losses))
        stats.evaluated = [e.uid for e in out]
        stats.forward_passes = evaluator.forward_passes
        stats.evaluate_s = time.monotonic() - started
        return out

    def _no_weight_reason(self, uid: int, verdict: str) -> str:
        """Why a miner gets no weight: its upload's verdict when it failed, else the gate that is 0,
        else it ranked below the top-G."""
        if verdict != OK:
            return verdict
        return self.ratings.zero_reason(uid) or "below_top_peers"

    def _scores_document(self, window: int, stats: ValidatorWindow, weights: dict[int, float]) -> dict:
        finals = self.ratings.final_scores()
        evaluated = set(stats.evaluated)
        miners = {}
        for uid, verdict in stats.verdicts.items():
            record = self.ratings.records.get(uid)
            miners[str(uid)] = {
                "hotkey": self.view.hotkey_of(uid), "verdict": verdict,
                "score": record.last_score if record is not None and uid in evaluated else None,
                "rating": self.ratings.ordinal(uid) if record is not None else None,
                "final_score": finals.get(uid, 0.0), "weight": weights.get(uid, 0.0),
                "reason": None if weights.get(uid) else self._no_weight_reason(uid, verdict)}
        return {"wire_format": WIRE_VERSION, "kind": "scores", "window": window, "validator_uid": self.uid,
                "aggregate": {"from_uid": stats.aggregate_from, "result_model_hash": stats.result_hash,
                              "own_peers": stats.peers},
                "miners": miners}

    def _checkpoint_in_background(self, window: int) -> None:
        if self._checkpoint_thread is not None and self._checkpoint_thread.is_alive():
            self.log(f"window {window}: previous checkpoint still uploading, skipping this one")
            return
        from subnet.storage.checkpoint import publish_checkpoint

        state = self.follower.state
        model = build_model(self.preset.model, self.preset.seed)
        set_params(model, state.theta)
        args = (self.writer, self.bucket, window, model, self.tokenizer_json, self.settings.wallet.hotkey)
        kwargs = {"aggregate_sha256": state.prev_sha, "version": state.version}

        def upload():
            try:
                publish_checkpoint(*args, **kwargs)
            except (InputRejected, OSError) as exc:
                self.log(f"checkpoint {window} failed: {exc}")

        self._checkpoint_thread = threading.Thread(target=upload, name=f"checkpoint-{window}", daemon=True)
        self._checkpoint_thread.start()

    async def window(self, window: int) -> ValidatorWindow:
        p = self.protocol
        stats = ValidatorWindow(window)
        await wait_for_block(self.chain, clock.upload_deadline(window, p) + 1)
        slot_closed = time.monotonic()
        await self.view.refresh()
        # Publish aggregates only when in the lead order at the window's first block: that is the
        # order every follower reads (permits come at the first epoch after staking, and a validator
        # enters the order with its first weights).
        publishing = self.uid in await self.view.lead_order_at(clock.first_block(window, p))
        if self.uid not in self.view.weight_setters:
            await self._set_weights({self.view.owner_uid: 1.0})  # enter the order for later windows
        self.ratings.sync_hotkeys({u: self.view.hotkey_of(u) for u in self.view.miner_uids() if u != self.uid})
        theta_w = self.follower.state.theta
        uploads = await self.fetch_uploads(window, stats)
        if publishing:
            await self.publish_aggregate(window, uploads, stats)
            stats.aggregate_delay_s = time.monotonic() - slot_closed
            self._last_aggregate_s = stats.aggregate_s
        started = time.monotonic()
        decision: Decision = await self.follower.advance(window)
        stats.wait_s = time.monotonic() - started
        stats.aggregate_from = decision.from_uid if decision.aggregate is not None else None
        stats.result_hash = self.follower.state.hash
        if decision.aggregate is not None:
            chosen = {part.uid for part in decision.aggregate.parts}
            stats.selection_differs = len(chosen.symmetric_difference(stats.peers))
        # Stop a block before the next slot closes: rating, scores and saving follow, and the next
        # window's aggregate must not wait for them.
        evaluations = await self.evaluate(window, theta_w, uploads, stats, clock.upload_deadline(window + 1, p) - 1)
        self.ratings.record_window(window, stats.verdicts, evaluations)
        weights = self.weights = rank_ramp_weights(self.ratings.final_scores(), p.peers_per_window, p.weight_ramp,
                                                   self.view.owner_uid)
        if clock.is_weights_window(window, p):
            stats.weights_set = await self._set_weights(weights)
        document = self._scores_document(window, stats, weights)
        await asyncio.to_thread(self.writer.put, self.bucket, names.scores_key(window),
                                sign_json(document, self.settings.wallet.hotkey))
        if clock.is_checkpoint_window(window, p):
            self._checkpoint_in_background(window)
        stats.held_out_loss = await asyncio.to_thread(self._held_out_loss)
        self._save()
        return stats

    def _record_metrics(self, stats: ValidatorWindow) -> None:
        mg = self.view.metagraph
        stake = mg.stake[mg.uids.index(self.uid)] if mg is not None and self.uid in mg.uids else None
        self.prometheus.record(stats, uid=self.uid, ratings={u: self.ratings.ordinal(u) for u in self.ratings.records},
                               weights=self.weights, stake=stake, bytes_up_total=self.writer.bytes_sent,
                               bytes_down_total=self.view.bytes_received + self.writer.bytes_received)

    def _held_out_loss(self) -> float:
        set_params(self.scratch, self.follower.state.theta)
        return eval_loss(self.scratch, self.held_out)

    def _save(self) -> None:
        write_snapshot(self.settings, Snapshot(state=self.follower.state))
        save_validator_state(self.ratings_path, self.ratings, self.extra)

    def table(self, stats: ValidatorWindow) -> str:
        finals = self.ratings.final_scores()
        rows = [f"window {stats.window}: aggregate from uid {stats.aggregate_from} "
                f"{stats.result_hash[:12]} peers {stats.peers} held-out {stats.held_out_loss:.4f} "
                f"(fetch {stats.fetch_s:.2f}s aggregate {stats.aggregate_s:.2f}s evaluate {stats.evaluate_s:.2f}s)"]
        for uid in sorted(stats.verdicts):
            record = self.ratings.records.get(uid)
            score = f"{record.last_score:+.4f}" if record and record.last_score is not None and uid in stats.evaluated else "-"
            rating = f"{self.ratings.ordinal(uid):.2f}" if record else "-"
            why = self.ratings.zero_reason(uid) if stats.verdicts[uid] == OK else None
            rows.append(f"  uid {uid:3d} {stats.verdicts[uid]:<16} score {score:>8} rating {rating:>7} "
                        f"final {finals.get(uid, 0.0):.4f}{' (' + why + ')' if why else ''}")
        return "\n".join(rows)

    async def run(self, max_windows: int | None = None, stop: asyncio.Event | None = None) -> None:
        torch.set_num_threads(self.settings.threads)
        serve_metrics(self.settings, self.prometheus.registry, self.log)
        try:
            self.uid = await join_subnet(self.settings, self.chain, self.view, self.log)
            await self._stake_and_announce()
            snapshot = read_snapshot(self.settings, self.log)
            self.follower = await start_follower(self.settings, self.view, snapshot, self.log)
            self.log(f"validator uid {self.uid} holds version {self.follower.state.version} "
                     f"({self.follower.state.hash[:12]}) after window {self.follower.state.window}; "
                     f"{len(self.ratings.records)} rated miners")
            done = 0
            while (max_windows is None or done < max_windows) and not (stop and stop.is_set()):
                head = await self.chain.get_current_block()
                window = self.follower.state.window + 1
                if head > clock.aggregate_deadline(window, self.protocol):
                    # Too late to aggregate that window (slow, or away): follow what the others decided.
                    await catch_up(self.follower, self.log)
                    if self.follower.state.window + 1 == window:
                        await self.follower.advance(window)
                    continue
                if head < clock.first_block(window, self.protocol):
                    await wait_for_block(self.chain, clock.first_block(window, self.protocol))
                    continue
                stats = await survive(window, self.window(window), self.log)
                if stats is None:
                    continue
                self.log(self.table(stats))
                with open(self.metrics_path, "a") as handle:
                    handle.write(json.dumps(asdict(stats), default=str) + "\n")
                self._record_metrics(stats)
                done += 1
        finally:
            if self._checkpoint_thread is not None:
                self._checkpoint_thread.join(timeout=60)
            await self.chain.close()
