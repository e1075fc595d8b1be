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
import ast
import functools
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROG = "mutation.py"

# The trust boundary: each module with the tests that exercise it.
MODULES = {
    "subnet/compression/index_code.py": ["tests/test_index_code.py", "tests/test_codec.py"],
    "subnet/compression/codec.py": ["tests/test_codec.py", "tests/test_wire.py"],
    "subnet/wire/signing.py": ["tests/test_wire.py", "tests/chain/test_envelope.py"],
    "subnet/wire/gradient.py": ["tests/test_wire.py"],
    "subnet/wire/aggregate.py": ["tests/test_wire.py"],
    "subnet/chain/envelope.py": ["tests/chain/test_envelope.py", "tests/chain/test_refusals.py"],
    "subnet/chain/calls.py": ["tests/chain/test_calls.py", "tests/chain/test_refusals.py",
                              "tests/chain/test_conservation.py"],
    "subnet/storage/commitment.py": ["tests/storage/test_commitment.py"],
    "subnet/storage/checkpoint.py": ["tests/storage/test_checkpoint_manifest.py", "tests/storage/test_checkpoint.py"],
    "subnet/storage/client.py": ["tests/storage/test_client.py", "tests/storage/test_client_edges.py"],
    "subnet/wallet.py": ["tests/test_wallet.py"],
}
# Mutant name (as `mutmut results` prints it) -> why it is equivalent, after review. (Mutants that only
# reword an exception's message are recognised by `message_only` and need no entry.)
_MKDIR_MODE = "the chmod(0o700) on the next line sets the mode (mkdir's only narrows the instant between)"
_KEY_JSON_LAYOUT = "whitespace of the key file's JSON; readers parse it"
_UTF8 = "the same codec: Python looks codec names up case-insensitively, and the locale's is UTF-8 (ASCII files)"
_MKSTEMP_0600 = "mkstemp already creates the temp file 0600; the explicit mode states it"
_SIGNED_LENGTH = "'<q' and '<Q' give the same 8 bytes for a header length below 2^63 (ours: under 100 MB)"
_MISSING_HASH = "any non-hex default for a missing base_model_hash (None, '', 'XXXX') is refused the same way"
_FINITE_NORM = ("unreachable: the codec refuses non-finite tables first, and a float64 sum of squared finite "
                "float32 values cannot overflow")
_TORCH_FLOAT32 = "torch.zeros' default dtype is float32"
_SORTED_NEXT = "whether topk sorts its indices does not matter: the next line sorts them"
_CODES_CHECKED = ("unreachable: stage 2 checked the codes stream's length, and each tensor's slice of it is cut "
                  "from those checked lengths")
_INT64 = "np.array of Python ints is int64 on every 64-bit platform this runs on"
_PARTS_JSON = "layout of the parts list's JSON: readers parse it, any formatting is accepted"
_PARTS_BOUNDED = ("unreachable: the parts text sits inside a header already refused above "
                  "AGGREGATE_MAX_HEADER_BYTES")
_OLD_SIGNATURE = ("an old signature left in the metadata is dropped by the digest and overwritten by the new "
                  "one on the next line")
_FAST_PATH = ("skips the fast path for widths dividing 8: the general per-bit path gives the same bytes "
              "(tests/test_index_code.py checks every width against a bit-string reference)")
_RICE_START = ("start of an exact search: the Rice cost is convex in r, so the downhill walk ends at the same "
               "minimum from any start (tests compare with a brute force over 0..16)")
