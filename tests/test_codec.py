import json
import math
import struct

import numpy as np
import pytest
import torch

from subnet.compression.chunking import chunk_layout
from subnet.compression.codec import (
    CodecError,
    compress_with_feedback,
    decode_packet,
    decode_packet_codes,
    decode_packet_indices,
    encode_tensors,
    packet_from_bytes,
    packet_from_header,
    packet_stats,
    packet_to_bytes,
    read_packet_header,
    reconstruct_all,
)
from subnet.compression.index_code import (
    decode_indices,
    encode_indices,
    index_floor_bits,
)
from subnet.compression.quantize import quantize_values
from subnet.compression.spec import CodecSpec
from subnet.config import CompressionConfig

SHAPES = {"matrix": (256, 128), "vector": (192,), "odd": (100, 37), "conv": (8, 4, 3, 3), "scalar_row": (1, 5)}


def sample(shapes=SHAPES, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {n: torch.randn(s, generator=g) for n, s in shapes.items()}


@pytest.mark.parametrize("use_dct", [False, True])
@pytest.mark.parametrize("bits", [1, 2, 3])
def test_decode_equals_transmitted_exactly(use_dct, bits):
    codec = CompressionConfig(tile=16, topk=8, value_bits=bits, use_dct=use_dct)
    x = sample()
    packet, transmitted = encode_tensors(x, codec)
    wire = packet_to_bytes(packet)
    decoded = decode_packet(packet_from_bytes(wire, CodecSpec({n: tuple(t.shape) for n, t in x.items()}, codec)))
    for name in x:
        assert decoded[name].shape == x[name].shape
        assert torch.equal(decoded[name], transmitted[name]), name


@pytest.mark.parametrize("use_dct", [False, True])
def test_decode_stages_composed_by_hand_equal_decode_packet(use_dct):
    """The stages a gradient reader runs one by one (header, streams, indices, codes, scatter) give
    the same tensors, bit for bit, as the one-call decoder."""
    codec = CompressionConfig(tile=16, topk=8, value_bits=3, use_dct=use_dct)
    spec = CodecSpec(SHAPES, codec)
    packet, transmitted = encode_tensors(sample(seed=5), codec, metadata={"window": "9"})
    data = packet_to_bytes(packet)
    parsed = read_packet_header(data, spec)
    staged = packet_from_header(data, parsed, spec)
    assert staged.metadata == {"window": "9"}
    indices, codes = decode_packet_indices(staged), decode_packet_codes(staged)
    for name, layout in spec.layouts.items():
        assert indices[name].shape == (layout.num_chunks, layout.k)
        assert codes[name].shape == (layout.num_kept,)
    by_hand = reconstruct_all(staged, indices, codes)
    reference = decode_packet(packet_from_bytes(data, spec))
    assert list(by_hand) == list(reference) == list(SHAPES)
    for name in SHAPES:
        assert by_hand[name].dtype == reference[name].dtype == torch.float32
        assert torch.equal(by_hand[name].view(torch.int32), reference[name].view(torch.int32)), name
        assert torch.equal(by_hand[name], transmitted[name]), name


def test_topk_keeps_largest_per_chunk_and_exactly_k():
    codec = CompressionConfig(tile=8, topk=5, value_bits=2)
    x = torch.randn(32, 24)
    _, transmitted = encode_tensors({"w": x}, codec)
    layout = chunk_layout(x.shape, codec.tile, codec.topk)
    sent = layout.to_chunks(transmitted["w"])
    chunks = layout.to_chunks(x)
    assert ((sent != 0).sum(dim=1) == layout.k).all()
    expected = torch.topk(chunks.abs(), layout.k, dim=1).indices.sort(dim=1).values
    got = torch.nonzero(sent, as_tuple=False)[:, 1].reshape(-1, layout.k)
    assert torch.equal(got, expected)
    # the sign of every transmitted value matches the original
    assert (torch.sign(sent[sent != 0]) == torch.sign(chunks[sent != 0])).all()


def test_chunk_layout_roundtrip_and_scaled_k():
    for shape in [(128, 64), (100, 37), (7,), (4096,), (3, 5, 7)]:
        layout = chunk_layout(shape, 64, 64)
        x = torch.arange(math.prod(shape), dtype=torch.float32).reshape(shape)
        chunks = layout.to_chunks(x)
        assert chunks.shape == (layout.num_chunks, layout.chunk_size)
        assert torch.equal(layout.from_chunks(chunks), x)
        assert 1 <= layout.k <= layout.chunk_size
    assert chunk_layout((128, 128), 64, 64).k == 64
    assert chunk_layout((768,), 64, 64).k == 12  # 768 values at 64/4096 density


@pytest.mark.parametrize("decay", [1.0, 0.5, 0.0])
def test_error_feedback_sends_a_small_gradient_once_its_backlog_outgrows_the_large_one(decay):
    """One chunk, k = 1, a gradient of 1.0 on one coordinate and 0.3 on another, every round. The
    schedule of what is sent comes from a few lines of plain Python (the definition: add the gradient
    to the decayed backlog, send the largest, keep the rest), not from the codec: with decay 1 the small
    coordinate goes out in round 4 at 1.2 and the large one in round 5 at 2.0; with decay 0.5 its backlog
    tends to 0.6 < 1 and it never goes out, nor with decay 0 (no memory)."""
    codec = CompressionConfig(tile=4, topk=1, value_bits=2, ef_decay=decay)
    assert chunk_layout((16,), codec.tile, codec.topk).k == 1
    gradient = [0.0] * 16
    gradient[0], gradient[5] = 1.0, 0.3
    backlog = [0.0] * 16
    error = {"v": torch.zeros(16)}
    small_sent_in = []
    for round_ in range(1, 13):
        backlog = [decay * b + g for b, g in zip(backlog, gradient)]
        largest = max(range(16), key=lambda i: abs(backlog[i]))
        expected = (largest, backlog[largest])
        backlog[largest] = 0.0
        given = error["v"]
        snapshot = given.clone()
        error, _, sent = compress_with_feedback(error, {"v": torch.tensor(gradient)}, codec)
        assert torch.equal(given, snapshot)                      # the caller's buffer is not modified
        nonzero = torch.nonzero(sent["v"]).flatten().tolist()
        assert nonzero == [expected[0]], f"round {round_}"
        assert sent["v"][expected[0]].item() == pytest.approx(expected[1], abs=1e-6)   # one value: exact
        torch.testing.assert_close(error["v"], torch.tensor(backlog), rtol=0, atol=1e-6)
        if expected[0] == 5:
            small_sent_in.append(round_)
    assert small_sent_in == ([4, 8, 12] if decay == 1.0 else [])


def test_error_feedback_loses_nothing_over_rounds():
    """With beta = 1, everything ever added is either sent or still in the buffer."""
    codec = CompressionConfig(tile=16, topk=4, ef_decay=1.0)
    error = {n: torch.zeros(s) for n, s in SHAPES.items()}
    total_delta = {n: torch.zeros(s) for n, s in SHAPES.items()}
    total_sent = {n: torch.zeros(s) for n, s in SHAPES.items()}
    for r in range(6):
        delta = sample(seed=10 + r)
        error, _, sent = compress_with_feedback(error, delta, codec)
        for n in SHAPES:
            total_delta[n] += delta[n]
            total_sent[n] += sent[n]
    for n in SHAPES:
        torch.testing.assert_close(total_sent[n] + error[n], total_delta[n], rtol=0, atol=1e-4)


def test_quantizer_table_is_group_mean_and_codes_fit():
    v = torch.tensor([-4.0, -3.0, -1.0, -0.5, 0.5, 1.0, 2.0, 6.0])
    codes, table = quantize_values(v, 2)
    assert codes.max() < 4 and table.shape == (4,)
    recon = table[codes.long()]
    for c in codes.unique().tolist():
        torch.testing.assert_close(table[c], v[codes == c].mean())
    assert (torch.sign(recon) == torch.sign(v)).all()


def test_index_streams_naming_a_gap_or_an_index_past_the_chunk_are_refused():
    from subnet.compression.index_code import IndexCodeError

    wide = encode_indices(np.array([[0, 100]]))          # gaps 0 and 99: valid for a chunk of 128
    assert np.array_equal(decode_indices(wide, 1, 2, 128), [[0, 100]])
    with pytest.raises(IndexCodeError, match="gap 99 exceeds chunk size 64") as info:
        decode_indices(wide, 1, 2, 64)
    assert info.value.reason == "bad_indices"          # what a wire check reports for it
    creeping = encode_indices(np.array([[30, 61]]))      # each gap (30) fits a chunk of 40, the sum does not
    with pytest.raises(IndexCodeError, match="index 61 out of range for chunk size 40"):
        decode_indices(creeping, 1, 2, 40)


@pytest.mark.parametrize("n,k", [(4096, 64), (4096, 32), (4096, 128), (1024, 16)])
def test_index_code_within_5_percent_of_floor(n, k):
    rng = np.random.default_rng(0)
    chunks = 512
    idx = np.sort(np.stack([rng.choice(n, size=k, replace=False) for _ in range(chunks)]), axis=1)
    bits = encode_indices(idx).coded_bits(chunks * k) / (chunks * k)
    floor = math.log2(math.comb(n, k)) / k          # the fewest bits naming one k-subset, exactly
    assert floor <= bits <= 1.05 * floor, (bits, floor)
    assert index_floor_bits(n, k) == pytest.approx(math.log2(math.comb(n, k)), rel=1e-12)


def test_packet_ratio_beats_12bit_indices():
    codec = CompressionConfig()
    x = {"w": torch.randn(1024, 1024)}
    packet, _ = encode_tensors(x, codec)
    wire = packet_to_bytes(packet)
    stats = packet_stats(packet, len(wire))
    # Templar's 12-bit indices + 2-bit values would give 146x; entropy-coded indices must beat it.
    assert stats.ratio > 146 * 1.35


class TestRejections:
    codec = CompressionConfig(tile=16, topk=8)
    shapes = {"matrix": (64, 32), "vector": (48,)}

    def wire(self):
        packet, _ = encode_tensors(sample(self.shapes), self.codec, metadata={"window": "3"})
        return packet_to_bytes(packet)

    def spec(self, shapes=None, codec=None):
        return CodecSpec(shapes or self.shapes, codec or self.codec)

    def reason(self, data, shapes=None, codec=None, **kw):
        with pytest.raises(CodecError) as err:
            decode_packet(packet_from_bytes(data, self.spec(shapes, codec), **kw))
        return err.value.reason

    @staticmethod
    def framed(header: bytes, data_section: bytes = b"") -> bytes:
        return struct.pack("<Q", len(header)) + header + data_section

    def test_metadata_roundtrip(self):
        assert packet_from_bytes(self.wire(), self.spec()).metadata == {"window": "3"}

    def test_wrong_model(self):
        assert self.reason(self.wire(), shapes={"matrix": (32, 64), "vector": (48,)}) == "wrong_model"

    def test_wrong_codec(self):
        assert self.reason(self.wire(), codec=CompressionConfig(tile=16, topk=4)) == "bad_codec"

    def test_size_limit(self):
        data = self.wire()
        assert self.reason(data, max_bytes=len(data) - 1) == "too_large"

    def test_truncated(self):
        data = self.wire()
        assert self.reason(data[:5]) == "truncated"
        assert self.reason(data[:-3]) == "bad_tensor_entry"  # the offsets run past the data section
        (header_len,) = struct.unpack("<Q", data[:8])
        assert self.reason(data[:8 + header_len - 1]) == "truncated"

    def test_huge_header(self):
        data = self.wire()
        assert self.reason((10**12).to_bytes(8, "little") + data[8:]) == "header_too_large"

    def test_malformed_headers_get_their_reason(self):
        entry = {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}
        for header, reason in ((b"not json", "bad_header"), (b"[1, 2]", "bad_header"),
                               (b'{"a": 1, "a": 2}', "bad_header"), (b'{"x": NaN}', "bad_header"),
                               (json.dumps({"__metadata__": {"format": 1}}).encode(), "bad_metadata"),
                               (json.dumps({"__metadata__": []}).encode(), "bad_metadata"),
                               (json.dumps({"t": {**entry, "dtype": "Q9"}}).encode(), "bad_tensor_entry"),
                               (json.dumps({"t": {**entry, "shape": [3]}}).encode(), "bad_tensor_entry"),
                               (json.dumps({"t": {**entry, "data_offsets": [0, 3]}}).encode(), "bad_tensor_entry"),
                               (json.dumps({"t": {**entry, "extra": 1}}).encode(), "bad_tensor_entry")):
            assert self.reason(self.framed(header, b"\0\0")) == reason, header

    def test_overlapping_tensors_are_refused(self):
        entry = {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}
        header = json.dumps({"a": entry, "b": entry}).encode()
        assert self.reason(self.framed(header, b"\0\0")) == "bad_tensor_entry"

    def test_pickle_is_refused(self):
        import pickle
        assert self.reason(pickle.dumps({"w": [1, 2, 3]})) in {"header_too_large", "truncated", "bad_header"}

    def test_random_bit_flips_never_crash(self):
        data = bytearray(self.wire())
        (header_len,) = struct.unpack("<Q", bytes(data[:8]))
        original = decode_packet(packet_from_bytes(bytes(data), self.spec()))
        rng = np.random.default_rng(0)
        reasons = set()
        for _ in range(300):
            mutated = bytearray(data)
            positions = rng.integers(0, len(data), size=rng.integers(1, 4))
            for pos in positions:
                mutated[pos] ^= 1 << int(rng.integers(0, 8))
            try:
                decoded = decode_packet(packet_from_bytes(bytes(mutated), self.spec()))
            except CodecError as exc:
                reasons.add(exc.reason)
                continue
            # A flip inside the header (length, JSON, offsets, dtypes, shapes) is refused unless it
            # changes nothing that is decoded (a metadata value the wire layer checks): it can
            # never alter the tensors. Only flips in the data section change values.
            if all(pos < 8 + header_len for pos in positions):
                assert all(torch.equal(decoded[n], original[n]) for n in self.shapes), positions
            for name, shape in self.shapes.items():
                assert decoded[name].shape == shape and torch.isfinite(decoded[name]).all()
        assert len(reasons) >= 3, reasons  # caught by different checks, each with its reason


def test_a_packet_of_another_format_is_refused():
    from safetensors.numpy import load as st_load
    from safetensors.numpy import save as st_save

    codec = CompressionConfig(tile=8, topk=2)
    shapes = {"w": (8, 8)}
    wire = packet_to_bytes(encode_tensors({"w": torch.randn(8, 8)}, codec)[0])
    (header_len,) = struct.unpack("<Q", wire[:8])
    metadata = json.loads(wire[8:8 + header_len])["__metadata__"]
    for bad in ("tessera-sparse-v2", ""):
        with pytest.raises(CodecError) as err:
            packet_from_bytes(st_save(st_load(wire), metadata={**metadata, "format": bad}), CodecSpec(shapes, codec))
        assert err.value.reason == "bad_format"


def test_impossible_stream_lengths_are_refused_before_arithmetic():
    """unary_bits near 2**63 would wrap the byte-length sums; it must be refused as such."""
    from safetensors.numpy import load as st_load
    from safetensors.numpy import save as st_save

    codec = CompressionConfig(tile=8, topk=2)
    shapes = {f"p{i}": (8, 8) for i in range(16)}
    packet, _ = encode_tensors({n: torch.randn(s) for n, s in shapes.items()}, codec)
    wire = packet_to_bytes(packet)
    (header_len,) = struct.unpack("<Q", wire[:8])
    metadata = json.loads(wire[8:8 + header_len])["__metadata__"]
    arrays = st_load(wire)
    arrays["unary_bits"] = np.full(16, 2**63 - 1, dtype=np.int64)
    with pytest.raises(CodecError) as err:
        packet_from_bytes(st_save(arrays, metadata=metadata), CodecSpec(shapes, codec))
    assert err.value.reason == "bad_indices"


def _edited(data: bytes, edit) -> bytes:
    """A packet's bytes with its arrays edited (a sender that writes what it likes)."""
    from safetensors.numpy import load as st_load
    from safetensors.numpy import save as st_save
    (length,) = struct.unpack("<Q", data[:8])
    metadata = json.loads(data[8:8 + length]).get("__metadata__")
    arrays = st_load(data)
    edit(arrays)
    return st_save(arrays, metadata=metadata)


@pytest.mark.parametrize("edit, message", [
    (lambda a: a.update(rice_params=np.zeros(3, np.uint8)), r"^bad_shape: 'rice_params' has shape \(3,\), expected \(2,\)$"),
    (lambda a: a.update(unary_bits=a["unary_bits"][:1]), r"^bad_shape: 'unary_bits' has shape \(1,\), expected \(2,\)$"),
    (lambda a: a.update(unary=a["unary"].reshape(1, -1)), r"^bad_shape: 'unary' must be one-dimensional, has shape"),
    (lambda a: a.update(unary=np.append(a["unary"], np.uint8(0))), r"^bad_length: 'unary' stream is \d+ bytes, expected"),
    (lambda a: a.update(remainder=np.append(a["remainder"], np.uint8(0))),
     r"^bad_length: 'remainder' stream is \d+ bytes, expected"),
    (lambda a: a.update(codes=a["codes"][:-1]), r"^bad_length: 'codes' stream is \d+ bytes, expected"),
    (lambda a: a["rice_params"].__setitem__(0, 17), "^bad_indices: stream lengths are impossible for the expected k$"),
])
def test_stream_refusals_name_the_stream(edit, message):
    rejections = TestRejections()
    data = _edited(rejections.wire(), edit)
    with pytest.raises(CodecError, match=message):
        decode_packet(packet_from_bytes(data, rejections.spec()))


def test_the_largest_rice_parameter_passes_the_length_checks():
    """Rice parameter 16 is the decoder's own maximum (index_code.MAX_RICE_PARAM): stage 2 accepts it
    once the remainder stream has the length it implies; 17 is refused (above)."""
    from subnet.compression.index_code import MAX_RICE_PARAM
    rejections = TestRejections()
    spec = rejections.spec()
    kept = spec.layouts["matrix"].num_kept

    def rice_16(arrays):
        old = int(arrays["rice_params"][0])
        arrays["rice_params"][0] = MAX_RICE_PARAM
        old_len, new_len = (kept * old + 7) // 8, (kept * MAX_RICE_PARAM + 7) // 8
        arrays["remainder"] = np.concatenate([np.zeros(new_len, np.uint8), arrays["remainder"][old_len:]])

    packet = packet_from_bytes(_edited(rejections.wire(), rice_16), spec)
    assert packet.tensors["matrix"].streams.rice_param == MAX_RICE_PARAM


@pytest.mark.parametrize("dtype, use_dct", [(torch.float64, False), (torch.float64, True), (torch.bfloat16, True),
                                            (torch.float16, True)])
def test_any_input_dtype_encodes_as_its_float32_values(dtype, use_dct):
    """The codec works in float32 whatever the parameters' dtype (a bf16 model on a GPU): the packet is
    the float32 tensor's, bit for bit."""
    codec = CompressionConfig(tile=8, topk=5, value_bits=2, use_dct=use_dct)
    x = torch.randn(32, 24, generator=torch.Generator().manual_seed(5)).to(dtype)
    wide, _ = encode_tensors({"w": x}, codec)
    narrow, _ = encode_tensors({"w": x.float()}, codec)
    from safetensors.numpy import load as st_load
    wide_arrays, narrow_arrays = st_load(packet_to_bytes(wide)), st_load(packet_to_bytes(narrow))
    assert wide_arrays.keys() == narrow_arrays.keys()
    for name in wide_arrays:
        assert wide_arrays[name].dtype == narrow_arrays[name].dtype and np.array_equal(wide_arrays[name],
                                                                                        narrow_arrays[name]), name


def test_dct_packets_decode_back_to_the_input_when_everything_is_kept():
    """With every value kept at 8 bits, decode(encode(x)) is x up to quantization, DCT or not: an
    inverse transform that were not the inverse would be far off."""
    x = torch.randn(32, 24, generator=torch.Generator().manual_seed(3))
    for use_dct in (False, True):
        codec = CompressionConfig(tile=8, topk=64, value_bits=8, use_dct=use_dct)
        packet, _ = encode_tensors({"w": x}, codec)
        decoded = decode_packet(packet_from_bytes(packet_to_bytes(packet), CodecSpec({"w": (32, 24)}, codec)))["w"]
        assert ((decoded - x).norm() / x.norm()).item() < 0.05, use_dct


def test_compress_with_feedback_carries_the_metadata():
    codec = CompressionConfig(tile=16, topk=8)
    error = {n: torch.zeros(s) for n, s in SHAPES.items()}
    _, packet, _ = compress_with_feedback(error, sample(seed=4), codec, metadata={"window": "5"})
    assert packet.metadata == {"window": "5"}


def test_packet_stats_from_first_principles():
    codec = CompressionConfig(tile=16, topk=8)
    packet, _ = encode_tensors(sample(seed=6), codec)
    wire = packet_to_bytes(packet)
    stats = packet_stats(packet, len(wire))
    layouts = {n: chunk_layout(s, codec.tile, codec.topk) for n, s in SHAPES.items()}
    assert stats.dense_fp32_bytes == 4 * sum(math.prod(s) for s in SHAPES.values())
    assert stats.packet_bytes == len(wire)
    assert stats.kept_values == sum(lay.num_chunks * lay.k for lay in layouts.values())
    floor = sum(lay.num_chunks * math.log2(math.comb(lay.chunk_size, lay.k)) for lay in layouts.values())
    assert stats.index_floor_bits == pytest.approx(floor, rel=1e-9)
    assert floor <= stats.index_bits <= 8 * len(wire)
    streams = sum(e.streams.unary_bits + lay.num_kept * e.streams.rice_param
                  for e, lay in ((packet.tensors[n], layouts[n]) for n in SHAPES))
    assert stats.index_bits == streams


# --- properties on random input (hypothesis) ---------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

shape_strategy = st.lists(st.integers(1, 40), min_size=1, max_size=3).map(tuple)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes=st.dictionaries(st.sampled_from(["a", "b.weight", "c.bias"]), shape_strategy, min_size=1),
       tile=st.sampled_from([4, 8, 16]), topk=st.integers(1, 8), bits=st.integers(1, 4), use_dct=st.booleans(),
       scale=st.sampled_from([1e-6, 1.0, 1e4]), seed=st.integers(0, 2**31 - 1))
