"""Wallet files (subnet/wallet.py) and the `wallet` CLI commands (subnet/wallet_cli.py)."""

from __future__ import annotations

import argparse
import json
import stat

import pytest

import bittensor_core
from bittensor.wallet import Wallet as SdkWallet

from subnet.keys import ED25519, SR25519, Keypair, ss58_decode, verify
from subnet.wallet import (
    WalletError,
    WalletExistsError,
    create_wallet,
    list_hotkeys,
    list_wallets,
    load_wallet,
    resolve_wallet_dir,
)
from subnet.wallet_cli import add_wallet_commands


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


KEY_FILES = ("coldkey", "coldkeypub.txt", "hotkeys/default", "hotkeys/defaultpub.txt")


def test_create_writes_private_files_and_load_round_trips(tmp_path):
    wallet = create_wallet("alice", tmp_path)
    assert mode(tmp_path / "alice") == 0o700 and mode(tmp_path / "alice" / "hotkeys") == 0o700
    for key in KEY_FILES:
        assert mode(tmp_path / "alice" / key) == 0o600
        document = json.loads((tmp_path / "alice" / key).read_text())
        assert ss58_decode(document["ss58Address"]) == bytes.fromhex(document["publicKey"].removeprefix("0x"))
    loaded = load_wallet("alice", tmp_path)
    assert loaded == wallet
    assert loaded.coldkey.address == loaded.coldkey_address != loaded.hotkey.address
    assert verify(loaded.hotkey.public_key, b"m", wallet.hotkey.sign(b"m"))
    assert not list(tmp_path.rglob("*.tmp"))  # no temp files left behind


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
    public = tmp_path / "c" / "hotkeys" / "defaultpub.txt"
    public.write_text((tmp_path / "c" / "coldkeypub.txt").read_text())   # another key's public half
    with pytest.raises(WalletError, match="does not match"):
        load_wallet("c", tmp_path)
    (tmp_path / "c" / "hotkeys" / "default").write_text("{not json")
    with pytest.raises(WalletError, match="unreadable"):
        load_wallet("c", tmp_path)
    create_wallet("d", tmp_path)
    (tmp_path / "d" / "coldkeypub.txt").write_text(public.read_text())
    with pytest.raises(WalletError, match="the coldkey does not match its coldkeypub.txt"):
        load_wallet("d", tmp_path).coldkey   # checked when the coldkey is unlocked


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
    for key in KEY_FILES:
        assert mode(tmp_path / "loose" / key) == 0o600


def test_a_created_wallet_is_the_bittensor_sdks_own_layout(tmp_path):
    """What `subnet wallet create` writes, the SDK (and so btcli) reads as its own wallet."""
    wallet = create_wallet("doc", tmp_path)
    sdk = SdkWallet("doc", "default", str(tmp_path))
    assert sdk.hotkey.ss58_address == wallet.hotkey.address and sdk.coldkeypub.ss58_address == wallet.coldkey_address
    assert sdk.hotkey.crypto_type == bittensor_core.CRYPTO_ED25519 and wallet.hotkey.scheme == ED25519
    assert bytes(sdk.hotkey.sign(b"m")) == wallet.hotkey.sign(b"m")   # ed25519: deterministic, the same key


def test_an_operators_sr25519_wallet_with_an_encrypted_coldkey_loads(tmp_path, monkeypatch):
    """Made by the SDK as btcli makes them: sr25519, coldkey under a password, a named hotkey."""
    monkeypatch.delenv("BT_WALLET_PASSWORD", raising=False)
    sdk = SdkWallet("op", "miner7", str(tmp_path))
    sdk.create_new_coldkey(coldkey_password="correct horse", suppress=True)
    sdk.create_new_hotkey(use_password=False, suppress=True)
    wallet = load_wallet("op", tmp_path, hotkey="miner7")
    assert wallet.hotkey.scheme == SR25519 and wallet.hotkey_name == "miner7"
    assert wallet.coldkey_address == sdk.coldkeypub.ss58_address           # known without the password
    assert verify(wallet.hotkey.public_key, b"m", wallet.hotkey.sign(b"m"), SR25519)
    with pytest.raises(WalletError, match="encrypted: set BT_WALLET_PASSWORD"):
        wallet.coldkey                                                      # no terminal, no password: no hang
    monkeypatch.setenv("BT_WALLET_PASSWORD", "wrong")
    with pytest.raises(WalletError, match=r"key file .*op/coldkey: wrong password"):
        load_wallet("op", tmp_path, hotkey="miner7").coldkey
    monkeypatch.setenv("BT_WALLET_PASSWORD", "correct horse")
    assert load_wallet("op", tmp_path, hotkey="miner7").coldkey.address == wallet.coldkey_address
    assert load_wallet("op", tmp_path, hotkey="miner7", password="correct horse").coldkey.scheme == SR25519
    with pytest.raises(WalletError, match=r"key file .*op/hotkeys/default is missing"):
        load_wallet("op", tmp_path)


