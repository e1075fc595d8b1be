import json
import math
import subprocess
import sys

import pytest

from subnet.trainsim import run_train_sim


@pytest.mark.slow
def test_compressed_run_learns(tiny_preset, tiny_train, tiny_val):
    result = run_train_sim(tiny_preset, tiny_train, tiny_val, miners=2, rounds=10, eval_samples=128,
                           runs=("compressed",))
    run = result.runs["compressed"]
    assert run.eval_loss < result.initial_eval_loss - 1.0  # well below the start (about ln(vocab))
    losses = [loss for _, loss in run.curve]
    assert losses[-1] < losses[0]
    assert result.compression_ratio > 100
    # The floor from first principles: log2 C(chunk, k) bits per chunk, over every tensor's chunks.
    from subnet.compression.spec import layouts_for
    from subnet.model import param_shapes
    layouts = layouts_for(param_shapes(tiny_preset.model), tiny_preset.compression).values()
    floor = (sum(t.num_chunks * math.log2(math.comb(t.chunk_size, t.k)) for t in layouts)
             / sum(t.num_kept for t in layouts))
    assert result.index_bits_floor == pytest.approx(floor, rel=1e-9)
    assert floor <= result.index_bits_per_value <= 1.05 * floor


@pytest.mark.slow
def test_train_sim_cli_writes_json(tiny_data_dir, tmp_path):
    out = tmp_path / "sim.json"
    proc = subprocess.run([sys.executable, "-m", "subnet.cli", "train-sim", "--preset", "tiny", "--miners", "2",
                           "--rounds", "2", "--eval-samples", "32", "--data", str(tiny_data_dir), "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert set(data["runs"]) == {"compressed", "diloco", "diloco_paper", "adamw_same_compute", "adamw_same_tokens"}
    for run in data["runs"].values():
        assert run["eval_loss"] > 0 and isinstance(run["bytes_per_round"], int)
    assert data["runs"]["diloco"]["bytes_per_round"] == 4 * data["parameters"]
    assert data["runs"]["compressed"]["bytes_per_round"] * 50 < data["runs"]["diloco"]["bytes_per_round"]
    assert data["index_bits_floor"] <= data["index_bits_per_value"]
    assert "held-out loss" in proc.stdout and "compression ratio" in proc.stdout


def test_cli_reports_bad_preset(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: {hidden: 3}\n")
    proc = subprocess.run([sys.executable, "-m", "subnet.cli", "train-sim", "--preset", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "model.hidden" in proc.stderr and str(bad) in proc.stderr


def test_cli_data_prepare(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\f\n".join(f"Document {i}. " + "The quick brown fox jumps over the lazy dog. " * 40
                                  for i in range(30)))
    out = tmp_path / "ds"
    proc = subprocess.run([sys.executable, "-m", "subnet.cli", "data", "prepare", "--corpus", str(corpus),
                           "--out", str(out), "--vocab-size", "300"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["vocab_size"] <= 300 and (out / "tokenizer.json").is_file()
    missing = subprocess.run([sys.executable, "-m", "subnet.cli", "data", "prepare", "--corpus",
                              str(tmp_path / "none"), "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "no such corpus" in missing.stderr


def test_diloco_runs_the_preset_baseline_and_diloco_paper_the_papers_outer_settings(tiny_preset, tiny_train, tiny_val):
    from dataclasses import replace

    from subnet.trainsim import PAPER_DILOCO

    def losses(baseline):
        preset = replace(tiny_preset, baseline=replace(tiny_preset.baseline, diloco_lr=baseline[0],
                                                       diloco_momentum=baseline[1]))
        result = run_train_sim(preset, tiny_train, tiny_val, miners=1, rounds=2, eval_samples=32,
                               eval_every=1, runs=("diloco", "diloco_paper"))
        return result.runs["diloco"].curve, result.runs["diloco_paper"].curve

    ours, paper = losses(PAPER_DILOCO)
    assert ours == paper                     # the same outer settings: the same run, bit for bit
    plain, paper_again = losses((1.0, 0.0))
    assert paper_again == paper              # diloco_paper ignores the preset's baseline
    assert plain != paper and plain[0] != paper[0]   # round 1 already differs: lr 1.0 vs 0.7 * (1 + 0.9)
