"""`subnet up` as a user runs it: a subprocess on a small neurons.yaml, real storage and chain."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

NETWORK = {
    "chain": {"block_time": 1.0, "balances": {"owner": 100, "val": 1000, "m1": 100, "m2": 100},
              "subnets": [{"netuid": 1, "owner": "owner", "pool_tao": 100, "pool_alpha": 100, "tempo": 10,
                           "burn": 1, "max_uids": 16, "max_validators": 8}]},
    "storage": {"host": "127.0.0.1", "port": 8333, "dir": "ignored"},
    "neurons": [{"name": "val", "role": "validator", "stake": 100},
                {"name": "m1", "role": "miner"}, {"name": "m2", "role": "miner"}],
}


def processes_under(root: Path) -> list[str]:
    """Command lines of live processes that mention the run directory (none may outlive `up`)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(root) in cmdline:
            found.append(f"{pid}: {cmdline[:200]}")
    return found


def up(tmp_path: Path, data: Path, *extra: str) -> subprocess.Popen:
    file = tmp_path / "neurons.yaml"
    file.write_text(yaml.safe_dump(NETWORK))
    return subprocess.Popen([sys.executable, "-m", "subnet.cli", "up", str(file), "--run-dir", str(tmp_path / "run"),
                             "--data", str(data), "--no-dashboard", *extra], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_up_runs_windows_then_stops_everything_and_writes_the_summary(tmp_path, tiny_data_dir):
    proc = up(tmp_path, tiny_data_dir, "--windows", "2")
    out, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, out[-3000:]
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert len(summary["windows"]) >= 2 and all(w["held_out_loss"] > 0 for w in summary["windows"])
    assert set(summary["miners"]) == {"m1", "m2"} and summary["validators"]["val"]["stake"] > 0
    assert (run / "summary.png").stat().st_size > 0
    assert {p.name for p in (run / "logs").iterdir()} >= {"chain.log", "storage.log", "val.log", "m1.log"}
    assert not processes_under(run)
    # After the run, `subnet status` reads the same numbers from the chain's database.
    status = subprocess.run([sys.executable, "-m", "subnet.cli", "status", "--run-dir", str(run)],
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    assert "network stopped" in status.stdout and "m1" in status.stdout and "val" in status.stdout
    missing = subprocess.run([sys.executable, "-m", "subnet.cli", "status", "--run-dir", str(tmp_path / "nowhere")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "subnet up" in missing.stderr and missing.stderr.count("\n") == 1


@pytest.mark.slow
def test_sigterm_stops_every_process(tmp_path, tiny_data_dir):
    proc = up(tmp_path, tiny_data_dir)
    run = tmp_path / "run"
    deadline = time.monotonic() + 300
    while not (run / "state" / "m1" / "metrics.jsonl").exists():   # a miner finished a window
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()[-3000:]
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:]
    assert not processes_under(run)
    assert (run / "summary.json").exists()


def test_a_broken_neurons_file_starts_nothing(tmp_path, tiny_data_dir):
    bad = tmp_path / "neurons.yaml"
    bad.write_text(yaml.safe_dump({**NETWORK, "neurons": [{"name": "val", "role": "validator", "stake": "lots"}]}))
    proc = subprocess.run([sys.executable, "-m", "subnet.cli", "up", str(bad), "--run-dir", str(tmp_path / "run"),
                           "--data", str(tiny_data_dir), "--no-dashboard"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("subnet: error:") and "stake" in lines[0], proc.stderr
    assert not (tmp_path / "run" / "chain.db").exists()


def _pids_of(root: Path, needle: str) -> list[int]:
    return [int(line.split(":", 1)[0]) for line in processes_under(root) if needle in line]


def _scrape(url: str) -> str:
    import urllib.request
    return urllib.request.urlopen(url, timeout=5).read().decode()


def _wait(what: str, check, proc: subprocess.Popen, timeout: float = 180.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert proc.poll() is None, f"subnet up exited while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.mark.slow
def test_a_killed_process_is_started_again_and_counted(tmp_path, tiny_data_dir):
    """SIGKILL a miner and the chain under `subnet up`: each is started again (the chain on its port,
    from its database), the restart is a metric and in the summary, and the miner trains again."""
    import urllib.request

    proc = up(tmp_path, tiny_data_dir)
    run = tmp_path / "run"
    try:
        metrics_rows = run / "state" / "m1" / "metrics.jsonl"
        _wait("m1's first window", metrics_rows.exists, proc, 300)
        info = json.loads((run / "run.json").read_text())
        supervisor_url, chain_url = info["metrics"]["supervisor"], info["chain_url"]
        assert 'tessera_process_up{process="m1"} 1.0' in _scrape(supervisor_url)
        (miner,) = _pids_of(run, "--name m1 ")
        (chain,) = _pids_of(run, "subnet.cli chain")
        head_before = json.loads(urllib.request.urlopen(chain_url + "/head", timeout=5).read())["block"]
        windows_before = len(metrics_rows.read_text().splitlines())
        os.kill(miner, signal.SIGKILL)
        os.kill(chain, signal.SIGKILL)

        def restarted():
            text = _scrape(supervisor_url)
            return ('tessera_process_restarts_total{process="m1"} 1.0' in text
                    and 'tessera_process_restarts_total{process="chain"} 1.0' in text)
        _wait("both restarts counted", restarted, proc, 60)
        new_miner = _wait("a new m1 process", lambda: [p for p in _pids_of(run, "--name m1 ") if p != miner], proc)
        assert new_miner and chain not in _pids_of(run, "subnet.cli chain")

        def chain_moved_on():
            try:
                return json.loads(urllib.request.urlopen(chain_url + "/head", timeout=2).read())["block"] > head_before
            except OSError:
                return False
        _wait("the restarted chain, on the same port, past the old head", chain_moved_on, proc, 60)
        _wait("a window trained by the restarted miner",
              lambda: len(metrics_rows.read_text().splitlines()) > windows_before, proc, 240)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:]
    assert "m1 exited with signal 9; starting it again in 1 s" in out and "chain exited with signal 9" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["restarts"]["m1"] == 1 and summary["restarts"]["chain"] == 1 and summary["restarts"]["val"] == 0
    assert not processes_under(run)
