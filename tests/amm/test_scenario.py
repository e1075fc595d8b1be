import pytest
import yaml

from amm.scenario import ScenarioError, bundled_scenarios, load_scenario, parse_scenario

BASE = {
    "name": "t",
    "subnets": [{"name": "a", "tao": 100, "alpha": 1000}],
    "accounts": {"whale": 10},
    "events": [{"block": 5, "account": "whale", "subnet": "a", "stake_tao": 1}],
    "traders": [{"subnets": "all", "rate_per_day": 10, "size_tao": {"dist": "fixed", "mean": 1}}],
}


def write(tmp_path, data):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_scenarios_load():
    shipped = bundled_scenarios()
    assert {"pump-and-dump", "year-128"} <= set(shipped)
    for path in shipped.values():
        load_scenario(path)
    year = load_scenario("year-128")
    assert len(year.subnets) == 128 and year.blocks == 2_628_000


def test_amounts_become_rao_and_ranges_expand(tmp_path):
    data = dict(BASE, subnets=[{"name": "sn", "count": 3, "tao": [100, 400], "alpha": 1000.5}])
    data["events"] = []
    s = load_scenario(write(tmp_path, data))
    assert [x.name for x in s.subnets] == ["sn1", "sn2", "sn3"]
    assert [x.tao for x in s.subnets] == [100 * 10**9, 200 * 10**9, 400 * 10**9]
    assert s.subnets[0].alpha == 1000_500_000_000


@pytest.mark.parametrize("mutate, key, message", [
    (lambda d: d.update(colour="red"), "colour", "unknown key"),
    (lambda d: d["subnets"][0].update(tempoo=3), "subnets[0].tempoo", "unknown key"),
    (lambda d: d["subnets"][0].update(tempo="fast"), "subnets[0].tempo", "must be an integer"),
    (lambda d: d["subnets"][0].update(tempo=0), "subnets[0].tempo", "must be >= 1"),
    (lambda d: d["subnets"][0].update(tao=-5), "subnets[0].tao", "must be > 0"),
    (lambda d: d.update(model="magic"), "model", "must be one of"),
    (lambda d: d["traders"][0].update(buy_prob=1.5), "traders[0].buy_prob", "must be <= 1"),
    (lambda d: d["traders"][0]["size_tao"].update(dist="cauchy"), "traders[0].size_tao.dist", "must be one of"),
    (lambda d: d["events"][0].update(subnet="nope"), "events[0].subnet", "unknown subnet"),
    (lambda d: d["events"][0].update(account="ghost"), "events[0].account", "unknown account"),
    (lambda d: d["events"][0].update(unstake_alpha=1), "events[0]", "exactly one of"),
    (lambda d: d.update(root={"stake_tao": 1, "weight": 0.2}), "root.weight", "unknown key"),
    (lambda d: d["subnets"].append({"name": "a", "tao": 1, "alpha": 1}), "subnets", "duplicate"),
    (lambda d: d.update(accounts={"whale": 30_000_000}), "initial TAO", "21M"),
])
def test_errors_name_file_and_key(tmp_path, mutate, key, message):
    import copy
    data = copy.deepcopy(BASE)
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    text = str(err.value)
    assert str(path) in text and key in text and message in text


def test_not_a_mapping():
    with pytest.raises(ScenarioError, match="must be a mapping"):
        parse_scenario([1, 2], "x.yaml")
