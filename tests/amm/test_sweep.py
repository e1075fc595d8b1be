"""Sweeps: the setting grammar, applying dotted keys, the grid, summaries over seeds, and a real
parallel sweep through the CLI (spawned worker processes, compiled engine)."""

import json

import numpy as np
import pytest
import yaml

from amm.cli import main
from amm.compiled import run_compiled
from amm.plan import compile_plan
from amm.scenario import ScenarioError, parse_scenario
from amm.sweep import (RunSummary, Setting, apply_settings, check_points, grid_points, parse_setting, run_sweep,
                       summarise)

SCENARIO = """
name: sweep-test
blocks: 1500
seed: 4
model: current
root: {stake_tao: 100000, tao_weight: 0.18}
subnets:
  - {name: x, count: 3, tao: [100, 1000], alpha: 10000, tempo: 99}
traders:
  - subnets: all
    rate_per_day: 2000
    size_tao: {dist: exponential, mean: 2}
    balance_tao: 1000
"""


def test_a_setting_is_a_key_and_yaml_values():
    assert parse_setting("root.tao_weight=0.1,0.18, 0.3") == Setting("root.tao_weight", (0.1, 0.18, 0.3))
    assert parse_setting("model=flow,current") == Setting("model", ("flow", "current"))
    assert parse_setting("subnets.0.tao=[100, 1000],500") == Setting("subnets.0.tao", ([100, 1000], 500))
    assert parse_setting("blocks=7") == Setting("blocks", (7,))


@pytest.mark.parametrize("text, named", [
    ("root.tao_weight", "KEY=V1"), ("=1,2", "KEY=V1"), ("root.tao_weight=", "KEY=V1"),
    ("root..tao_weight=1", "empty part"), ("model=flow,,current", "empty value"), ("model=flow,flow", "repeated"),
    ("x=[1,", "not valid YAML")])
def test_a_bad_setting_is_named(text, named):
    with pytest.raises(ScenarioError, match=named):
        parse_setting(text)


def test_apply_sets_nested_keys_on_a_copy():
    data = yaml.safe_load(SCENARIO)
    out = apply_settings(data, {"root.tao_weight": 0.5, "subnets.0.tempo": 7, "model": "flow"})
    assert out["root"]["tao_weight"] == 0.5 and out["subnets"][0]["tempo"] == 7 and out["model"] == "flow"
    assert data["root"]["tao_weight"] == 0.18 and data["subnets"][0]["tempo"] == 99   # the original is untouched
    assert apply_settings(data, {"root.new_key": 1})["root"]["new_key"] == 1          # parse_scenario judges it


@pytest.mark.parametrize("key, named", [
    ("rot.tao_weight", "no 'rot'"), ("subnets.3.tao", "not an index of a list of 1"),
    ("subnets.x.tao", "not an index"), ("seed.deeper", "seed is a value"), ("model.x.y", "model is a value")])
def test_apply_names_a_path_that_does_not_exist(key, named):
    with pytest.raises(ScenarioError, match=named):
        apply_settings(yaml.safe_load(SCENARIO), {key: 1})


def test_every_grid_point_is_checked_before_any_run():
    data = yaml.safe_load(SCENARIO)
    points = grid_points([Setting("root.tao_weight", (0.1, 0.2)), Setting("model", ("flow", "current", "launch"))])
    assert len(points) == 6 and points[0] == {"root.tao_weight": 0.1, "model": "flow"}
    assert points[-1] == {"root.tao_weight": 0.2, "model": "launch"}
    assert [s.model for s in check_points(data, "s", points)] == ["flow", "current", "launch"] * 2
    with pytest.raises(ScenarioError, match="model='nope'"):
        check_points(data, "s", grid_points([Setting("model", ("flow", "nope"))]))
    with pytest.raises(ScenarioError, match="taoweight"):
        check_points(data, "s", [{"root.taoweight": 0.1}])
    with pytest.raises(ScenarioError, match="twice"):
        grid_points([Setting("model", ("flow",)), Setting("model", ("current",))])


