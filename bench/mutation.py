"""Mutation testing of the trust boundary with mutmut: how many deliberate bugs in the decoders and
verifiers the tests catch (printed, never asserted; not in CI: hours for every module on 2 cores).

    python bench/mutation.py [--modules PATH,...] [--max-children 2] [--json OUT]

Needs the `mutation` extra: `.venv/bin/pip install -e '.[mutation]'`. Works in a scratch copy of the
tracked files (mutmut rewrites the sources it mutates), runs `mutmut run` over each module with the
tests that cover it, and reads mutmut's per-module results. A mutant is killed when its tests fail
or time out (mutmut's timeout is an infinite loop the tests stopped), survived when they pass.
Equivalent mutants (same behaviour, e.g. a changed error message's wording) are listed in
EQUIVALENT after review and left out of the kill rate. `--json` writes exactly:
  {"modules": {PATH: {"mutants", "killed", "survived", "equivalent"}}, "kill_rate"}
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROG = "mutation.py"

# The trust boundary: each module with the tests that exercise it.
MODULES = {
    "subnet/compression/index_code.py": ["tests/test_codec.py"],
    "subnet/compression/codec.py": ["tests/test_codec.py", "tests/test_wire.py"],
    "subnet/wire/signing.py": ["tests/test_wire.py"],
    "subnet/wire/gradient.py": ["tests/test_wire.py"],
    "subnet/wire/aggregate.py": ["tests/test_wire.py"],
    "subnet/chain/envelope.py": ["tests/chain/test_envelope.py", "tests/chain/test_refusals.py"],
    "subnet/chain/calls.py": ["tests/chain/test_refusals.py", "tests/chain/test_conservation.py"],
    "subnet/storage/commitment.py": ["tests/storage/test_commitment.py"],
    "subnet/storage/checkpoint.py": ["tests/storage/test_checkpoint.py"],
    "subnet/wallet.py": ["tests/test_wallet.py"],
}
# Mutant name (as `mutmut results` prints it) -> why it is equivalent. Filled in after review.
EQUIVALENT: dict[str, str] = {}
KILLED_CODES = {1, 3}            # tests failed (1), or mutmut's own test-failure code
TIMEOUT_CODES = {-24, 24, 36}    # SIGXCPU / timeout: the tests caught a mutant that hangs
SURVIVED_CODES = {0}


def scratch_copy(modules: list[str], dest: Path) -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    tests = sorted({t for m in modules for t in MODULES.get(m, [])})
    with open(dest / "pyproject.toml", "a") as handle:
        handle.write("\n[tool.mutmut]\n"
                     f"source_paths = {json.dumps(modules)}\n"
                     f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
                     'also_copy = ["subnet", "miner", "validator", "amm", "tests", "hparams", "neurons.yaml"]\n')


def module_results(workdir: Path, module: str) -> tuple[dict, list[str]]:
    meta_path = workdir / "mutants" / (module + ".meta")
    codes = json.loads(meta_path.read_text())["exit_code_by_key"] if meta_path.is_file() else {}
    killed = survived = equivalent = 0
    survivors = []
    for name, code in codes.items():
        if name in EQUIVALENT:
            equivalent += 1
        elif code in KILLED_CODES or code in TIMEOUT_CODES:
            killed += 1
        elif code in SURVIVED_CODES:
            survived += 1
            survivors.append(name)
    # Not run (None) or skipped codes count as mutants but neither killed nor survived: the figure says so.
    return {"mutants": len(codes), "killed": killed, "survived": survived, "equivalent": equivalent}, survivors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", default=",".join(MODULES),
                        help="comma-separated module paths (default: the whole trust boundary)")
    parser.add_argument("--max-children", type=int, default=2, help="parallel test processes (default 2)")
    parser.add_argument("--keep", type=Path, help="keep the scratch copy here (to `mutmut show` survivors)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    modules = [m.strip() for m in args.modules.split(",") if m.strip()]
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        parser.error(f"--modules: not a trust-boundary module: {', '.join(unknown)} (known: {', '.join(MODULES)})")
    mutmut = Path(sys.executable).with_name("mutmut")
    if not mutmut.is_file():
        print(f"{PROG}: error: mutmut is not installed; run: {sys.executable} -m pip install -e '.[mutation]'",
              file=sys.stderr)
        return 1
    workdir = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="mutation-"))
    if args.keep and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        scratch_copy(modules, workdir)
        started = time.monotonic()
        print(f"mutating {len(modules)} module(s) in {workdir} (log {workdir / 'mutmut.log'})", flush=True)
        with open(workdir / "mutmut.log", "w") as log:
            proc = subprocess.run([str(mutmut), "run", "--max-children", str(args.max_children)], cwd=workdir,
                                  stdout=log, stderr=subprocess.STDOUT)
        print(f"mutmut exited {proc.returncode} after {time.monotonic() - started:.0f} s", flush=True)
        out_modules, survivors = {}, {}
        for module in modules:
            out_modules[module], survivors[module] = module_results(workdir, module)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    judged = sum(m["mutants"] - m["equivalent"] for m in out_modules.values())
    killed = sum(m["killed"] for m in out_modules.values())
    out = {"modules": out_modules, "kill_rate": killed / judged if judged else 0.0}
    print(f"{'module':<36} {'mutants':>8} {'killed':>7} {'survived':>9} {'equivalent':>11}")
    for module, m in out_modules.items():
        print(f"{module:<36} {m['mutants']:>8} {m['killed']:>7} {m['survived']:>9} {m['equivalent']:>11}")
    print(f"kill rate {out['kill_rate']:.3f} of non-equivalent mutants (target >= 0.90)")
    for module, names in survivors.items():
        for name in names:
            print(f"survived: {name}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
