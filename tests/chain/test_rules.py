"""Registration pruning, immunity, validator permits and the activity cutoff, on the chain's state machine."""
import pytest

from subnet.chain.calls import ChainError
from subnet.chain.genesis import ChainParams, SubnetGenesis
from subnet.chain.node import ChainNode
from subnet.keys import Keypair

from .test_conservation import Signer

TAO = 10**9


def make_chain(tmp_path, **subnet):
    cold = [Keypair.from_seed(bytes([i]) * 32) for i in range(1, 7)]
    hot = [Keypair.from_seed(bytes([50 + i]) * 32) for i in range(6)]
    owner, owner_hot = Keypair.from_seed(b"o" * 32), Keypair.from_seed(b"h" * 32)
    defaults = dict(netuid=1, owner=owner.address, owner_hotkey=owner_hot.address, pool_tao=100 * TAO,
                    pool_alpha=100 * TAO, tempo=4, burn=TAO, max_uids=4, immunity_period=10, max_validators=2,
                    activity_cutoff=1000)
    params = ChainParams(balances={c.address: 100 * TAO for c in cold},
                         subnets=(SubnetGenesis(**{**defaults, **subnet}),))
    node = ChainNode(tmp_path / "c.db", params)
    return node, Signer(node), cold, hot


def advance_to_epoch(node, limit: int = 100):
    for _ in range(limit):
        if node.produce_block()["epochs"]:
            return
    raise AssertionError(f"no epoch in {limit} blocks")


def test_full_subnet_prunes_lowest_emission_non_immune(tmp_path):
    node, s, cold, hot = make_chain(tmp_path)
    for i in range(3):  # uids 1..3 (uid 0 is the owner)
        s.call(cold[i], "burned_register", netuid=1, hotkey=hot[i].address)
    s.call(cold[0], "add_stake", netuid=1, hotkey=hot[0].address, amount=20 * TAO)
    with pytest.raises(ChainError) as err:  # everyone is still immune
        s.call(cold[4], "burned_register", netuid=1, hotkey=hot[4].address)
    assert err.value.code == "subnet_full"
    advance_to_epoch(node)  # permit for the staked validator (uid 1)
    s.call(hot[0], "set_weights", netuid=1, uids=[2], weights=[65535])  # uid 2 earns, uid 3 does not
    for _ in range(12):
        node.produce_block()
    neurons = {n.uid: n for n in node.store.neurons(1)}
    assert neurons[2].emission > 0 and neurons[3].emission == 0
    result = s.call(cold[4], "burned_register", netuid=1, hotkey=hot[4].address)
    assert result["uid"] == 3  # lowest emission and past immunity
    replaced = node.store.neurons(1)[3]
    assert replaced.hotkey == hot[4].address and replaced.registered_block == node.block
    assert node.audit()["ok"]


def test_permits_go_to_top_stake_and_inactive_validators_are_ignored(tmp_path):
    node, s, cold, hot = make_chain(tmp_path, max_validators=2, activity_cutoff=6, immunity_period=1)
    for i in range(3):
        s.call(cold[i], "burned_register", netuid=1, hotkey=hot[i].address)
        s.call(cold[i], "add_stake", netuid=1, hotkey=hot[i].address, amount=(i + 1) * 10 * TAO)
    advance_to_epoch(node)
    permits = {n.uid: n.validator_permit for n in node.store.neurons(1)}
    assert permits == {0: False, 1: False, 2: True, 3: True}  # uids 2, 3 hold the most stake
    with pytest.raises(ChainError) as err:
        s.call(hot[0], "set_weights", netuid=1, uids=[1], weights=[1])
    assert err.value.code == "no_validator_permit"
    # both validators weight uid 1; then uid 2 goes quiet past the activity cutoff while uid 3 keeps on
    s.call(hot[1], "set_weights", netuid=1, uids=[1], weights=[1000])
    s.call(hot[2], "set_weights", netuid=1, uids=[1], weights=[1000])
    advance_to_epoch(node)
    shares = []
    for _ in range(6):
        s.call(hot[2], "set_weights", netuid=1, uids=[1], weights=[1000])
        advance_to_epoch(node)
        neurons = {n.uid: n for n in node.store.neurons(1)}
        assert neurons[1].incentive == 1.0
        shares.append(neurons[2].dividends)
    # inactive stake adds no new bonds, so the quiet validator's share of dividends decays (as in subtensor)
    assert all(b < a for a, b in zip(shares, shares[1:]))
    assert node.store.neurons(1)[2].last_update + 6 < node.block


def test_weights_set_in_the_registration_block_do_not_carry_over(tmp_path):
    node, s, cold, hot = make_chain(tmp_path, immunity_period=1)
    for i in range(3):
        s.call(cold[i], "burned_register", netuid=1, hotkey=hot[i].address)
    s.call(cold[0], "add_stake", netuid=1, hotkey=hot[0].address, amount=20 * TAO)
    s.call(hot[2], "commit", netuid=1, data="bucket of uid 3")
    advance_to_epoch(node)
    s.call(hot[0], "set_weights", netuid=1, uids=[2], weights=[65535])
    for _ in range(8):
        node.produce_block()
    # same block: the validator weights uid 3, then uid 3 is pruned and taken by a newcomer
    s.call(hot[0], "set_weights", netuid=1, uids=[3], weights=[65535])
    assert s.call(cold[4], "burned_register", netuid=1, hotkey=hot[4].address)["uid"] == 3
    assert hot[2].address not in dict((h, d) for h, _, d in node.store.commitments(1))  # pruned: gone
    advance_to_epoch(node)
    assert node.store.neurons(1)[3].incentive == 0  # the old weights say nothing about the newcomer


def test_epochs_run_without_emission(tmp_path):
    node, s, cold, hot = make_chain(tmp_path, emission_enabled=False)
    s.call(cold[0], "burned_register", netuid=1, hotkey=hot[0].address)
    s.call(cold[0], "add_stake", netuid=1, hotkey=hot[0].address, amount=10 * TAO)
    advance_to_epoch(node)
    assert node.store.neurons(1)[1].validator_permit  # so it can set weights on this subnet
    s.call(hot[0], "set_weights", netuid=1, uids=[0], weights=[1])
    assert node.audit()["ok"]
