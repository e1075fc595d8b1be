"""`subnet storage` as a process: serves the neurons of neurons.yaml, writes their key files,
stops cleanly on SIGTERM without leaving SeaweedFS behind."""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from subnet.neurons import NeuronsError, StorageSettings
from subnet.storage.cli import add_storage_commands, storage_settings
from subnet.storage.client import StorageClient, StorageError
from subnet.storage.commitment import parse_commitment
from subnet.storage.config import load_neuron_storage
from subnet.storage.seaweed import free_ports

RUNNER = """
import argparse, sys
from subnet.storage.cli import add_storage_commands
parser = argparse.ArgumentParser(prog="subnet")
add_storage_commands(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc, no procps needed)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # field 4, after the (comm) field
                found.append(int(entry))
    return found


@pytest.mark.slow
def test_storage_command_serves_and_stops(tmp_path):
    (port,) = free_ports(1)
    # Where to serve comes from the file's storage section; no --dir or --port.
    (tmp_path / "neurons.yaml").write_text(f"storage: {{port: {port}, dir: {tmp_path / 's3'}}}\n"
                                           "neurons:\n  - {name: miner-a, role: miner}\n"
                                           "  - {name: validator-a, role: validator}\n")
    process = subprocess.Popen([sys.executable, "-c", RUNNER, "storage", "--neurons", str(tmp_path / "neurons.yaml"),
                                "--stop-timeout", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "s3" / "storage.json").exists():
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "storage did not come up"
            time.sleep(0.2)
        summary = json.loads((tmp_path / "s3" / "storage.json").read_text())
        assert summary["endpoint"] == f"http://127.0.0.1:{port}"
        assert set(summary["buckets"]) == {"miner-a", "validator-a", "dataset"}
        miner = json.loads((tmp_path / "s3" / "neurons" / "miner-a.json").read_text())
        assert oct(os.stat(tmp_path / "s3" / "neurons" / "miner-a.json").st_mode & 0o777) == "0o600"
        settings = load_neuron_storage(tmp_path / "s3" / "neurons" / "miner-a.json")
        assert settings.commitment() == miner["commitment"] and settings.bucket == miner["bucket"]
        writer = StorageClient(settings.write)
        writer.put(miner["bucket"], "x", b"payload")
        commitment = parse_commitment(miner["commitment"])
        reader = StorageClient(commitment.s3_config())
        assert bytes(reader.get(commitment.bucket, "x", 100)) == b"payload"
        with pytest.raises(StorageError):
            writer.put(summary["buckets"]["validator-a"], "x", b"no")
        (weed_pid,) = _children(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    assert "stopped" in output
    with pytest.raises(ProcessLookupError):
        os.kill(weed_pid, 0)


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="subnet")
    add_storage_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["storage", *argv])


def test_flags_override_the_files_storage_section(tmp_path):
    path = tmp_path / "neurons.yaml"
    path.write_text("storage: {host: 127.0.0.2, port: 9000, dir: s3}\nneurons:\n  - {name: m1, role: miner}\n")
    assert storage_settings(_args("--neurons", str(path))) == (StorageSettings("127.0.0.2", 9000, Path("s3")), ["m1"])
    assert storage_settings(_args("--neurons", str(path), "--port", "9001", "--dir", "x", "--neuron", "m2")) == (
        StorageSettings("127.0.0.2", 9001, Path("x")), ["m1", "m2"])
    assert storage_settings(_args("--neuron", "solo")) == (StorageSettings(), ["solo"])


def test_a_bad_neurons_file_is_one_error_line(tmp_path):
    path = tmp_path / "neurons.yaml"
    path.write_text("neurons:\n  - {name: m1, role: minner}\n")
    with pytest.raises(NeuronsError, match=r"neurons\[0\]\.role"):
        storage_settings(_args("--neurons", str(path)))
    result = subprocess.run([sys.executable, "-m", "subnet.cli", "storage", "--neurons", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""  # a usage error, like a bad flag
    assert result.stderr.splitlines() == [f"subnet: error: {path}: neurons[0].role: must be one of "
                                          "miner, validator, owner, got 'minner'"]
