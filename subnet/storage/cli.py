"""`subnet storage`: run the embedded S3 server (SeaweedFS) for a local network.

    subnet storage [--dir DIR] [--port P] [--neurons neurons.yaml] [--neuron NAME ...]

Each neuron (from the `neurons:` list of neurons.yaml, entries with a `name`, and/or --neuron)
gets a bucket and a write key for it; one read key reads every bucket; a `dataset` bucket is made
for prepared data. It writes DIR/neurons/NAME.json (0600: endpoint, bucket, write key, read key,
and the chain commitment string of the read access) and DIR/storage.json (endpoint, read key,
buckets), prints them, and serves until SIGINT/SIGTERM, then stops SeaweedFS (SIGTERM, SIGKILL
after --stop-timeout). Data and keys persist in DIR across restarts.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

import yaml

# boto3 (via the storage modules) is imported when the command runs, not when `subnet` starts.

DEFAULT_STORAGE_DIR = Path("data/storage")
DEFAULT_S3_PORT = 8333


def neuron_names_from_yaml(path: Path) -> list[str]:
    """Names in the `neurons:` list of a neurons.yaml (entries are mappings with `name`, or strings)."""
    from subnet.storage.seaweed import SeaweedError

    try:
        document = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SeaweedError(f"{path}: cannot read: {exc}") from None
    entries = (document or {}).get("neurons") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise SeaweedError(f"{path}: expected a `neurons:` list")
    names = []
    for i, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else entry
        if not isinstance(name, str) or not name:
            raise SeaweedError(f"{path}: neurons[{i}] has no `name`")
        names.append(name)
    return names


def write_neuron_files(directory: Path, endpoint: str, layout) -> dict:
    """DIR/neurons/NAME.json for each bucket owner and DIR/storage.json; returns the public summary."""
    from subnet.storage.commitment import BucketCommitment, format_commitment
    from subnet.storage.seaweed import write_private_file

    (directory / "neurons").mkdir(parents=True, exist_ok=True)
    commitment = {}
    for owner in layout.owners:
        commit = format_commitment(BucketCommitment(endpoint, owner.bucket, layout.read.access_key,
                                                    layout.read.secret_key))
        commitment[owner.name] = commit
        write_private_file(directory / "neurons" / f"{owner.name}.json", json.dumps({
            "endpoint": endpoint, "bucket": owner.bucket,
            "access_key": owner.write.access_key, "secret_key": owner.write.secret_key,
            "read_access_key": layout.read.access_key, "read_secret_key": layout.read.secret_key,
            "commitment": commit}, indent=1))
    summary = {"endpoint": endpoint, "read_access_key": layout.read.access_key,
               "read_secret_key": layout.read.secret_key,
               "buckets": {owner.name: owner.bucket for owner in layout.owners}}
    write_private_file(directory / "storage.json", json.dumps(summary, indent=1))
    return summary


def _run_storage(args: argparse.Namespace) -> int:
    from subnet.storage.seaweed import SeaweedError, SeaweedPorts, SeaweedServer, load_or_create_layout

    names = list(args.neuron or [])
    try:
        if args.neurons:
            names = neuron_names_from_yaml(args.neurons) + names
        directory = Path(args.dir)
        layout = load_or_create_layout(directory, names)
        server = SeaweedServer(directory, layout, SeaweedPorts.pick(args.port), stop_timeout=args.stop_timeout)
    except SeaweedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
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
                print(f"error: SeaweedFS exited unexpectedly; see {server.log_path}", file=sys.stderr)
                return 1
        return 0
    except SeaweedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        code = server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if code is not None:
            print(f"SeaweedFS stopped (exit code {code})", flush=True)


def add_storage_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``storage`` on ``subparsers``; ``args.func(args)`` runs it and returns an exit code."""
    parser = subparsers.add_parser("storage", help="run the embedded S3 server (SeaweedFS) with per-neuron buckets")
    parser.add_argument("--dir", type=Path, default=DEFAULT_STORAGE_DIR,
                        help=f"data and keys directory (default: {DEFAULT_STORAGE_DIR})")
    parser.add_argument("--port", type=int, default=DEFAULT_S3_PORT, help=f"S3 port (default: {DEFAULT_S3_PORT})")
    parser.add_argument("--neurons", type=Path, default=None,
                        help="neurons.yaml whose `neurons:` list names the buckets")
    parser.add_argument("--neuron", action="append", metavar="NAME", help="add a neuron (repeatable)")
    parser.add_argument("--stop-timeout", type=float, default=20.0,
                        help="seconds between SIGTERM and SIGKILL when stopping (default: 20)")
    parser.set_defaults(func=_run_storage)
    return parser
