"""The miner process, window by window.

    hold version w -> train H inner steps on (uid, w)'s samples -> compress with error feedback ->
    sign -> upload gradient-w-uid (once) -> wait for aggregate w -> apply -> next window

While it waits for aggregate w an honest miner already trains window w+1 from the model it holds
and moves onto the new model when it comes (`miner/overlap.py`), so the wait is not idle time.

The global model, the error-feedback buffer, the inner optimizer's state and the upload of the
current window are saved after each step that changes them (one atomic snapshot), so a killed miner
resumes with its error feedback and never uploads a window twice. An upload is written once: a
retry first looks whether the object is already stored with the same bytes (an overwrite would move
its timestamp and could make an honest miner look like the later of two identical uploads).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from subnet.chain.backend import open_chain
from subnet.compression.spec import CodecSpec
from subnet.data import TokenDataset
from subnet.metrics import MinerMetrics
from subnet.model import build_model
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
from subnet.node.network import NetworkView
from subnet.node.settings import NodeSettings, SettingsError
from subnet.node.snapshot import optimizer_tensors, prefixed, restore_optimizer, unprefixed
from subnet.protocol import clock
from subnet.protocol.window import compress_update, inner_first_step, inner_phase, inner_phase_rebased
from subnet.sampler import assigned_samples
from subnet.storage.client import StorageClient, StorageError
from subnet.train import make_optimizer
from subnet.wire import names
from subnet.wire.gradient import encode_gradient, encode_intent
from subnet.wire.signing import ANY_SIGNER, WireError, signed_content_digest, verify_json

from miner.overlap import Discarded, TrueBase

INTENT_SLACK_S = 0.05  # past the next whole second: S3 keeps LastModified to the second
TRAINING_AHEAD_POLL_S = 0.25
SYBIL_POLL_S = 0.05


@dataclass
class Speculation:
    """Window `window`'s training, started before aggregate `window - 1` was known."""
    window: int
    base: TrueBase
    task: asyncio.Task        # -> (pseudo-gradient, losses, training seconds)


@dataclass
class MinerWindow:
    """One window's figures, printed as the status line and appended to metrics.jsonl."""
    window: int
    version: int
    train_loss: float | None = None
    tokens_per_s: float = 0.0
    bytes_up: int = 0
    train_s: float = 0.0
    compress_s: float = 0.0
    upload_s: float = 0.0
    wait_aggregate_s: float = 0.0
    idle_s: float = 0.0          # waiting for the window to open (nothing to do)
    wall_s: float = 0.0
    aggregate_from: int | None = None
    model_hash: str = ""
    score: float | None = None   # this miner's final score in the lead validator's scores
    alpha_stake: int = 0
    note: str = ""

    def line(self) -> str:
        loss = f"{self.train_loss:.4f}" if self.train_loss is not None else "-"
        score = f"{self.score:.4f}" if self.score is not None else "-"
        agg = f"agg from uid {self.aggregate_from}" if self.aggregate_from is not None else "no aggregate"
        return (f"window {self.window} v{self.version} loss {loss} {self.tokens_per_s:,.0f} tok/s "
                f"up {self.bytes_up:,} B wait {self.wait_aggregate_s:.2f}s score {score} "
                f"stake {self.alpha_stake / 1e9:.4f} | {agg} {self.model_hash[:12]} {self.note}".rstrip())


def stored_copy(client: StorageClient, bucket: str, key: str, data: bytes) -> bytes | None:
    """The object stored at `key` if it holds `data`'s content: the same bytes, or the same signed
    content under another signature (sr25519 signs randomly, so a miner restarted after its upload
    signs the same work anew). None when nothing, or something else, is stored."""
    try:
        stored = bytes(client.get(bucket, key, max_bytes=len(data)))
    except StorageError as exc:
        if exc.reason not in ("not_found", "too_large"):
            raise
        return None
    if stored == data:
        return stored
    digest = signed_content_digest(data)
    return stored if digest is not None and signed_content_digest(stored) == digest else None


def put_once(client: StorageClient, bucket: str, key: str, data: bytes) -> bool:
    """Upload unless the same content is already stored (an overwrite would move the object's
    timestamp, which the copy check reads); returns whether it uploaded."""
    if stored_copy(client, bucket, key, data) is not None:
        return False
    client.put(bucket, key, data)
    return True


