"""`subnet up`'s pure parts: which wallets a file names, the loss sparkline, the dashboard's width."""
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from subnet.config import load_preset
from subnet.localnet import LocalNetwork, NeuronSpec
from subnet.neurons import NeuronsError, load_network
from subnet.up import Observation, Watch, check_behaviours, render, sparkline, wallet_names

SS58 = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


def test_wallet_names_are_every_name_the_file_uses_but_addresses():
    document = {"neurons": [{"name": "v", "role": "validator"}, {"name": "m", "role": "miner", "wallet": "w"}],
                "chain": {"balances": {"v": 1, SS58: 2, "extra": 3}, "subnets": [{"owner": "owner"}]}}
    assert wallet_names(document) == ["v", "w", "extra", "owner"]


def test_sparkline_maps_low_to_high():
    line = sparkline([3.0, 2.0, 1.0])
    assert len(line) == 3 and line[0] == "█" and line[-1] == "▁"
    assert sparkline([]) == "" and len(sparkline(list(range(100)), width=40)) == 40


def test_dashboard_fits_80_columns(tmp_path: Path):
    net = LocalNetwork(root=tmp_path, neurons=[NeuronSpec("validator", "validator"),
                                               NeuronSpec("miner-with-a-long-name", "miner")])
    watch = Watch(net, started=None)
    watch._hotkeys = {"validator": "hv", "miner-with-a-long-name": "hm"}
    watch.losses = {5: 6.9, 6: 6.5}
    metagraph = {"uids": [0, 1, 2], "hotkeys": ["ho", "hv", "hm"], "stake": [0, 10**11, 5 * 10**9],
                 "validator_permit": [True, True, False], "incentive": [0.0, 0.0, 1.0]}
    emission = {"block": 40, "tao": 5 * 10**8, "tao_in": 4 * 10**8, "alpha_in": 3 * 10**8, "alpha_out": 10**9}
    obs = Observation(head=40, metagraph=metagraph, pool={"price": 1.5, "tao": 10**11, "alpha": 10**11,
                                                          "last_block_emission": emission},
                      weights={}, hotkeys=watch._hotkeys, alive={"validator": True},
                      metrics={"validator": [{"window": 6, "aggregate_from": 1, "held_out_loss": 6.5, "peers": [2],
                                              "weights_set": True}],
                               "miner-with-a-long-name": [{"window": 6, "train_loss": 6.4, "score": 1.2, "note": ""}]})
    console = Console(width=80, record=True)
    console.print(render(obs, watch, load_preset("tiny").protocol))
    text = console.export_text()
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "miner-with-a-long-name" in text and "6.5000" in text and "yes" in text
    assert "emission/block 0.5000 TAO (in 0.4000), alpha in 0.3000 out 1.0000" in text


def _network(tmp_path: Path, neurons: list[dict]):
    path = tmp_path / "neurons.yaml"
    path.write_text(yaml.safe_dump({"neurons": neurons}))
    return load_network(path, with_chain=False)


def test_check_behaviours_accepts_every_adversary_of_the_fairness_network(tmp_path: Path):
    check_behaviours(_network(tmp_path, [
        {"name": "v", "role": "validator"}, {"name": "m1", "role": "miner"},
        {"name": "c", "role": "miner", "behaviour": {"kind": "copier", "victim": "m1", "noise": 0.05}},
        {"name": "s1", "role": "miner", "behaviour": {"kind": "sybil", "twin": "s2"}},
        {"name": "s2", "role": "miner", "behaviour": {"kind": "sybil", "twin": "s1"}},
        {"name": "x", "role": "miner", "behaviour": "malformed"}]))


@pytest.mark.parametrize("neurons, message", [
    ([{"name": "m", "role": "miner", "behaviour": "sleepy"}], r"neurons\[0\]\.behaviour: behaviour kind 'sleepy'"),
    ([{"name": "m", "role": "miner", "behaviour": {"kind": "stale"}}], "missing parameter 'lag'"),
    ([{"name": "v", "role": "validator", "behaviour": "lazy"}], "only a miner has a behaviour"),
    ([{"name": "c", "role": "miner", "behaviour": {"kind": "copier", "victim": "ghost"}}], "'ghost' is not another miner"),
    ([{"name": "c", "role": "miner", "behaviour": {"kind": "copier", "victim": "c"}}], "'c' is not another miner"),
    ([{"name": "v", "role": "validator"}, {"name": "s", "role": "miner", "behaviour": {"kind": "sybil", "twin": "v"}}],
     r"neurons\[1\]\.behaviour: 'v' is not another miner"),
])
def test_check_behaviours_names_the_bad_entry(tmp_path: Path, neurons, message):
    with pytest.raises(NeuronsError, match=message):
        check_behaviours(_network(tmp_path, neurons))
