"""`subnet wallet create NAME [--wallet-dir DIR] [--hotkey H] [--scheme S] [--encrypt] [--overwrite]` and
`subnet wallet list [--wallet-dir DIR]`.

The thin shell over subnet/wallet.py. Failures are raised as WalletError; `subnet`'s main prints them
as one line.
"""
from __future__ import annotations

import argparse
import getpass
import os
import sys

from subnet.keys import ED25519, SCHEMES, SS58_PREFIX
from subnet.wallet import (DEFAULT_HOTKEY, DEFAULT_WALLET_DIR, WALLET_DIR_ENV, Wallet, WalletError, create_wallet,
                           list_hotkeys, list_wallets, load_wallet, resolve_wallet_dir)


def _print_wallet(wallet: Wallet) -> None:
    print(f"{wallet.name}  ({wallet.path})")
    print(f"  coldkey  {wallet.coldkey_address}")
    print(f"  hotkey   {wallet.hotkey.address}  ({wallet.hotkey_name}, {wallet.hotkey.scheme})")


def _new_password() -> str:
    """BT_WALLET_PASSWORD (as the SDK reads it), else asked twice on the terminal."""
    password = os.environ.get("BT_WALLET_PASSWORD")
    if password:
        return password
    if not sys.stdin.isatty():
        raise WalletError("--encrypt needs a password: set BT_WALLET_PASSWORD or run in a terminal")
    password = getpass.getpass("Password for the coldkey: ")
    if not password or password != getpass.getpass("Again: "):
        raise WalletError("the passwords are empty or differ; nothing was written")
    return password


def _run_create(args: argparse.Namespace) -> int:
    password = _new_password() if args.encrypt else None
    wallet = create_wallet(args.name, args.wallet_dir, overwrite=args.overwrite, scheme=args.scheme,
                           password=password, hotkey=args.hotkey)
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
            hotkeys = list_hotkeys(name, root) or [DEFAULT_HOTKEY]
            wallets = [load_wallet(name, root, hotkey=hotkey) for hotkey in hotkeys]
        except WalletError as error:  # list the others all the same
            print(f"subnet: error: {error}", file=sys.stderr)
            status = 1
            continue
        _print_wallet(wallets[0])
        for wallet in wallets[1:]:
            print(f"  hotkey   {wallet.hotkey.address}  ({wallet.hotkey_name}, {wallet.hotkey.scheme})")
    return status


def add_wallet_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``wallet create`` and ``wallet list`` on ``subparsers``. Each leaf sets
    ``func``; ``args.func(args)`` runs it and returns an exit code."""
    wallet_parser = subparsers.add_parser("wallet", help="create and list wallets (the Bittensor SDK's layout)")
    commands = wallet_parser.add_subparsers(dest="wallet_command", metavar="{create,list}")
    commands.required = True

    def add_wallet_dir(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--wallet-dir", default=None,
                            help=f"wallet directory (default: ${WALLET_DIR_ENV} or {DEFAULT_WALLET_DIR})")
        parser.add_argument("--dir", dest="wallet_dir", help=argparse.SUPPRESS)  # the old name

    create = commands.add_parser("create", help="create a wallet with a new coldkey and hotkey")
    create.add_argument("name", help="wallet name")
    add_wallet_dir(create)
    create.add_argument("--hotkey", default=DEFAULT_HOTKEY, help=f"hotkey name (default {DEFAULT_HOTKEY})")
    create.add_argument("--scheme", choices=SCHEMES, default=ED25519,
                        help="key scheme (default ed25519: deterministic signatures; btcli's default is sr25519)")
    create.add_argument("--encrypt", action="store_true",
                        help="encrypt the coldkey with a password (BT_WALLET_PASSWORD, else asked twice)")
    create.add_argument("--overwrite", action="store_true", help="replace an existing wallet's keys")
    create.set_defaults(func=_run_create)

    listing = commands.add_parser("list", help="list wallets and their addresses")
    add_wallet_dir(listing)
    listing.set_defaults(func=_run_list)
    return wallet_parser
