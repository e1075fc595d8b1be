"""Wallets on disk: WALLET_DIR/NAME/{coldkey,hotkey}, each a JSON file with the key's
hex seed and SS58 address.

Files are written atomically with mode 0600 inside a 0700 directory. The default
wallet directory is ~/.tessera/wallets, overridden by $TESSERA_WALLET_DIR, overridden
by an explicit ``dir`` argument (``--wallet-dir`` on the command line).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from subnet.files import atomic_write
from subnet.keys import SS58_PREFIX, Keypair

WALLET_DIR_ENV = "TESSERA_WALLET_DIR"
DEFAULT_WALLET_DIR = Path("~/.tessera/wallets")
KEY_NAMES = ("coldkey", "hotkey")
WALLET_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


class WalletError(Exception):
    """A wallet cannot be created or loaded; the message says why."""


class WalletExistsError(WalletError, FileExistsError):
    pass


@dataclass(frozen=True)
class Wallet:
    name: str
    path: Path
    coldkey: Keypair
    hotkey: Keypair


def resolve_wallet_dir(dir: str | os.PathLike | None = None) -> Path:
    """Explicit dir, else $TESSERA_WALLET_DIR, else ~/.tessera/wallets."""
    chosen = dir if dir is not None else os.environ.get(WALLET_DIR_ENV) or DEFAULT_WALLET_DIR
    return Path(chosen).expanduser()


def _check_name(name: str) -> None:
    if not WALLET_NAME.fullmatch(name or ""):
        raise WalletError(
            f"invalid wallet name {name!r}: use letters, digits, '_', '.', '-' (not starting with '.' or '-')"
        )


def _make_private_dir(path: Path, tighten_existing: bool) -> None:
    """Create ``path`` (and parents) as 0700; an existing directory is only tightened
    when it is ours (a wallet's own directory, never a user-given --dir like /tmp)."""
    if not path.exists():
        path.mkdir(mode=0o700, parents=True)
        path.chmod(0o700)  # mkdir's mode is filtered by the umask
    elif tighten_existing:
        path.chmod(0o700)


def _key_document(keypair: Keypair) -> str:
    document = {
        "seed_hex": keypair.seed.hex(),
        "public_key_hex": keypair.public_key.hex(),
        "ss58_address": keypair.address,
        "ss58_prefix": SS58_PREFIX,
    }
    return json.dumps(document, indent=2) + "\n"


def _read_key(path: Path) -> Keypair:
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


def create_wallet(name: str, dir: str | os.PathLike | None = None, overwrite: bool = False) -> Wallet:
    """Create wallet ``name`` with fresh coldkey and hotkey; refuses to replace an
    existing wallet unless ``overwrite``."""
    _check_name(name)
    wallet_path = resolve_wallet_dir(dir) / name
    existing = [key for key in KEY_NAMES if (wallet_path / key).exists()]
    if existing and not overwrite:
        raise WalletExistsError(
            f"wallet {name!r} already exists at {wallet_path} ({', '.join(existing)}); "
            "refusing to overwrite its keys"
        )
    _make_private_dir(wallet_path.parent, tighten_existing=False)
    _make_private_dir(wallet_path, tighten_existing=True)
    keys = {key: Keypair.generate() for key in KEY_NAMES}
    for key, keypair in keys.items():
        atomic_write(wallet_path / key, _key_document(keypair), mode=0o600)  # never half a key
    return Wallet(name=name, path=wallet_path, coldkey=keys["coldkey"], hotkey=keys["hotkey"])


def load_wallet(name: str, dir: str | os.PathLike | None = None) -> Wallet:
    _check_name(name)
    wallet_path = resolve_wallet_dir(dir) / name
    if not wallet_path.is_dir():
        raise WalletError(f"no wallet {name!r} at {wallet_path}")
    return Wallet(
        name=name,
        path=wallet_path,
        coldkey=_read_key(wallet_path / "coldkey"),
        hotkey=_read_key(wallet_path / "hotkey"),
    )


def list_wallets(dir: str | os.PathLike | None = None) -> list[str]:
    """Names of the wallets (directories holding a coldkey file), sorted."""
    root = resolve_wallet_dir(dir)
    if not root.is_dir():
        return []
    return sorted(entry.name for entry in root.iterdir() if (entry / "coldkey").is_file())
