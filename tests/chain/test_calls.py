"""Each signed call's state transition, in-process: its exact result, the edges of every range it
checks (the last value accepted, the first refused) and the message of each refusal. Independent
figures: amounts come from the test's own arithmetic, pool results from amm.pool's quotes."""
from __future__ import annotations

import numpy as np
import pytest

from amm.pool import Pool
from subnet.chain.calls import ChainError
from subnet.chain.envelope import MAX_NONCE
from subnet.chain.genesis import ChainParams, SubnetGenesis
from subnet.chain.node import ChainNode
from subnet.keys import Keypair

from tests.chain.test_conservation import TAO, Signer

COLD, OTHER = Keypair.from_seed(b"\x11" * 32), Keypair.from_seed(b"\x12" * 32)
HOTS = [Keypair.from_seed(bytes([0x20 + i]) * 32) for i in range(6)]
OWNER, OWNER_HOT = Keypair.from_seed(b"\x13" * 32), Keypair.from_seed(b"\x14" * 32)
BURN = TAO // 2


def make_chain(tmp_path, max_uids: int = 8, immunity_period: int = 5, max_commitment_bytes: int = 64):
    params = ChainParams(
        balances={COLD.address: 100 * TAO, OTHER.address: 100 * TAO},
        subnets=(SubnetGenesis(netuid=1, owner=OWNER.address, owner_hotkey=OWNER_HOT.address, pool_tao=100 * TAO,
                               pool_alpha=50 * TAO, tempo=4, burn=BURN, max_uids=max_uids,
                               immunity_period=immunity_period, max_validators=4),),
        root_stake={}, max_commitment_bytes=max_commitment_bytes)
    node = ChainNode(tmp_path / "chain.db", params)
    return node, Signer(node)


def refusal(signer: Signer, key: Keypair, call: str, **params) -> ChainError:
    with pytest.raises(ChainError) as info:
        signer.call(key, call, **params)
    return info.value


def balance(node: ChainNode, key: Keypair) -> int:
    return node.account(key.address)["balance"]


def test_transfer_moves_exactly_the_amount_and_its_edges(tmp_path):
    node, signer = make_chain(tmp_path)
    assert signer.call(COLD, "transfer", dest=OTHER.address, amount=1) == {
        "call": "transfer", "block": 0, "balance": 100 * TAO - 1}
    assert signer.call(COLD, "transfer", dest=OTHER.address, amount=100 * TAO - 1)["balance"] == 0  # all of it
    assert balance(node, OTHER) == 200 * TAO
    error = refusal(signer, OTHER, "transfer", dest=COLD.address, amount=200 * TAO + 1)
    assert (error.reason, error.detail) == ("insufficient_balance", f"balance {200 * TAO} rao is below {200 * TAO + 1} rao")
    # The largest amount an integer parameter takes passes the range check (and then the balance check).
    assert refusal(signer, OTHER, "transfer", dest=COLD.address, amount=MAX_NONCE).reason == "insufficient_balance"
    error = refusal(signer, OTHER, "transfer", dest=COLD.address, amount=MAX_NONCE + 1)
    assert (error.reason, error.detail) == ("bad_params", f"amount must be an integer in [1, {MAX_NONCE}], "
                                                          f"got {MAX_NONCE + 1}")
    assert refusal(signer, OTHER, "transfer", dest=COLD.address, amount=0).detail.startswith(
        "amount must be an integer in [1, ")
    assert refusal(signer, OTHER, "transfer", amount=5).detail == "missing parameter(s): dest"
    assert refusal(signer, OTHER, "transfer", dest=COLD.address).detail == "missing parameter(s): amount"
    assert refusal(signer, OTHER, "transfer", dest=COLD.address, amount=5, memo="x").detail == "unknown parameter(s): memo"
    error = refusal(signer, OTHER, "transfer", dest="nope", amount=5)
    assert (error.reason, error.detail) == ("bad_address", "dest 'nope' is not an SS58 address")
    assert refusal(signer, OTHER, "transfer", dest=7, amount=5).reason == "bad_address"
    assert balance(node, OTHER) == 200 * TAO and balance(node, COLD) == 0


