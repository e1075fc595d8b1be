"""`miner run --config FILE` / `validator run --config FILE` (subnet/node/settings.py `load_run_config`,
subnet/node/cli.py `with_config`): the explicit flags as one YAML file, flags on the command line win."""
from __future__ import annotations

from pathlib import Path

import pytest

from subnet.node.cli import build_parser, settings_from_args, with_config
from subnet.node.settings import SettingsError, load_run_config
from subnet.storage.config import neuron_storage, write_neuron_storage
from subnet.wallet import create_wallet
from tests.test_cli import assert_one_error, run

CONFIG = """\
chain: {kind: bittensor, network: test}
netuid: 3
wallet: {name: op, hotkey: m7, dir: wallets}
storage: storage.json
preset: tiny
data: data/tiny
state_dir: state/m7
device: cpu
threads: 2
stake: 12.5
metrics_port: 9100
"""


def parsed(argv: list[str]):
    parser = build_parser("miner", "test")
    return with_config(parser, parser.parse_args(argv), argv)


def test_the_file_fills_every_explicit_flag_with_paths_relative_to_it(tmp_path):
    (tmp_path / "m.yaml").write_text(CONFIG)
    args = parsed(["run", "--config", str(tmp_path / "m.yaml")])
    assert (args.chain, args.netuid, args.wallet, args.hotkey) == ("test", 3, "op", "m7")
    assert args.wallet_dir == tmp_path / "wallets" and args.storage == tmp_path / "storage.json"
    assert args.data == tmp_path / "data" / "tiny" and args.state_dir == tmp_path / "state" / "m7"
    assert (args.preset, args.device, args.threads, args.stake, args.metrics_port) == ("tiny", "cpu", 2, 12.5, 9100)


def test_flags_on_the_command_line_win_over_the_file(tmp_path):
    (tmp_path / "m.yaml").write_text(CONFIG)
    args = parsed(["run", "--config", str(tmp_path / "m.yaml"), "--chain", "http://127.0.0.1:9", "--threads", "1",
                   "--hotkey", "other"])
    assert (args.chain, args.threads, args.hotkey, args.netuid) == ("http://127.0.0.1:9", 1, "other", 3)


def test_a_config_file_starts_a_node_with_its_wallet_and_storage(tmp_path):
    (tmp_path / "wallets").mkdir(mode=0o700)
    wallet = create_wallet("op", tmp_path / "wallets", hotkey="m7")
    write_neuron_storage(tmp_path / "storage.json", neuron_storage("http://127.0.0.1:1", "tessera-op", ("A" * 16, "b" * 16),
                                                                   ("C" * 16, "d" * 16)))
    (tmp_path / "data").mkdir()
    (tmp_path / "m.yaml").write_text(CONFIG.replace("data: data/tiny", "data: data"))
    settings = settings_from_args(parsed(["run", "--config", str(tmp_path / "m.yaml")]), "miner")
    assert settings.wallet.hotkey.address == wallet.hotkey.address and settings.chain_url == "test"
    assert settings.netuid == 3 and settings.storage.bucket == "tessera-op" and settings.threads == 2
    assert not settings.register              # real TAO: the burn is paid only when asked
    for asked in (["--register"], ["--chain", "http://127.0.0.1:9"]):   # asked, or the dev chain
        assert settings_from_args(parsed(["run", "--config", str(tmp_path / "m.yaml"), *asked]), "miner").register
    (tmp_path / "m.yaml").write_text(CONFIG.replace("data: data/tiny", "data: data") + "register: true\n")
    assert settings_from_args(parsed(["run", "--config", str(tmp_path / "m.yaml")]), "miner").register


@pytest.mark.parametrize("text,message", [
    ("netuid: 3\nwallets: x\n", "unknown key 'wallets'"),
    ("- 1\n", "must be a mapping"),
    ("netuid: three\n", "netuid must be an integer"),
    ("netuid: true\n", "netuid must be an integer"),
    ("stake: lots\n", "stake must be a number"),
    ("chain: {kind: bittensor, url: 'http://x:1'}\n", "unknown key 'url' for kind bittensor"),
    ("chain: mainnet\n", "--chain 'mainnet'"),
    ("wallet: {hotkey: h}\n", "wallet must be a name or {name, hotkey, dir}"),
    ("storage: 5\n", "storage must be a path"),
    ("preset: [tiny]\n", "preset must be a string"),
    ("register: yes please\n", "register must be true or false"),
    ("netuid: [\n", "not valid YAML"),
])
def test_a_bad_file_is_refused_by_name(tmp_path, text, message):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("{", r"\{")):
        load_run_config(tmp_path / "bad.yaml")


def test_the_processes_report_a_bad_config_in_one_line(tmp_path):
    (tmp_path / "bad.yaml").write_text("netuid: 3\nwallets: x\n")
    assert_one_error(run("miner.cli", "run", "--config", str(tmp_path / "bad.yaml"), cwd=tmp_path), 1,
                     "unknown key 'wallets'", prog="miner")
    assert_one_error(run("validator.cli", "run", "--config", str(tmp_path / "missing.yaml"), cwd=tmp_path), 1,
                     "missing.yaml: no such file", prog="validator")
