"""The dev chain over real sockets: calls, epochs, and rejections that leave state unchanged."""
import asyncio
import json
import signal
import types
import urllib.error
import urllib.request

import pytest

from subnet.chain.client import ChainCallError, ChainClient
from subnet.errors import InputRejected
from subnet.keys import Keypair

from .conftest import TAO, ChainProcess, write_genesis


def run(coro):
    return asyncio.run(coro)


async def snapshot(client: ChainClient, addresses: list[str]) -> dict:
    """All chain state these tests can touch, except nonces (a rejected signed call spends its nonce)."""
    accounts = [await client.get_account(a) for a in addresses]
    return {"audit": await client.audit(), "metagraph": (await client.metagraph(1)).__dict__,
            "accounts": [{k: v for k, v in acc.items() if k != "nonce"} for acc in accounts],
            "commitments": await client.get_all_commitments(1), "pool": await client.get_pool(1),
            "block": await client.get_current_block()}


async def setup_subnet(client: ChainClient, a) -> None:
    """Register a validator and three miners, stake the validator, run one epoch for permits."""
    await client.burned_register(a.validator_cold, 1, a.validator_hot.address)
    for cold, hot in zip(a.miners_cold, a.miners_hot):
        await client.burned_register(cold, 1, hot.address)
    await client.add_stake(a.validator_cold, 1, a.validator_hot.address, 500 * TAO)
    await client.advance(10)  # tempo 10: one epoch hands out validator permits


def test_register_stake_weights_epoch(chain, actors):
    async def scenario():
        async with ChainClient(chain.url) as client:
            await setup_subnet(client, actors)
            mg = await client.metagraph(1)
            assert mg.n == 5 and mg.hotkeys[0] == actors.owner_hot.address
            v = mg.uid_of(actors.validator_hot.address)
            assert mg.validator_permit[v]
            assert mg.stake[v] > 0
            # the validator weights miner uids 2 and 3 (3:1); miner uid 4 gets nothing
            await client.set_weights(actors.validator_hot, 1, [2, 3], [30000, 10000])
            before = [await client.get_stake(1, h.address, c.address)
                      for c, h in zip(actors.miners_cold, actors.miners_hot)]
            await client.advance(11)
            mg = await client.metagraph(1)
            assert mg.incentive[2] > mg.incentive[3] > 0 and mg.incentive[4] == 0
            assert abs(mg.incentive[2] / mg.incentive[3] - 3) < 0.01
            assert mg.dividends[v] > 0
            after = [await client.get_stake(1, h.address, c.address)
                     for c, h in zip(actors.miners_cold, actors.miners_hot)]
            assert after[0] - before[0] > after[1] - before[1] > 0 and after[2] == before[2]
            audit = await client.audit()
            assert audit["ok"], audit
            # commitments and unstake back to TAO
            await client.commit(actors.miners_hot[0], 1, "v1|http://127.0.0.1:8333|bucket|key|secret")
            assert await client.get_commitment(1, actors.miners_hot[0].address) == \
                "v1|http://127.0.0.1:8333|bucket|key|secret"
            balance = await client.get_balance(actors.miners_cold[0].address)
            result = await client.unstake(actors.miners_cold[0], 1, actors.miners_hot[0].address, after[0])
            assert await client.get_balance(actors.miners_cold[0].address) == balance + result["tao"] > balance
            assert (await client.audit())["ok"]
    run(scenario())


def test_rejections_change_nothing(chain, actors):
    async def scenario():
        async with ChainClient(chain.url) as client:
            await setup_subnet(client, actors)
            addresses = [actors.validator_cold.address, actors.miners_cold[0].address,
                         actors.miners_hot[0].address, actors.validator_hot.address]
            base = await snapshot(client, addresses)

            async def rejected(coro, code):
                with pytest.raises(ChainCallError) as err:
                    await coro
                assert err.value.code == code, err.value
                assert await snapshot(client, addresses) == base

            await rejected(client.set_weights(actors.miners_hot[0], 1, [1], [100]), "no_validator_permit")
            await rejected(client.set_weights(actors.validator_hot, 1, [99], [100]), "unknown_uid")
            await rejected(client.set_weights(actors.validator_hot, 1, [1, 1], [1, 2]), "bad_weights")
            await rejected(client.set_weights(actors.validator_hot, 1, [1], [70000]), "bad_weights")
            await rejected(client.commit(actors.miners_hot[0], 1, "x" * 513), "commitment_too_large")
            await rejected(client.commit(Keypair.generate(), 1, "hi"), "not_registered")
            await rejected(client.add_stake(actors.miners_cold[0], 1, actors.miners_hot[0].address, 10**6 * TAO),
                           "insufficient_balance")
            await rejected(client.unstake(actors.miners_cold[0], 1, actors.miners_hot[0].address, 10**15),
                           "insufficient_stake")
            await rejected(client.burned_register(actors.miners_cold[1], 1, actors.miners_hot[0].address),
                           "already_registered")
            await rejected(client.transfer(actors.miners_cold[0], "not-an-address", 1), "bad_address")
            await rejected(client.add_stake(actors.miners_cold[0], 7, actors.miners_hot[0].address, TAO),
                           "unknown_subnet")
    run(scenario())


