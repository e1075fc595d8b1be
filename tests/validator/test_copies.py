import math

import numpy as np
import pytest
import torch

from subnet.compression.chunking import chunk_layout
from tests.validator.gradients import random_update, signed_gradient, tiny_shapes
from validator.copies import copy_suspects, find_copies, index_overlap, overlap_matrix, values_fingerprint


@pytest.fixture(scope="module")
def shapes(tiny_preset):
    return tiny_shapes(tiny_preset)


def expected_random_overlap(shapes, codec) -> tuple[float, float]:
    """Mean and standard deviation of the overlap of two independent uniform top-k picks: each kept
    position of one is kept by the other with probability k/chunk (hypergeometric per chunk)."""
    kept = shared = variance = 0.0
    for shape in shapes.values():
        layout = chunk_layout(shape, codec.tile, codec.topk)
        n, k, c = layout.numel // layout.chunk_size, layout.k, layout.chunk_size
        p = k / c
        kept += n * k
        shared += n * k * p
        variance += n * (k * p * (1 - p) * (c - k) / max(c - 1, 1))
    return shared / kept, math.sqrt(variance) / kept


def test_overlap_with_itself_is_one(tiny_preset, shapes):
    gradient = signed_gradient(tiny_preset, random_update(shapes, 1), uid=0)
    assert index_overlap(gradient, gradient) == 1.0
    resigned = signed_gradient(tiny_preset, random_update(shapes, 1), uid=5)
    assert index_overlap(gradient, resigned) == 1.0


def test_independent_gradients_overlap_near_k_over_chunk(tiny_preset, shapes):
    gradients = [signed_gradient(tiny_preset, random_update(shapes, 10 + i), uid=i) for i in range(6)]
    matrix = overlap_matrix(gradients)
    assert matrix.shape == (6, 6)
    assert np.allclose(np.diag(matrix), 1.0)
    assert np.allclose(matrix, matrix.T)
    pairs = matrix[np.triu_indices(6, k=1)]
    mean, std = expected_random_overlap(shapes, tiny_preset.compression)
    assert mean == pytest.approx(1 / 64, rel=0.05)  # tiny: 16 of 32x32 kept, density kept for vectors
    # The pair overlaps are uncorrelated (each pair's picks are independent), so their mean
    # has standard deviation std / sqrt(pairs).
    assert abs(pairs.mean() - mean) < 4 * std / math.sqrt(pairs.size)
    assert pairs.max() < mean + 6 * std


def test_find_copies_marks_the_later_uploader(tiny_preset, shapes):
    honest = random_update(shapes, 1)
    noise = random_update(shapes, 2)
    original = signed_gradient(tiny_preset, honest, uid=3)
    resigned = signed_gradient(tiny_preset, honest, uid=1)                # same update, other key
    nudged = signed_gradient(tiny_preset, {n: honest[n] + 0.05 * noise[n] for n in honest}, uid=2)
    independent = signed_gradient(tiny_preset, random_update(shapes, 3), uid=4)
    uploads = [(1, 20.0, resigned), (4, 5.0, independent), (3, 10.0, original), (2, 30.0, nudged)]
    copies = find_copies(uploads, threshold=0.6)
    assert set(copies) == {1, 2}
    assert copies[1] == (3, 1.0)
    assert copies[2][0] in (1, 3) and copies[2][1] > 0.9
    # Whoever stored first is the original, whatever the uids.
    swapped = find_copies([(1, 5.0, resigned), (3, 10.0, original)], threshold=0.6)
    assert swapped == {3: (1, 1.0)}
    # Claimed at the same moment: one operator's work under two hotkeys; both are marked.
    assert find_copies([(3, 1.0, original), (1, 1.0, resigned)], threshold=0.6) == {1: (3, 1.0), 3: (1, 1.0)}
    tied = find_copies([(3, 1.0, original), (1, 1.0, resigned), (4, 1.0, independent)], threshold=0.6)
    assert set(tied) == {1, 3}
    assert find_copies([(4, 1.0, independent), (3, 2.0, original)], threshold=0.6) == {}


