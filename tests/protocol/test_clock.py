from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from subnet.config import ConfigError, ProtocolConfig, load_preset, parse_preset
from subnet.protocol import clock

P = ProtocolConfig(blocks_per_window=6, upload_grace_blocks=1, aggregate_deadline_blocks=2)


def test_window_boundaries():
    assert [clock.window_of(b, P) for b in (0, 5, 6, 11, 12)] == [0, 0, 1, 1, 2]
    assert (clock.first_block(3, P), clock.last_block(3, P)) == (18, 23)
    assert clock.upload_slot(3, P) == (18, 24)
    assert clock.aggregate_deadline(3, P) == 26


@given(st.integers(0, 10**9), st.integers(1, 500))
def test_every_block_is_in_exactly_its_window(block, blocks_per_window):
    p = ProtocolConfig(blocks_per_window=blocks_per_window, upload_grace_blocks=0, aggregate_deadline_blocks=0,
                       peers_per_window=20)
    w = clock.window_of(block, p)
    assert clock.first_block(w, p) <= block <= clock.last_block(w, p)
    assert clock.last_block(w, p) + 1 == clock.first_block(w + 1, p)


def test_aggregate_deadline_falls_inside_the_next_window():
    for name in ("tiny", "small", "base150m"):
        p = load_preset(name).protocol
        for w in (0, 7, 1000):
            assert clock.last_block(w, p) < clock.aggregate_deadline(w, p) < clock.last_block(w + 1, p)


def test_intervals():
    p = replace(P, weights_interval=3, checkpoint_interval=4)
    assert [w for w in range(10) if clock.is_weights_window(w, p)] == [0, 3, 6, 9]
    assert [w for w in range(10) if clock.is_checkpoint_window(w, p)] == [0, 4, 8]


@pytest.mark.parametrize("key, value, fragment", [
    ("blocks_per_window", 0, "protocol.blocks_per_window"),
    ("aggregate_deadline_blocks", 6, "protocol.aggregate_deadline_blocks"),
    ("newcomer_slots", 4, "protocol.newcomer_slots"),
    ("pot_threshold", 1.5, "protocol.pot_threshold"),
    ("weight_ramp", 0.5, "protocol.weight_ramp"),
    ("bogus_key", 1, "protocol.bogus_key"),
    ("peers_per_window", 2.5, "protocol.peers_per_window"),
])
def test_protocol_section_is_strict(key, value, fragment):
    import dataclasses
    data = dataclasses.asdict(load_preset("tiny"))
    data["protocol"][key] = value
    with pytest.raises(ConfigError) as err:
        parse_preset(data, "x.yaml")
    assert fragment in str(err.value)
