import csv
import json

from amm.cli import main

SCENARIO = """
name: cli-test
blocks: 2000
seed: 4
root: {stake_tao: 100000}
subnets:
  - {name: x, count: 3, tao: [100, 1000], alpha: 10000, tempo: 99}
traders:
  - subnets: all
    rate_per_day: 2000
    size_tao: {dist: exponential, mean: 2}
    balance_tao: 1000
"""


def test_simulate_writes_json_csv_plot_deterministically(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    out1, out2 = tmp_path / "a.json", tmp_path / "b.json"
    args = [str(path), "--blocks", "1500", "--model", "launch", "--seed", "9"]
    assert main(["simulate", *args, "--json", str(out1), "--csv", str(tmp_path / "t.csv"),
                 "--plot", str(tmp_path / "p.png")]) == 0
    printed = capsys.readouterr().out
    assert "x1" in printed and "conservation: exact" in printed
    assert main(["simulate", *args, "--json", str(out2), "--quiet"]) == 0
    assert out1.read_bytes() == out2.read_bytes()
    data = json.loads(out1.read_text())
    assert data["blocks"] == 1500 and data["model"] == "launch" and data["seed"] == 9
    assert len(data["subnets"]) == 3 and len(data["series"]["block"]) > 2
    rows = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert [r["subnet"] for r in rows] == ["x1", "x2", "x3"]
    assert [int(r["owner_paid"]) for r in rows] == [s["owner_paid"] for s in data["subnets"]]
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_reference_engine_matches_json(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["simulate", str(path), "--blocks", "300", "--quiet", "--json", str(a)]) == 0
    assert main(["simulate", str(path), "--blocks", "300", "--quiet", "--engine", "reference",
                 "--json", str(b)]) == 0
    da, db = json.loads(a.read_text()), json.loads(b.read_text())
    da.pop("engine"), db.pop("engine"), da.pop("conservation"), db.pop("conservation")
    assert da == db


def test_bad_scenario_is_a_clean_error(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nsubnets: [{name: a, tao: 1, alpha: 1, colour: red}]\n")
    assert main(["simulate", str(path)]) == 2
    assert "subnets[0].colour" in capsys.readouterr().err


def test_all_three_engines_write_the_same_json(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    outputs = {}
    for engine in ("compiled", "vectorised", "reference"):
        out = tmp_path / f"{engine}.json"
        assert main(["simulate", str(path), "--blocks", "400", "--quiet", "--engine", engine, "--json", str(out)]) == 0
        data = json.loads(out.read_text())
        assert data.pop("engine") == engine
        data.pop("conservation")
        outputs[engine] = data
    assert outputs["compiled"] == outputs["vectorised"] == outputs["reference"]


def test_the_vectorised_engine_names_a_scenario_beyond_its_range(capsys):
    assert main(["simulate", "mainnet-2026", "--blocks", "5", "--quiet", "--engine", "vectorised"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("amm: error: a balance reached") and "float64" in err and err.count("\n") == 1
    assert main(["simulate", "mainnet-2026", "--blocks", "5", "--quiet"]) == 0    # compiled, the default
