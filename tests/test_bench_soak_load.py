"""The pure parts of bench/soak.py, bench/load.py and bench/procs.py: memory trends, window tallies,
block-interval deviation, and finding a network's processes in /proc."""
import json
import os
import subprocess
import sys
import time

import pytest

from bench import load, procs, soak


def test_slope_is_the_least_squares_growth_per_hour():
    assert soak.slope_per_hour([(0, 100.0), (1800, 110.0), (3600, 120.0)]) == pytest.approx(20.0)
    assert soak.slope_per_hour([(0, 100.0), (60, 100.0)]) == 0.0
    assert soak.slope_per_hour([(5, 100.0)]) == 0.0 and soak.slope_per_hour([(5, 1.0), (5, 2.0)]) == 0.0


def test_memory_table_leaves_the_warm_up_out_and_takes_the_peak_it_was_given():
    samples = [(t, {"miner": 900.0 if t < 600 else 500.0 + t / 3600, "weed": 100.0}) for t in range(0, 3601, 30)]
    table = soak.memory_table(samples, {"miner": 950.0}, warmup_s=600)
    assert table["miner"]["rss_after_warmup_mb"] == pytest.approx(500.2, abs=0.1)   # the 900s are warm-up
    assert table["miner"]["growth_mb_per_h"] == pytest.approx(1.0, abs=0.05)
    assert table["miner"]["rss_peak_mb"] == 950.0 and table["weed"]["rss_peak_mb"] == 100.0
    assert table["weed"]["growth_mb_per_h"] == 0.0


def test_window_table_counts_trained_skipped_and_disagreeing_windows(tmp_path):
    rows = {"m1": [{"window": 1, "model_hash": "a"}, {"window": 2, "model_hash": "b"}, {"window": 3, "model_hash": "c"}],
            "m2": [{"window": 1, "model_hash": "a"}, {"window": 2, "model_hash": "x"}, {"window": 3, "model_hash": "c"}],
            "v": [{"window": 1, "aggregate_from": None}, {"window": 2, "aggregate_from": 3},
                  {"window": 3, "aggregate_from": 3}]}
    for name, lines in rows.items():
        (tmp_path / "state" / name).mkdir(parents=True)
        text = "\n".join(json.dumps(r) for r in lines) + "\n{\"window\": 4, \"model_h"   # a line being written
        (tmp_path / "state" / name / "metrics.jsonl").write_text(text)
    table = soak.window_table(tmp_path)
    assert table == {"windows_trained": 2, "windows_skipped": 1, "windows_disagreeing": [2],
                     "last_window_hashes_equal": True}


def test_block_interval_deviation_is_the_largest_either_way():
    assert load.block_interval_max_dev([0.0, 1.0, 2.4, 3.1], 1.0) == pytest.approx(0.4)
    assert load.block_interval_max_dev([0.0, 1.0, 1.2], 1.0) == pytest.approx(0.8)
    assert load.block_interval_max_dev([5.0], 1.0) == 0.0


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc (Linux)")
def test_processes_are_found_under_their_parent_and_named_by_their_role():
    script = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)', "
              "'--name', 'm7']); time.sleep(30)")
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 20
        found = {}
        while time.monotonic() < deadline and "m7" not in found:
            found = procs.network_rss(parent.pid)
            time.sleep(0.1)
        pid, current, peak = found["m7"]
        assert pid in procs.children(parent.pid) and pid != parent.pid
        assert 0 < current <= peak
        assert procs.role_of(os.getpid()) is None and procs.rss_mb(2 ** 22 + 7) is None
    finally:
        for pid in procs.children(parent.pid):
            os.kill(pid, 9)
        parent.kill()
        parent.wait()
