"""The command lines as processes: an expected failure is one line `subnet: error: ...` (or
`amm: error: ...`) on stderr with a non-zero exit code, never a traceback; output into a pipe whose
reader has gone ends quietly; the shared flags keep their old spellings as aliases."""
from __future__ import annotations

import importlib
import os
import random
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from subnet.cli import PIPE_CLOSED, RUNTIME_ERRORS, USAGE_ERRORS, run_command
from subnet.wallet import create_wallet

TIMEOUT = 120


def run(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, TESSERA_WALLET_DIR=str(cwd / "default-wallets"), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=TIMEOUT)


def subnet(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run("subnet.cli", *args, cwd=cwd)


def amm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run("amm.cli", *args, cwd=cwd)


def assert_one_error(result: subprocess.CompletedProcess, code: int, *words: str, prog: str = "subnet") -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert result.returncode == code, result.stderr
    return lines[0]


# ---- wallets -------------------------------------------------------------------------------------


def test_wallet_errors(tmp_path):
    wallets = tmp_path / "w"
    assert_one_error(subnet("wallet", "create", "bad/name", "--wallet-dir", str(wallets), cwd=tmp_path),
                     1, "invalid wallet name", "'bad/name'")
    created = subnet("wallet", "create", "alice", "--wallet-dir", str(wallets), cwd=tmp_path)
    assert created.returncode == 0 and created.stderr == "" and (wallets / "alice" / "coldkey").is_file()
    # the old --dir still names the same directory
    assert_one_error(subnet("wallet", "create", "alice", "--dir", str(wallets), cwd=tmp_path),
                     1, "'alice' already exists")

    create_wallet("bob", wallets)
    (wallets / "alice" / "hotkeys" / "default").write_text("{not json")
    listed = subnet("wallet", "list", "--wallet-dir", str(wallets), cwd=tmp_path)
    assert_one_error(listed, 1, str(wallets / "alice" / "hotkeys" / "default"), "unreadable")
    assert "bob" in listed.stdout and "alice" not in listed.stdout  # the good wallet is still listed


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    # Far more output than the pipe and stdio buffers hold, so the process is still writing when
    # the reader goes (like `subnet wallet list | head -n 1`).
    wallets = tmp_path / "w"
    create_wallet("w0000", wallets)
    for i in range(1, 800):
        shutil.copytree(wallets / "w0000", wallets / f"w{i:04d}")
    process = subprocess.Popen([sys.executable, "-m", "subnet.cli", "wallet", "list", "--wallet-dir", str(wallets)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    first = process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(TIMEOUT) == PIPE_CLOSED
    assert first.startswith(b"Wallets in ") and stderr == b""


def test_amm_output_into_a_closed_pipe_ends_quietly(tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)  # no reader at all: the first write already fails
    try:
        result = subprocess.run([sys.executable, "-m", "amm.cli", "scenarios"], stdout=write_end,
                                stderr=subprocess.PIPE, cwd=tmp_path, timeout=TIMEOUT)
    finally:
        os.close(write_end)
    assert result.returncode == PIPE_CLOSED and result.stderr == b""


# ---- data and the training simulation -----------------------------------------------------------


def test_data_and_preset_errors(tmp_path):
    assert_one_error(subnet("data", "prepare", "--corpus", str(tmp_path / "nowhere"), "--out", str(tmp_path / "d"),
                            cwd=tmp_path), 1, "no such corpus")
    for command in (["data", "prepare", "--out", str(tmp_path / "d")], ["train-sim"]):
        assert_one_error(subnet(*command, "--preset", "nosuch", cwd=tmp_path), 2, "nosuch", "no such preset")
    assert_one_error(subnet("train-sim", "--data", str(tmp_path / "missing"), cwd=tmp_path),
                     1, str(tmp_path / "missing" / "manifest.json"))
    assert not (tmp_path / "data").exists()  # nothing prepared behind the user's back


def test_data_prepare_and_train_sim_default_to_the_same_preset(tmp_path):
    from subnet.cli import DEFAULT_PRESET, build_parser

    parser = build_parser()
    assert parser.parse_args(["data", "prepare", "--out", "x"]).preset == DEFAULT_PRESET
    assert parser.parse_args(["train-sim"]).preset == DEFAULT_PRESET


def _corpus(path: Path) -> Path:
    words = ["".join(random.Random(i).choices("abcdefghijklmnopqrstuvwxyz", k=random.Random(-i).randint(2, 9)))
             for i in range(3000)]
    rng = random.Random(0)
    path.write_text("\n".join(" ".join(rng.choices(words, k=12)) for _ in range(3000)))
    return path


def test_train_sim_refuses_a_dataset_of_a_bigger_vocabulary_and_unknown_runs(tmp_path):
    from subnet.data import prepare_dataset

    corpus = _corpus(tmp_path / "corpus.txt")
    big = prepare_dataset(tmp_path / "big", corpus=corpus, vocab_size=2048)
    assert big.vocab_size > 1024  # the tiny preset's
    assert_one_error(subnet("train-sim", "--data", str(tmp_path / "big"), cwd=tmp_path),
                     1, f"vocabulary {big.vocab_size}", "--preset tiny")
    prepare_dataset(tmp_path / "small", corpus=corpus, vocab_size=300)
    assert_one_error(subnet("train-sim", "--data", str(tmp_path / "small"), "--runs", "diloco,nosuch",
                            cwd=tmp_path), 2, "--runs", "nosuch")


def test_a_usage_error_is_one_line(tmp_path):
    assert_one_error(subnet("train-sim", "--miners", "0", cwd=tmp_path), 2, "--miners", "must be >= 1",
                     "subnet train-sim --help")
    assert_one_error(subnet("wallet", cwd=tmp_path), 2, "required")
    assert_one_error(subnet("chain", "--block-time", "-1", cwd=tmp_path), 2, "--block-time")
    assert_one_error(amm("simulate", "pump-and-dump", "--blocks", "0", cwd=tmp_path), 2, "--blocks", prog="amm")


# ---- chain and storage --------------------------------------------------------------------------


def test_chain_errors(tmp_path):
    db = tmp_path / "chain.db"
    for flag in ("--neurons", "--genesis"):  # --genesis: the old name
        assert_one_error(subnet("chain", flag, str(tmp_path / "nowhere.yaml"), "--db", str(db), cwd=tmp_path),
                         2, str(tmp_path / "nowhere.yaml"))
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = subnet("chain", "--port", str(port), "--db", str(db), cwd=tmp_path)
    assert_one_error(result, 1, f"cannot listen on 127.0.0.1:{port}", "in use")
    assert result.stdout == "" and not db.exists()  # no chain made for a server that never ran


def test_storage_errors(tmp_path):
    assert_one_error(subnet("storage", "--dir", str(tmp_path / "s3"), "--neuron", "bad name!", cwd=tmp_path),
                     1, "invalid neuron name")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = subnet("storage", "--dir", str(tmp_path / "s3"), "--port", str(port), "--neuron", "m1",
                        cwd=tmp_path)
    assert_one_error(result, 1, f"cannot listen on 127.0.0.1:{port}", "in use")


# ---- amm ----------------------------------------------------------------------------------------


def test_amm_errors(tmp_path):
    assert_one_error(amm("simulate", "nosuch", cwd=tmp_path), 2, "nosuch", "no such file", prog="amm")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsubnets: [{name: a, tao: 1, alpha: 1,\n")
    assert_one_error(amm("simulate", str(bad), cwd=tmp_path), 2, "not valid YAML", prog="amm")
    out = tmp_path / "no-such-dir" / "r.json"
    assert_one_error(amm("simulate", "pump-and-dump", "--blocks", "20", "--quiet", "--json", str(out), cwd=tmp_path),
                     1, str(out), prog="amm")


# ---- the one place that decides what is expected -------------------------------------------------


def test_every_listed_error_class_exists():
    for module, name in USAGE_ERRORS + RUNTIME_ERRORS:
        assert issubclass(getattr(importlib.import_module(module), name), Exception), (module, name)


def _failing(error: BaseException):
    def command(args):
        raise error
    return command


@pytest.mark.parametrize("module, name, args, code", [
    ("subnet.chain.client", "ChainUnavailable", ("chain at http://127.0.0.1:9 unreachable after 5 tries",), 1),
    ("subnet.chain.client", "ChainCallError", ("bad_nonce", "stale\nnonce", 400), 1),
    ("subnet.storage.client", "StorageError", ("unavailable", "no endpoint"), 1),
    ("subnet.errors", "InputRejected", ("bad_signature", "not signed"), 1),
    ("subnet.config", "ConfigError", ("tiny.yaml: train.lr: must be > 0",), 2),
])
def test_expected_errors_are_one_line(module, name, args, code, capsys):
    error = getattr(importlib.import_module(module), name)(*args)
    assert run_command("subnet", _failing(error), None) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("subnet: error: ") and "Traceback" not in err
    assert " ".join(str(error).split()) in err


@pytest.mark.parametrize("error", [KeyError("k"), RuntimeError("a bug"), ValueError("not one of ours")])
def test_a_bug_keeps_its_traceback(error):
    with pytest.raises(type(error)):
        run_command("subnet", _failing(error), None)
