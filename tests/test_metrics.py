"""The miners' and validators' Prometheus metrics: what one window's figures become, served over HTTP."""
from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from miner.loop import MinerWindow
from subnet.metrics import MINER_PHASES, MinerMetrics, ValidatorMetrics, serve
from validator.loop import ValidatorWindow


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    return samples(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode())


def test_miner_metrics_follow_its_windows_over_http():
    metrics = MinerMetrics()
    server = serve(metrics.registry, 0)
    port = server.server_port
    try:
        first = MinerWindow(window=4, version=3, train_loss=5.5, tokens_per_s=1200.0, bytes_up=9000, train_s=2.0,
                            compress_s=0.25, upload_s=0.5, wait_aggregate_s=0.75, idle_s=0.1, score=0.8,
                            alpha_stake=7 * 10**9)
        metrics.record(first, bytes_up_total=9100, bytes_down_total=40_000)
        second = MinerWindow(window=5, version=4, train_s=3.0, note="missed the upload slot")
        metrics.record(second, bytes_up_total=9100, bytes_down_total=70_000)
        got = scrape(port)
    finally:
        server.shutdown()
    assert got[("tessera_miner_window", ())] == 5 and got[("tessera_miner_model_version", ())] == 4
    assert got[("tessera_miner_train_loss", ())] == 5.5          # a window without training keeps the last loss
    assert got[("tessera_miner_uploaded_bytes_total", ())] == 9100
    assert got[("tessera_miner_downloaded_bytes_total", ())] == 70_000   # totals, not sums of totals
    assert got[("tessera_miner_seconds_total", (("phase", "train"),))] == 5.0
    assert got[("tessera_miner_seconds_total", (("phase", "wait_aggregate"),))] == 0.75
    assert {labels[0][1] for (name, labels) in got if name == "tessera_miner_seconds_total"} == set(MINER_PHASES)
    assert got[("tessera_miner_windows_total", (("outcome", "uploaded"),))] == 1
    assert got[("tessera_miner_windows_total", (("outcome", "no_upload"),))] == 1
    assert got[("tessera_miner_score", ())] == 0.8 and got[("tessera_miner_alpha_stake_rao", ())] == 0


def test_validator_metrics_count_verdicts_and_replace_per_uid_series():
    metrics = ValidatorMetrics()
    stats = ValidatorWindow(window=7, verdicts={3: "ok", 4: "ok", 5: "wrong_base_model", 6: "missing", 8: "copied"},
                            evaluated=[3, 4], forward_passes=7, held_out_loss=6.25, weights_set=True,
                            aggregate_from=1, fetch_s=0.5, evaluate_s=1.5)
    metrics.record(stats, uid=1, ratings={3: 2.5, 4: 1.0, 5: -3.0}, weights={3: 0.6, 4: 0.4}, stake=10**11,
                   bytes_up_total=1000, bytes_down_total=50_000)
    later = ValidatorWindow(window=8, verdicts={3: "ok", 4: "non_finite"}, aggregate_from=2)
    metrics.record(later, uid=1, ratings={3: 2.7, 4: 0.5}, weights={3: 1.0}, stake=None,
                   bytes_up_total=1500, bytes_down_total=80_000)
    from prometheus_client import generate_latest
    got = samples(generate_latest(metrics.registry).decode())
    uploads = {labels[0][1]: v for (name, labels), v in got.items() if name == "tessera_validator_uploads_total"}
    assert uploads == {"ok": 3, "wrong_base_model": 1, "missing": 1, "copied": 1, "non_finite": 1}
    ratings = {labels[0][1]: v for (name, labels), v in got.items() if name == "tessera_validator_rating"}
    assert ratings == {"3": 2.7, "4": 0.5}                       # uid 5 is no longer rated: its series is gone
    weights = {labels[0][1]: v for (name, labels), v in got.items() if name == "tessera_validator_weight"}
    assert weights == {"3": 1.0}
    assert got[("tessera_validator_weights_set_total", ())] == 1
    assert got[("tessera_validator_forward_passes_total", ())] == 7
    assert got[("tessera_validator_held_out_loss", ())] == 6.25
    assert got[("tessera_validator_stake_rao", ())] == 10**11     # an unknown stake keeps the last one
    assert got[("tessera_validator_aggregate_chosen", ())] == 0   # window 8's aggregate came from uid 2
    assert got[("tessera_validator_downloaded_bytes_total", ())] == 80_000
    assert got[("tessera_validator_seconds_total", (("phase", "evaluate"),))] == 1.5


def test_serving_on_a_busy_port_names_it():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OSError, match=f"metrics: cannot listen on 127.0.0.1:{port}"):
            serve(MinerMetrics().registry, port)
