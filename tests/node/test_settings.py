"""How a neuron of the local network file finds its bucket: the file's storage, or --storage instead."""
from __future__ import annotations

import pytest

from subnet.localnet import LocalNetwork, NeuronSpec
from subnet.node.settings import SettingsError, from_neurons_file
from subnet.storage.config import neuron_storage, write_neuron_storage


def network(tmp_path) -> LocalNetwork:
    net = LocalNetwork(tmp_path / "run", [NeuronSpec("m1", "miner")])
    net.write_files()
    return net


def bucket_file(path, endpoint: str):
    settings = neuron_storage(endpoint, "tessera-m1", ("WRITEKEY", "writesecret"), ("READKEY0123", "readsecret"))
    write_neuron_storage(path, settings)
    return path


def test_the_storage_file_replaces_the_networks_bucket_settings(tmp_path):
    net = network(tmp_path)
    (net.root / "storage" / "neurons").mkdir(parents=True)
    bucket_file(net.root / "storage" / "neurons" / "m1.json", "http://127.0.0.1:9000")
    own = from_neurons_file(net.neurons_file, "m1", "miner", wallet_dir=net.wallet_dir)
    assert own.storage.write.endpoint_url == "http://127.0.0.1:9000"
    proxied = bucket_file(tmp_path / "via-proxy.json", "http://127.0.0.1:9100")
    via = from_neurons_file(net.neurons_file, "m1", "miner", wallet_dir=net.wallet_dir, storage_file=proxied)
    assert via.storage.write.endpoint_url == via.storage.read.endpoint_url == "http://127.0.0.1:9100"
    assert "http://127.0.0.1:9100" in via.storage.commitment()   # others read the bucket where it says
    assert via.wallet.hotkey.address == own.wallet.hotkey.address and via.storage.bucket == own.storage.bucket


def test_a_missing_storage_file_is_named(tmp_path):
    net = network(tmp_path)
    with pytest.raises(SettingsError, match="--storage .*nowhere.json: no such file"):
        from_neurons_file(net.neurons_file, "m1", "miner", wallet_dir=net.wallet_dir,
                          storage_file=tmp_path / "nowhere.json")
    with pytest.raises(SettingsError, match="m1.json not found: start `subnet storage"):
        from_neurons_file(net.neurons_file, "m1", "miner", wallet_dir=net.wallet_dir)
