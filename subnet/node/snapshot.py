"""A process's persistent state on local disk: one safetensors file, written atomically, no pickle.

The file holds every tensor (global model, error-feedback buffer, optimiser moments, ...) and, in its
metadata, a JSON document of plain values (version, last uploaded window, hashes, optimiser
hyperparameters) and a sha256 over the tensors. `subnet.files.atomic_write` means a process killed
mid-write leaves the previous snapshot; the digest means a file damaged later (a bad disk, a hand
edit) is refused instead of silently resuming from wrong numbers.

Several groups of tensors share one file by name prefix (`prefixed` / `unprefixed`), e.g.
``theta.``, ``error.`` and the optimiser's ``opt.``.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as st_save

from subnet.files import atomic_write

SNAPSHOT_FORMAT = "tessera-snapshot-v1"


class SnapshotError(ValueError):
    """A snapshot file exists but cannot be used (truncated, corrupt, another format or model)."""


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over (name, dtype, shape, raw bytes) in sorted-name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _plain_json(meta: dict) -> str:
    """Canonical JSON of ``meta``, refused unless it reads back equal (no tuples, no non-string
    keys, no NaN), so what a restart sees is exactly what was saved."""
    if not isinstance(meta, dict):
        raise ValueError(f"snapshot meta must be a dict, got {type(meta).__name__}")
    try:
        text = json.dumps(meta, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"snapshot meta is not plain JSON: {exc}") from None
    if json.loads(text) != meta:
        raise ValueError("snapshot meta is not plain JSON (tuples or non-string keys do not read back equal)")
    return text


def save_snapshot(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Replace the snapshot at ``path`` with ``tensors`` (moved to CPU) and the JSON ``meta``."""
    for name in tensors:
        if not isinstance(name, str) or not name:
            raise ValueError(f"snapshot tensor names must be non-empty strings, got {name!r}")
    cpu = {name: tensor.detach().to("cpu").contiguous() for name, tensor in tensors.items()}
    header = {"format": SNAPSHOT_FORMAT, "meta": _plain_json(meta), "sha256": tensors_sha256(cpu)}
    atomic_write(path, st_save(cpu, metadata=header))


def load_snapshot(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict] | None:
    """The tensors and meta saved at ``path``; None if there is no file there. Anything else that
    is not a complete, intact snapshot raises `SnapshotError` naming the path."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with safe_open(path, framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except FileNotFoundError:
        return None
    except (SafetensorError, OSError) as exc:
        raise SnapshotError(f"{path}: not a readable snapshot ({exc})") from None
    if header.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotError(f"{path}: format {header.get('format')!r}, expected {SNAPSHOT_FORMAT!r}")
    try:
        meta = json.loads(header.get("meta", ""))
    except ValueError:
        raise SnapshotError(f"{path}: meta is not valid JSON") from None
    if not isinstance(meta, dict):
        raise SnapshotError(f"{path}: meta must be a JSON object")
    if header.get("sha256") != tensors_sha256(tensors):
        raise SnapshotError(f"{path}: tensors do not match the stored sha256 (corrupt file)")
    return tensors, meta


def prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """``tensors`` with every name prefixed, to share one snapshot with other groups."""
    return {prefix + name: tensor for name, tensor in tensors.items()}


def unprefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The group saved under ``prefix``, with the prefix removed."""
    return {name[len(prefix):]: tensor for name, tensor in tensors.items() if name.startswith(prefix)}


def optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str = "opt.") -> tuple[dict[str, torch.Tensor], dict]:
    """An optimiser's state_dict as tensors named ``{prefix}{param index}.{key}`` (exp_avg,
    exp_avg_sq, step, ...) plus a JSON part (param groups, non-tensor state values) for the meta."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    values: dict[str, dict] = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}{index}.{key}"] = value
            else:
                values.setdefault(str(index), {})[key] = value
    groups = []
    for group in state["param_groups"]:
        plain = {}
        for key, value in group.items():
            if isinstance(value, torch.Tensor):
                raise ValueError(f"optimizer param group {key!r} is a tensor; only plain values can be saved")
            plain[key] = list(value) if isinstance(value, tuple) else value
        groups.append(plain)
    return tensors, {"param_groups": groups, "state_values": values}


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict,
                      prefix: str = "opt.") -> None:
    """Load what `optimizer_tensors` saved into ``optimizer``, built the same way over the same model
    (`SnapshotError` otherwise). Moments move to each parameter's device and dtype."""
    try:
        saved_groups, saved_values = meta["param_groups"], meta["state_values"]
        current_groups = optimizer.param_groups
        if len(saved_groups) != len(current_groups):
            raise SnapshotError(f"optimizer has {len(current_groups)} param groups, snapshot has {len(saved_groups)}")
        params_by_index: dict[int, torch.Tensor] = {}
        groups = []
        for number, (saved, current) in enumerate(zip(saved_groups, current_groups)):
            if len(saved["params"]) != len(current["params"]):
                raise SnapshotError(f"optimizer param group {number} has {len(current['params'])} parameters, "
                                    f"snapshot has {len(saved['params'])}")
            params_by_index.update(zip(saved["params"], current["params"]))
            # JSON turned tuples (betas) into lists; give each value the type the optimiser uses.
            groups.append({key: tuple(value) if isinstance(current.get(key), tuple) else value
                           for key, value in saved.items()})
        state: dict[int, dict] = {}
        for name, tensor in tensors.items():
            if not name.startswith(prefix):
                continue
            index_text, _, key = name[len(prefix):].partition(".")
            if not index_text.isdigit() or not key:
                raise SnapshotError(f"optimizer tensor name {name!r} is not {prefix}<index>.<key>")
            state.setdefault(int(index_text), {})[key] = tensor
        for index_text, values in saved_values.items():
            state.setdefault(int(index_text), {}).update(values)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, SnapshotError):
            raise
        raise SnapshotError(f"optimizer snapshot is malformed: {exc!r}") from None
    for index, entry in state.items():
        if index not in params_by_index:
            raise SnapshotError(f"optimizer state for parameter {index}, which no param group lists")
        shape = params_by_index[index].shape
        for key, value in entry.items():
            # Element-wise optimisers keep per-parameter moments of the parameter's shape; a
            # mismatch means the snapshot is of another model.
            if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape != shape:
                raise SnapshotError(f"optimizer state {index}.{key} has shape {tuple(value.shape)}, "
                                    f"its parameter {tuple(shape)}")
    optimizer.load_state_dict({"state": state, "param_groups": groups})
