"""The validator's local state file: ratings plus whatever the process loop keeps (`extra`).

Plain JSON written atomically, so a crash leaves the old file or the new one. A missing file is a
first start; a corrupt one stops the validator rather than silently forgetting every rating.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from subnet.config import ProtocolConfig
from subnet.files import atomic_write
from validator.ratings import Ratings

STATE_FILE_FORMAT = "tessera-validator-state-v1"


def save_validator_state(path: str | os.PathLike, ratings: Ratings, extra: dict) -> None:
    doc = {"format": STATE_FILE_FORMAT, "ratings": ratings.to_json(), "extra": extra}
    # allow_nan=False: a NaN would make the file unreadable by strict JSON readers; fail here instead.
    atomic_write(path, json.dumps(doc, sort_keys=True, allow_nan=False, indent=1) + "\n")


def load_validator_state(path: str | os.PathLike, protocol: ProtocolConfig) -> tuple[Ratings, dict]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Ratings(protocol), {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read validator state: {exc}") from None
    try:
        doc = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise ValueError(f"{path}: validator state is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != STATE_FILE_FORMAT:
        raise ValueError(f"{path}: not a validator state file (format must be {STATE_FILE_FORMAT!r})")
    extra = doc.get("extra")
    if not isinstance(extra, dict):
        raise ValueError(f"{path}: extra: must be an object")
    try:
        ratings = Ratings.from_json(doc.get("ratings"), protocol)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return ratings, extra


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")
