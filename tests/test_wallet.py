"""Wallet files (subnet/wallet.py) and the `wallet` CLI commands (subnet/wallet_cli.py)."""

from __future__ import annotations

import argparse
import json
import stat

import pytest

from subnet.keys import ss58_decode, verify
from subnet.wallet import (
    WalletError,
    WalletExistsError,
    create_wallet,
    list_wallets,
    load_wallet,
    resolve_wallet_dir,
)
from subnet.wallet_cli import add_wallet_commands


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_create_writes_private_files_and_load_round_trips(tmp_path):
    wallet = create_wallet("alice", tmp_path)
    assert mode(tmp_path / "alice") == 0o700
    for key in ("coldkey", "hotkey"):
        assert mode(tmp_path / "alice" / key) == 0o600
        document = json.loads((tmp_path / "alice" / key).read_text())
        assert ss58_decode(document["ss58_address"]) == bytes.fromhex(document["public_key_hex"])
    loaded = load_wallet("alice", tmp_path)
    assert loaded == wallet
    assert loaded.coldkey != loaded.hotkey
    assert verify(loaded.hotkey.public_key, b"m", wallet.hotkey.sign(b"m"))
    assert not list(tmp_path.glob("alice/.*"))  # no temp files left behind


def test_overwrite_refused_unless_asked(tmp_path):
    first = create_wallet("bob", tmp_path)
    with pytest.raises(WalletExistsError, match="already exists"):
        create_wallet("bob", tmp_path)
    assert load_wallet("bob", tmp_path) == first
    second = create_wallet("bob", tmp_path, overwrite=True)
    assert load_wallet("bob", tmp_path) == second != first


def test_list_shows_created_wallets(tmp_path):
    assert list_wallets(tmp_path) == []
    assert list_wallets(tmp_path / "missing") == []
    create_wallet("b", tmp_path)
    create_wallet("a", tmp_path)
    (tmp_path / "not-a-wallet").mkdir()
    assert list_wallets(tmp_path) == ["a", "b"]


def test_wallet_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("TESSERA_WALLET_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_wallet_dir() == tmp_path / "home" / ".tessera" / "wallets"
    monkeypatch.setenv("TESSERA_WALLET_DIR", str(tmp_path / "env"))
    assert resolve_wallet_dir() == tmp_path / "env"
    assert resolve_wallet_dir(tmp_path / "flag") == tmp_path / "flag"
    create_wallet("viaenv")
    assert list_wallets(tmp_path / "env") == ["viaenv"]


def test_existing_user_directory_is_not_tightened(tmp_path):
    root = tmp_path / "shared"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    create_wallet("w", root)
    assert mode(root) == 0o755
    assert mode(root / "w") == 0o700


@pytest.mark.parametrize("name", ["", "..", ".hidden", "a/b", "-flag"])
def test_bad_names_rejected(tmp_path, name):
    with pytest.raises(WalletError, match="invalid wallet name"):
        create_wallet(name, tmp_path)


def test_load_detects_missing_and_corrupt_keys(tmp_path):
    with pytest.raises(WalletError, match="no wallet"):
        load_wallet("ghost", tmp_path)
    create_wallet("c", tmp_path)
    hotkey = tmp_path / "c" / "hotkey"
    document = json.loads(hotkey.read_text())
    document["ss58_address"] = load_wallet("c", tmp_path).coldkey.address
    hotkey.write_text(json.dumps(document))
    with pytest.raises(WalletError, match="does not match"):
        load_wallet("c", tmp_path)
    hotkey.write_text("{not json")
    with pytest.raises(WalletError, match="unreadable"):
        load_wallet("c", tmp_path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="subnet")
    add_wallet_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_create_and_list(tmp_path, capsys):
    parser = _parser()
    args = parser.parse_args(["wallet", "create", "miner1", "--dir", str(tmp_path)])
    assert args.func(args) == 0
    created = capsys.readouterr().out
    wallet = load_wallet("miner1", tmp_path)
    assert wallet.coldkey.address in created and wallet.hotkey.address in created
    assert "prefix 42" in created

    args = parser.parse_args(["wallet", "create", "miner1", "--dir", str(tmp_path)])
    with pytest.raises(WalletExistsError, match="already exists"):  # `subnet`'s main prints it
        args.func(args)

    args = parser.parse_args(["wallet", "list", "--dir", str(tmp_path)])
    assert args.func(args) == 0
    listed = capsys.readouterr().out
    assert "miner1" in listed and wallet.hotkey.address in listed


def test_cli_requires_a_wallet_subcommand(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["wallet"])


def test_a_wallet_dir_that_does_not_exist_yet_is_created_private_with_its_parents(tmp_path):
    root = tmp_path / "deep" / "er" / "wallets"
    create_wallet("n", root)
    assert mode(root) == 0o700 and mode(root / "n") == 0o700
    assert load_wallet("n", root).name == "n"


def test_overwriting_tightens_a_loosened_wallet_directory(tmp_path):
    create_wallet("loose", tmp_path)
    (tmp_path / "loose").chmod(0o755)
    create_wallet("loose", tmp_path, overwrite=True)
    assert mode(tmp_path / "loose") == 0o700
    for key in ("coldkey", "hotkey"):
        assert mode(tmp_path / "loose" / key) == 0o600


def test_key_files_hold_the_seed_public_key_address_and_network_prefix(tmp_path):
    wallet = create_wallet("doc", tmp_path)
    document = json.loads((tmp_path / "doc" / "hotkey").read_text())
    assert document == {"seed_hex": wallet.hotkey.seed.hex(), "public_key_hex": wallet.hotkey.public_key.hex(),
                        "ss58_address": wallet.hotkey.address, "ss58_prefix": 42}


def test_a_missing_key_file_is_named(tmp_path):
    create_wallet("half", tmp_path)
    (tmp_path / "half" / "hotkey").unlink()
    with pytest.raises(WalletError, match=r"key file .*half/hotkey is missing"):
        load_wallet("half", tmp_path)
