"""Training the next window while its model is on the way.

After uploading window w a miner would sit idle until aggregate w is decided (the lead fetches,
aggregates and stores it, and a block must prove it was stored in time: about a second or two).
Instead it starts window w+1's inner steps from the model it holds and, when the decision comes,
moves its local weights onto the new model and goes on (`protocol.window.inner_phase_rebased`). At
most `early_steps` steps are taken before the model is known; then training waits for it.

`TrueBase` is the hand-off between the event loop (which learns the decision) and the training
thread (which asks before each step). Nothing here is consensus: the upload is still an update
measured from the window's model, and every node's global model is applied exactly as before.
"""
from __future__ import annotations

import threading
import time

from subnet.model import Params

# A training thread never waits longer than this for a decision; the event loop always resolves or
# discards well before (a window is seconds to minutes), so this only guards against a lost hand-off.
MAX_WAIT_S = 900.0


class Discarded(Exception):
    """The speculative training was abandoned (the node re-followed, fell behind, or is stopping)."""


class TrueBase:
    def __init__(self, early_steps: int):
        self.early_steps = early_steps
        self._ready = threading.Event()
        self._theta: Params | None = None
        self._discarded = False
        self.blocked_s = 0.0       # time the training thread spent waiting for the decision
        self.model_hash = ""       # the hash of the model it was resolved to

    def resolve(self, theta: Params, model_hash: str) -> None:
        self._theta, self.model_hash = theta, model_hash
        self._ready.set()

    def discard(self) -> None:
        self._discarded = True
        self._ready.set()

    @property
    def settled(self) -> bool:
        return self._ready.is_set()

    def __call__(self, step: int) -> Params | None:
        """Called by the training thread before every step (and once after the last one)."""
        if self._discarded:
            raise Discarded("the work ahead was abandoned")
        if not self._ready.is_set() and step < self.early_steps:
            return None
        started = time.monotonic()
        got = self._ready.wait(MAX_WAIT_S)
        self.blocked_s += time.monotonic() - started
        if self._discarded or not got:
            raise Discarded("the window's model did not come")
        return self._theta
