"""Copy detection: a later upload that keeps (nearly) the same top-k positions as an earlier one.

Buckets are world-readable, so a lazy miner can fetch a peer's gradient and re-sign it. Honest miners
train on different samples, so their kept positions overlap little (two independent top-k picks
share about k/chunk of them); a copy shares nearly all. Only the later uploader (by when it claimed
the upload) is marked: the earlier one could not have copied what did not exist yet. Two copies
claimed at the same moment are both marked: a copier sees an upload only after it is stored, a
whole storage second after the original's claim (miner/loop.py `_put_intent`), so a tie means one
operator uploading one piece of work under two hotkeys (a sybil pair), which must not pay twice,
and neither can be told apart as the original.
"""
from __future__ import annotations

import hashlib

import numpy as np

from subnet.wire.gradient import Gradient


def _position_keys(gradient: Gradient, name: str) -> np.ndarray:
    """Kept (chunk, index) pairs of one tensor as sorted int64 keys chunk * chunk_size + index
    (sorted because chunks are in order and indices are sorted within a chunk)."""
    indices = gradient.indices[name]
    chunk_size = gradient.packet.tensors[name].layout.chunk_size
    chunks = np.arange(indices.shape[0], dtype=np.int64)[:, None] * chunk_size
    return (chunks + indices.astype(np.int64)).reshape(-1)


def _check_comparable(a: Gradient, b: Gradient) -> None:
    if a.indices.keys() != b.indices.keys():
        raise ValueError("gradients hold different tensors")
    for name in a.indices:
        if a.indices[name].shape != b.indices[name].shape:
            raise ValueError(f"{name}: index shapes {a.indices[name].shape} and {b.indices[name].shape} differ")


def index_overlap(a: Gradient, b: Gradient) -> float:
    """Fraction of kept (chunk, index) positions the two gradients share, over all tensors."""
    _check_comparable(a, b)
    shared = total = 0
    for name in a.indices:
        keys_a, keys_b = _position_keys(a, name), _position_keys(b, name)
        at = np.minimum(np.searchsorted(keys_b, keys_a), keys_b.size - 1)
        shared += int(np.count_nonzero(keys_b[at] == keys_a))
        total += keys_a.size
    return shared / total if total else 0.0


def values_fingerprint(gradient: Gradient) -> str:
    """sha256 of the decoded update without scattering it: for each tensor, the positions whose
    decoded value is non-zero and those values. Equal fingerprints <=> equal dense tensors (for
    gradients of the same model), so re-signing or re-packing an upload does not hide a copy."""
    digest = hashlib.sha256()
    for name in sorted(gradient.indices):
        table = gradient.packet.tensors[name].table.astype(np.float32)
        values = table[gradient.codes[name].astype(np.int64)]
        nonzero = values != 0  # a kept zero decodes like an unkept position (also folds -0.0)
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(_position_keys(gradient, name)[nonzero].tobytes())
        digest.update(values[nonzero].tobytes())
    return digest.hexdigest()


def overlap_matrix(gradients: list[Gradient]) -> np.ndarray:
    """Symmetric (n, n) index overlaps (`index_overlap` of every pair), 1 on the diagonal.

    Not pair by pair (n^2 / 2 set intersections: 8 s for 256 tiny uploads): every kept position of
    every gradient becomes one (position, owner) entry, tensors laid end to end; sorted by position,
    the owners that share a position sit side by side, so entries d apart with equal positions are
    the shared positions of those two owners. d grows until no run is that long; honest uploads
    share each position with a handful of others, so a few passes over the entries suffice."""
    n = len(gradients)
    if n == 0:
        return np.zeros((0, 0))
    for other in gradients[1:]:
        _check_comparable(gradients[0], other)
    keys, owners, offset = [], [], 0
    for name in sorted(gradients[0].indices):
        chunk_size = gradients[0].packet.tensors[name].layout.chunk_size
        for owner, gradient in enumerate(gradients):
            if gradient.packet.tensors[name].layout.chunk_size != chunk_size:
                raise ValueError(f"{name}: chunk sizes differ")
            position = _position_keys(gradient, name) + offset
            keys.append(position)
            owners.append(np.full(position.size, owner, dtype=np.int64))
        offset += gradients[0].indices[name].shape[0] * chunk_size
    total = sum(gradients[0].indices[name].size for name in gradients[0].indices)
    if total == 0:
        return np.eye(n)
    keys, owners = np.concatenate(keys), np.concatenate(owners)
    order = np.lexsort((owners, keys))
    keys, owners = keys[order], owners[order]
    shared = np.zeros(n * n, dtype=np.int64)
    for d in range(1, keys.size):
        same = keys[d:] == keys[:-d]
        if not same.any():
            break   # no run of d + 1 equal positions, so none longer either
        shared += np.bincount(owners[:-d][same] * n + owners[d:][same], minlength=n * n)
    shared = shared.reshape(n, n)
    out = (shared + shared.T) / total
    np.fill_diagonal(out, 1.0)
    return out


def copy_suspects(gradients: list[Gradient], threshold: float) -> list[int]:
    """Positions in `gradients` of every upload in a pair that `find_copies` would judge (overlap >=
    threshold, or equal decoded values), whatever their order: only these need to know when their
    content was claimed, and `find_copies` over them alone gives what it gives over all."""
    overlaps = overlap_matrix(gradients)
    np.fill_diagonal(overlaps, 0.0)
    suspect = (overlaps >= threshold).any(axis=1)
    seen: dict[str, int] = {}
    for i, gradient in enumerate(gradients):
        first = seen.setdefault(values_fingerprint(gradient), i)
        if first != i:
            suspect[i] = suspect[first] = True
    return [int(i) for i in np.flatnonzero(suspect)]


def find_copies(uploads: list[tuple[int, float, Gradient]], threshold: float) -> dict[int, tuple[int, float]]:
    """{copier_uid: (original_uid, overlap)} for each upload whose index overlap with an earlier one
    is >= threshold or whose decoded values equal an earlier one's. The original named is the
    earlier upload it overlaps most (ties: the earliest). An upload that a copy claimed at the same
    moment is marked too, as that one's copy."""
    ordered = sorted(uploads, key=lambda upload: (upload[1], upload[0]))
    fingerprints = [values_fingerprint(gradient) for _, _, gradient in ordered]
    overlaps = overlap_matrix([gradient for _, _, gradient in ordered])
    copies: dict[int, tuple[int, float]] = {}
    for later in range(1, len(ordered)):
        uid, claimed, _ = ordered[later]
        best: tuple[int, float] | None = None
        for earlier in range(later):
            original, claimed_before, _ = ordered[earlier]
            overlap = float(overlaps[later, earlier])
            if not (overlap >= threshold or fingerprints[later] == fingerprints[earlier]):
                continue
            if best is None or overlap > best[1]:
                best = (original, overlap)
            if claimed_before == claimed and original not in copies:
                copies[original] = (uid, overlap)
        if best is not None:
            copies[uid] = best
    return copies
