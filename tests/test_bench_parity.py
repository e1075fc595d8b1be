"""bench/parity.py: knob parsing and mapping onto the preset, the report (best dense per round, mean and
std over seeds), the run cache, and one miniature sweep end to end through real training runs."""
import dataclasses
import json
import math

import pytest

from bench import parity
from subnet.config import ConfigError, load_preset


def test_parse_setting_reads_numbers_and_booleans_and_names_what_is_wrong():
    assert parity.parse_setting("topk=128, ef_decay=0.8,use_dct=true", parity.COMPRESSED) == \
        {"topk": 128, "ef_decay": 0.8, "use_dct": True}
    assert parity.parse_setting("", parity.COMPRESSED) == {}
    with pytest.raises(ValueError, match="unknown knob 'momentum'"):
        parity.parse_setting("momentum=0.9", parity.COMPRESSED)   # a dense knob on the compressed side
    with pytest.raises(ValueError, match="not KEY=VALUE"):
        parity.parse_setting("topk", parity.COMPRESSED)
    with pytest.raises(ValueError, match="outer_lr=fast is not a number"):
        parity.parse_setting("outer_lr=fast", parity.DENSE)


def test_with_settings_sets_the_sides_own_fields_and_refuses_bad_values():
    preset = load_preset("tiny")
    dense = parity.with_settings(preset, parity.DENSE, {"outer_lr": 1, "momentum": 0.5, "inner_lr": 0.004}, 2)
    assert (dense.baseline.diloco_lr, dense.baseline.diloco_momentum, dense.train.lr) == (1.0, 0.5, 0.004)
    assert isinstance(dense.baseline.diloco_lr, float) and dense.seed == preset.seed + 2
    assert dense.outer == preset.outer and dense.compression == preset.compression
    compressed = parity.with_settings(preset, parity.COMPRESSED, {"outer_lr": 0.8, "topk": 32})
    assert (compressed.outer.lr, compressed.compression.topk) == (0.8, 32)
    assert compressed.baseline == preset.baseline
    with pytest.raises(ConfigError, match="compression.topk"):
        parity.with_settings(preset, parity.COMPRESSED, {"topk": 5000})     # more than a tile x tile chunk
    with pytest.raises(ConfigError, match="tile=64.5 must be int"):
        parity.with_settings(preset, parity.COMPRESSED, {"tile": 64.5})
    with pytest.raises(ConfigError, match="use_dct=1 must be bool"):
        parity.with_settings(preset, parity.COMPRESSED, {"use_dct": 1})
    assert parity.knob_values(compressed, parity.COMPRESSED)["topk"] == 32
    assert set(parity.knob_values(dense, parity.DENSE)) == set(parity.KNOBS[parity.DENSE])


def test_run_key_follows_the_resolved_preset_not_the_spelling_of_the_overrides():
    preset = load_preset("tiny")
    same = parity.with_settings(preset, parity.COMPRESSED, {"topk": preset.compression.topk})
    key = parity.run_key(preset, parity.COMPRESSED, 60, 30, 4)
    assert parity.run_key(same, parity.COMPRESSED, 60, 30, 4) == key
    changed = parity.with_settings(preset, parity.COMPRESSED, {"ef_decay": 0.5})   # e.g. a new default
    assert parity.run_key(changed, parity.COMPRESSED, 60, 30, 4) != key
    assert parity.run_key(preset, parity.DENSE, 60, 30, 4) != key
    assert parity.run_key(preset, parity.COMPRESSED, 60, 30, 3) != key
    assert parity.run_key(parity.with_settings(preset, parity.COMPRESSED, {}, 1), parity.COMPRESSED, 60, 30, 4) != key
    # a section the side's run does not read (the dense baseline, the protocol) leaves the key alone
    other = parity.with_settings(preset, parity.DENSE, {"outer_lr": 0.5})
    other = dataclasses.replace(other, protocol=dataclasses.replace(other.protocol, weights_interval=9))
    assert parity.run_key(other, parity.COMPRESSED, 60, 30, 4) == key
    assert parity.run_key(other, parity.DENSE, 60, 30, 4) != parity.run_key(preset, parity.DENSE, 60, 30, 4)


def _runs(losses_by_seed, ratio=1.0):
    return [{"losses": {str(r): loss for r, loss in seed.items()}, "compression_ratio": ratio} for seed in losses_by_seed]


