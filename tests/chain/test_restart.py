"""kill -9 the chain mid-run: after a restart, everything it confirmed is still there."""
import asyncio
import signal

import pytest

from subnet.chain.client import ChainClient, ChainUnavailable

from .conftest import TAO, ChainProcess, free_port, write_genesis


@pytest.mark.slow
def test_kill_9_loses_nothing_confirmed(tmp_path, actors):
    port = free_port()
    chain = ChainProcess(url=f"http://127.0.0.1:{port}", db=tmp_path / "chain.db",
                         genesis=write_genesis(tmp_path / "g.yaml", actors, tempo=3), port=port, block_time=0.05)
    chain.start()
    a = actors

    async def load(confirmed: dict):
        async with ChainClient(chain.url, retries=0) as client:
            await client.burned_register(a.validator_cold, 1, a.validator_hot.address)
            await client.burned_register(a.miners_cold[0], 1, a.miners_hot[0].address)
            confirmed["root"] = 0
            confirmed["sent"] = 0
            while (await client.get_current_block()) < 8:  # a couple of epochs: validator permit
                await asyncio.sleep(0.05)
            await client.add_stake(a.validator_cold, 1, a.validator_hot.address, 100 * TAO)
            await asyncio.sleep(0.5)
            for i in range(60):
                try:
                    await client.transfer(a.miners_cold[0], a.miners_cold[1].address, TAO // 10)
                    confirmed["sent"] += TAO // 10
                    await client.add_stake(a.miners_cold[1], 0, a.miners_hot[0].address, TAO // 100)
                    confirmed["root"] += TAO // 100
                    await client.commit(a.miners_hot[0], 1, f"commit-{i}")
                    confirmed["commit"] = f"commit-{i}"
                    mg = await client.metagraph(1)
                    if mg.validator_permit[mg.uid_of(a.validator_hot.address)]:
                        await client.set_weights(a.validator_hot, 1, [2, 0], [i + 1, 7])
                        confirmed["weights"] = ([2, 0], [i + 1, 7])
                    confirmed["block"] = await client.get_current_block()
                    if i == 40:
                        chain.kill(signal.SIGKILL)  # mid-run, blocks still being produced
                except ChainUnavailable:
                    return

    confirmed: dict = {}
    asyncio.run(load(confirmed))
    assert chain.proc.poll() is not None and confirmed["sent"] > 0
    chain.start()

    async def check():
        async with ChainClient(chain.url) as client:
            assert await client.get_current_block() >= confirmed["block"]
            assert await client.get_balance(a.miners_cold[1].address) == 50 * TAO + confirmed["sent"] - \
                confirmed["root"]
            assert await client.get_stake(0, a.miners_hot[0].address, a.miners_cold[1].address) == confirmed["root"]
            assert await client.get_commitment(1, a.miners_hot[0].address) == confirmed["commit"]
            if "weights" in confirmed:
                mg = await client.metagraph(1)
                assert (await client.get_weights(1))[mg.uid_of(a.validator_hot.address)] == confirmed["weights"]
            assert (await client.audit())["ok"]
            before = await client.get_current_block()
            await asyncio.sleep(0.5)
            assert await client.get_current_block() > before  # producing again
    try:
        asyncio.run(check())
    finally:
        chain.kill()