def post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url + "/call", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_malformed_forged_and_replayed_calls(chain, actors):
    from subnet.chain.envelope import call_message

    head = json.loads(urllib.request.urlopen(chain.url + "/head").read())
    genesis = head["genesis_hash"]
    cold = actors.miners_cold[0]
    params = {"dest": actors.miners_cold[1].address, "amount": TAO}

    def envelope(nonce, signer=cold, key=cold, p=params):
        sig = key.sign(call_message("transfer", p, signer.address, nonce, genesis)).hex()
        return {"call": "transfer", "params": p, "signer": signer.address, "nonce": nonce, "signature": sig}

    def balance(addr):
        return json.loads(urllib.request.urlopen(f"{chain.url}/accounts/{addr}").read())["balance"]

    start = balance(cold.address)
    assert post(chain.url, b"{not json")[1]["error"]["code"] == "malformed"
    assert post(chain.url, b"[1, 2]")[1]["error"]["code"] == "malformed"
    assert post(chain.url, json.dumps({"call": "mint"}).encode())[1]["error"]["code"] == "malformed"
    forged = envelope(5, signer=cold, key=actors.miners_cold[1])  # signed by someone else
    status, body = post(chain.url, json.dumps(forged).encode())
    assert status == 401 and body["error"]["code"] == "bad_signature"
    tampered = envelope(6)
    tampered["params"] = {**params, "amount": 40 * TAO}
    assert post(chain.url, json.dumps(tampered).encode())[1]["error"]["code"] == "bad_signature"
    assert balance(cold.address) == start

    good = envelope(10)
    status, first = post(chain.url, json.dumps(good).encode())
    assert status == 200 and balance(cold.address) == start - TAO
    # the same envelope again: answered, not applied twice
    status, again = post(chain.url, json.dumps(good).encode())
    assert status == 200 and again.get("duplicate") and balance(cold.address) == start - TAO
    # an older nonce, even freshly signed, is a replay
    status, body = post(chain.url, json.dumps(envelope(9)).encode())
    assert body["error"]["code"] == "stale_nonce" and balance(cold.address) == start - TAO
    status, body = post(chain.url, b"x" * (70 * 1024))
    assert status == 413 and body["error"]["code"] == "too_large"
    for hostile in (b"[" * 30000, b'{"call": NaN}', b"\xff\xfe"):  # nesting bomb, non-finite, bad UTF-8
        status, body = post(chain.url, hostile)
        assert status == 400 and body["error"]["code"] == "malformed"
    long_signer = {**envelope(20), "signer": "5" * 60000}
    status, body = post(chain.url, json.dumps(long_signer).encode())
    assert body["error"]["code"] == "bad_address" and len(body["error"]["message"]) < 200


def test_rejected_envelope_cannot_be_replayed_later(chain, actors):
    from subnet.chain.envelope import call_message

    genesis = json.loads(urllib.request.urlopen(chain.url + "/head").read())["genesis_hash"]
    poor, rich = actors.miners_cold[0], actors.validator_cold
    params = {"dest": rich.address, "amount": 80 * TAO}  # more than the 50 TAO it holds
    sig = poor.sign(call_message("transfer", params, poor.address, 7, genesis)).hex()
    envelope = json.dumps({"call": "transfer", "params": params, "signer": poor.address, "nonce": 7,
                           "signature": sig}).encode()
    assert post(chain.url, envelope)[1]["error"]["code"] == "insufficient_balance"

    async def fund():
        async with ChainClient(chain.url) as client:
            await client.transfer(rich, poor.address, 100 * TAO)  # now it could pay
            return await client.get_balance(poor.address)
    funded = run(fund())
    status, body = post(chain.url, envelope)  # the same envelope: its first answer, not a transfer
    assert body["error"]["code"] == "insufficient_balance"
    assert json.loads(urllib.request.urlopen(f"{chain.url}/accounts/{poor.address}").read())["balance"] == funded


def test_client_resyncs_its_nonce_after_another_writer(chain, actors):
    async def scenario():
        async with ChainClient(chain.url) as first, ChainClient(chain.url) as second:
            cold = actors.miners_cold[0]
            first._nonces[cold.address] = 2**62  # a writer far ahead (another process, a fast clock)
            await first.transfer(cold, actors.miners_cold[1].address, TAO)
            await second.transfer(cold, actors.miners_cold[1].address, TAO)  # stale at first, then resynced
            return await second.get_balance(actors.miners_cold[1].address)
    assert run(scenario()) == 52 * TAO


def _genesis_hash(url: str) -> str:
    return json.loads(urllib.request.urlopen(url + "/head").read())["genesis_hash"]