def test_report_picks_the_best_dense_per_round_and_compares_every_compressed_setting_with_it():
    a = parity.Trial(parity.DENSE, (("momentum", 0.0), ("outer_lr", 1.0)))
    b = parity.Trial(parity.DENSE, (("momentum", 0.9), ("outer_lr", 0.7)))
    c = parity.Trial(parity.COMPRESSED, (("topk", 64),))
    results = {a: _runs([{30: 4.0, 60: 3.6}, {30: 4.2, 60: 3.8}]),      # best at 30 (4.1) but not at 60 (3.7)
               b: _runs([{30: 4.3, 60: 3.5}, {30: 4.3, 60: 3.7}]),      # best at 60 (3.6)
               c: _runs([{30: 4.1, 60: 3.6}, {30: 4.3, 60: 3.8}], ratio=170.0)}
    settings = {a: {"outer_lr": 1.0, "momentum": 0.0}, b: {"outer_lr": 0.7, "momentum": 0.9}, c: {"topk": 64}}
    report = parity.build_report("tiny", [30, 60], 2, 4, [a, b, c], results, settings)
    assert report["best_dense_by_rounds"]["30"]["settings"] == settings[a]
    assert report["best_dense"]["settings"] == settings[b]                 # the last listed round
    assert report["best_dense"]["eval_loss_mean"] == pytest.approx(3.6)
    assert report["best_dense"]["eval_loss_std"] == pytest.approx(math.sqrt(0.02))
    [entry] = report["compressed"]
    assert entry["compression_ratio"] == 170.0 and entry["eval_loss_mean"] == pytest.approx(3.7)
    assert entry["vs_best_dense"]["30"] == pytest.approx(4.2 / 4.1 - 1)
    assert entry["vs_best_dense"]["60"] == pytest.approx(3.7 / 3.6 - 1)
    assert [d["label"] for d in report["dense"]] == ["momentum=0.0, outer_lr=1.0", "momentum=0.9, outer_lr=0.7"]


def test_run_cache_survives_a_torn_last_line(tmp_path):
    path = tmp_path / "cache.jsonl"
    cache = parity.RunCache(path)
    cache.put("k1", {"losses": {"2": 6.0}})
    with path.open("a") as f:
        f.write('{"key": "k2", "result": {"loss')                         # killed mid-write
    again = parity.RunCache(path)
    assert again.get("k1") == {"losses": {"2": 6.0}} and again.get("k2") is None
    again.put("k2", {"losses": {"2": 5.0}})
    assert parity.RunCache(path).get("k2") == {"losses": {"2": 5.0}}


@pytest.mark.slow
def test_a_miniature_sweep_trains_both_sides_writes_the_layout_and_resumes_from_its_cache(tmp_path, capsys):
    out, cache, png = tmp_path / "parity.json", tmp_path / "cache.jsonl", tmp_path / "parity.png"
    argv = ["--preset", "tiny", "--rounds", "1,2", "--seeds", "2", "--miners", "2",
            "--dense", "outer_lr=1.0,momentum=0", "--dense", "outer_lr=0.5,momentum=0",
            "--compressed", "", "--cache", str(cache), "--json", str(out), "--plot", str(png)]
    assert parity.main(argv) == 0
    report = json.loads(out.read_text())
    assert report["rounds"] == [1, 2] and report["seeds"] == 2 and report["preset"] == "tiny"
    dense = {d["settings"]["outer_lr"]: d for d in report["dense"]}
    # outer lr 1.0 with no momentum moves twice as far as 0.5 from the same miners' updates: lower loss
    assert dense[1.0]["eval_loss_mean"] < dense[0.5]["eval_loss_mean"]
    assert report["best_dense"]["settings"]["outer_lr"] == 1.0
    [compressed] = report["compressed"]
    assert 150 < compressed["compression_ratio"] < 200                 # tiny's 64 of 4096 at 2 bits
    assert compressed["eval_loss_std"] > 0                             # the two seeds differ
    start = load_preset("tiny")
    assert compressed["settings"]["topk"] == start.compression.topk
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(cache.read_text().splitlines()) == 6
    capsys.readouterr()
    assert parity.main(argv) == 0                                      # everything from the cache
    assert "0 runs to do (6 cached)" in capsys.readouterr().out
    assert json.loads(out.read_text())["compressed"] == report["compressed"]


def test_bad_input_is_one_line_and_exit_2(capsys):
    assert parity.main(["--compressed", "topk=0"]) == 2
    assert "compression.topk" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parity.main(["--rounds", "0,x"])
