from dataclasses import replace

from subnet.config import load_preset
from subnet.protocol.settings import consensus_hash, genesis_anchor


def test_consensus_hash_covers_model_codec_outer_protocol_and_seed():
    tiny = load_preset("tiny")
    base = consensus_hash(tiny)
    changed = [
        replace(tiny, seed=tiny.seed + 1),
        replace(tiny, model=replace(tiny.model, hidden_size=128)),
        replace(tiny, compression=replace(tiny.compression, topk=32)),
        replace(tiny, outer=replace(tiny.outer, lr=0.5)),
        replace(tiny, protocol=replace(tiny.protocol, blocks_per_window=7)),
        replace(tiny, protocol=replace(tiny.protocol, pot_threshold=0.2)),
    ]
    hashes = [consensus_hash(p) for p in changed]
    assert base not in hashes and len(set(hashes)) == len(hashes)


def test_miner_private_settings_do_not_change_the_identity():
    tiny = load_preset("tiny")
    private = [replace(tiny, compression=replace(tiny.compression, ef_decay=0.5)),
               replace(tiny, train=replace(tiny.train, lr=0.01)),
               replace(tiny, baseline=replace(tiny.baseline, diloco_lr=0.1)),
               replace(tiny, name="renamed")]
    assert {consensus_hash(p) for p in private} == {consensus_hash(tiny)}


def test_genesis_anchor_binds_settings_and_model():
    tiny = load_preset("tiny")
    a = genesis_anchor(tiny, "ab" * 32)
    assert a != genesis_anchor(tiny, "cd" * 32)
    assert a != genesis_anchor(replace(tiny, outer=replace(tiny.outer, lr=0.5)), "ab" * 32)
    assert len(a) == 64 and a != "0" * 64