def test_create_can_make_btcli_default_keys(tmp_path, monkeypatch):
    monkeypatch.delenv("BT_WALLET_PASSWORD", raising=False)
    wallet = create_wallet("sr", tmp_path, scheme=SR25519, password="pw-123456")
    assert wallet.hotkey.scheme == SR25519 and wallet.coldkey.scheme == SR25519
    assert (tmp_path / "sr" / "coldkey").read_bytes().startswith(b"$NACL")
    with pytest.raises(WalletError, match="unknown key scheme 'ecdsa'"):
        create_wallet("bad", tmp_path, scheme="ecdsa")


def test_a_first_format_tessera_wallet_still_loads(tmp_path):
    keys = {name: Keypair.generate() for name in ("coldkey", "hotkey")}
    (tmp_path / "old").mkdir()
    for name, key in keys.items():
        (tmp_path / "old" / name).write_text(json.dumps({"seed_hex": key.seed.hex(), "public_key_hex": key.public_key.hex(),
                                                         "ss58_address": key.address, "ss58_prefix": 42}))
    wallet = load_wallet("old", tmp_path)
    assert (wallet.hotkey.address, wallet.coldkey.address) == (keys["hotkey"].address, keys["coldkey"].address)
    assert list_wallets(tmp_path) == ["old"]
    bad = json.loads((tmp_path / "old" / "hotkey").read_text())
    (tmp_path / "old" / "hotkey").write_text(json.dumps({**bad, "ss58_address": keys["coldkey"].address}))
    with pytest.raises(WalletError, match="stored address does not match its seed"):
        load_wallet("old", tmp_path)
    create_wallet("old", tmp_path, overwrite=True)   # rewritten in the SDK's layout
    assert not (tmp_path / "old" / "hotkey").exists() and load_wallet("old", tmp_path).hotkey.scheme == ED25519


def test_a_missing_key_file_is_named(tmp_path):
    create_wallet("half", tmp_path)
    (tmp_path / "half" / "hotkeys" / "default").unlink()
    with pytest.raises(WalletError, match=r"key file .*half/hotkeys/default is missing"):
        load_wallet("half", tmp_path)


def test_list_shows_every_hotkey_of_a_wallet(tmp_path, capsys):
    sdk = SdkWallet("ops", "m1", str(tmp_path))
    sdk.create_new_coldkey(use_password=False, suppress=True)
    for hotkey in ("m1", "m2"):
        SdkWallet("ops", hotkey, str(tmp_path)).create_new_hotkey(use_password=False, suppress=True)
    assert list_hotkeys("ops", tmp_path) == ["m1", "m2"]
    args = _parser().parse_args(["wallet", "list", "--wallet-dir", str(tmp_path)])
    assert args.func(args) == 0
    listed = capsys.readouterr().out
    for hotkey in ("m1", "m2"):
        assert f"{load_wallet('ops', tmp_path, hotkey=hotkey).hotkey.address}  ({hotkey}, sr25519)" in listed


def test_the_cli_loads_the_bittensor_sdk_only_when_a_wallet_is_opened():
    """Importing `bittensor` costs ~0.4 s; `subnet chain`, `subnet storage` and the rest never need it."""
    import subprocess
    import sys
    code = ("import sys, subnet.cli, subnet.node.cli; print('bittensor' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"
