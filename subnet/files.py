"""Local files: atomic writes and strict YAML reading, shared by every module that keeps state.

A process may die at any instant; a reader must then see either the old file or the new one, never
half of one. Hence: write a temp file in the same directory, fsync, rename over the target.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml


def atomic_write(path: str | os.PathLike, data: bytes | str, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` atomically (temp file, fsync, rename); ``mode`` e.g. 0o600
    is set on the temp file before any byte is written, so secrets are never world-readable."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def load_yaml(path: str | os.PathLike, error: type[Exception] = ValueError, what: str = "file") -> object:
    """Parse a YAML file with the safe loader; a missing file or bad YAML raises ``error`` with a
    message naming the path (callers then check the structure strictly)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read {what}: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None