def test_registration_result_burn_and_the_netuid_range(tmp_path):
    node, signer = make_chain(tmp_path)
    issuance = node.audit()["tao"]["issuance"]
    first = signer.call(COLD, "burned_register", netuid=1, hotkey=HOTS[0].address)
    assert first == {"call": "burned_register", "block": 0, "uid": 1, "burn": BURN}   # uid 0: the owner's hotkey
    assert balance(node, COLD) == 100 * TAO - BURN and node.audit()["tao"]["issuance"] == issuance - BURN
    error = refusal(signer, COLD, "burned_register", netuid=9, hotkey=HOTS[1].address)
    assert (error.reason, error.detail, error.status) == ("unknown_subnet", "subnet 9 does not exist", 404)
    assert refusal(signer, COLD, "burned_register", netuid=0, hotkey=HOTS[1].address).reason == "bad_params"
    error = refusal(signer, COLD, "burned_register", netuid=1, hotkey=HOTS[0].address)
    assert (error.reason, error.detail) == ("already_registered",
                                            f"hotkey {HOTS[0].address} is already registered on subnet 1")


def test_a_full_subnet_prunes_the_lowest_emission_neuron_once_its_immunity_ends(tmp_path):
    node, signer = make_chain(tmp_path, max_uids=3, immunity_period=5)
    for _ in range(3):
        node.produce_block()
    for hot in HOTS[:2]:
        signer.call(COLD, "burned_register", netuid=1, hotkey=hot.address)          # uids 1, 2 at block 3
    signer.call(HOTS[0], "commit", netuid=1, data="bucket-of-uid-1")
    node.store.set_weights(1, 1, 3, "[0, 2]", "[1, 1]")       # as if uid 1 had been a validator
    node.store.set_weights(1, 2, 3, "[0]", "[5]")
    for _ in range(4):
        node.produce_block()
    error = refusal(signer, COLD, "burned_register", netuid=1, hotkey=HOTS[2].address)   # 4 blocks old: immune
    assert (error.reason, error.detail) == ("subnet_full", "subnet 1 is full and every neuron is still immune")
    node.produce_block()                                                               # 5 blocks: exactly the period
    node.store.set_bonds(1, np.full((3, 3), 7, dtype=np.uint16))
    result = signer.call(COLD, "burned_register", netuid=1, hotkey=HOTS[2].address)
    assert result["uid"] == 1                         # equal emission: the older, then the lower uid, goes
    metagraph = node.metagraph(1)
    assert metagraph["hotkeys"] == [OWNER_HOT.address, HOTS[2].address, HOTS[1].address]   # the owner is kept
    assert HOTS[0].address not in node.commitments(1)["commitments"]
    assert set(node.weights(1)["weights"]) == {"2"}            # the pruned uid's weights went with it
    bonds = node.store.bonds(1, 3)
    assert (bonds[1, :] == 0).all() and (bonds[:, 1] == 0).all()
    assert bonds[0, 0] == bonds[2, 2] == bonds[0, 2] == bonds[2, 0] == 7              # everyone else's kept


def test_staking_results_flows_and_the_root_path(tmp_path):
    node, signer = make_chain(tmp_path)
    signer.call(COLD, "burned_register", netuid=1, hotkey=HOTS[0].address)
    quote = Pool(tao=100 * TAO, alpha=50 * TAO).quote_stake(3 * TAO)
    staked = signer.call(COLD, "add_stake", netuid=1, hotkey=HOTS[0].address, amount=3 * TAO)
    assert staked == {"call": "add_stake", "block": 0, "alpha": quote.amount_out, "tao_spent": 3 * TAO,
                      "fee": quote.fee}
    assert node.store.subnet(1).flow_this_block == 3 * TAO
    assert node.stake(1, HOTS[0].address, COLD.address)["alpha"] == quote.amount_out
    assert signer.call(COLD, "add_stake", netuid=1, hotkey=HOTS[0].address, amount=1)["tao_spent"] == 1
    held = node.stake(1, HOTS[0].address, COLD.address)["alpha"]
    pool = node.pool(1)
    back = Pool(tao=pool["tao"], alpha=pool["alpha"]).quote_unstake(held)
    before = balance(node, COLD)
    unstaked = signer.call(COLD, "remove_stake", netuid=1, hotkey=HOTS[0].address, amount=held)   # all of it
    assert unstaked == {"call": "remove_stake", "block": 0, "tao": back.amount_out, "alpha_spent": held,
                        "fee": back.fee}
    assert balance(node, COLD) == before + back.amount_out
    assert node.store.subnet(1).flow_this_block == 3 * TAO + 1 - back.amount_out
    error = refusal(signer, COLD, "remove_stake", netuid=1, hotkey=HOTS[0].address, amount=1)
    assert (error.reason, error.detail) == ("insufficient_stake", "stake 0 rao is below 1 rao")
    # Root (netuid 0): 1:1, for a hotkey registered on some subnet.
    error = refusal(signer, COLD, "add_stake", netuid=0, hotkey=HOTS[5].address, amount=TAO)
    assert (error.reason, error.detail) == ("not_registered", f"hotkey {HOTS[5].address} is not registered on any subnet")
    root_before = node.audit()["tao"]["root_stake"]
    assert signer.call(COLD, "add_stake", netuid=0, hotkey=HOTS[0].address, amount=2 * TAO) == {
        "call": "add_stake", "block": 0, "alpha": 2 * TAO, "tao_spent": 2 * TAO}
    assert node.audit()["tao"]["root_stake"] == root_before + 2 * TAO
    before = balance(node, COLD)
    assert signer.call(COLD, "remove_stake", netuid=0, hotkey=HOTS[0].address, amount=2 * TAO) == {
        "call": "remove_stake", "block": 0, "tao": 2 * TAO, "alpha_spent": 2 * TAO}
    assert balance(node, COLD) == before + 2 * TAO and node.audit()["tao"]["root_stake"] == root_before
    assert node.audit()["tao"]["ok"]


