"""The one TAO -> rao rule, shared by amm scenarios and the chain genesis."""
import pytest

from amm.scenario import ScenarioError, parse_scenario
from amm.units import to_rao
from subnet.chain.genesis import GenesisError
from subnet.chain.genesis import to_rao as genesis_to_rao


def test_exact_decimal_text_not_binary_float():
    assert to_rao(0.1) == 100_000_000
    assert to_rao(1.5) == 1_500_000_000 and to_rao("0.000000001") == 1
    assert to_rao(2.675) == 2_675_000_000  # 2.675 * 1e9 in binary is 2674999999.9999995
    assert to_rao(10**25) == 10**34  # ints stay exact, no float on the way
    assert to_rao("123456789012345678901.123456789") == 123456789012345678901123456789  # past Decimal's 28 digits


def test_sub_rao_refused_when_exact_and_rounded_half_even_otherwise():
    for finer in (0.0000000001, "1.0000000005", "1e-30", "123456789012345678901.1234567891"):
        with pytest.raises(ValueError, match="finer than one rao"):
            to_rao(finer)
    assert to_rao("1.0000000005", exact=False) == 1_000_000_000  # tie -> even
    assert to_rao("1.0000000015", exact=False) == 1_000_000_002  # tie -> even
    assert to_rao("1.00000000051", exact=False) == 1_000_000_001
    assert to_rao("1e-30", exact=False) == 0


@pytest.mark.parametrize("bad", [-1, "-0.5", True, None, "abc", float("nan"), float("inf"), [1], "1e99999999"])
def test_not_amounts(bad):
    with pytest.raises(ValueError):
        to_rao(bad)
    with pytest.raises(ValueError):
        to_rao(bad, exact=False)


def _scenario(tao):
    return {"name": "t", "subnets": [{"name": "s", "tao": tao, "alpha": 1}]}


@pytest.mark.parametrize("written", [0.1, 2.675, 1e-9, 1234567.000000001])
def test_genesis_and_scenarios_agree(written):
    assert parse_scenario(_scenario(written)).subnets[0].tao == genesis_to_rao(written, "x") == to_rao(written)


def test_both_readers_refuse_sub_rao_naming_the_key():
    with pytest.raises(ScenarioError, match=r"subnets\[0\]\.tao: .*finer than one rao"):
        parse_scenario(_scenario(1.0000000001))
    with pytest.raises(GenesisError, match="chain.balances.x: .*finer than one rao"):
        genesis_to_rao(1.0000000001, "chain.balances.x")
