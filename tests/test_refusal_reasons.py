"""Every refusal reason the code declares is provoked by some test.

A reason is the first argument, a lowercase identifier, of a call to one of the project's error
classes (WireError("bad_signature", ...), ChainError("hotkey_owned", ...), ...) anywhere in the
sources; a test provokes it when the reason appears as a string literal in a test module (the
tests assert `error.reason == "..."`). A new reason without a test that provokes it fails here.
This checks names, not sites: a reason raised in two places is counted once.
"""
from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("subnet", "miner", "validator", "amm")
REASON = re.compile(r"^[a-z][a-z0-9_]*$")
BUILTIN_ERRORS = {name for name in dir(builtins) if name.endswith("Error")}


def declared_reasons() -> dict[str, set[str]]:
    """{reason: {"path:ErrorClass", ...}} over the project's sources."""
    found: dict[str, set[str]] = {}
    for package in SOURCES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                first = node.args[0]
                if (name.endswith("Error") and name not in BUILTIN_ERRORS and isinstance(first, ast.Constant)
                        and isinstance(first.value, str) and REASON.fullmatch(first.value)):
                    found.setdefault(first.value, set()).add(f"{path.relative_to(ROOT)}:{name}")
    return found


def literals_in_tests() -> set[str]:
    literals = set()
    for path in (ROOT / "tests").rglob("*.py"):
        if path.resolve() == Path(__file__).resolve():
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                literals.add(node.value)
    return literals


def test_every_declared_reason_is_provoked_by_a_test():
    declared = declared_reasons()
    assert len(declared) > 40                     # the scan finds the wire, codec, chain and storage reasons
    assert {"bad_signature", "hotkey_owned", "changed", "non_finite"} <= set(declared)
    provoked = literals_in_tests()
    missing = {reason: sorted(where) for reason, where in declared.items() if reason not in provoked}
    assert not missing, f"reasons no test provokes: {missing}"