def test_limit_prices_partial_fills_by_default_and_the_price_range(tmp_path):
    node, signer = make_chain(tmp_path)
    signer.call(COLD, "burned_register", netuid=1, hotkey=HOTS[0].address)
    price = node.pool(1)["price"]                              # 2.0 TAO per alpha
    limit = price * 1.001
    expected = Pool(tao=100 * TAO, alpha=50 * TAO).quote_stake_limit(10 * TAO, limit, True)
    result = signer.call(COLD, "add_stake", netuid=1, hotkey=HOTS[0].address, amount=10 * TAO, limit_price=limit)
    assert result["tao_spent"] == expected.amount_in < 10 * TAO       # allow_partial defaults to true
    error = refusal(signer, COLD, "add_stake", netuid=1, hotkey=HOTS[0].address, amount=10 * TAO,
                    limit_price=node.pool(1)["price"] * 1.0001, allow_partial=False)
    assert error.reason == "pool_refused" and error.detail != "None" and len(error.detail) > 10
    assert signer.call(COLD, "add_stake", netuid=1, hotkey=HOTS[0].address, amount=TAO // 1000,
                       limit_price=0.5 + price)["tao_spent"] == TAO // 1000
    for bad in (0, -1.0, "2", True):
        error = refusal(signer, COLD, "add_stake", netuid=1, hotkey=HOTS[0].address, amount=TAO, limit_price=bad)
        assert (error.reason, error.detail) == ("bad_params", f"limit_price must be a positive finite number, got {bad!r}")
    error = refusal(signer, COLD, "add_stake", netuid=1, hotkey=HOTS[0].address, amount=TAO, limit_price=limit,
                    allow_partial=None)
    assert (error.reason, error.detail) == ("bad_params", "allow_partial must be true or false")
    # A sell limit below the price: unstaking with a limit takes the same path.
    held = node.stake(1, HOTS[0].address, COLD.address)["alpha"]
    assert refusal(signer, COLD, "remove_stake", netuid=1, hotkey=HOTS[0].address, amount=held,
                   limit_price=node.pool(1)["price"] * 0.999, allow_partial=False).reason == "pool_refused"
    sold = signer.call(COLD, "remove_stake", netuid=1, hotkey=HOTS[0].address, amount=held,
                       limit_price=node.pool(1)["price"] * 0.999)
    assert 0 < sold["alpha_spent"] < held
    rest = held - sold["alpha_spent"]
    assert signer.call(COLD, "remove_stake", netuid=1, hotkey=HOTS[0].address, amount=rest, limit_price=0.5,
                       allow_partial=False)["alpha_spent"] == rest          # a limit below 1 is a limit too
    assert refusal(signer, COLD, "remove_stake", netuid=1, hotkey=HOTS[0].address, amount=0).reason == "bad_params"


def _validator_chain(tmp_path):
    """Subnet 1 with a staked validator (HOTS[0], permit after the first epoch) and miners HOTS[1..3]."""
    node, signer = make_chain(tmp_path)
    for hot in HOTS[:4]:
        signer.call(COLD, "burned_register", netuid=1, hotkey=hot.address)
    signer.call(COLD, "add_stake", netuid=1, hotkey=HOTS[0].address, amount=10 * TAO)
    for _ in range(8):
        node.produce_block()
    uids = node.metagraph(1)["uids"]
    assert node.metagraph(1)["validator_permit"][1] and len(uids) == 5
    return node, signer