def test_identical_values_are_a_copy_below_the_overlap_threshold(tiny_preset, shapes):
    honest = random_update(shapes, 1)
    original = signed_gradient(tiny_preset, honest, uid=3)
    resigned = signed_gradient(tiny_preset, honest, uid=1)
    scaled = signed_gradient(tiny_preset, {n: 2 * t for n, t in honest.items()}, uid=2)
    assert values_fingerprint(original) == values_fingerprint(resigned)
    assert values_fingerprint(original) != values_fingerprint(scaled)
    # threshold above any overlap: only the value identity marks the copy.
    assert find_copies([(3, 1.0, original), (1, 2.0, resigned), (2, 3.0, scaled)], threshold=1.5) == {1: (3, 1.0)}


def test_overlap_refuses_gradients_of_different_models(tiny_preset, shapes):
    a = signed_gradient(tiny_preset, random_update(shapes, 1), uid=0)
    b = signed_gradient(tiny_preset, {"w": torch.randn(64, 64)}, uid=1)
    with pytest.raises(ValueError):
        index_overlap(a, b)


def test_the_overlap_matrix_equals_every_pairwise_overlap_exactly(tiny_preset, shapes):
    """The sort-based matrix against index_overlap pair by pair, on independent uploads, exact copies,
    three copies of one (a run of equal positions longer than two) and nudged copies (partial overlap)."""
    base = [random_update(shapes, 40 + i) for i in range(4)]
    noise = random_update(shapes, 99)
    updates = [*base, base[0], base[0], {n: base[1][n] + 0.3 * noise[n] for n in base[1]},
               {n: base[2][n] + 0.05 * noise[n] for n in base[2]}]
    gradients = [signed_gradient(tiny_preset, update, uid=i) for i, update in enumerate(updates)]
    matrix = overlap_matrix(gradients)
    for i in range(len(gradients)):
        for j in range(len(gradients)):
            assert matrix[i, j] == (1.0 if i == j else index_overlap(gradients[i], gradients[j])), (i, j)
    assert matrix[0, 4] == matrix[0, 5] == matrix[4, 5] == 1.0
    assert 0.05 < matrix[1, 6] < 1.0 and matrix[2, 7] > matrix[1, 6]
    assert overlap_matrix([]).shape == (0, 0) and overlap_matrix(gradients[:1]).tolist() == [[1.0]]


def test_find_copies_over_the_suspects_alone_gives_what_it_gives_over_all(tiny_preset, shapes):
    """The validator reads intents (claim times) for the suspects only: judging them alone must mark
    the same copies with the same originals, whatever the claim times."""
    base = [random_update(shapes, 60 + i) for i in range(4)]
    noise = random_update(shapes, 98)
    updates = [*base, base[0], {n: base[1][n] + 0.05 * noise[n] for n in base[1]}, base[2], base[3]]
    gradients = [signed_gradient(tiny_preset, update, uid=i) for i, update in enumerate(updates)]
    threshold = tiny_preset.protocol.copy_overlap_threshold
    suspects = copy_suspects(gradients, threshold)
    assert suspects == list(range(8))   # each of base 0-3 has a copy or a nudged copy among 4-7
    assert copy_suspects(gradients[:4], threshold) == []
    rng = np.random.default_rng(5)
    extra = signed_gradient(tiny_preset, random_update(shapes, 77), uid=8)   # independent: never a suspect
    everyone = [*gradients, extra]
    assert 8 not in copy_suspects(everyone, threshold)
    for _ in range(20):
        claims = rng.integers(0, 4, size=len(everyone)).astype(float)   # ties on purpose
        uploads = [(i, claims[i], g) for i, g in enumerate(everyone)]
        picked = set(copy_suspects(everyone, threshold))
        assert find_copies([u for u in uploads if u[0] in picked], threshold) == find_copies(uploads, threshold)
