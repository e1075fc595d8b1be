"""neurons.yaml (subnet/neurons.py) and a neuron's storage settings file (subnet/storage/config.py):
what loads, what is refused and how the refusal names the file and key."""
from __future__ import annotations

import json
import os
import stat
import textwrap
from pathlib import Path

import pytest

from subnet.config import HPARAMS_DIR
from subnet.neurons import Behaviour, Neuron, NeuronsError, StorageSettings, load_network
from subnet.storage.config import StorageConfigError, load_neuron_storage, neuron_storage, write_neuron_storage
from subnet.wallet import create_wallet

SHIPPED = HPARAMS_DIR.parent / "neurons.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "neurons.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_shipped_file_loads_with_its_wallets(tmp_path):
    for name in ("owner", "validator", "miner1", "miner2", "miner3"):
        create_wallet(name, tmp_path)
    network = load_network(SHIPPED, wallet_dir=tmp_path)
    assert network.names == ["validator", "miner1", "miner2", "miner3"]
    assert network.neuron("miner2") == Neuron(name="miner2", role="miner", wallet="miner2")
    assert network.storage == StorageSettings()
    assert network.block_time == 1.0 and network.chain.subnets[0].netuid == 1
    # Without the chain section no wallet is needed.
    assert load_network(SHIPPED, wallet_dir=tmp_path / "none", with_chain=False).names == network.names
    with pytest.raises(NeuronsError, match="neither an SS58 address nor a wallet"):
        load_network(SHIPPED, wallet_dir=tmp_path / "none")


def test_every_field_round_trips(tmp_path):
    path = write(tmp_path, """\
        storage: {host: localhost, port: 9100, dir: /srv/s3}
        neurons:
          - {name: lead, role: validator, wallet: lead-wallet, stake: 12.5}
          - {name: copier, role: miner, behaviour: copier, metrics_port: 9201}
          - name: noisy
            role: miner
            stake: 0
            behaviour: {kind: noise, scale: 3.0, targets: [1, 2], quiet: true, note: null}
          - {name: boss, role: owner}
        """)
    network = load_network(path, with_chain=False)
    assert network.chain is None and network.path == path
    assert network.storage == StorageSettings(host="localhost", port=9100, dir=Path("/srv/s3"))
    assert network.neurons == (
        Neuron("lead", "validator", "lead-wallet", stake=12_500_000_000),
        Neuron("copier", "miner", "copier", behaviour=Behaviour("copier"), metrics_port=9201),
        Neuron("noisy", "miner", "noisy", stake=0,
               behaviour=Behaviour("noise", {"scale": 3.0, "targets": [1, 2], "quiet": True, "note": None})),
        Neuron("boss", "owner", "boss"))


def test_empty_sections_mean_defaults(tmp_path):
    network = load_network(write(tmp_path, "storage:\nneurons:\n"))
    assert network.neurons == () and network.storage == StorageSettings() and network.chain.subnets == ()
    assert load_network(write(tmp_path, "")).neurons == ()


@pytest.mark.parametrize("text, where", [
    ("- just\n- a list\n", r"neurons\.yaml: must be a mapping of sections"),
    ("neuron:\n  - {name: a, role: miner}\n", r"neurons\.yaml: neuron: unknown section"),
    ("neurons: {a: miner}\n", r"neurons: must be a list"),
    ("neurons:\n  - a\n", r"neurons\[0\]: must be a mapping"),
    ("neurons:\n  - {role: miner}\n", r"neurons\[0\]: missing 'name'"),
    ("neurons:\n  - {name: a}\n", r"neurons\[0\]: missing 'role'"),
    ("neurons:\n  - {name: a, role: lead}\n", r"neurons\[0\]\.role: must be one of miner, validator, owner"),
    ("neurons:\n  - {name: a, role: miner, hotkey: x}\n", r"neurons\[0\]\.hotkey: unknown key"),
    ("neurons:\n  - {name: 7, role: miner}\n", r"neurons\[0\]\.name: must be"),
    ("neurons:\n  - {name: -a, role: miner}\n", r"neurons\[0\]\.name: must be"),
    ("neurons:\n  - {name: a/b, role: miner}\n", r"neurons\[0\]\.name: must be"),
    ("neurons:\n  - {name: dataset, role: miner}\n", r"neurons\[0\]\.name: 'dataset' is reserved"),
    ("neurons:\n  - {name: a, role: miner}\n  - {name: a, role: validator}\n",
     r"neurons\[1\]\.name: duplicate name 'a'"),
    ("neurons:\n  - {name: a, role: miner, wallet: ../x}\n", r"neurons\[0\]\.wallet: must be a wallet name"),
    ("neurons:\n  - {name: a, role: miner, stake: -1}\n", r"neurons\[0\]\.stake"),
    ("neurons:\n  - {name: a, role: miner, metrics_port: 70000}\n", r"neurons\[0\]\.metrics_port: must be an int"),
    ("neurons:\n  - {name: a, role: miner, metrics_port: '9100'}\n", r"neurons\[0\]\.metrics_port: must be an int"),
    ("neurons:\n  - {name: a, role: miner, metrics_port: -1}\n", r"neurons\[0\]\.metrics_port: must be an int in \[0,"),
    ("storage: {port: 0}\n", r"storage\.port: must be an int in \[1,"),   # SeaweedFS needs a real port
    ("neurons:\n  - {name: a, role: miner, stake: lots}\n", r"neurons\[0\]\.stake"),
    ("neurons:\n  - {name: a, role: miner, stake: 0.0000000001}\n", r"neurons\[0\]\.stake"),
    ("neurons:\n  - {name: a, role: miner, behaviour: Copy Cat}\n", r"neurons\[0\]\.behaviour: must be a kind"),
    ("neurons:\n  - {name: a, role: miner, behaviour: [copier]}\n", r"neurons\[0\]\.behaviour: must be a kind"),
    ("neurons:\n  - {name: a, role: miner, behaviour: {scale: 1}}\n", r"neurons\[0\]\.behaviour: missing 'kind'"),
    ("neurons:\n  - {name: a, role: miner, behaviour: {kind: x, opts: {deep: 1}}}\n",
     r"neurons\[0\]\.behaviour\.opts: must be a string, number"),
    ("neurons:\n  - {name: a, role: miner, behaviour: {kind: x, Bad-Name: 1}}\n",
     r"neurons\[0\]\.behaviour: parameter: must be a name"),
    ("storage: [8333]\n", r"storage: must be a mapping"),
    ("storage: {bind: 0.0.0.0}\n", r"storage\.bind: unknown key"),
    ("storage: {port: '8333'}\n", r"storage\.port: must be an int"),
    ("storage: {port: true}\n", r"storage\.port: must be an int"),
    ("storage: {port: 70000}\n", r"storage\.port: must be an int"),
    ("storage: {host: 'http://x'}\n", r"storage\.host: must be a host name"),
    ("storage: {dir: ''}\n", r"storage\.dir: must be a non-empty path"),
    ("chain: {blocktime: 1}\n", r"chain\.blocktime: unknown key"),
    ("chain: [1]\n", r"chain: must be a mapping"),
])
def test_refusals_name_the_file_and_key(tmp_path, text, where):
    path = write(tmp_path, text)
    with pytest.raises(NeuronsError, match=where) as err:
        load_network(path)
    assert str(err.value).startswith(f"{path}: ")
    assert isinstance(err.value, ValueError)


