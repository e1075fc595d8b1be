import pytest

from subnet.chain.genesis import GenesisError, load_chain_params, parse_chain_params, to_rao
from subnet.config import HPARAMS_DIR
from subnet.keys import Keypair
from subnet.wallet import create_wallet


def test_shipped_neurons_yaml_loads_with_wallets(tmp_path):
    for name in ("owner", "validator", "miner1", "miner2", "miner3"):
        create_wallet(name, tmp_path)
    params, block_time = load_chain_params(HPARAMS_DIR.parent / "neurons.yaml", tmp_path)
    assert block_time == 1.0 and len(params.subnets) == 1
    assert params.subnets[0].owner_hotkey != params.subnets[0].owner  # the owner wallet's hotkey
    assert sum(params.balances.values()) == 2300 * 10**9


def test_missing_wallet_is_named(tmp_path):
    with pytest.raises(GenesisError, match="chain.balances.ghost.*neither an SS58 address nor a wallet"):
        parse_chain_params({"balances": {"ghost": 1}}, "g.yaml", tmp_path)


def test_amounts_convert_exactly():
    assert to_rao(1.5, "x") == 1_500_000_000
    assert to_rao("0.000000001", "x") == 1
    for bad in (0.0000000001, -1, "abc", True):
        with pytest.raises(GenesisError):
            to_rao(bad, "x")


@pytest.mark.parametrize("subnet,pattern", [
    ({"netuid": 0}, "netuid must be >= 1"),
    ({"tempo": 0}, "tempo"),
    ({"kappa": 1.5}, "kappa"),
    ({"max_validators": 999}, "max_validators"),
    ({"colour": "red"}, "unknown key"),
    ({"tempo": "10"}, "tempo: must be int"),
])
def test_bad_subnet_values(subnet, pattern):
    owner, hot = Keypair.generate(), Keypair.generate()
    base = {"netuid": 1, "owner": owner.address, "owner_hotkey": hot.address, "pool_tao": 1, "pool_alpha": 1}
    with pytest.raises(GenesisError, match=pattern):
        parse_chain_params({"subnets": [{**base, **subnet}]}, "g.yaml")


def test_unknown_model_and_key():
    with pytest.raises(GenesisError, match="emission_model"):
        parse_chain_params({"emission_model": "magic"})
    with pytest.raises(GenesisError, match="chain.blocktime: unknown key"):
        parse_chain_params({"blocktime": 1})


def test_shipped_neurons_yaml_names_storage_buckets():
    from subnet.neurons import load_network
    assert load_network(HPARAMS_DIR.parent / "neurons.yaml", with_chain=False).names == [
        "validator", "miner1", "miner2", "miner3"]


def test_block_time_zero_in_file_is_dev_mode_and_checked(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("chain:\n  block_time: 0\n")
    assert load_chain_params(path)[1] == 0
    path.write_text("chain:\n  block_time: fast\n")
    with pytest.raises(GenesisError, match="block_time"):
        load_chain_params(path)
