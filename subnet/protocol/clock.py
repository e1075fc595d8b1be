"""Blocks and windows (DESIGN.md section 3). Pure functions of a block number and the settings.

Window w spans blocks [w * B, (w + 1) * B - 1] for B = blocks_per_window. Miners train on version w
during window w and upload `gradient-w-uid` before the upload deadline (the window's last block
plus a grace); the aggregate of w must be stored by the aggregate deadline, which falls inside
window w + 1, so miners wait seconds, not a window, for the next version.
"""
from __future__ import annotations

from subnet.config import ProtocolConfig

# S3 keeps LastModified in whole seconds, rounded down: an object stamped t was stored in [t, t + 1).
STORAGE_TIME_RESOLUTION_S = 1.0


def window_of(block: int, p: ProtocolConfig) -> int:
    return block // p.blocks_per_window


def first_block(window: int, p: ProtocolConfig) -> int:
    return window * p.blocks_per_window


def last_block(window: int, p: ProtocolConfig) -> int:
    return (window + 1) * p.blocks_per_window - 1


def upload_deadline(window: int, p: ProtocolConfig) -> int:
    """Last block at whose end an upload of `window` still counts (inclusive)."""
    return last_block(window, p) + p.upload_grace_blocks


def upload_slot(window: int, p: ProtocolConfig) -> tuple[int, int]:
    """(first, last) block, inclusive, in which an upload of `window` must be stored. Earlier would
    mean the miner trained before the window's model could be known."""
    return first_block(window, p), upload_deadline(window, p)


def aggregate_deadline(window: int, p: ProtocolConfig) -> int:
    """Last block (inclusive) by whose end the aggregate of `window` must be stored."""
    return upload_deadline(window, p) + p.aggregate_deadline_blocks


def is_weights_window(window: int, p: ProtocolConfig) -> bool:
    return window % p.weights_interval == 0


def is_checkpoint_window(window: int, p: ProtocolConfig) -> bool:
    return window % p.checkpoint_interval == 0


def stored_before(last_modified: float, end: float) -> bool:
    """Whether an object stamped `last_modified` (whole seconds, rounded down) was certainly stored
    before time `end`. Deciding "stored by the deadline" this way makes every node agree whenever it
    reads: an object that passes existed before the deadline ended, so even a node that looked right
    after the deadline saw it, and one stored in the deadline's last second fails for everyone."""
    return last_modified + STORAGE_TIME_RESOLUTION_S <= end
