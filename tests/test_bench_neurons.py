"""bench/neurons.py's pure parts: the summary of metrics lines and the block-time choice."""
import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest

from subnet.config import load_preset

_PATH = Path(__file__).resolve().parents[1] / "bench" / "neurons.py"
_SPEC = importlib.util.spec_from_file_location("bench_neurons", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
sys.modules.setdefault(_SPEC.name, bench)  # dataclasses look their module up while the file runs
_SPEC.loader.exec_module(bench)


def miner_line(window, *, train=1.0, seen=None, stake=0, hash_="h", note="", idle=0.0, wall=2.0, upload=0.1, wait=0.5):
    line = {"window": window, "version": window, "train_s": train, "idle_s": idle, "wall_s": wall, "upload_s": upload,
            "wait_aggregate_s": wait, "alpha_stake": stake, "model_hash": hash_, "note": note}
    if seen is not None:
        line["observed_at"] = seen
    return line


def validator_line(window, *, hash_="h", frm=1, delay=0.2, peers=(3, 4), loss=5.0, evaluated=(3, 4), passes=6,
                   weights=False):
    return {"window": window, "result_hash": hash_, "aggregate_from": frm, "aggregate_delay_s": delay,
            "peers": list(peers), "held_out_loss": loss, "evaluated": list(evaluated), "forward_passes": passes,
            "weights_set": weights}


def test_miner_utilisation_is_training_over_the_span_after_the_first_window():
    lines = [miner_line(5, train=9.0, seen=10.0, stake=7)] + [
        miner_line(w, train=1.5, seen=10.0 + 2.0 * (w - 5), stake=7 + w) for w in (6, 7, 8)]
    m = bench.summarise_miner(lines, windows=3)
    assert m["utilisation"] == pytest.approx(4.5 / 6.0)  # the first window's 9 s of training is left out
    assert (m["alpha_stake_start"], m["alpha_stake_end"]) == (7, 15)
    assert m["windows_measured"] == 3


def test_miner_summary_stops_at_the_asked_windows_and_counts_missed_slots():
    lines = [miner_line(w, seen=float(w), upload=w, note="missed the upload slot" if w == 2 else "")
             for w in range(6)]
    m = bench.summarise_miner(lines, windows=2)
    assert m["upload_s"] == pytest.approx(1.5)            # windows 1 and 2 only
    assert m["missed_upload_slot"] == 1
    assert m["alpha_stake_end"] == 0


def test_miner_span_without_timestamps_falls_back_to_idle_plus_wall():
    lines = [miner_line(w, train=1.0, idle=0.5, wall=1.5) for w in range(3)]
    assert bench.summarise_miner(lines, windows=2)["utilisation"] == pytest.approx(2.0 / 4.0)


def test_windows_name_the_chosen_validator_and_compare_every_hash():
    miners = {"miner1": [miner_line(w, hash_=f"m{w}") for w in range(4)],
              "miner2": [miner_line(w, hash_="other" if w == 3 else f"m{w}") for w in range(1, 4)]}
    validators = {"validator1": [validator_line(w, hash_=f"m{w}", frm=2, loss=10.0 - w, delay=9.0) for w in range(4)],
                  "validator2": [validator_line(w, hash_=f"m{w}", frm=2, delay=0.25 + w, peers=(5,)) for w in range(4)]}
    report = bench.summarise("tiny", 3.0, miners, validators, "validator1", {1: "validator1", 2: "validator2"}, 3)
    rows = {row["window"]: row for row in report["windows"]}
    assert sorted(rows) == [2, 3]                         # miner2's first window is 1
    assert rows[2]["hashes_equal"] and not rows[3]["hashes_equal"]
    assert rows[2]["aggregate_from"] == "validator2"
    assert rows[2]["aggregate_delay_s"] == pytest.approx(2.25)   # the chosen validator's delay, not the lead's
    assert rows[2]["peers"] == [5]
    assert rows[3]["global_loss"] == pytest.approx(7.0)          # the lead's held-out loss


def test_a_skipped_window_and_a_node_without_the_window():
    miners = {"miner1": [miner_line(w) for w in range(3)]}
    validators = {"validator1": [validator_line(0), validator_line(1, frm=None, delay=None, peers=()),
                                 validator_line(2)],
                  "validator2": [validator_line(0), validator_line(1, frm=None)]}
    report = bench.summarise("tiny", 3.0, miners, validators, "validator1", {1: "validator1"}, 2)
    rows = {row["window"]: row for row in report["windows"]}
    assert rows[1]["skipped"] and rows[1]["aggregate_from"] is None and rows[1]["peers"] == []
    assert not rows[2]["hashes_equal"]                   # validator2 has no figures for window 2


def test_validator_figures():
    miners = {"miner1": [miner_line(w) for w in range(3)]}
    validators = {"validator1": [validator_line(1, evaluated=(3, 4, 5), passes=9, weights=True),
                                 validator_line(2, evaluated=(3,), passes=7)]}
    v = bench.summarise("tiny", 3.0, miners, validators, "validator1", {1: "validator1"}, 2)["validators"]["validator1"]
    assert v["evaluated_per_window"] == pytest.approx(2.0)
    assert v["forward_passes_per_evaluated_miner"] == pytest.approx(16 / 4)
    assert v["weights_set"] == 1


def test_block_time_follows_training_unless_the_aggregate_deadline_needs_longer():
    p = load_preset("tiny").protocol
    slow = bench.Calibration(train_s=10.0, compress_s=0.0, aggregate_s=0.0, apply_s=0.0, contention=1.0)
    block_time, bound = bench.pick_block_time(slow, p)
    assert bound == "training"
    # Long training hides the aggregate's delay (miners train ahead): only the intent's wait is added.
    assert block_time * p.blocks_per_window == pytest.approx(10.0 / bench.UTILISATION_TARGET + bench.INTENT_WAIT_S)
    short = bench.Calibration(train_s=2.5, compress_s=0.0, aggregate_s=0.0, apply_s=0.0, contention=1.0)
    assert short.aggregation_delay_s > 1.25       # more than half of this training: the rest is waited
    roomy = dataclasses.replace(p, aggregate_deadline_blocks=4)   # so training, not the deadline, bounds
    block_time, bound = bench.pick_block_time(short, roomy)
    assert bound == "training"
    assert block_time * p.blocks_per_window == pytest.approx(
        2.5 / bench.UTILISATION_TARGET + short.aggregation_delay_s - 1.25 + bench.INTENT_WAIT_S)
    fast = bench.Calibration(train_s=0.01, compress_s=0.0, aggregate_s=0.0, apply_s=0.0, contention=1.0)
    block_time, bound = bench.pick_block_time(fast, p)
    assert bound == "aggregate deadline"
    assert block_time * p.aggregate_deadline_blocks == pytest.approx(fast.validator_deadline_s)
