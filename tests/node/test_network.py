import pytest

from subnet.node.network import lead_order


def test_lead_order_by_stake_ties_lower_uid():
    order = lead_order([0, 1, 2, 3, 4], [50, 100, 100, 900, 70], [True, True, True, False, True], {0, 1, 2, 3, 4})
    assert order == [1, 2, 4, 0]  # uid 3 has the most stake but no permit


def test_lead_order_needs_weights_on_chain():
    # uid 1 holds a permit and the most stake but has never set weights (a miner): it never leads.
    assert lead_order([0, 1, 2], [10, 500, 20], [True, True, True], {0, 2}) == [2, 0]
    assert lead_order([0, 1], [10, 20], [True, True], set()) == []


def test_lead_order_rejects_ragged_input():
    with pytest.raises(ValueError):
        lead_order([0, 1], [10], [True, True], {0})
