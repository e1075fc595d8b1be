"""Start-up shared by miners and validators: join the subnet, publish the bucket, find the model.

Each step is idempotent, so a restarted process repeats it harmlessly: registration only if the
hotkey is not on the metagraph, a commitment only if the chain does not already hold this one.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from subnet.chain.backend import Chain
from subnet.chain.client import ChainUnavailable
from subnet.errors import InputRejected
from subnet.files import atomic_write
from subnet.metrics import METRICS_PORT_FILE, serve
from subnet.compression.spec import CodecSpec
from subnet.node.follow import Follower, ModelState, genesis_state, newest_checkpoint_state
from subnet.node.network import NetworkView
from subnet.node.settings import NodeSettings, SettingsError
from subnet.node.snapshot import SnapshotError, load_snapshot, prefixed, save_snapshot, unprefixed


async def join_subnet(settings: NodeSettings, chain: Chain, view: NetworkView, log: Callable[[str], None]) -> int:
    """Register the hotkey if needed, commit the bucket's read access; returns this node's uid."""
    hotkey = settings.wallet.hotkey
    await view.refresh()
    if view.uid_of(hotkey.address) is None:
        if not settings.register:
            raise SettingsError(f"hotkey {hotkey.address} is not registered on subnet {settings.netuid}: register it "
                                f"(btcli subnets register --netuid {settings.netuid}), or pass --register to pay the "
                                f"subnet's burn from coldkey {settings.wallet.coldkey_address}")
        # the coldkey is unlocked (a password asked for) only now
        await chain.burned_register(settings.wallet.coldkey, settings.netuid, hotkey.address)
        log(f"registered hotkey {hotkey.address} on subnet {settings.netuid}")
        await view.refresh()
    uid = view.uid_of(hotkey.address)
    if uid is None:
        raise RuntimeError("registration was accepted but the hotkey is not on the metagraph")
    commitment = settings.storage.commitment()
    if (await chain.get_commitment(settings.netuid, hotkey.address)) != commitment:
        await chain.commit(hotkey, settings.netuid, commitment)
        log(f"committed bucket {settings.storage.bucket}")
        await view.refresh()
    return uid


def snapshot_path(settings: NodeSettings) -> Path:
    return settings.state_dir / f"{settings.role}.safetensors"


@dataclass
class Snapshot:
    state: ModelState
    extra: dict = field(default_factory=dict)           # role-specific JSON
    tensors: dict = field(default_factory=dict)         # role-specific tensors (EF buffer, optimizer)


def read_snapshot(settings: NodeSettings, log: Callable[[str], None]) -> Snapshot | None:
    try:
        loaded = load_snapshot(snapshot_path(settings))
    except SnapshotError as exc:
        log(f"ignoring unreadable state: {exc}")
        return None
    if loaded is None:
        return None
    tensors, meta = loaded
    try:
        # The model's own parameter order, not the file's (sorted): packets list tensors in this
        # order and their layout digest depends on it.
        order = CodecSpec.from_preset(settings.preset).shapes
        saved = unprefixed(tensors, "theta.")
        if set(saved) != set(order):
            raise ValueError("parameter names differ from the preset's model")
        theta = {name: saved[name] for name in order}
        state = ModelState(theta=theta, version=int(meta["model"]["version"]), window=int(meta["model"]["window"]),
                           prev_sha=str(meta["model"]["prev_sha"]))
        if state.hash != meta["model"]["hash"]:
            raise ValueError("model does not hash to the recorded hash")
    except (KeyError, TypeError, ValueError) as exc:
        log(f"ignoring inconsistent state {snapshot_path(settings)}: {exc}")
        return None
    rest = {k: v for k, v in tensors.items() if not k.startswith("theta.")}
    return Snapshot(state=state, extra=meta.get("extra", {}), tensors=rest)


def write_snapshot(settings: NodeSettings, snapshot: Snapshot) -> None:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    tensors = {**prefixed(snapshot.state.theta, "theta."), **snapshot.tensors}
    save_snapshot(snapshot_path(settings), tensors, {"model": snapshot.state.meta(), "extra": snapshot.extra})


def serve_metrics(settings: NodeSettings, registry, log: Callable[[str], None]) -> None:
    """Serve the process's Prometheus metrics when a port is configured (0: one the OS picks), and
    write the port it got to STATE_DIR/metrics.port, so whoever started it finds it without racing
    for a port that was free a moment ago."""
    if settings.metrics_port is not None:
        port = serve(registry, settings.metrics_port).server_port
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(settings.state_dir / METRICS_PORT_FILE, f"{port}\n".encode())
        log(f"metrics on http://127.0.0.1:{port}/metrics")


async def start_follower(settings: NodeSettings, view: NetworkView, snapshot: Snapshot | None,
                         log: Callable[[str], None]) -> Follower:
    """Own snapshot, else the newest verifiable checkpoint, else genesis; then catch up."""
    preset = settings.preset
    spec = CodecSpec.from_preset(preset)
    state = snapshot.state if snapshot else None
    if state is None:
        state = await newest_checkpoint_state(view, settings.state_dir / "checkpoints", log)
    if state is None:
        state = genesis_state(preset)
        log(f"starting from the genesis model {state.hash[:12]}")
    follower = Follower(preset, spec, view, state, log, checkpoint_dir=settings.state_dir / "checkpoints")
    await catch_up(follower, log)
    return follower


async def catch_up(follower: Follower, log: Callable[[str], None]) -> None:
    """Apply every decided window the node has not followed yet, and say so when there were any."""
    started = time.monotonic()
    decisions = await follower.catch_up()
    applied = sum(d.aggregate is not None for d in decisions)
    if decisions:
        log(f"caught up {applied} aggregates to window {follower.state.window} (version {follower.state.version}) "
            f"in {time.monotonic() - started:.1f}s")


TRANSIENT = (InputRejected, ChainUnavailable, OSError)  # a window's I/O failed; the next may not


async def survive(window: int, step, log: Callable[[str], None], pause: float = 1.0):
    """Run one window's work; a storage or chain failure costs that window, not the process."""
    try:
        return await step
    except TRANSIENT as exc:
        log(f"window {window} abandoned: {type(exc).__name__}: {exc}")
        await asyncio.sleep(pause)
        return None


async def wait_for_block(chain: Chain, block: int, poll: float = 0.02) -> int:
    """Wait until the chain's head is at least `block`; returns the head."""
    while True:
        head = await chain.get_current_block()
        if head >= block:
            return head
        await asyncio.sleep(poll)
