"""A process's snapshot through `write_snapshot` / `read_snapshot` (local files only), and what start-up
may spend."""
import asyncio
import dataclasses
from pathlib import Path

import pytest

import torch

from subnet.compression.spec import CodecSpec
from subnet.keys import Keypair
from subnet.node.boot import Snapshot, join_subnet, read_snapshot, snapshot_path, write_snapshot
from subnet.node.follow import genesis_state
from subnet.node.settings import NodeSettings, SettingsError
from subnet.storage.config import neuron_storage
from subnet.wallet import Wallet


def settings(tmp_path: Path, preset) -> NodeSettings:
    wallet = Wallet.from_keys("w", tmp_path, coldkey=Keypair.generate(), hotkey=Keypair.generate())
    storage = neuron_storage("http://127.0.0.1:1", "tessera-w", ("a" * 16, "b" * 16), ("c" * 16, "d" * 16))
    return NodeSettings(name="w", role="miner", wallet=wallet, netuid=1, chain_url="http://x", storage=storage,
                        preset=preset, data_dir=tmp_path, state_dir=tmp_path / "state")


def test_snapshot_keeps_the_models_parameter_order(tmp_path, tiny_preset):
    """Packets list tensors in the model's order (their layout digest depends on it); a snapshot
    file stores them sorted, so reading must restore the model's order."""
    node = settings(tmp_path, tiny_preset)
    state = genesis_state(tiny_preset)
    state.version, state.window = 3, 7
    write_snapshot(node, Snapshot(state=state, extra={"k": 1}, tensors={"ef.x": torch.ones(2)}))
    back = read_snapshot(node, log=lambda message: None)
    order = list(CodecSpec.from_preset(tiny_preset).shapes)
    assert list(back.state.theta) == order != sorted(order)
    assert (back.state.version, back.state.window, back.state.hash) == (3, 7, state.hash)
    assert back.extra == {"k": 1} and torch.equal(back.tensors["ef.x"], torch.ones(2))


def test_a_damaged_snapshot_is_ignored_not_fatal(tmp_path, tiny_preset):
    node = settings(tmp_path, tiny_preset)
    write_snapshot(node, Snapshot(state=genesis_state(tiny_preset)))
    path = snapshot_path(node)
    path.write_bytes(path.read_bytes()[:-100])
    messages = []
    assert read_snapshot(node, log=messages.append) is None
    assert messages and "unreadable" in messages[0]


def test_a_failed_window_is_abandoned_not_the_process():
    import asyncio

    import pytest

    from subnet.node.boot import survive
    from subnet.storage.client import StorageError

    async def storage_down():
        raise StorageError("unavailable", "connection refused")

    async def bug():
        raise KeyError("a programming error")

    async def fine():
        return 42

    messages = []
    assert asyncio.run(survive(7, storage_down(), messages.append, pause=0)) is None
    assert messages == ["window 7 abandoned: StorageError: unavailable: connection refused"]
    assert asyncio.run(survive(8, fine(), messages.append, pause=0)) == 42
    with pytest.raises(KeyError):  # a bug still stops the process with its traceback
        asyncio.run(survive(9, bug(), messages.append, pause=0))


def test_an_unregistered_hotkey_is_not_registered_with_real_tao_unless_asked(tmp_path, tiny_preset):
    """On Bittensor (`register` False unless --register) start-up stops and says what to do; it never
    pays the burn on its own."""
    class Unregistered:                      # join_subnet's view of a chain where the hotkey is absent
        async def refresh(self) -> None:
            pass

        def uid_of(self, address: str):
            return None

    class NoSpending:
        async def burned_register(self, *args):
            raise AssertionError("the registration burn was paid without --register")

    chosen = dataclasses.replace(settings(tmp_path, tiny_preset), register=False)
    with pytest.raises(SettingsError, match=rf"hotkey {chosen.wallet.hotkey.address} is not registered on subnet 1: "
                                            r"register it \(btcli subnets register --netuid 1\), or pass --register"):
        asyncio.run(join_subnet(chosen, NoSpending(), Unregistered(), print))
