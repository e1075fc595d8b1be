"""The one base class for refusing untrusted input (miner uploads, aggregates, checkpoints, chain
calls, storage replies, commitments, wallet files).

Every refusal carries a short machine-readable `reason` code (logged, counted and written into a
validator's published scores), and a message for people.
"""
from __future__ import annotations


class InputRejected(ValueError):
    """Untrusted input was refused; `reason` is a short code such as ``bad_signature``."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.detail = message
