"""Validator sets by block in the chain's store: lookup of the set in force, and pruning."""
from subnet.chain.store import Store


def test_the_set_in_force_is_the_newest_at_or_before_the_block(tmp_path):
    store = Store(tmp_path / "chain.db")
    for block, doc in ((0, "a"), (5, "b"), (9, "c")):
        store.add_validator_set(1, block, doc)
    assert store.validator_set(1, 4) == (0, "a")
    assert store.validator_set(1, 5) == (5, "b")
    assert store.validator_set(1, 100) == (9, "c")
    assert store.validator_set(2, 100) is None


def test_pruning_keeps_the_set_in_force_at_the_cut(tmp_path):
    store = Store(tmp_path / "chain.db")
    for block, doc in ((0, "a"), (5, "b"), (9, "c")):
        store.add_validator_set(1, block, doc)
    store.prune_validator_sets(1, keep_from=7)
    assert store.validator_set(1, 7) == (5, "b")      # still answerable at the cut
    assert store.validator_set(1, 4) is None          # older history is gone
    assert store.validator_set(1, 9) == (9, "c")
