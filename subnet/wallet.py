"""Wallets on disk, in the Bittensor SDK's keyfile layout (the one `btcli` reads and writes):

    DIR/NAME/coldkey                  the coldkey (a JSON keyfile, NaCl-encrypted when it has a password)
    DIR/NAME/coldkeypub.txt           its public half: the address, read without unlocking anything
    DIR/NAME/hotkeys/HOTKEY           a hotkey (named "default" unless told otherwise)
    DIR/NAME/hotkeys/HOTKEYpub.txt

An operator's existing wallets (~/.bittensor/wallets: sr25519 or ed25519, encrypted coldkeys) load as
they are with `--wallet-dir ~/.bittensor/wallets`. The coldkey is unlocked only when a call needs it
(registration, staking), with its password from `BT_WALLET_PASSWORD`, `BT_WALLET_PASSWORD_FILE`, the
SDK's per-key variable, or a prompt on a terminal; a process without a terminal never waits for one.

`subnet wallet create` writes the same layout through the SDK, with ed25519 keys and no password by
default: dev wallets hold nothing of value, and ed25519 signs deterministically, so a re-signed retry
is byte-identical and an object's storage timestamp never moves (sr25519 signatures are randomised).
`--scheme sr25519` and `--password` make btcli-default keys. Wallets of Tessera's first format
(NAME/coldkey and NAME/hotkey, JSON holding a hex seed) still load, read-only.

The default wallet directory is ~/.tessera/wallets, overridden by $TESSERA_WALLET_DIR, overridden by
an explicit ``dir`` argument (``--wallet-dir`` on the command line).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import bittensor_core

from subnet.keys import ED25519, SCHEMES, SR25519, CoreKeypair, Keypair, Signer

if TYPE_CHECKING:
    from bittensor.wallet import Wallet as SdkWallet

WALLET_DIR_ENV = "TESSERA_WALLET_DIR"
DEFAULT_WALLET_DIR = Path("~/.tessera/wallets")
BITTENSOR_WALLET_DIR = Path("~/.bittensor/wallets")
DEFAULT_HOTKEY = "default"
WALLET_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_CRYPTO = {ED25519: bittensor_core.CRYPTO_ED25519, SR25519: bittensor_core.CRYPTO_SR25519}


class WalletError(Exception):
    """A wallet cannot be created or loaded; the message says why."""


class WalletExistsError(WalletError, FileExistsError):
    pass


@dataclass(eq=False)
class Wallet:
    """A coldkey (its address always; the key itself once unlocked) and one hotkey. Two wallets are
    equal when they hold the same keys under the same name and place."""

    name: str
    path: Path
    hotkey: Signer
    coldkey_address: str
    hotkey_name: str = DEFAULT_HOTKEY
    _unlock: Callable[[], Signer] | None = field(default=None, repr=False)
    _coldkey: Signer | None = field(default=None, repr=False)

    @classmethod
    def from_keys(cls, name: str, path: Path, coldkey: Signer, hotkey: Signer) -> Wallet:
        """A wallet of keys already in hand (nothing on disk to unlock)."""
        return cls(name=name, path=Path(path), hotkey=hotkey, coldkey_address=coldkey.address, _coldkey=coldkey)

    @property
    def coldkey(self) -> Signer:
        """The coldkey, unlocked on first use (a password may be asked for)."""
        if self._coldkey is None:
            key = self._unlock()
            if key.address != self.coldkey_address:
                raise WalletError(f"wallet {self.name!r}: the coldkey does not match its coldkeypub.txt")
            self._coldkey = key
        return self._coldkey

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Wallet):
            return NotImplemented
        return (self.name, self.path, self.hotkey_name, self.hotkey.address, self.coldkey_address) == \
            (other.name, other.path, other.hotkey_name, other.hotkey.address, other.coldkey_address)


def resolve_wallet_dir(dir: str | os.PathLike | None = None) -> Path:
    """Explicit dir, else $TESSERA_WALLET_DIR, else ~/.tessera/wallets."""
    chosen = dir if dir is not None else os.environ.get(WALLET_DIR_ENV) or DEFAULT_WALLET_DIR
    return Path(chosen).expanduser()


def _check_name(name: str, what: str = "wallet") -> None:
    if not WALLET_NAME.fullmatch(name or ""):
        raise WalletError(
            f"invalid {what} name {name!r}: use letters, digits, '_', '.', '-' (not starting with '.' or '-')"
        )


def _make_private_dir(path: Path, tighten_existing: bool) -> None:
    """Create ``path`` (and parents) as 0700; an existing directory is only tightened
    when it is ours (a wallet's own directory, never a user-given --dir like /tmp)."""
    if not path.exists():
        path.mkdir(mode=0o700, parents=True)
        path.chmod(0o700)  # mkdir's mode is filtered by the umask
    elif tighten_existing:
        path.chmod(0o700)


def _keyfile_error(path: str, error: Exception) -> WalletError:
    if isinstance(error, FileNotFoundError):
        return WalletError(f"key file {path} is missing")
    if isinstance(error, bittensor_core.WrongPasswordError):
        return WalletError(f"key file {path}: wrong password")
    return WalletError(f"key file {path} is unreadable: {error}")


def _read_keyfile(keyfile, password: str | None = None) -> CoreKeypair:
    """A keyfile of the SDK's layout, decrypted with `password` when it is encrypted."""
    try:
        return CoreKeypair(keyfile.get_keypair(password))
    except (OSError, ValueError, TypeError, bittensor_core.KeyfileError) as error:
        raise _keyfile_error(keyfile.path, error) from None


def _public_address(keyfile) -> str:
    try:
        return str(keyfile.get_keypair().ss58_address)
    except (OSError, ValueError, TypeError, bittensor_core.KeyfileError) as error:
        raise _keyfile_error(keyfile.path, error) from None


def _sdk_wallet(name: str, hotkey: str, root: Path) -> SdkWallet:
    """The SDK's view of a wallet directory. The SDK is imported here, not at module load: importing
    `bittensor` takes ~0.4 s, and every `subnet` command loads this module."""
    from bittensor.wallet import Wallet as SdkWallet

    return SdkWallet(name, hotkey, str(root))


def _coldkey_unlocker(sdk: SdkWallet, password: str | None) -> Callable[[], Signer]:
    def unlock() -> Signer:
        keyfile = sdk.coldkey_file
        secret = None
        if keyfile.is_encrypted():
            try:
                from bittensor.wallets import resolve_wallet_password
                secret = resolve_wallet_password(sdk, password=password)
            except ValueError as error:   # an unreadable BT_WALLET_PASSWORD_FILE
                raise WalletError(f"wallet {sdk.name!r}: {error}") from None
            if secret is None and not sys.stdin.isatty():
                raise WalletError(f"the coldkey of wallet {sdk.name!r} is encrypted: set BT_WALLET_PASSWORD "
                                  "(or BT_WALLET_PASSWORD_FILE), or run in a terminal to be asked")
        return _read_keyfile(keyfile, secret)
    return unlock


def _load_sdk_wallet(name: str, root: Path, hotkey: str, password: str | None) -> Wallet:
    sdk = _sdk_wallet(name, hotkey, root)
    hotkey_key = _read_keyfile(sdk.hotkey_file)
    if Path(sdk.hotkeypub_file.path).is_file() and _public_address(sdk.hotkeypub_file) != hotkey_key.address:
        raise WalletError(f"key file {sdk.hotkey_file.path}: its address does not match {sdk.hotkeypub_file.path}")
    if Path(sdk.coldkeypub_file.path).is_file():
        coldkey_address = _public_address(sdk.coldkeypub_file)
        unlock = _coldkey_unlocker(sdk, password)
        return Wallet(name=name, path=root / name, hotkey=hotkey_key, coldkey_address=coldkey_address,
                      hotkey_name=hotkey, _unlock=unlock)
    coldkey = _coldkey_unlocker(sdk, password)()   # no public half: the address needs the key itself
    return Wallet(name=name, path=root / name, hotkey=hotkey_key, coldkey_address=coldkey.address,
                  hotkey_name=hotkey, _coldkey=coldkey)


def _read_legacy_key(path: Path) -> Keypair:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        keypair = Keypair.from_seed_hex(document["seed_hex"])
    except FileNotFoundError:
        raise WalletError(f"key file {path} is missing") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise WalletError(f"key file {path} is unreadable: {error}") from None
    if document.get("ss58_address") != keypair.address:
        raise WalletError(f"key file {path}: stored address does not match its seed")
    return keypair


def _is_legacy(wallet_path: Path) -> bool:
    return (wallet_path / "hotkey").is_file() and not (wallet_path / "hotkeys").is_dir()


def create_wallet(name: str, dir: str | os.PathLike | None = None, overwrite: bool = False, *,
                  scheme: str = ED25519, password: str | None = None, hotkey: str = DEFAULT_HOTKEY) -> Wallet:
    """Create wallet ``name`` with a fresh coldkey and hotkey in the SDK's layout; refuses to replace
    an existing wallet unless ``overwrite``. ``password`` encrypts the coldkey (as btcli does)."""
    _check_name(name)
    _check_name(hotkey, "hotkey")
    if scheme not in SCHEMES:
        raise WalletError(f"unknown key scheme {scheme!r}: use {' or '.join(SCHEMES)}")
    root = resolve_wallet_dir(dir)
    wallet_path = root / name
    existing = [str(p.relative_to(wallet_path)) for p in
                (wallet_path / "coldkey", wallet_path / "hotkey", wallet_path / "hotkeys" / hotkey) if p.exists()]
    if existing and not overwrite:
        raise WalletExistsError(
            f"wallet {name!r} already exists at {wallet_path} ({', '.join(existing)}); refusing to overwrite its keys"
        )
    _make_private_dir(root, tighten_existing=False)
    _make_private_dir(wallet_path, tighten_existing=True)
    (wallet_path / "hotkey").unlink(missing_ok=True)   # an overwritten first-format wallet
    sdk = _sdk_wallet(name, hotkey, root)
    try:
        sdk.create_new_coldkey(use_password=password is not None, coldkey_password=password, overwrite=True,
                               suppress=True, crypto_type=_CRYPTO[scheme])
        sdk.create_new_hotkey(use_password=False, overwrite=True, suppress=True, crypto_type=_CRYPTO[scheme])
    except (OSError, ValueError, bittensor_core.KeyfileError) as error:
        raise WalletError(f"cannot write wallet {name!r} at {wallet_path}: {error}") from None
    _make_private_dir(wallet_path / "hotkeys", tighten_existing=True)
    return load_wallet(name, root, hotkey=hotkey, password=password)


def load_wallet(name: str, dir: str | os.PathLike | None = None, *, hotkey: str = DEFAULT_HOTKEY,
                password: str | None = None) -> Wallet:
    """The wallet ``name`` with hotkey ``hotkey``; its coldkey is unlocked when first used."""
    _check_name(name)
    _check_name(hotkey, "hotkey")
    root = resolve_wallet_dir(dir)
    wallet_path = root / name
    if not wallet_path.is_dir():
        raise WalletError(f"no wallet {name!r} at {wallet_path}")
    if _is_legacy(wallet_path):
        return Wallet.from_keys(name, wallet_path, _read_legacy_key(wallet_path / "coldkey"),
                                _read_legacy_key(wallet_path / "hotkey"))
    return _load_sdk_wallet(name, root, hotkey, password)


def list_wallets(dir: str | os.PathLike | None = None) -> list[str]:
    """Names of the wallets (directories holding a coldkey or its public half), sorted."""
    root = resolve_wallet_dir(dir)
    if not root.is_dir():
        return []
    return sorted(entry.name for entry in root.iterdir()
                  if (entry / "coldkey").is_file() or (entry / "coldkeypub.txt").is_file())


def list_hotkeys(name: str, dir: str | os.PathLike | None = None) -> list[str]:
    """Names of a wallet's hotkeys, sorted ("default" for a wallet of the first format)."""
    _check_name(name)
    wallet_path = resolve_wallet_dir(dir) / name
    if _is_legacy(wallet_path):
        return [DEFAULT_HOTKEY]
    folder = wallet_path / "hotkeys"
    if not folder.is_dir():
        return []
    return sorted(entry.name for entry in folder.iterdir()
                  if entry.is_file() and not entry.name.endswith(("pub.txt", ".tmp")))
