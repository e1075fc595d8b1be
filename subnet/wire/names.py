"""Every object name a node writes into its bucket, in one place (DESIGN.md section 5)."""
from __future__ import annotations

import re

CHECKPOINT_PREFIX = "checkpoints"
LATEST_CHECKPOINT_KEY = f"{CHECKPOINT_PREFIX}/LATEST.json"
DATASET_PREFIX = "dataset"

# Keys that belong to one window; retention deletes them once the window is old.
_WINDOW_KEY = re.compile(r"(?:(?:gradient|aggregate|scores)-(\d{1,18})[-.]|checkpoints/(\d{1,18})/)")


def gradient_key(window: int, uid: int) -> str:
    return f"gradient-{int(window)}-{int(uid)}.safetensors"


def gradient_intent_key(window: int, uid: int) -> str:
    """A small signed note of the gradient's sha256, stored a second before the gradient itself:
    who was first when two identical uploads share a LastModified second (see docs/neurons.md)."""
    return f"gradient-{int(window)}-{int(uid)}.intent.json"


def aggregate_key(window: int) -> str:
    return f"aggregate-{int(window)}.safetensors"


def aggregate_manifest_key(window: int) -> str:
    return f"aggregate-{int(window)}.json"


def scores_key(window: int) -> str:
    return f"scores-{int(window)}.json"


def checkpoint_prefix(window: int) -> str:
    return f"{CHECKPOINT_PREFIX}/{int(window)}/"


def checkpoint_manifest_key(window: int) -> str:
    return f"{checkpoint_prefix(window)}manifest.json"


def dataset_key(name: str, file: str) -> str:
    return f"{DATASET_PREFIX}/{name}/{file}"


def window_of_key(key: str) -> int | None:
    """The window a per-window object belongs to (gradients, aggregates, scores, checkpoint files),
    else None (LATEST.json, datasets)."""
    match = _WINDOW_KEY.match(key)
    return int(match.group(1) or match.group(2)) if match else None
