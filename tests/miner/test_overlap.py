"""The hand-off between a miner's event loop and its training-ahead thread."""
import threading

import pytest

from miner.overlap import Discarded, TrueBase


def test_early_steps_go_on_without_the_model_then_training_waits_for_it():
    base = TrueBase(early_steps=2)
    assert base(0) is None and base(1) is None and not base.settled
    got = []
    thread = threading.Thread(target=lambda: got.append(base(2)))
    thread.start()
    thread.join(0.2)
    assert thread.is_alive() and not got          # step 2 may not start before the decision
    theta = {"w": 1}
    base.resolve(theta, "hash")
    thread.join(5)
    assert got == [theta] and base.model_hash == "hash" and base.blocked_s > 0  # counted as waiting


def test_a_known_model_is_handed_over_at_once():
    base = TrueBase(early_steps=5)
    base.resolve({"w": 2}, "h")
    assert base(0) == {"w": 2} and base(7) == {"w": 2}


def test_a_discarded_run_stops_a_waiting_thread():
    base = TrueBase(early_steps=0)
    errors = []

    def train():
        try:
            base(0)
        except Discarded as exc:
            errors.append(exc)

    thread = threading.Thread(target=train)
    thread.start()
    base.discard()
    thread.join(5)
    assert not thread.is_alive() and len(errors) == 1
    with pytest.raises(Discarded):
        base(3)