_NEGATIVE_DIM = "numpy infers a dimension given as any negative number, -2 as well as -1"
_SHIFT_DTYPE = "int64 shifts give the same bits as uint16 ones; only the temporary is 4x larger"
_CLIENT = "subnet.storage.client.xǁStorageClientǁ"
_PARALLELISM = "how many parts move at once: speed only, the same bytes are stored and read"
EQUIVALENT: dict[str, str] = {
    "subnet.compression.index_code.x_pack_bits__mutmut_14": _FAST_PATH,
    "subnet.compression.index_code.x_unpack_bits__mutmut_21": _FAST_PATH,
    "subnet.compression.index_code.x_pack_bits__mutmut_37": _NEGATIVE_DIM,
    "subnet.compression.index_code.x_pack_bits__mutmut_59": _SHIFT_DTYPE,
    "subnet.compression.index_code.x_pack_bits__mutmut_63": _SHIFT_DTYPE,
    "subnet.compression.index_code.x_best_rice_param__mutmut_13": _RICE_START,
    "subnet.compression.index_code.x_best_rice_param__mutmut_14": _RICE_START,
    "subnet.compression.index_code.x_best_rice_param__mutmut_16": _RICE_START,
    "subnet.wallet.x__make_private_dir__mutmut_4": _MKDIR_MODE,
    "subnet.wallet.x__make_private_dir__mutmut_6": _MKDIR_MODE,
    "subnet.wallet.x__key_document__mutmut_12": _KEY_JSON_LAYOUT,
    "subnet.wallet.x__key_document__mutmut_14": _KEY_JSON_LAYOUT,
    "subnet.wallet.x__key_document__mutmut_15": _KEY_JSON_LAYOUT,
    "subnet.wallet.x__read_key__mutmut_3": _UTF8,
    "subnet.wallet.x__read_key__mutmut_5": _UTF8,
    "subnet.wallet.x_create_wallet__mutmut_16": "tighten_existing=None is falsy like False",
    "subnet.wallet.x_create_wallet__mutmut_28": _MKSTEMP_0600,
    "subnet.wallet.x_create_wallet__mutmut_31": _MKSTEMP_0600,
    "subnet.storage.commitment.x_parse_commitment__mutmut_4": _UTF8,
    "subnet.wire.signing.x_canonical_json__mutmut_18": _UTF8,
    "subnet.wire.signing.x__frame__mutmut_17": _SIGNED_LENGTH,
    "subnet.wire.signing.x_sign_safetensors__mutmut_7": _SIGNED_LENGTH,
    "subnet.wire.signing.x_sign_safetensors__mutmut_25": _OLD_SIGNATURE,
    "subnet.wire.signing.x_sign_safetensors__mutmut_28": _OLD_SIGNATURE,
    "subnet.wire.signing.x_sign_safetensors__mutmut_29": _OLD_SIGNATURE,
    "subnet.wire.gradient.x_decode_gradient__mutmut_34": _MISSING_HASH,
    "subnet.wire.gradient.x_decode_gradient__mutmut_36": _MISSING_HASH,
    "subnet.wire.gradient.x_decode_gradient__mutmut_39": _MISSING_HASH,
    **{f"subnet.wire.gradient.x_decode_gradient__mutmut_{n}": _FINITE_NORM for n in (97, 98, 99, 100)},
    **{f"subnet.compression.codec.x_reconstruct__mutmut_{n}": _TORCH_FLOAT32 for n in (6, 9, 27, 29)},
    "subnet.compression.codec.x__encode_one__mutmut_16": "topk's default dim, -1, is dim 1 of the 2-D chunks",
    "subnet.compression.codec.x__encode_one__mutmut_17": _SORTED_NEXT,
    "subnet.compression.codec.x__encode_one__mutmut_19": _SORTED_NEXT,
    "subnet.compression.codec.x__encode_one__mutmut_24": "sort's default dim, -1, is dim 1 of the 2-D index rows",
    **{f"subnet.compression.codec.x_packet_norm__mutmut_{n}": "astype(None) is float64" for n in (4, 16)},
    **{f"subnet.compression.codec.x_decode_packet_codes__mutmut_{n}": _CODES_CHECKED for n in (9, 10, 11, 12)},
    **{f"subnet.compression.codec.x_packet_from_header__mutmut_{n}": _INT64 for n in (108, 110, 113, 115)},
    "subnet.wire.signing.x_canonical_json__mutmut_6": "json.dumps tests `not allow_nan`: None refuses NaN as False does",
    "subnet.wire.signing.x_canonical_json__mutmut_10": "ensure_ascii=True is json.dumps' default",
    "subnet.chain.calls.x_burned_register__mutmut_85": ("the epoch stores bonds as u16 integers and the store reads "
                                                        "them back as float64: the same values either way"),
    **{f"subnet.compression.codec.x_packet_to_bytes__mutmut_{n}": _INT64 for n in (27, 29)},
    **{f"subnet.wire.aggregate.x_encode_aggregate__mutmut_{n}": _PARTS_JSON for n in (70, 71, 73, 74, 75)},
    **{f"subnet.wire.aggregate.x__parse_parts__mutmut_{n}": _PARTS_BOUNDED for n in (1, 2, 3, 4, 5)},
    "subnet.wire.aggregate.x__parse_parts__mutmut_17": _UTF8,
    **{f"subnet.wire.aggregate.x_decode_aggregate__mutmut_{n}": _MISSING_HASH for n in (48, 50, 51)},
    "subnet.wire.aggregate.x_decode_aggregate__mutmut_93": "a missing parts list is refused as unparsable JSON, '' or 'XXXX'",
    "subnet.wire.aggregate.x_verify_lineage__mutmut_3": ("-1 and -2 both precede every window: manifests with a "
                                                         "negative window are refused"),
    **{_CLIENT + f"ensure_bucket__mutmut_{n}": "botocore's ClientError always carries an 'Error' mapping"
       for n in (4, 6)},
    **{f"subnet.storage.client.x_classify__mutmut_{n}": ("a missing error code: '', 'None' and 'XXXX' are all "
                                                         "codes of no list, so the status decides")
       for n in (4, 6, 17)},
    "subnet.storage.client.x__total_size__mutmut_7": "'' and 'XXXX' both hold no '/': the received size is used",
    **{_CLIENT + f"head__mutmut_{n}": "every S3 HEAD reply carries an ETag: the default is never read"
       for n in (24, 26, 30)},
    **{_CLIENT + f"list__mutmut_{n}": ("every S3 listing entry carries an ETag (SeaweedFS, AWS, MinIO, R2): the "
                                       "default is never read") for n in (46, 48, 52)},
    _CLIENT + "_put_multipart__mutmut_28": ("S3 part numbers need only ascend (1..10,000): numbered from 2 the "
                                            "same object is stored (10,000 parts would be 160 GB)"),
    _CLIENT + "_put_multipart__mutmut_54": _PARALLELISM,
    _CLIENT + "get__mutmut_86": _PARALLELISM,
    **{name: "with_retries makes its own random.Random when given None"
       for name in (_CLIENT + "__init____mutmut_7", _CLIENT + "_retry__mutmut_4", _CLIENT + "_retry__mutmut_8")},
    **{_CLIENT + f"__init____mutmut_{n}": "botocore reads the checksum settings case-insensitively"
       for n in (55, 57)},
    _CLIENT + "delete__mutmut_28": "Quiet only drops the list of deleted keys from the reply; errors come either way",
    **{f"subnet.storage.checkpoint.x_checkpoint_files__mutmut_{n}": (
        "transformers 5 always writes safetensors (safe_serialization is gone and ignored); any other output "
        "is refused on the next lines") for n in (2, 4, 5)},
    "subnet.storage.checkpoint.x_checkpoint_files__mutmut_14": ("unreachable: transformers 5 always writes "
                                                                "safetensors, so this refusal never raises"),
    **{f"subnet.storage.checkpoint.x_fetch_checkpoint__mutmut_{n}": (
        "the clean-up of a staging directory this call made and still holds: ignore_errors only keeps a "
        "failed clean-up from hiding the first error") for n in (104, 106, 107)},
    "subnet.chain.calls.x__price__mutmut_10": ("unreachable: a signed call cannot carry infinity (canonical JSON "
                                               "refuses it, so there is nothing to sign)"),
}
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


