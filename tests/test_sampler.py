import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subnet.sampler import assigned_samples, eval_subset, permute


def test_deterministic():
    a = assigned_samples(7, 3, 2, 50, 10_000)
    assert np.array_equal(a, assigned_samples(7, 3, 2, 50, 10_000))
    assert not np.array_equal(a, assigned_samples(7, 4, 2, 50, 10_000))
    assert not np.array_equal(a, assigned_samples(8, 3, 2, 50, 10_000))


def test_uids_in_a_window_are_disjoint_and_cover():
    per, total = 40, 1000
    ids = np.concatenate([assigned_samples(1, 9, uid, per, total) for uid in range(total // per)])
    assert len(set(ids.tolist())) == ids.size == total
    assert ids.min() == 0 and ids.max() == total - 1


def test_too_many_uids_is_an_error():
    with pytest.raises(ValueError, match="uid 25 does not fit"):
        assigned_samples(1, 0, 25, 40, 1000)


@settings(max_examples=50, deadline=None)
@given(domain=st.integers(1, 5000), seed=st.integers(0, 2**31), window=st.integers(0, 10**6))
def test_permutation_is_a_bijection(domain, seed, window):
    out = permute(np.arange(domain), domain, seed, window)
    assert np.array_equal(np.sort(out), np.arange(domain))


def test_eval_subset_is_among_trained_samples(tiny_preset, tiny_train):
    per = tiny_preset.samples_per_window
    assigned = assigned_samples(tiny_preset.seed, 4, 1, per, tiny_train.num_samples)
    # the batches a miner trains on in its window (what trainsim feeds the inner loop)
    batches = tiny_train.batches(assigned, tiny_preset.train.batch_size)
    assert len(batches) == tiny_preset.train.inner_steps
    trained_rows = {tuple(row.tolist()) for b in batches for row in b}
    probe = eval_subset(assigned, 8, validator_seed=99)
    assert len(set(probe.tolist())) == 8
    for row in tiny_train.batch(probe):  # every probe sample is a sample the miner trained on
        assert tuple(row.tolist()) in trained_rows
    assert not np.array_equal(probe, eval_subset(assigned, 8, validator_seed=100))
