import random

import pytest

from amm.coinbase import (ChainState, Params, Pending, SubnetState, epoch_due, run_block,
                          split_alpha_out)
from amm.emission import block_emission
from amm.ledger import ConservationError, Ledger
from amm.pool import InsufficientLiquidity, Pool
from amm.units import RAO_PER_TAO

TAO = RAO_PER_TAO


def make_state(pools, emas, root_tao=0, issuance_extra=0, **kw):
    subnets = [SubnetState(netuid=i + 1, pool=Pool(t, a), alpha_issuance=a, ema_price=e, **kw)
               for i, ((t, a), e) in enumerate(zip(pools, emas))]
    total = root_tao + sum(t for t, _ in pools) + issuance_extra
    return ChainState(block=1, total_issuance=total, root=Pool.root(root_tao), subnets=subnets)


def test_equal_prices_split_emission_and_inject_at_price():
    # two subnets at price 1, block emission 1e6 rao: 500,000 TAO rao and 500,000 alpha in each
    for model in ("launch", "current"):
        state = make_state([(10**12, 10**12), (10**12, 10**12)], [1.0, 1.0], root_tao=10**18 // 1000)
        res = run_block(state, Params(model=model, block_emission=1_000_000))
        assert [i.tao_in for i in res.injections] == [500_000, 500_000]
        assert [i.alpha_in for i in res.injections] == [500_000, 500_000]
        assert all(i.excess_tao == 0 for i in res.injections)
        assert [s.pool.price for s in res.state.subnets] == [1.0, 1.0]


def test_ema_prices_point_one_and_point_two_split_one_to_two():
    state = make_state([(10**12, 10**13), (2 * 10**12, 10**13)], [0.1, 0.2], root_tao=10**16)
    res = run_block(state, Params(model="current"))
    a, b = (i.tao_emission for i in res.injections)
    assert a + b <= TAO and TAO - (a + b) <= 2  # floors lose at most a rao per subnet
    assert b / a == pytest.approx(2.0, rel=1e-8)
    assert res.state.total_issuance == state.total_issuance + a + b


def test_current_model_caps_alpha_and_buys_with_the_excess():
    # tiny root stake: root proportion ~0 so almost nothing can be injected; the TAO buys alpha
    state = make_state([(10**12, 10**12)], [1.0], root_tao=10**9)
    res = run_block(state, Params(model="current"))
    inj = res.injections[0]
    assert inj.alpha_in < inj.tao_emission // 1000
    assert inj.excess_tao > 0 and inj.alpha_bought > 0
    assert res.state.subnets[0].protocol_alpha == inj.alpha_bought
    assert res.state.subnets[0].pool.price > 1.0  # the buy moved the price
    assert res.state.subnets[0].pool.tao == 10**12 + inj.tao_emission


def test_launch_model_injects_all_tao_even_when_capped():
    # price 1e-3: tao_in / price = 1000 alpha per TAO, far above 1 alpha emission, so the cap binds
    state = make_state([(10**12, 10**15)], [0.001])
    res = run_block(state, Params(model="launch"))
    inj = res.injections[0]
    assert inj.tao_in == inj.tao_emission == TAO
    assert inj.alpha_in == block_emission(10**15)
    assert res.state.subnets[0].pool.price > state.subnets[0].pool.price


def test_flow_model_recycles_bought_alpha():
    state = make_state([(10**12, 10**15)], [0.001])
    res = run_block(state, Params(model="flow"))
    s = res.state.subnets[0]
    inj = res.injections[0]
    assert inj.alpha_in == min(block_emission(10**15), TAO)
    assert s.alpha_recycled == inj.alpha_bought > 0 and s.protocol_alpha == 0
    assert s.alpha_issuance == 10**15 + inj.alpha_in + inj.alpha_out - inj.alpha_bought


def test_disabled_subnet_gets_nothing():
    state = make_state([(10**12, 10**12), (10**12, 10**12)], [1.0, 1.0], root_tao=10**16)
    state.subnets[1].emission_enabled = False
    res = run_block(state, Params())
    assert [i.netuid for i in res.injections] == [1]
    assert res.injections[0].tao_emission == TAO
    assert res.state.subnets[1].pool.tao == 10**12 and res.state.subnets[1].pending.total == 0


def test_alpha_out_split():
    for alpha_out in (0, 1, 7, 10**9, 123_456_789):
        p = split_alpha_out(alpha_out)
        assert p.owner == alpha_out * 11796 // 65535
        assert p.miner + p.validator == alpha_out - p.owner and 0 <= p.validator - p.miner <= 1


def test_pending_paid_every_tempo_and_input_not_mutated():
    tempo = 10
    state = make_state([(10**12, 10**12)], [1.0], root_tao=10**16, tempo=tempo)
    before = state.copy()
    payout_blocks, paid = [], Pending()
    total_out = 0
    for _ in range(3 * (tempo + 1)):
        res = run_block(state, Params())
        total_out += sum(i.alpha_out for i in res.injections)
        for p in res.payouts:
            payout_blocks.append(p.block)
            paid = paid + Pending(p.owner, p.miner, p.validator)
        state = res.state
    assert payout_blocks == [b for b in range(1, 3 * (tempo + 1) + 1) if epoch_due(b, 1, tempo)]
    assert len(payout_blocks) == 3
    assert paid.total + state.subnets[0].pending.total == total_out
    assert before == make_state([(10**12, 10**12)], [1.0], root_tao=10**16, tempo=tempo)


def test_halving_applies_in_coinbase():
    below = make_state([(10**12, 10**12)], [1.0], root_tao=10**16,
                       issuance_extra=10_500_000 * TAO - 10**16 - 10**12 - 1)
    res = run_block(below, Params())
    assert res.block_emission == TAO
    res2 = run_block(res.state, Params())
    assert res2.block_emission == TAO // 2


@pytest.mark.parametrize("model", ["launch", "flow", "current"])
def test_conservation_to_the_rao_over_a_long_random_run(model):
    rng = random.Random(42)
    pools = [(rng.randint(100, 50_000) * TAO, rng.randint(10_000, 1_000_000) * TAO) for _ in range(3)]
    state = make_state(pools, [0.05, 0.2, 1.0], root_tao=1_000_000 * TAO, tempo=50)
    state.subnets[2].emission_enabled = False
    ledger = Ledger()
    ledger.root_stakes["genesis"] = 1_000_000 * TAO
    for s in state.subnets:
        ledger.alpha_stakes[(s.netuid, "pool-genesis")] = 0
    accounts = ["a", "b", "c"]
    for a in accounts:
        ledger.tao_balances[a] = 10_000 * TAO
        state.total_issuance += 10_000 * TAO
    ledger.audit(state)
    params = Params(model=model)
    for _ in range(3000):
        res = run_block(state, params)
        state = res.state
        ledger.credit_payouts(res)
        for _ in range(rng.randint(0, 3)):
            who = rng.choice(accounts)
            netuid = rng.choice([0, 1, 2, 3])
            try:
                if rng.random() < 0.5:
                    ledger.stake(state, who, netuid, rng.randint(1, max(1, ledger.tao_balances[who] // 3)))
                else:
                    held = ledger.root_stakes[who] if netuid == 0 else ledger.alpha_stakes[(netuid, who)]
                    if held:
                        ledger.unstake(state, who, netuid, rng.randint(1, held))
            except InsufficientLiquidity:
                pass
        ledger.audit(state)
    assert state.total_issuance > 1_000_000 * TAO + sum(t for t, _ in pools)


def test_audit_catches_a_missing_rao():
    state = make_state([(10**12, 10**12)], [1.0])
    ledger = Ledger()
    ledger.alpha_stakes[(1, "x")] = 0
    ledger.audit(state)
    state.subnets[0].pool.alpha += 1
    with pytest.raises(ConservationError, match="alpha issuance"):
        ledger.audit(state)