def test_long_lived_client_survives_a_chain_reset(tmp_path, actors):
    """A chain restarted with a new genesis on the same URL: the same client re-signs and goes on."""
    first = ChainProcess(db=tmp_path / "a.db", genesis=write_genesis(tmp_path / "a.yaml", actors), block_time=0)
    cold, dest = actors.miners_cold[0], actors.miners_cold[1].address

    async def scenario():
        first.start()
        url = first.url
        # The new chain takes the old one's port: the URL the client holds does not change.
        second = ChainProcess(db=tmp_path / "b.db", genesis=write_genesis(tmp_path / "b.yaml", actors, tempo=7),
                              port=first.port, block_time=0)
        async with ChainClient(url) as client:
            try:
                genesis_a = _genesis_hash(url)
                await client.transfer(cold, dest, TAO)
                assert await client.get_balance(dest) == 51 * TAO
            finally:
                first.kill(signal.SIGTERM)
            second.start()
            try:
                assert _genesis_hash(url) != genesis_a
                result = await client.transfer(cold, dest, 2 * TAO)  # signed for chain A first, then re-signed
                assert result["call"] == "transfer" and not result.get("duplicate")
                assert await client.get_balance(dest) == 52 * TAO  # the new chain's 50 TAO plus this transfer
            finally:
                second.kill(signal.SIGTERM)
    run(scenario())


def test_a_bad_signature_on_an_unchanged_chain_is_raised(chain, actors):
    """Only a changed genesis is worth a retry: a signature that is just wrong fails at once."""
    impostor = types.SimpleNamespace(address=actors.miners_cold[0].address, sign=actors.miners_cold[1].sign,
                                     scheme=actors.miners_cold[1].scheme)

    async def scenario():
        async with ChainClient(chain.url) as client:
            with pytest.raises(ChainCallError) as err:
                await client.transfer(impostor, actors.validator_cold.address, TAO)
            return err.value, await client.get_balance(actors.miners_cold[0].address)
    error, balance = run(scenario())
    assert isinstance(error, InputRejected) and error.reason == "bad_signature" and error.status == 401
    assert balance == 50 * TAO


def test_dev_advance_exists_only_in_dev_mode(tmp_path, actors):
    proc = ChainProcess(db=tmp_path / "c.db", genesis=write_genesis(tmp_path / "g.yaml", actors), block_time=0.2)
    proc.start()
    try:
        request = urllib.request.Request(proc.url + "/dev/advance", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        assert err.value.code in (404, 405)
        # Blocks come by themselves (no rate asserted: a loaded machine may be slow); poll with a deadline.
        import time
        first = json.loads(urllib.request.urlopen(proc.url + "/head").read())["block"]
        deadline, block = time.monotonic() + 30, first
        while block < first + 3 and time.monotonic() < deadline:
            time.sleep(0.05)
            block = json.loads(urllib.request.urlopen(proc.url + "/head").read())["block"]
        assert block >= first + 3, "the chain made no blocks by itself in 30 s"
    finally:
        proc.kill()


def test_validator_set_is_read_as_of_a_past_block(chain, actors):
    """The aggregate rule reads the stake order at a window's first block: a stake change or a
    first set_weights after that block must not change what a late reader sees for it."""
    async def scenario():
        async with ChainClient(chain.url) as client:
            await setup_subnet(client, actors)
            before = await client.get_current_block()
            v = (await client.metagraph(1)).uid_of(actors.validator_hot.address)
            at = await client.validators_at(1, before)
            assert at.weight_setters == [] and at.validator_permit[v]
            stake_then = at.stake[v]
            await client.add_stake(actors.validator_cold, 1, actors.validator_hot.address, 100 * TAO)
            await client.set_weights(actors.validator_hot, 1, [2], [1])
            await client.advance(1)
            now = await client.get_current_block()
            again = await client.validators_at(1, before)
            assert (again.stake[v], again.weight_setters) == (stake_then, [])   # history, unchanged
            later = await client.validators_at(1, now)
            assert later.stake[v] > stake_then and later.weight_setters == [v]
            assert later.recorded_at == now and again.recorded_at <= before
            with pytest.raises(ChainCallError) as future:
                await client.validators_at(1, now + 1)
            assert future.value.reason == "unknown_block"
            with pytest.raises(ChainCallError) as unknown:
                await client.validators_at(99, now)
            assert unknown.value.reason == "unknown_subnet"
    run(scenario())


def test_pool_shows_the_last_blocks_emission(chain, actors):
    async def go():
        async with ChainClient(chain.url) as client:
            first = await client.get_pool(1)
            await client.advance(5)
            before = await client.get_pool(1)
            await client.advance(1)
            after = await client.get_pool(1)
            return first, before, after, await client.get_current_block()

    first, before, after, head = run(go())
    assert first["last_block_emission"] is None             # no block made by this process yet
    emission = after["last_block_emission"]
    assert emission["block"] == head and before["last_block_emission"]["block"] == head - 1
    assert 0 <= emission["tao_in"] <= emission["tao"] and emission["alpha_out"] > 0
    # What the block minted is what the subnet's alpha issuance grew by; the TAO it injected is in the pool.
    assert after["alpha_issuance"] - before["alpha_issuance"] == emission["alpha_in"] + emission["alpha_out"]
    assert after["tao"] - before["tao"] == emission["tao"]