def test_chain_section_is_only_shape_checked_without_chain(tmp_path):
    path = write(tmp_path, "chain: {balances: {ghost: 1}}\nneurons:\n  - {name: a, role: miner}\n")
    assert load_network(path, with_chain=False).names == ["a"]
    with pytest.raises(NeuronsError, match=r"chain: must be a mapping"):
        load_network(write(tmp_path, "chain: 5\n"), with_chain=False)


def test_missing_and_unparsable_files(tmp_path):
    with pytest.raises(NeuronsError, match="no such neurons file"):
        load_network(tmp_path / "absent.yaml")
    with pytest.raises(NeuronsError, match="not valid YAML"):
        load_network(write(tmp_path, "neurons: [\n"))


SETTINGS = neuron_storage("http://127.0.0.1:8333", "tessera-miner1", ("TSW0123456789ABCDEF", "write-secret-123"),
                          ("TSR0123456789ABCDEF", "read-secret-1234"))


def test_settings_file_round_trip_is_private(tmp_path):
    path = tmp_path / "miner1.json"
    write_neuron_storage(path, SETTINGS)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_neuron_storage(path) == SETTINGS
    document = json.loads(path.read_text())
    assert document["commitment"] == SETTINGS.commitment()
    assert document["access_key"] == "TSW0123456789ABCDEF" and document["read_access_key"] == "TSR0123456789ABCDEF"
    aws = neuron_storage(None, "my-bucket", ("AKIAWRITE0000", "s" * 20), ("AKIAREAD00000", "r" * 20),
                         region="eu-west-1", addressing_style="virtual")
    write_neuron_storage(path, aws)
    assert load_neuron_storage(path) == aws and "commitment" not in json.loads(path.read_text())


@pytest.mark.parametrize("change, message", [
    ({"bucket": ""}, "missing or empty 'bucket'"),
    ({"secret_key": None}, "missing or empty 'secret_key'"),
    ({"bukket": "x"}, "unknown key 'bukket'"),
    ({"endpoint": 8333}, "'endpoint' must be a URL or null"),
    ({"addressing_style": "dns"}, "'addressing_style' must be one of"),
    ({"region": ""}, "'region' must be a non-empty string"),
    ({"bucket": "tessera-miner2"}, "'commitment' does not match"),
    ({"endpoint": None}, "'commitment' does not match"),
    ({"endpoint": "ftp://x"}, "'commitment' cannot be formed"),
])
def test_settings_file_refusals(tmp_path, change, message):
    path = tmp_path / "miner1.json"
    write_neuron_storage(path, SETTINGS)
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(StorageConfigError, match=message) as err:
        load_neuron_storage(path)
    assert str(err.value).startswith(str(path))


def test_metrics_port_zero_lets_the_os_choose(tmp_path):
    from subnet.neurons import load_network

    path = tmp_path / "neurons.yaml"
    path.write_text("neurons:\n  - {name: a, role: miner, metrics_port: 0}\n  - {name: b, role: miner}\n")
    neurons = {n.name: n.metrics_port for n in load_network(path, with_chain=False).neurons}
    assert neurons == {"a": 0, "b": None}
