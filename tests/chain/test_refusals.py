"""Every refusal reason of the chain's calls provoked by exactly the input it names, and nothing
changes (checked with the node in-process; the server only forwards the reason, tests/chain/test_chain_server.py)."""
from __future__ import annotations

import pytest

from subnet.chain import node as node_module
from subnet.chain.calls import ChainError
from subnet.chain.envelope import call_message
from subnet.chain.genesis import ChainParams, SubnetGenesis
from subnet.chain.node import ChainNode
from subnet.keys import Keypair

from tests.chain.test_conservation import TAO, Signer

COLD_A, COLD_B = Keypair.from_seed(b"\x01" * 32), Keypair.from_seed(b"\x02" * 32)
HOT = Keypair.from_seed(b"\x03" * 32)
OWNER, OWNER_HOT = Keypair.from_seed(b"\x04" * 32), Keypair.from_seed(b"\x05" * 32)


@pytest.fixture
def chain(tmp_path):
    params = ChainParams(
        balances={COLD_A.address: 100 * TAO, COLD_B.address: 100 * TAO},
        subnets=tuple(SubnetGenesis(netuid=n, owner=OWNER.address, owner_hotkey=OWNER_HOT.address,
                                    pool_tao=100 * TAO, pool_alpha=100 * TAO, tempo=10, burn=TAO, max_uids=8,
                                    max_validators=4) for n in (1, 2)),
        root_stake={})
    node = ChainNode(tmp_path / "chain.db", params)
    signer = Signer(node)
    signer.call(COLD_A, "burned_register", netuid=1, hotkey=HOT.address)
    return node, signer


def refused(node: ChainNode, signer: Signer, cold: Keypair, call: str, **params) -> str:
    before = (node.audit(), node.account(COLD_A.address)["balance"], node.account(COLD_B.address)["balance"],
              node.pool(1), node.pool(2), node.metagraph(1)["hotkeys"], node.metagraph(2)["hotkeys"])
    with pytest.raises(ChainError) as info:
        signer.call(cold, call, **params)
    after = (node.audit(), node.account(COLD_A.address)["balance"], node.account(COLD_B.address)["balance"],
             node.pool(1), node.pool(2), node.metagraph(1)["hotkeys"], node.metagraph(2)["hotkeys"])
    assert after == before, f"{call} {params}: a refused call changed the chain"
    return info.value.reason


@pytest.mark.parametrize("call, params", [
    ("add_stake", {"netuid": 1, "hotkey": HOT.address}),                                    # missing amount
    ("add_stake", {"netuid": 1, "hotkey": HOT.address, "amount": TAO, "tip": 1}),           # unknown parameter
    ("add_stake", {"netuid": 1, "hotkey": HOT.address, "amount": "1000"}),                  # not an integer
    ("add_stake", {"netuid": 1, "hotkey": HOT.address, "amount": True}),                    # a bool is not an amount
    ("add_stake", {"netuid": 1, "hotkey": HOT.address, "amount": 0}),                       # below the minimum
    ("add_stake", {"netuid": 1, "hotkey": HOT.address, "amount": TAO, "limit_price": 0}),
    ("add_stake", {"netuid": 1, "hotkey": HOT.address, "amount": TAO, "limit_price": "1.0"}),
    ("add_stake", {"netuid": 1, "hotkey": HOT.address, "amount": TAO, "limit_price": 2.0, "allow_partial": 1}),
    ("transfer", {"dest": COLD_B.address, "amount": -5}),
])
def test_bad_params(chain, call, params):
    node, signer = chain
    assert refused(node, signer, COLD_A, call, **params) == "bad_params"


def test_commit_data_must_be_a_string(chain):
    node, signer = chain
    assert refused(node, signer, HOT, "commit", netuid=1, data=["bucket"]) == "bad_params"


def test_registering_another_coldkeys_hotkey_is_refused(chain):
    node, signer = chain
    assert refused(node, signer, COLD_B, "burned_register", netuid=2, hotkey=HOT.address) == "hotkey_owned"
    signer.call(COLD_A, "burned_register", netuid=2, hotkey=HOT.address)      # its owner may
    assert HOT.address in node.metagraph(2)["hotkeys"]


def test_a_stake_that_would_cross_its_price_limit_is_refused_by_the_pool(chain):
    node, signer = chain
    price = node.pool(1)["price"]
    reason = refused(node, signer, COLD_A, "add_stake", netuid=1, hotkey=HOT.address, amount=10 * TAO,
                     limit_price=price * 1.0001, allow_partial=False)
    assert reason == "pool_refused"
    # The same limit with a partial fill is accepted, and stops at the limit.
    result = signer.call(COLD_A, "add_stake", netuid=1, hotkey=HOT.address, amount=10 * TAO,
                         limit_price=price * 1.0001, allow_partial=True)
    assert 0 < result["tao_spent"] < 10 * TAO and node.pool(1)["price"] <= price * 1.0001


def test_validator_sets_older_than_the_history_are_not_kept(chain, monkeypatch):
    node, _ = chain
    monkeypatch.setattr(node_module, "VALIDATOR_SET_HISTORY", 8)
    monkeypatch.setattr(node_module, "VALIDATOR_SET_PRUNE_EVERY", 4)
    for _ in range(20):
        node.produce_block()
    assert node.validator_set(1, 20)["block"] == 20
    with pytest.raises(ChainError) as info:
        node.validator_set(1, 2)
    assert info.value.reason == "not_kept"
    with pytest.raises(ChainError) as info:
        node.validator_set(1, 21)
    assert info.value.reason == "unknown_block"


def test_a_flood_from_one_signer_is_refused_past_its_calls_per_block(tmp_path):
    """The fourth call of a signer in one block is `rate_limited` (HTTP 429), spends no nonce and changes
    nothing; another signer is unaffected; in the next block the same envelope is accepted."""
    params = ChainParams(balances={COLD_A.address: 100 * TAO, COLD_B.address: 100 * TAO}, max_calls_per_block=3)
    node = ChainNode(tmp_path / "chain.db", params)
    signer = Signer(node)
    for _ in range(3):
        signer.call(COLD_A, "transfer", dest=COLD_B.address, amount=TAO)
    nonce = signer.nonces[COLD_A.address] + 1
    message = call_message("transfer", {"dest": COLD_B.address, "amount": TAO}, COLD_A.address, nonce,
                                       node.genesis_hash)
    envelope = {"call": "transfer", "params": {"dest": COLD_B.address, "amount": TAO}, "signer": COLD_A.address,
                "nonce": nonce, "signature": COLD_A.sign(message).hex()}
    before = node.account(COLD_A.address)
    with pytest.raises(ChainError) as info:
        node.apply_call(envelope)
    assert info.value.reason == "rate_limited" and info.value.status == 429 and "block 0" in str(info.value)
    assert node.account(COLD_A.address) == before
    signer.call(COLD_B, "transfer", dest=OWNER.address, amount=TAO)      # another signer, same block
    node.produce_block()
    assert node.apply_call(envelope)["block"] == 1                      # the same envelope, next block
    assert node.account(COLD_A.address)["balance"] == before["balance"] - TAO


def test_the_calls_per_block_limit_is_checked_in_the_genesis_file():
    from subnet.chain.genesis import GenesisError, parse_chain_params

    assert parse_chain_params({"max_calls_per_block": 1}).max_calls_per_block == 1
    assert parse_chain_params({}).max_calls_per_block == 32
    for bad in (0, -1, 100_001, 2.5, True, "10"):
        with pytest.raises(GenesisError, match="max_calls_per_block"):
            parse_chain_params({"max_calls_per_block": bad})
