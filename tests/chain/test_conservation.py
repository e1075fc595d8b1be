"""TAO and alpha are conserved to the rao after every block of a long randomized run with restarts."""
import random

from subnet.chain.calls import ChainError, call_message
from subnet.chain.genesis import ChainParams, SubnetGenesis
from subnet.chain.node import ChainNode
from subnet.keys import Keypair

TAO = 10**9


class Signer:
    def __init__(self, node: ChainNode):
        self.node = node
        self.nonces: dict[str, int] = {}

    def call(self, kp: Keypair, name: str, **params):
        nonce = self.nonces.get(kp.address, 0) + 1
        self.nonces[kp.address] = nonce
        msg = call_message(name, params, kp.address, nonce, self.node.genesis_hash)
        return self.node.apply_call({"call": name, "params": params, "signer": kp.address, "nonce": nonce,
                                     "signature": kp.sign(msg).hex()})


def test_randomized_run_conserves_every_block(tmp_path):
    rng = random.Random(7)
    colds = [Keypair.from_seed(bytes([i]) * 32) for i in range(1, 9)]
    hots = [Keypair.from_seed(bytes([100 + i]) * 32) for i in range(16)]
    owners = [(Keypair.from_seed(bytes([200 + i]) * 32), Keypair.from_seed(bytes([220 + i]) * 32)) for i in range(2)]
    params = ChainParams(
        balances={c.address: rng.randint(50, 500) * TAO for c in colds},
        subnets=tuple(SubnetGenesis(netuid=i + 1, owner=o.address, owner_hotkey=h.address, pool_tao=200 * TAO,
                                    pool_alpha=(150 + 100 * i) * TAO, tempo=5 + 2 * i, burn=TAO // 2, max_uids=6,
                                    immunity_period=8, max_validators=3, yuma3=(i == 1))
                      for i, (o, h) in enumerate(owners)),
        root_stake={})
    db = tmp_path / "chain.db"
    node = ChainNode(db, params)
    signer = Signer(node)
    owner_of: dict[str, Keypair] = {}
    counts = {"ok": 0, "rejected": 0, "epochs": 0, "restarts": 0}
    for block in range(300):
        for _ in range(rng.randint(0, 6)):
            cold = rng.choice(colds)
            hot = rng.choice(hots)
            netuid = rng.choice([0, 1, 2])
            action = rng.choice(["register", "stake", "stake", "unstake", "weights", "weights", "commit", "transfer"])
            registered = node.store.neurons(netuid) if netuid else []
            if registered and action in ("weights", "commit") and rng.random() < 0.8:
                permitted = [n for n in registered if n.validator_permit] if action == "weights" else registered
                hot = next((h for h in hots if h.address == rng.choice(permitted or registered).hotkey), hot)
            if registered and action in ("stake", "unstake") and rng.random() < 0.7:
                pick = rng.choice(registered)
                hot = next((h for h in hots if h.address == pick.hotkey), hot)
                cold = next((c for c in colds if c.address == pick.coldkey), cold)
            try:
                if action == "register" and netuid:
                    if owner_of.setdefault(hot.address, cold) is not cold:
                        cold = owner_of[hot.address]
                    signer.call(cold, "burned_register", netuid=netuid, hotkey=hot.address)
                elif action == "stake":
                    signer.call(cold, "add_stake", netuid=netuid, hotkey=hot.address, amount=rng.randint(1, 40) * TAO)
                elif action == "unstake":
                    staked = node.store.stake(netuid, hot.address, cold.address)
                    signer.call(cold, "remove_stake", netuid=netuid, hotkey=hot.address,
                                amount=max(1, rng.randint(1, max(1, staked))))
                elif action == "weights" and netuid:
                    n = node.store.neuron_count(netuid)
                    uids = rng.sample(range(n), rng.randint(1, n))
                    signer.call(hot, "set_weights", netuid=netuid, uids=uids,
                                weights=[rng.randint(1, 65535) for _ in uids])
                elif action == "commit" and netuid:
                    signer.call(hot, "commit", netuid=netuid, data=f"bucket-{rng.random()}")
                elif action == "transfer":
                    signer.call(cold, "transfer", dest=rng.choice(colds).address, amount=rng.randint(1, 20) * TAO)
                else:
                    continue
                counts["ok"] += 1
            except ChainError:
                counts["rejected"] += 1
            audit = node.audit()
            assert audit["ok"], (block, action, audit)
        info = node.produce_block()
        counts["epochs"] += len(info["epochs"])
        if info["epochs"]:
            counts["paid_incentive"] = counts.get("paid_incentive", 0) + any(
                n.incentive > 0 and n.emission > 0 for sub in info["epochs"] for n in node.store.neurons(sub))
        audit = node.audit()
        assert audit["ok"], (info, audit)
        if rng.random() < 0.03:  # restart from the same database
            node.store.close()
            node = ChainNode(db)
            signer.node = node
            counts["restarts"] += 1
            assert node.block == info["block"]
    assert counts["ok"] > 200 and counts["rejected"] > 20 and counts["epochs"] > 50 and counts["restarts"] >= 3
    # emission really flowed to miners by incentive in many epochs, and full subnets pruned neurons
    assert counts["paid_incentive"] > 10
    assert node.store.neuron_count(1) == 6
