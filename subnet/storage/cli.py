"""`subnet storage`: run the embedded S3 server (SeaweedFS) for a local network.

    subnet storage [--neurons neurons.yaml] [--dir DIR] [--host H] [--port P] [--neuron NAME ...]

Each neuron (the `neurons:` list of neurons.yaml, and/or --neuron) gets a bucket and a write key for
it; one read key reads every bucket; a `dataset` bucket is made for prepared data. The file's
`storage:` section gives host, port and dir; a flag overrides it. It writes DIR/neurons/NAME.json
(0600, storage/config.py: endpoint, bucket, write key, read key, and the chain commitment string of
the read access) and DIR/storage.json (endpoint, read key, buckets), prints them, and serves until
SIGINT/SIGTERM, then stops SeaweedFS (SIGTERM, SIGKILL after --stop-timeout). Data and keys persist
in DIR across restarts.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import threading
from pathlib import Path

from subnet.files import atomic_write
from subnet.neurons import StorageSettings, load_network

# boto3 (via the storage server modules) is imported when the command runs, not when `subnet` starts.
# Failures are raised (NeuronsError, SeaweedError, OSError); `subnet`'s main prints them as one line.


def write_neuron_files(directory: Path, endpoint: str, layout) -> dict:
    """DIR/neurons/NAME.json for each bucket owner and DIR/storage.json; returns the public summary."""
    from subnet.storage.config import neuron_storage, write_neuron_storage

    (directory / "neurons").mkdir(parents=True, exist_ok=True)
    read_key = (layout.read.access_key, layout.read.secret_key)
    for owner in layout.owners:
        write_neuron_storage(directory / "neurons" / f"{owner.name}.json",
                             neuron_storage(endpoint, owner.bucket, (owner.write.access_key, owner.write.secret_key),
                                            read_key))
    summary = {"endpoint": endpoint, "read_access_key": layout.read.access_key,
               "read_secret_key": layout.read.secret_key,
               "buckets": {owner.name: owner.bucket for owner in layout.owners}}
    atomic_write(directory / "storage.json", json.dumps(summary, indent=1), mode=0o600)
    return summary


def storage_settings(args: argparse.Namespace) -> tuple[StorageSettings, list[str]]:
    """Host, port and dir (flag, else the file's `storage:` section, else the defaults) and the
    neuron names (the file's, then --neuron)."""
    settings, names = StorageSettings(), []
    if args.neurons:
        network = load_network(args.neurons, with_chain=False)  # storage needs no wallets
        settings, names = network.storage, network.names
    settings = StorageSettings(host=settings.host if args.host is None else args.host,
                               port=settings.port if args.port is None else args.port,
                               dir=settings.dir if args.dir is None else args.dir)
    return settings, names + list(args.neuron or [])


def _run_storage(args: argparse.Namespace) -> int:
    from subnet.storage.seaweed import SeaweedError, SeaweedServer, load_or_create_layout

    settings, names = storage_settings(args)
    directory = settings.dir
    layout = load_or_create_layout(directory, names)
    check_port_free(settings.host, settings.port)
    server = SeaweedServer(directory, layout, host=settings.host, stop_timeout=args.stop_timeout,
                           s3_port=settings.port)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"starting SeaweedFS in {directory} (log: {server.log_path}) ...", flush=True)
        server.start()
        summary = write_neuron_files(directory, server.endpoint, layout)
        print(f"S3 endpoint  {server.endpoint}")
        print(f"read key     {layout.read.access_key} (secret in {directory / 'storage.json'})")
        for owner in layout.owners:
            print(f"  {owner.name:<24} bucket {owner.bucket:<32} write key {owner.write.access_key}  "
                  f"-> {directory / 'neurons' / (owner.name + '.json')}")
        print(f"serving {len(summary['buckets'])} buckets; Ctrl-C or SIGTERM stops", flush=True)
        while not stop.wait(0.5):
            if server.process is None or server.process.poll() is not None:
                raise SeaweedError(f"SeaweedFS exited unexpectedly; see {server.log_path}")
        return 0
    finally:
        code = server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if code is not None:
            print(f"SeaweedFS stopped (exit code {code})", flush=True)


def check_port_free(host: str, port: int) -> None:
    """Refuse a busy S3 port up front: SeaweedFS would only fail later, with a page of its log."""
    from subnet.storage.seaweed import SeaweedError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        socket.create_server((host, port), family=family).close()
    except OSError as exc:
        raise SeaweedError(f"cannot listen on {host}:{port}: {os.strerror(exc.errno) if exc.errno else exc}; "
                           "is another `subnet storage` running? (--port picks another)") from None


def add_storage_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``storage`` on ``subparsers``; ``args.func(args)`` runs it and returns an exit code."""
    parser = subparsers.add_parser("storage", help="run the embedded S3 server (SeaweedFS) with per-neuron buckets")
    defaults = StorageSettings()
    parser.add_argument("--neurons", type=Path, default=None,
                        help="neurons.yaml: its `neurons:` list names the buckets, its `storage:` section "
                             "gives host, port and dir")
    parser.add_argument("--dir", type=Path, default=None,
                        help=f"data and keys directory (default: the file's, else {defaults.dir})")
    parser.add_argument("--host", default=None, help=f"address to bind and serve (default: the file's, "
                                                     f"else {defaults.host})")
    parser.add_argument("--port", type=int, default=None,
                        help=f"S3 port (default: the file's, else {defaults.port})")
    parser.add_argument("--neuron", action="append", metavar="NAME", help="add a neuron (repeatable)")
    parser.add_argument("--stop-timeout", type=float, default=20.0,
                        help="seconds between SIGTERM and SIGKILL when stopping (default: 20)")
    parser.set_defaults(func=_run_storage)
    return parser
