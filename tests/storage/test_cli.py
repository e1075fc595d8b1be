"""`subnet storage` as a process: serves the neurons of neurons.yaml, writes their key files,
stops cleanly on SIGTERM without leaving SeaweedFS behind."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

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
    (tmp_path / "neurons.yaml").write_text("neurons:\n  - name: miner-a\n  - name: validator-a\n")
    (port,) = free_ports(1)
    process = subprocess.Popen([sys.executable, "-c", RUNNER, "storage", "--dir", str(tmp_path / "s3"),
                                "--port", str(port), "--neurons", str(tmp_path / "neurons.yaml"),
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
