"""kill -9 the chain mid-run: after a restart, everything it confirmed is still there."""
import asyncio
import signal

import pytest

from subnet.chain.client import ChainClient, ChainUnavailable

from .conftest import TAO, ChainProcess, write_genesis


@pytest.mark.slow
def test_kill_9_loses_nothing_confirmed(tmp_path, actors):
    chain = ChainProcess(db=tmp_path / "chain.db", genesis=write_genesis(tmp_path / "g.yaml", actors, tempo=3),
                         block_time=0.05)
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
            # The permit comes at the next epoch (tempo 3): wait for it, so weights are set below.
            for _ in range(400):
                mg = await client.metagraph(1)
                if mg.validator_permit[mg.uid_of(a.validator_hot.address)]:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("no validator permit in 20 s")
            for i in range(60):
                try:
                    await client.transfer(a.miners_cold[0], a.miners_cold[1].address, TAO // 10)
                    confirmed["sent"] += TAO // 10
                    await client.add_stake(a.miners_cold[1], 0, a.miners_hot[0].address, TAO // 100)
                    confirmed["root"] += TAO // 100
                    await client.commit(a.miners_hot[0], 1, f"commit-{i}")
                    confirmed["commit"] = f"commit-{i}"
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
            mg = await client.metagraph(1)
            assert (await client.get_weights(1))[mg.uid_of(a.validator_hot.address)] == confirmed["weights"]
            assert (await client.audit())["ok"]
            before = await client.get_current_block()
            for _ in range(400):                               # producing again (polled, no rate asserted)
                if await client.get_current_block() > before:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("no block in 20 s after the restart")
    try:
        asyncio.run(check())
    finally:
        chain.kill()


@pytest.mark.slow
def test_a_call_resent_after_a_kill_applies_exactly_once(tmp_path, actors):
    """The reply to a transfer is lost (the chain is SIGKILLed after applying it): the client
    resends the same signed envelope to the restarted chain, which answers with the stored result
    and does not move the TAO again; a new nonce is a new transfer."""
    import json
    import urllib.request

    from subnet.chain.envelope import sign_envelope

    chain = ChainProcess(db=tmp_path / "chain.db", genesis=write_genesis(tmp_path / "g.yaml", actors), block_time=0)
    chain.start()

    def get(path: str) -> dict:
        return json.loads(urllib.request.urlopen(chain.url + path, timeout=5).read())

    def post(body: dict) -> dict:
        request = urllib.request.Request(chain.url + "/call", data=json.dumps(body).encode(), method="POST")
        return json.loads(urllib.request.urlopen(request, timeout=5).read())

    sender, receiver = actors.miners_cold[0], actors.miners_cold[1].address
    try:
        genesis = get("/head")["genesis_hash"]
        envelope = sign_envelope(sender, "transfer", {"dest": receiver, "amount": 3 * TAO}, 1, genesis)
        first = post(envelope)
        chain.kill(signal.SIGKILL)          # the reply may never have reached the client
        chain.start()
        again = post(envelope)              # the client's resend, byte for byte
        assert again == {**first, "duplicate": True}      # the stored answer, marked as a resend
        assert get(f"/accounts/{receiver}")["balance"] == 50 * TAO + 3 * TAO
        assert get(f"/accounts/{sender.address}")["nonce"] == 1
        post(sign_envelope(sender, "transfer", {"dest": receiver, "amount": 3 * TAO}, 2, genesis))
        assert get(f"/accounts/{receiver}")["balance"] == 50 * TAO + 6 * TAO
        assert get("/audit")["ok"]
    finally:
        chain.kill()
