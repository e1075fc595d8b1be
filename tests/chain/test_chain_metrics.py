"""The chain's Prometheus metrics, scraped from a real `subnet chain` process."""
from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.chain.conftest import ChainProcess, write_genesis


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def post(url: str, body: bytes) -> int:
    try:
        return urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=5).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_chain_serves_block_height_and_requests_by_kind_and_outcome(tmp_path, actors):
    genesis = write_genesis(tmp_path / "neurons.yaml", actors)
    chain = ChainProcess(db=tmp_path / "chain.db", genesis=genesis, block_time=0, metrics_port=0)
    chain.start()
    metrics_port = chain.metrics_port          # the one the system chose, from the chain's port file
    try:
        for _ in range(3):
            assert post(chain.url + "/dev/advance", b'{"blocks": 2}') == 200
        urllib.request.urlopen(chain.url + "/metagraph/1", timeout=5).read()
        urllib.request.urlopen(chain.url + "/metagraph/1", timeout=5).read()
        assert post(chain.url + "/call", b"{}") == 400
        forged = {"call": "burned_register", "params": {"netuid": 1, "hotkey": actors.miners_hot[0].address},
                  "signer": actors.miners_cold[0].address, "nonce": 1, "signature": "00" * 64}
        assert post(chain.url + "/call", json.dumps(forged).encode()) >= 400
        head = json.loads(urllib.request.urlopen(chain.url + "/head", timeout=5).read())["block"]
        samples = scrape(metrics_port)
    finally:
        chain.kill(signal.SIGTERM)
    assert samples[("tessera_chain_block_height", ())] == head == 6
    requests = {labels: value for (name, labels), value in samples.items() if name == "tessera_chain_requests_total"}
    assert requests[(("kind", "GET /metagraph/{netuid}"), ("outcome", "ok"))] == 2
    assert requests[(("kind", "POST /dev/advance"), ("outcome", "ok"))] == 3
    assert requests[(("kind", "call (unknown)"), ("outcome", "malformed"))] == 1
    refused = [labels for labels in requests if labels[0] == ("kind", "call burned_register")]
    assert len(refused) == 1 and refused[0][1][1] not in ("ok", "")       # refused, with the chain's code
    count = samples[("tessera_chain_request_seconds_count", (("kind", "GET /metagraph/{netuid}"),))]
    assert count == 2
    assert samples[("tessera_chain_request_seconds_sum", (("kind", "GET /metagraph/{netuid}"),))] > 0
