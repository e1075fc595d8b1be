"""Wallets on disk: WALLET_DIR/NAME/{coldkey,hotkey}, each a JSON file with the key's
hex seed and SS58 address.

Files are written atomically with mode 0600 inside a 0700 directory. The default
wallet directory is ~/.tessera/wallets, overridden by $TESSERA_WALLET_DIR, overridden
by an explicit ``dir`` argument (``--wallet-dir`` on the command line).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
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


# ---------------------------------------------------------------------------
# Command line: `wallet create NAME [--wallet-dir DIR] [--overwrite]`, `wallet list [--wallet-dir DIR]`.
# Failures are raised as WalletError; `subnet`'s main prints them as one line.
# ---------------------------------------------------------------------------


def _print_wallet(wallet: Wallet) -> None:
    print(f"{wallet.name}  ({wallet.path})")
    print(f"  coldkey  {wallet.coldkey.address}")
    print(f"  hotkey   {wallet.hotkey.address}")


def _run_create(args: argparse.Namespace) -> int:
    wallet = create_wallet(args.name, args.wallet_dir, overwrite=args.overwrite)
    print(f"Created wallet; addresses are SS58 with network prefix {SS58_PREFIX}.")
    _print_wallet(wallet)
    return 0


def _run_list(args: argparse.Namespace) -> int:
    root = resolve_wallet_dir(args.wallet_dir)
    names = list_wallets(root)
    if not names:
        print(f"No wallets in {root}.")
        return 0
    print(f"Wallets in {root} (SS58 addresses, network prefix {SS58_PREFIX}):")
    status = 0
    for name in names:
        try:
            _print_wallet(load_wallet(name, root))
        except WalletError as error:  # list the others all the same
            print(f"subnet: error: {error}", file=sys.stderr)
            status = 1
    return status


def add_wallet_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``wallet create`` and ``wallet list`` on ``subparsers``. Each leaf sets
    ``func``; ``args.func(args)`` runs it and returns an exit code."""
    wallet_parser = subparsers.add_parser("wallet", help="create and list wallets (ed25519 keys)")
    commands = wallet_parser.add_subparsers(dest="wallet_command", metavar="{create,list}")
    commands.required = True

    def add_wallet_dir(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--wallet-dir", default=None,
                            help=f"wallet directory (default: ${WALLET_DIR_ENV} or {DEFAULT_WALLET_DIR})")
        parser.add_argument("--dir", dest="wallet_dir", help=argparse.SUPPRESS)  # the old name

    create = commands.add_parser("create", help="create a wallet with a new coldkey and hotkey")
    create.add_argument("name", help="wallet name")
    add_wallet_dir(create)
    create.add_argument("--overwrite", action="store_true", help="replace an existing wallet's keys")
    create.set_defaults(func=_run_create)

    listing = commands.add_parser("list", help="list wallets and their addresses")
    add_wallet_dir(listing)
    listing.set_defaults(func=_run_list)
    return wallet_parser