@functools.lru_cache(maxsize=4)
def _functions(path: Path) -> dict[str, str]:
    """Every function's source in a mutmut-rewritten module, by its (mangled) name."""
    source = path.read_text()
    lines = source.splitlines()
    # Whole lines by line numbers: ast.get_source_segment re-splits the source for every node, which is
    # quadratic over a rewritten module of thousands of mutant functions.
    return {node.name: "\n".join(lines[node.lineno - 1:node.end_lineno]) for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _tokens(text: str) -> list[tuple[int, str]]:
    return [(t.type, t.string) for t in tokenize.generate_tokens(io.StringIO(text).readline)
            if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)]


def message_only(original: str, mutant: str) -> bool:
    """Whether the mutant changes nothing but the text of an exception's message: every differing token
    is a string literal (an f-string is one token here, slices of echoed values included) and every
    differing line lies inside a `raise`. Wording, case and XX-padding of a message are not behaviour;
    a message replaced by None or dropped changes the token kinds and is not covered by this rule."""
    old_tokens, new_tokens = _tokens(original), _tokens(mutant)
    if len(old_tokens) != len(new_tokens):
        return False
    differing = [(a, b) for a, b in zip(old_tokens, new_tokens) if a != b]
    if not differing or any(a[0] != tokenize.STRING or b[0] != tokenize.STRING for a, b in differing):
        return False
    old_lines, new_lines = original.splitlines(), mutant.splitlines()
    if len(old_lines) != len(new_lines):
        return False
    changed = {i + 1 for i, (a, b) in enumerate(zip(old_lines, new_lines)) if a != b}
    tree = ast.parse(original)
    in_raise = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise):
            in_raise.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return changed <= in_raise


