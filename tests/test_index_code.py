"""The index code against an independent bit-string model of it, and each of its refusals at its edge.

The reference below spells the format out one bit at a time with Python strings: the unary stream
holds, per gap, (g >> r) zeros then a one; the remainder stream the r low bits of each gap, most
significant first; both padded with zeros to whole bytes.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subnet.compression.index_code import (
    MAX_RICE_PARAM,
    IndexCodeError,
    RiceStreams,
    best_rice_param,
    decode_indices,
    encode_indices,
    gaps_from_sorted,
    index_floor_bits,
    pack_bits,
    rice_bits,
    unpack_bits,
)


def bytes_of(bit_string: str) -> bytes:
    bit_string += "0" * (-len(bit_string) % 8)
    return bytes(int(bit_string[i:i + 8], 2) for i in range(0, len(bit_string), 8))


def reference_pack(values: list[int], width: int) -> bytes:
    return bytes_of("".join(format(v, f"0{width}b") for v in values)) if width else b""


def reference_rice(gaps: list[int], r: int) -> tuple[bytes, int, bytes]:
    unary = "".join("0" * (g >> r) + "1" for g in gaps)
    return bytes_of(unary), len(unary), reference_pack([g & ((1 << r) - 1) for g in gaps], r)


def reference_gaps(rows: list[list[int]]) -> list[int]:
    return [i - (row[j - 1] + 1 if j else 0) for row in rows for j, i in enumerate(row)]


def sorted_subsets(rng: np.random.Generator, chunks: int, n: int, k: int) -> np.ndarray:
    return np.sort(np.stack([rng.choice(n, size=k, replace=False) for _ in range(chunks)]), axis=1)


# --- bit packing -------------------------------------------------------------------------------------

@settings(max_examples=80, deadline=None)
@given(width=st.integers(0, 16), data=st.data())
def test_pack_bits_is_most_significant_bit_first_and_zero_padded(width, data):
    values = data.draw(st.lists(st.integers(0, (1 << width) - 1), max_size=200))
    packed = pack_bits(np.array(values, dtype=np.int64), width)
    assert packed.dtype == np.uint8
    assert packed.tobytes() == reference_pack(values, width)
    unpacked = unpack_bits(np.frombuffer(reference_pack(values, width), np.uint8), width, len(values))
    assert unpacked.dtype == np.int64 and unpacked.tolist() == values


@pytest.mark.parametrize("width", range(1, 17))
def test_unpack_reads_only_the_first_count_values(width):
    values = [(1 << width) - 1, 0, (1 << width) - 1, 1]          # all-ones and zero at every position
    data = np.frombuffer(reference_pack(values, width) + b"\xff\xff\xff", np.uint8)   # trailing junk
    assert unpack_bits(data, width, 3).tolist() == values[:3]


@pytest.mark.parametrize("width", [1, 3, 8, 13])
def test_unpack_refuses_a_stream_one_bit_short(width):
    count = 16
    needed = count * width
    exact = np.zeros(-(-needed // 8), np.uint8)
    assert unpack_bits(exact, width, count).tolist() == [0] * count
    short = np.zeros((needed - 1) // 8, np.uint8)
    with pytest.raises(IndexCodeError, match=f"bit stream holds {short.size * 8} bits, need {needed}") as info:
        unpack_bits(short, width, count)
    assert info.value.reason == "bad_indices"


def test_zero_width_or_zero_count_is_empty():
    assert pack_bits(np.array([0, 0, 0]), 0).size == 0
    assert pack_bits(np.zeros(0, np.int64), 5).size == 0
    assert unpack_bits(np.zeros(0, np.uint8), 0, 4).tolist() == [0, 0, 0, 0]
    assert unpack_bits(np.zeros(0, np.uint8), 7, 0).tolist() == []


# --- the Rice parameter --------------------------------------------------------------------------------

def brute_force_param(gaps: np.ndarray) -> int:
    costs = [sum((int(g) >> r) + 1 + r for g in gaps) for r in range(MAX_RICE_PARAM + 1)]
    return costs.index(min(costs))          # the first (smallest) r on a tie


gap_lists = st.one_of(
    st.lists(st.integers(0, 3), min_size=1, max_size=60),
    st.lists(st.integers(0, 1 << 20), min_size=1, max_size=60),
    # mostly zeros with a few huge gaps: the mean points far from the best r
    st.tuples(st.integers(1, 200), st.lists(st.integers(1 << 10, 1 << 22), max_size=3)).map(
        lambda t: [0] * t[0] + t[1]),
    st.integers(0, 1 << 18).flatmap(lambda m: st.lists(st.integers(m, m + 3), min_size=1, max_size=30)),
)


@settings(max_examples=300, deadline=None)
@given(gaps=gap_lists)
def test_best_rice_param_is_the_exact_minimum(gaps):
    array = np.array(gaps, dtype=np.int64)
    r = best_rice_param(array)
    assert r == brute_force_param(array)
    assert rice_bits(array, r) == sum((g >> r) + 1 + r for g in gaps)


def test_best_rice_param_ties_and_edges():
    assert best_rice_param(np.zeros(0, np.int64)) == 0
    assert best_rice_param(np.zeros(10, np.int64)) == 0
    # gaps of 1: r=0 costs 2 bits each, r=1 costs 2 bits each too; the smaller r wins the tie
    assert rice_bits(np.ones(8, np.int64), 0) == rice_bits(np.ones(8, np.int64), 1) == 16
    assert best_rice_param(np.ones(8, np.int64)) == 0
    # gaps of 3: r=1 and r=2 both cost 3 bits each
    assert best_rice_param(np.full(8, 3, np.int64)) == 1
    # so large that every r up to the maximum still helps: the search stops at the maximum
    assert best_rice_param(np.full(4, 1 << 30, np.int64)) == MAX_RICE_PARAM


# --- encoding and decoding -------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 4096), data=st.data())
def test_encoding_is_the_reference_bit_string(n, data):
    k = data.draw(st.integers(1, min(n, 128)))
    chunks = data.draw(st.integers(1, 4))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    idx = sorted_subsets(rng, chunks, n, k)
    gaps = reference_gaps(idx.tolist())
    assert gaps_from_sorted(idx).reshape(-1).tolist() == gaps
    streams = encode_indices(idx)
    r = streams.rice_param
    assert r == brute_force_param(np.array(gaps))
    unary, unary_bits, remainder = reference_rice(gaps, r)
    assert streams.unary.tobytes() == unary and streams.unary_bits == unary_bits
    assert streams.remainder.tobytes() == remainder
    assert streams.coded_bits(chunks * k) == unary_bits + chunks * k * r
    assert decode_indices(streams, chunks, k, n).tolist() == idx.tolist()


def test_decoding_a_hand_made_stream():
    # gaps 5, 0, 9 with r = 2: quotients 1, 0, 2 -> unary "01" "1" "001"; remainders 01, 00, 01
    streams = RiceStreams(rice_param=2, unary_bits=6, unary=np.frombuffer(bytes_of("011001"), np.uint8),
                          remainder=np.frombuffer(bytes_of("010001"), np.uint8))
    assert decode_indices(streams, 1, 3, 20).tolist() == [[5, 6, 16]]
    assert decode_indices(streams, 3, 1, 20).tolist() == [[5], [0], [9]]   # a chunk per gap: no running sum


def streams_for(gaps: list[int], r: int) -> RiceStreams:
    unary, unary_bits, remainder = reference_rice(gaps, r)
    return RiceStreams(rice_param=r, unary_bits=unary_bits, unary=np.frombuffer(unary, np.uint8),
                       remainder=np.frombuffer(remainder, np.uint8))


def test_the_last_position_of_a_chunk_is_accepted_and_the_next_refused():
    # one index per chunk: the gap is the index
    assert decode_indices(streams_for([63], 3), 1, 1, 64).tolist() == [[63]]
    with pytest.raises(IndexCodeError, match="gap 64 exceeds chunk size 64"):
        decode_indices(streams_for([64], 3), 1, 1, 64)
    # two indices: gaps 31 and 31 end at 63 in a chunk of 64, and at 64 past a chunk of 64 with 32
    assert decode_indices(streams_for([31, 31], 3), 1, 2, 64).tolist() == [[31, 63]]
    with pytest.raises(IndexCodeError, match="index 64 out of range for chunk size 64"):
        decode_indices(streams_for([31, 32], 3), 1, 2, 64)
    # the largest index over all chunks is what is checked, not only the first chunk's
    with pytest.raises(IndexCodeError, match="index 70 out of range for chunk size 64"):
        decode_indices(streams_for([1, 1, 30, 39], 3), 2, 2, 64)


def test_every_rice_parameter_in_range_decodes():
    for r in range(MAX_RICE_PARAM + 1):
        gaps = [0, (1 << r) - 1, 1 << r, 3]          # the largest remainder, and the first quotient of 1
        expected = (np.cumsum(np.array(gaps) + 1) - 1).tolist()
        assert decode_indices(streams_for(gaps, r), 1, 4, 1 << 20).tolist() == [expected], r


@pytest.mark.parametrize("r", [-1, MAX_RICE_PARAM + 1, 255])
def test_a_rice_parameter_out_of_range_is_refused(r):
    good = streams_for([1, 2], 1)
    with pytest.raises(IndexCodeError, match=f"rice parameter {r} out of range 0..{MAX_RICE_PARAM}"):
        decode_indices(RiceStreams(r, good.unary_bits, good.unary, good.remainder), 1, 2, 100)


def test_unary_lengths_at_and_past_their_bounds():
    # The fewest unary bits k indices can take is k (all quotients zero); the most, every bit of the bytes.
    fewest = streams_for([0, 1, 0, 1], 1)          # quotients all 0: unary "1111"
    assert fewest.unary_bits == 4
    assert decode_indices(fewest, 1, 4, 16).tolist() == [[0, 2, 3, 5]]
    fewer = RiceStreams(1, 3, fewest.unary, fewest.remainder)
    with pytest.raises(IndexCodeError, match="unary stream length 3 bits is too short for 4 indices"):
        decode_indices(fewer, 1, 4, 16)
    full = streams_for([0, 0, 0, 10], 1)           # unary "111" "000001": 9 bits in 2 bytes
    assert full.unary_bits == 9 and full.unary.size == 2
    padded = RiceStreams(1, 16, full.unary, full.remainder)   # claims the padding too: it ends in zeros
    with pytest.raises(IndexCodeError, match="unary stream ends inside a gap"):
        decode_indices(padded, 1, 4, 64)
    over = RiceStreams(1, 17, full.unary, full.remainder)
    with pytest.raises(IndexCodeError, match="unary stream is 2 bytes, expected 3 for 17 bits"):
        decode_indices(over, 1, 4, 64)
    eight = streams_for([0] * 8, 0)                # unary "11111111": every bit of its one byte
    assert eight.unary_bits == eight.unary.size * 8 == 8
    assert decode_indices(eight, 1, 8, 8).tolist() == [list(range(8))]


def test_a_byte_more_or_less_of_unary_stream_is_refused():
    good = streams_for([3, 0, 2], 0)               # "0001" "1" "001": 8 bits, 1 byte
    assert good.unary.size == 1
    for unary in (np.zeros(0, np.uint8), np.concatenate([good.unary, [0]])):
        with pytest.raises(IndexCodeError, match=f"unary stream is {unary.size} bytes, expected 1 for 8 bits"):
            decode_indices(RiceStreams(0, 8, unary, good.remainder), 1, 3, 64)


@pytest.mark.parametrize("stream,bit", [("unary", 0), ("remainder", 0), ("remainder", 1)])   # every padding bit
def test_set_padding_bits_are_refused(stream, bit):
    """One encoding per index set: an upload cannot vary its bytes (and its hash) for the same content."""
    good = streams_for([5, 6, 9], 2)               # unary "01" "01" "001": 7 bits; remainders 6 bits
    assert good.unary_bits == 7 and good.remainder.size == 1   # 1 and 2 padding bits
    assert decode_indices(good, 1, 3, 64).tolist() == [[5, 12, 22]]
    edited = {name: getattr(good, name).copy() for name in ("unary", "remainder")}
    edited[stream][-1] |= np.uint8(1 << bit)
    bad = RiceStreams(2, good.unary_bits, edited["unary"], edited["remainder"])
    with pytest.raises(IndexCodeError, match="a stream's padding bits are not zero"):
        decode_indices(bad, 1, 3, 64)


def test_pack_bits_refuses_widths_beyond_the_largest_rice_parameter():
    assert pack_bits(np.array([(1 << MAX_RICE_PARAM) - 1]), MAX_RICE_PARAM).tolist() == [255, 255]
    with pytest.raises(ValueError, match=f"at most {MAX_RICE_PARAM} bits a value, not 17"):
        pack_bits(np.array([1]), MAX_RICE_PARAM + 1)


def test_a_unary_stream_coding_the_wrong_number_of_gaps_is_refused():
    three = streams_for([2, 0, 1], 0)              # "001" "1" "01"
    with pytest.raises(IndexCodeError, match="unary stream codes 3 gaps, expected exactly 2"):
        decode_indices(RiceStreams(0, three.unary_bits, three.unary, three.remainder), 1, 2, 64)
    # the right number of ones, but the stream ends in zeros: the last gap is unterminated
    trailing = RiceStreams(0, 7, np.frombuffer(bytes_of("0010100"), np.uint8), np.zeros(0, np.uint8))
    with pytest.raises(IndexCodeError, match="unary stream ends inside a gap"):
        decode_indices(trailing, 1, 2, 64)


def test_remainder_length_must_be_exact():
    good = streams_for([5, 6, 7], 3)               # 9 remainder bits: 2 bytes
    assert good.remainder.size == 2
    for size in (1, 3):
        bad = RiceStreams(3, good.unary_bits, good.unary, np.zeros(size, np.uint8))
        with pytest.raises(IndexCodeError, match=f"remainder stream is {size} bytes, expected 2"):
            decode_indices(bad, 1, 3, 64)


def test_index_floor_is_log2_of_the_binomial():
    for n, k in [(1, 1), (10, 3), (64, 32), (4096, 64), (4096, 4095)]:
        assert index_floor_bits(n, k) == pytest.approx(math.log2(math.comb(n, k)), rel=1e-12, abs=1e-9)