def test_set_weights_accepts_every_edge_and_refuses_one_past(tmp_path):
    node, signer = _validator_chain(tmp_path)
    n = node.metagraph(1)["n"]
    ok = signer.call(HOTS[0], "set_weights", netuid=1, uids=list(range(n)), weights=[0, 65535, 1, 2, 3],
                     version_key=7)
    assert ok == {"call": "set_weights", "block": node.block, "uid": 1, "count": n}
    assert node.weights(1)["weights"]["1"] == {"block": node.block, "uids": list(range(n)),
                                               "weights": [0, 65535, 1, 2, 3]}
    assert node.metagraph(1)["last_update"][1] == node.block
    cases = [
        (dict(uids=[0, 1], weights=[1]), "bad_weights", "uids and weights must be lists of equal length"),
        (dict(uids=(0,), weights=[1]), "bad_weights", "uids and weights must be lists of equal length"),
        (dict(uids=[0], weights=5), "bad_weights", "uids and weights must be lists of equal length"),
        (dict(uids=list(range(n + 1)), weights=[1] * (n + 1)), "bad_weights", f"{n + 1} weights for a subnet of {n} uids"),
        (dict(uids=[n], weights=[1]), "unknown_uid", f"uid {n} is not registered on subnet 1 (n={n})"),
        (dict(uids=[-1], weights=[1]), "unknown_uid", f"uid -1 is not registered on subnet 1 (n={n})"),
        (dict(uids=[True], weights=[1]), "unknown_uid", f"uid True is not registered on subnet 1 (n={n})"),
        (dict(uids=["1"], weights=[1]), "unknown_uid", f"uid '1' is not registered on subnet 1 (n={n})"),
        (dict(uids=[2, 2], weights=[1, 1]), "bad_weights", "uids must not repeat"),
        (dict(uids=[2], weights=[65536]), "bad_weights", "weight 65536 is not a u16"),
        (dict(uids=[2], weights=[-1]), "bad_weights", "weight -1 is not a u16"),
        (dict(uids=[2], weights=[True]), "bad_weights", "weight True is not a u16"),
        (dict(uids=[2], weights=[1.0]), "bad_weights", "weight 1.0 is not a u16"),
        (dict(uids=[2, 3], weights=[0, 0]), "bad_weights", "weights are all zero"),
    ]
    for params, reason, detail in cases:
        error = refusal(signer, HOTS[0], "set_weights", netuid=1, **params)
        assert (error.reason, error.detail) == (reason, detail), params
    assert signer.call(HOTS[0], "set_weights", netuid=1, uids=[0], weights=[1])["count"] == 1   # uid 0 is a uid
    assert signer.call(HOTS[0], "set_weights", netuid=1, uids=[], weights=[])["count"] == 0     # clearing is allowed
    error = refusal(signer, HOTS[1], "set_weights", netuid=1, uids=[0], weights=[1])
    assert (error.reason, error.detail, error.status) == ("no_validator_permit", "uid 2 has no validator permit on subnet 1", 403)
    assert refusal(signer, HOTS[0], "set_weights", netuid=0, uids=[0], weights=[1]).reason == "bad_params"
    error = refusal(signer, HOTS[5], "set_weights", netuid=1, uids=[0], weights=[1])
    assert (error.reason, error.detail) == ("not_registered", f"hotkey {HOTS[5].address} is not registered on subnet 1")


def test_commitments_up_to_the_byte_limit(tmp_path):
    node, signer = make_chain(tmp_path, max_commitment_bytes=8)
    signer.call(COLD, "burned_register", netuid=1, hotkey=HOTS[0].address)
    assert signer.call(HOTS[0], "commit", netuid=1, data="é" * 4) == {"call": "commit", "block": 0, "bytes": 8}
    assert node.commitments(1)["commitments"][HOTS[0].address] == {"block": 0, "data": "é" * 4}
    error = refusal(signer, HOTS[0], "commit", netuid=1, data="123456789")
    assert (error.reason, error.detail) == ("commitment_too_large", "commitment of 9 bytes exceeds 8")
    error = refusal(signer, HOTS[0], "commit", netuid=1, data=5)
    assert (error.reason, error.detail) == ("bad_params", "data must be a string")
    assert refusal(signer, HOTS[0], "commit", netuid=1).detail == "missing parameter(s): data"
    assert refusal(signer, HOTS[0], "commit", data="x").detail == "missing parameter(s): netuid"
    assert refusal(signer, HOTS[0], "commit", netuid=0, data="x").reason == "bad_params"
    assert node.commitments(1)["commitments"][HOTS[0].address]["data"] == "é" * 4