def equivalence(workdir: Path, module: str, name: str) -> str | None:
    """Why mutant `name` of `module` is equivalent: a reviewed entry of EQUIVALENT, or a message-only change."""
    if name in EQUIVALENT:
        return EQUIVALENT[name]
    source_path = workdir / "mutants" / module
    if not source_path.is_file():
        return None
    functions = _functions(source_path)
    short = name.rsplit(".", 1)[-1]
    original_name = short.rsplit("__mutmut_", 1)[0] + "__mutmut_orig"
    original, mutant = functions.get(original_name), functions.get(short)
    if original is None or mutant is None:
        return None
    original = textwrap.dedent(original.replace(original_name, "f", 1))
    mutant = textwrap.dedent(mutant.replace(short, "f", 1))
    return "message wording only" if message_only(original, mutant) else None


def module_results(workdir: Path, module: str) -> tuple[dict, list[str]]:
    meta_path = workdir / "mutants" / (module + ".meta")
    codes = json.loads(meta_path.read_text())["exit_code_by_key"] if meta_path.is_file() else {}
    killed = survived = equivalent = timeouts = 0
    survivors = []
    for name, code in codes.items():
        if code in SURVIVED_CODES and equivalence(workdir, module, name):
            equivalent += 1
        elif code in KILLED_CODES or code in TIMEOUT_CODES:
            killed += 1
            timeouts += code in TIMEOUT_CODES
        elif code in SURVIVED_CODES:
            survived += 1
            survivors.append(name)
    not_run = len(codes) - killed - survived - equivalent
    if timeouts or not_run:   # printed, not in the JSON layout: a reader should know what "killed" holds
        print(f"{module}: {timeouts} of the killed hit mutmut's CPU limit; {not_run} not run or skipped")
    return {"mutants": len(codes), "killed": killed, "survived": survived, "equivalent": equivalent}, survivors


def run_mutmut(modules: list[str], mutmut: Path, max_children: int, keep: Path | None) -> tuple[dict, dict]:
    workdir = keep.resolve() if keep else Path(tempfile.mkdtemp(prefix="mutation-"))
    if keep and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        scratch_copy(modules, workdir)
        started = time.monotonic()
        print(f"mutating {len(modules)} module(s) in {workdir} (log {workdir / 'mutmut.log'})", flush=True)
        with open(workdir / "mutmut.log", "w") as log:
            # One OpenMP thread: mutmut forks a child per mutant from a process that has run torch, and
            # a forked OpenMP pool spins until mutmut's CPU limit, which would read as a (false) kill.
            # TESSERA_MUTATION: shared fixtures are built per test (tests/test_wire.py says why).
            env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TESSERA_MUTATION": "1"}
            proc = subprocess.run([str(mutmut), "run", "--max-children", str(max_children)], cwd=workdir,
                                  stdout=log, stderr=subprocess.STDOUT, env=env)
        print(f"mutmut exited {proc.returncode} after {time.monotonic() - started:.0f} s", flush=True)
        results = {module: module_results(workdir, module) for module in modules}
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return {m: r[0] for m, r in results.items()}, {m: r[1] for m, r in results.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", default=",".join(MODULES),
                        help="comma-separated module paths (default: the whole trust boundary)")
    parser.add_argument("--max-children", type=int, default=2, help="parallel test processes (default 2)")
    parser.add_argument("--keep", type=Path, help="keep the scratch copy here (to `mutmut show` survivors)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--rescore", type=Path, metavar="DIR",
                        help="count the results of an earlier --keep DIR again (after EQUIVALENT changed); no run")
    args = parser.parse_args(argv)
    modules = [m.strip() for m in args.modules.split(",") if m.strip()]
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        parser.error(f"--modules: not a trust-boundary module: {', '.join(unknown)} (known: {', '.join(MODULES)})")
    if args.rescore:
        out_modules, survivors = {}, {}
        for module in modules:
            out_modules[module], survivors[module] = module_results(args.rescore, module)
    else:
        mutmut = Path(sys.executable).with_name("mutmut")
        if not mutmut.is_file():
            print(f"{PROG}: error: mutmut is not installed; run: {sys.executable} -m pip install -e '.[mutation]'",
                  file=sys.stderr)
            return 1
        out_modules, survivors = run_mutmut(modules, mutmut, args.max_children, args.keep)
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