def test_round_trip_is_exact_for_any_shapes_and_settings(shapes, tile, topk, bits, use_dct, scale, seed):
    codec = CompressionConfig(tile=tile, topk=topk, value_bits=bits, use_dct=use_dct)
    x = {n: t * scale for n, t in sample(shapes, seed).items()}
    packet, transmitted = encode_tensors(x, codec)
    decoded = decode_packet(packet_from_bytes(packet_to_bytes(packet), CodecSpec(shapes, codec)))
    assert decoded.keys() == x.keys()
    for name in x:
        assert torch.equal(decoded[name], transmitted[name]), name


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_decoder_raises_only_its_own_error_on_any_bytes(data):
    """Arbitrary bytes, and a valid packet with random bytes overwritten, inserted or cut: the decoder
    either decodes finite tensors of the spec's shapes or raises CodecError, nothing else."""
    shapes = {"m": (24, 16), "v": (10,)}
    codec = CompressionConfig(tile=8, topk=4, value_bits=2)
    spec = CodecSpec(shapes, codec)
    packet, _ = encode_tensors(sample(shapes, 3), codec)
    valid = packet_to_bytes(packet)
    if data.draw(st.booleans()):
        wire = data.draw(st.binary(max_size=4096))
    else:
        wire = bytearray(valid)
        for _ in range(data.draw(st.integers(1, 6))):
            action = data.draw(st.sampled_from(["set", "insert", "cut"]))
            at = data.draw(st.integers(0, max(0, len(wire) - 1)))
            if action == "set" and wire:
                wire[at] = data.draw(st.integers(0, 255))
            elif action == "insert":
                wire[at:at] = data.draw(st.binary(min_size=1, max_size=16))
            else:
                del wire[at:at + data.draw(st.integers(1, 64))]
        wire = bytes(wire)
    try:
        decoded = decode_packet(packet_from_bytes(wire, spec))
    except CodecError:
        return
    for name, shape in shapes.items():
        assert decoded[name].shape == shape and torch.isfinite(decoded[name]).all()