class Miner:
    def __init__(self, settings: NodeSettings, log: Callable[[str], None] = print):
        self.settings, self.log = settings, log
        self.preset = settings.preset
        self.spec = CodecSpec.from_preset(self.preset)
        self.chain = open_chain(settings.chain_url)
        self.view = NetworkView(self.chain, settings.netuid)
        self.writer = StorageClient(settings.storage.write)
        self.bucket = settings.storage.bucket
        self.device = torch.device(settings.device)
        self.model = build_model(self.preset.model, self.preset.seed).to(self.device)
        self.optimizer = make_optimizer(self.model, self.preset.train)
        self.error = {n: torch.zeros(s) for n, s in self.spec.shapes.items()}
        self.uploaded_window = -1
        self.train = TokenDataset(settings.data_dir, "train", self.preset.model.seq_len)
        self.behaviour = settings.behaviour
        if self.behaviour is not None:
            from miner.behaviour_kinds import check_behaviour
            try:
                check_behaviour(self.behaviour.kind, dict(self.behaviour.params))
            except ValueError as exc:
                raise SettingsError(f"neuron {settings.name}: behaviour: {exc}") from None
        self.rng = np.random.default_rng()
        self.stale = None
        if self.behaviour is not None and self.behaviour.kind == "stale":
            from miner.behaviours import StaleModel
            self.stale = StaleModel(int(self.behaviour.params.get("lag", 2)))
        self.sybil, self.sybil_works, self._claim_at = None, False, None
        if self.behaviour is not None and self.behaviour.kind == "sybil":
            from miner.behaviours import SybilShare, sybil_worker
            worker = sybil_worker(settings.name, str(self.behaviour.params["twin"]))
            # Both state directories sit in one run directory: the share lives beside them.
            self.sybil = SybilShare(settings.state_dir.parent / "sybil", worker)
            self.sybil_works = worker == settings.name
        self.metrics_path = settings.state_dir / "metrics.jsonl"
        self.prometheus = MinerMetrics()
        self._next: Speculation | None = None
        self._optimizer_copy: tuple[dict, dict] | None = None  # what a snapshot saves while training ahead

    # --- state ------------------------------------------------------------------------------------
    def _save(self) -> None:
        if self._next is not None and not self._next.task.done():
            opt_tensors, opt_meta = self._optimizer_copy   # the training thread is moving the live one
        else:
            opt_tensors, opt_meta = optimizer_tensors(self.optimizer)
        write_snapshot(self.settings, Snapshot(
            state=self.follower.state, extra={"optimizer": opt_meta, "uploaded_window": self.uploaded_window},
            tensors={**prefixed(self.error, "ef."), **opt_tensors}))

    def _restore(self, snapshot: Snapshot | None) -> None:
        if snapshot is None:
            return
        error = unprefixed(snapshot.tensors, "ef.")
        if set(error) == set(self.error):
            self.error = {name: error[name] for name in self.error}  # the model's order, not the file's
        try:
            restore_optimizer(self.optimizer, snapshot.tensors, snapshot.extra["optimizer"])
        except (KeyError, ValueError) as exc:
            self.log(f"optimizer state not restored: {exc}")
        self.uploaded_window = int(snapshot.extra.get("uploaded_window", -1))
        self.log(f"resumed: version {snapshot.state.version}, window {snapshot.state.window}, "
                 f"error-feedback norm {float(torch.sqrt(sum((t.double() ** 2).sum() for t in self.error.values()))):.4g}")

    # --- one window -----------------------------------------------------------------------------
    def _batches(self, window: int):
        if self.behaviour is not None and self.behaviour.kind == "lazy":
            from miner.behaviours import lazy_samples
            ids = lazy_samples(self.rng, self.preset.samples_per_window, self.train.num_samples)
        else:
            ids = assigned_samples(self.preset.seed, window, self.uid, self.preset.samples_per_window,
                                   self.train.num_samples)
        return [b.to(self.device) for b in self.train.batches(ids, self.preset.train.batch_size)]

    def _autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _train(self, window: int, theta) -> tuple[dict, list[float]]:
        first_step = inner_first_step(self.follower.state.version, self.preset.train)
        batches = self._batches(window)
        with self._autocast():
            result = inner_phase(self.model, self.optimizer, theta, batches, self.preset.train, first_step)
        return result.pseudo_gradient, result.losses

    def _train_ahead(self, window: int, theta, first_step: int, base: TrueBase) -> tuple[dict, list[float], float]:
        started = time.monotonic()
        batches = self._batches(window)
        with self._autocast():
            result = inner_phase_rebased(self.model, self.optimizer, theta, batches, self.preset.train,
                                         first_step, base)
        return result.pseudo_gradient, result.losses, time.monotonic() - started - base.blocked_s

    # --- training ahead ---------------------------------------------------------------------------
    def _start_training_ahead(self, window: int) -> None:
        """Train `window` from the model held now, before the previous window's aggregate is known.
        Its schedule assumes that aggregate comes (version + 1); if the window is skipped instead,
        this one window's learning rates run H steps ahead, which nothing outside the miner sees."""
        state = self.follower.state
        tensors, meta = optimizer_tensors(self.optimizer)
        self._optimizer_copy = ({name: t.clone() for name, t in tensors.items()}, meta)
        base = TrueBase(early_steps=max(1, self.preset.train.inner_steps // 2))
        first_step = inner_first_step(state.version + 1, self.preset.train)
        task = asyncio.create_task(asyncio.to_thread(self._train_ahead, window, state.theta, first_step, base))
        self._next = Speculation(window, base, task)

    def _settle_training_ahead(self, before: tuple[int, str]) -> None:
        """Hand the decided model to the training thread, or abandon it if the model moved otherwise
        (re-followed from a checkpoint, caught up several windows)."""
        spec = self._next
        if spec is None or spec.base.settled:
            return
        state = self.follower.state
        version, model = before
        decided = state.window >= spec.window - 1
        if decided and (state.version == version + 1 or (state.version == version and state.hash == model)):
            spec.base.resolve(state.theta, state.hash)
        else:
            spec.base.discard()

    async def _take_training_ahead(self, window: int) -> tuple[dict, list[float], float] | None:
        spec, self._next = self._next, None
        if spec is None:
            return None
        usable = spec.window == window and spec.base.settled and spec.base.model_hash == self.follower.state.hash
        if not usable:
            spec.base.discard()
        try:
            result = await spec.task
        except Discarded:
            return None
        return result if usable else None   # trained for another model: train again

    async def _upload_object(self, window: int) -> tuple[bytes | None, MinerWindow]:
        """Train and build this window's upload (honest, or the configured adversary's)."""
        state = self.follower.state
        stats = MinerWindow(window=window, version=state.version)
        kind = self.behaviour.kind if self.behaviour is not None else None
        hotkey = self.settings.wallet.hotkey
        if kind == "malformed":
            from miner.behaviour_kinds import MALFORMED_VARIANTS
            from miner.behaviours import malformed_upload
            variant = str(self.behaviour.params.get("variant") or MALFORMED_VARIANTS[window % len(MALFORMED_VARIANTS)])
            stats.note = f"malformed: {variant}"
            return malformed_upload(variant, self.spec, hotkey, window, self.uid, state.hash, self.rng,
                                    int(self.behaviour.params.get("size", 4096))), stats
        if kind == "noisy":
            from miner.behaviours import noise_upload
            return noise_upload(self.spec, hotkey, window, self.uid, state.hash,
                                float(self.behaviour.params.get("scale", 0.01)), self.rng), stats
        if kind == "copier":
            return await self._copy_of_victim(window, state.hash), stats
        if self.sybil is not None and not self.sybil_works:
            return await self._twin_upload(window, state.hash), stats
        ahead = await self._take_training_ahead(window)
        if kind == "free_rider":
            from miner.behaviours import free_rider_update
            delta, losses = free_rider_update(self.spec, float(self.behaviour.params.get("scale", 0.0)), self.rng), []
        elif ahead is not None:
            delta, losses, stats.train_s = ahead
        else:
            theta = state.theta
            if self.stale is not None:
                if not self.stale.versions or state.version > self.stale.versions[-1]:
                    self.stale.push(state.version, state.theta)
                theta = self.stale.theta_for(state.version)
            started = time.monotonic()
            delta, losses = await asyncio.to_thread(self._train, window, theta)
            stats.train_s = time.monotonic() - started
        if kind == "poisoner":
            from miner.behaviours import poisoned
            delta = poisoned(delta, float(self.behaviour.params.get("scale", -1.0)))
        if losses:
            stats.train_loss = float(np.mean(losses))
            tokens = self.preset.samples_per_window * self.preset.model.seq_len
            stats.tokens_per_s = tokens / max(stats.train_s, 1e-9)
        started = time.monotonic()
        new_error, packet = compress_update(self.error, delta, self.preset.compression)
        self.error = new_error
        data = encode_gradient(packet, hotkey, window, self.uid, state.hash)
        stats.compress_s = time.monotonic() - started
        return data, stats

    async def _copy_of_victim(self, window: int, base: str) -> bytes | None:
        from miner.behaviours import copy_upload
        victim = str(self.behaviour.params.get("victim", ""))
        noise = float(self.behaviour.params.get("noise", 0.0))
        deadline = clock.upload_deadline(window, self.preset.protocol)
        while await self.chain.get_current_block() <= deadline - 1:
            for uid in self.view.miner_uids():
                reader = self.view.reader(uid)
                if uid == self.uid or reader is None or (victim and not reader[1].endswith(victim)):
                    continue
                try:
                    obj = await asyncio.to_thread(reader[0].get, reader[1], names.gradient_key(window, uid),
                                                  self.spec.max_gradient_bytes)
                except StorageError:
                    continue
                try:
                    return await asyncio.to_thread(copy_upload, bytes(obj), self.spec, self.settings.wallet.hotkey,
                                                   window, self.uid, base, noise, self.rng)
                except ValueError:
                    continue
            await asyncio.sleep(0.2)
        return None

    async def _twin_upload(self, window: int, base: str) -> bytes | None:
        """The sybil twin: the worker's upload of this window, re-signed as ours, once it is shared."""
        from miner.behaviours import copy_upload
        deadline = clock.upload_deadline(window, self.preset.protocol)
        while await self.chain.get_current_block() <= deadline - 1:
            shared = self.sybil.read(window)
            if shared is not None:
                data, self._claim_at = shared
                return copy_upload(data, self.spec, self.settings.wallet.hotkey, window, self.uid, base)
            await asyncio.sleep(SYBIL_POLL_S)
        return None

    async def _share_with_twin(self, window: int, data: bytes) -> None:
        """The sybil worker: hand the upload to the twin, both to claim it at the same whole second."""
        # The next whole second at least half a second away: time for the twin to see it and re-sign.
        self._claim_at = math.floor(time.time() + 0.5) + 1.0
        await asyncio.to_thread(self.sybil.publish, window, data, self._claim_at)
        self.sybil.prune(window - 2)

    async def _put_intent(self, window: int, data: bytes) -> None:
        """Store the signed sha256 of the upload, then let a full second pass before the upload.
        S3 keeps LastModified to the second: a copier that re-uploads our gradient within the same
        second ties with us on the gradient, but its own intent can only come after it saw our
        gradient, a second after ours. The validator orders identical uploads by their intents."""
        if self._claim_at is not None:
            # A sybil pair claims its one piece of work under both hotkeys at the same moment.
            await asyncio.sleep(max(0.0, self._claim_at + INTENT_SLACK_S - time.time()))
            self._claim_at = None
        intent = encode_intent(data, self.settings.wallet.hotkey, window, self.uid)
        key = names.gradient_intent_key(window, self.uid)
        if await asyncio.to_thread(put_once, self.writer, self.bucket, key, intent):
            # Into the next whole second (server and miner clocks agree on a local network; on a
            # remote one the slack covers sub-second skew only).
            now = time.time()
            await asyncio.sleep(math.floor(now) + 1 + INTENT_SLACK_S - now)

    async def _latest_score(self, window: int) -> float | None:
        """This miner's final score in the lead validator's published scores of `window`."""
        for uid in self.view.lead_order()[:1]:
            reader = self.view.reader(uid)
            if reader is None:
                return None
            try:
                raw = await asyncio.to_thread(reader[0].get, reader[1], names.scores_key(window), 1 << 20)
                document = verify_json(bytes(raw), expected_hotkey=self.view.hotkey_of(uid) or ANY_SIGNER,
                                       expected_kind="scores")
            except (StorageError, WireError):
                return None
            entry = document.get("miners", {}).get(str(self.uid))
            return entry.get("final_score") if isinstance(entry, dict) else None
        return None

    async def _upload(self, window: int, data: bytes, stats: MinerWindow, late: bool) -> None:
        """Intent, then the gradient, once; refused locally when the slot has closed."""
        p = self.preset.protocol
        head = await self.chain.get_current_block()
        if head > clock.upload_deadline(window, p) and not late:
            stats.note = "missed the upload slot"
            return
        started = time.monotonic()
        if self.sybil is not None and self.sybil_works:
            await self._share_with_twin(window, data)
        key = names.gradient_key(window, self.uid)
        stored = await asyncio.to_thread(stored_copy, self.writer, self.bucket, key, data)
        data = stored or data   # uploaded before a restart: its intent names the bytes stored then
        await self._put_intent(window, data)
        if stored is None:
            await asyncio.to_thread(self.writer.put, self.bucket, key, data)
        stats.upload_s = time.monotonic() - started
        stats.bytes_up = len(data)
        self.uploaded_window = window
        self._save()

    async def window(self, window: int) -> MinerWindow:
        wall_started = time.monotonic()
        p = self.preset.protocol
        data, stats = await self._upload_object(window)
        late = self.behaviour is not None and self.behaviour.kind == "late"
        if late:
            # An adversary that uploads after its slot closed (honest work, too late to count).
            await wait_for_block(self.chain, clock.upload_deadline(window, p)
                                 + int(self.behaviour.params.get("delay_blocks", 1)))
        before = (self.follower.state.version, self.follower.state.hash)
        if self.behaviour is None:
            # From here on this window only waits (the intent's second, the upload, the aggregate):
            # the next window's training runs meanwhile.
            self._start_training_ahead(window + 1)
        try:
            if data is not None and self.uploaded_window < window:
                await self._upload(window, data, stats, late)
            started = time.monotonic()
            # Status figures are read while the aggregate is not out yet: this time is waiting anyway.
            await self.view.refresh()
            stats.score = await self._latest_score(window - 1)
            mg = self.view.metagraph
            if mg is not None and self.uid in mg.uids:
                stats.alpha_stake = mg.stake[mg.uids.index(self.uid)]
            decision = await self.follower.advance(window)
        except BaseException:
            if self._next is not None:
                self._next.base.discard()   # no decision: the work ahead has no model to go onto
            raise
        self._settle_training_ahead(before)
        stats.wait_aggregate_s = time.monotonic() - started
        stats.aggregate_from = decision.from_uid if decision.aggregate is not None else None
        stats.model_hash = self.follower.state.hash
        self._save()
        stats.wall_s = time.monotonic() - wall_started
        return stats

    # --- the process ----------------------------------------------------------------------------
    async def run(self, max_windows: int | None = None, stop: asyncio.Event | None = None) -> None:
        torch.set_num_threads(self.settings.threads)
        serve_metrics(self.settings, self.prometheus.registry, self.log)
        try:
            self.uid = await join_subnet(self.settings, self.chain, self.view, self.log)
            snapshot = read_snapshot(self.settings, self.log)
            self.follower = await start_follower(self.settings, self.view, snapshot, self.log)
            if self.behaviour is None:
                # Training ahead hides the decision's latency; polling often would take the GIL
                # and CPU from the training thread.
                self.follower.poll_s = TRAINING_AHEAD_POLL_S
            self._restore(snapshot)
            self.log(f"miner uid {self.uid} holds version {self.follower.state.version} "
                     f"({self.follower.state.hash[:12]}) after window {self.follower.state.window}")
            done = 0
            idle_since = time.monotonic()  # end of the last window's work: from here until the next starts is idle
            while (max_windows is None or done < max_windows) and not (stop and stop.is_set()):
                p = self.preset.protocol
                head = await self.chain.get_current_block()
                window = clock.window_of(head, p)
                if self.follower.state.window < window - 1:
                    await catch_up(self.follower, self.log)  # fell behind (slow or suspended): follow first
                    head = await self.chain.get_current_block()
                    window = clock.window_of(head, p)
                    if self.follower.state.window < window - 1:
                        # Aggregate window-1 is not decided yet: wait for it instead of training on an old model.
                        await self.follower.advance(window - 1)
                        continue
                if self.follower.state.window >= window:
                    await wait_for_block(self.chain, clock.first_block(window + 1, p))
                    continue
                if self._next is not None and self._next.window != window:
                    self._next.base.discard()   # trained ahead for a window that is gone: stop it now
                idle = time.monotonic() - idle_since
                stats = await survive(window, self.window(window), self.log)
                if stats is None:
                    continue
                stats.idle_s = idle
                idle_since = time.monotonic()
                self.log(stats.line())
                with open(self.metrics_path, "a") as handle:
                    handle.write(json.dumps(asdict(stats)) + "\n")
                self.prometheus.record(stats, bytes_up_total=self.writer.bytes_sent,
                                       bytes_down_total=self.view.bytes_received + self.writer.bytes_received)
                done += 1
        finally:
            if self._next is not None:
                self._next.base.discard()   # a thread waiting for a decision must not outlive us
                await asyncio.gather(self._next.task, return_exceptions=True)  # it ends at its next step
            await self.chain.close()