def _summary(point, seed, price, share):
    n = len(price)
    return RunSummary(point=point, seed=seed, names=tuple(f"s{i}" for i in range(n)), price=np.array(price),
                      share=np.array(share), owner=np.arange(n), miner=np.arange(n) * 2, validator=np.arange(n) * 3,
                      sample_blocks=np.array([0, 1]), series_price=np.array([price, price]),
                      series_share=np.array([share, share]), conservation="exact", seconds=0.1)


def test_summaries_are_median_and_the_10_90_range_over_seeds():
    runs = [_summary(0, s, [float(s), 10.0 - s], [0.5, 0.5]) for s in range(11)]   # prices 0..10
    summary = summarise(runs)
    s0 = summary["subnets"]["s0"]
    assert (s0["price_p10"], s0["price_median"], s0["price_p90"]) == (1.0, 5.0, 9.0)
    assert summary["subnets"]["s1"]["price_median"] == 5.0
    assert s0["share_median"] == 0.5 and summary["subnets"]["s1"]["miner_paid_p90"] == 2.0
    assert summary["series"]["price"].shape == (3, 2, 2)


def test_a_sweep_runs_every_point_and_seed_in_parallel_and_equals_single_runs(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    out, plot = tmp_path / "sweep.json", tmp_path / "sweep.png"
    assert main(["sweep", str(path), "--set", "root.tao_weight=0.05,0.5", "--set", "model=flow,current",
                 "--seeds", "3", "--jobs", "2", "--json", str(out), "--plot", str(plot)]) == 0
    printed = capsys.readouterr().out
    assert "root.tao_weight=0.05, model=flow (3 seeds)" in printed and "exact on every run" in printed
    data = json.loads(out.read_text())
    assert data["scenario"] == "sweep-test" and data["seeds"] == 3 and data["seconds"] > 0
    assert [g["settings"] for g in data["grid"]] == [
        {"root.tao_weight": 0.05, "model": "flow"}, {"root.tao_weight": 0.05, "model": "current"},
        {"root.tao_weight": 0.5, "model": "flow"}, {"root.tao_weight": 0.5, "model": "current"}]
    assert all(g["runs"] == 3 and g["seeds"] == [4, 5, 6] for g in data["grid"])
    assert plot.read_bytes()[:4] == b"\x89PNG"

    # a grid point's median equals the median of the same runs made one by one
    scenario = parse_scenario(apply_settings(yaml.safe_load(SCENARIO), {"root.tao_weight": 0.5, "model": "current"}),
                              "s")
    prices = [run_compiled(compile_plan(scenario, seed=s)).final["price"] for s in (4, 5, 6)]
    got = data["grid"][3]["subnets"]
    assert [got[n]["price_median"] for n in ("x1", "x2", "x3")] == list(np.median(np.stack(prices), axis=0))
    assert got["x1"]["price_p10"] <= got["x1"]["price_median"] <= got["x1"]["price_p90"]
    # and the settings matter: tao_weight changes the current model's result
    assert data["grid"][1]["subnets"]["x1"]["price_median"] != got["x1"]["price_median"]


def test_a_bad_key_is_refused_before_any_run(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    assert main(["sweep", str(path), "--set", "root.taoweight=0.1,0.2", "--seeds", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("amm: error: with root.taoweight=0.1:") and "taoweight" in err and err.count("\n") == 1


def test_one_job_gives_the_same_sweep():
    data = yaml.safe_load(SCENARIO)
    settings = [Setting("model", ("flow",))]
    one = run_sweep(data, "s", settings, seeds=2, jobs=1)
    two = run_sweep(data, "s", settings, seeds=2, jobs=2)
    assert one["grid"][0]["subnets"] == two["grid"][0]["subnets"]
