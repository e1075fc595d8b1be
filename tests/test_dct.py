"""The DCT against an independent transform (Makhoul's FFT algorithm in numpy), not its own formula."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from subnet.compression.chunking import ChunkLayout
from subnet.compression.dct import dct_chunks, dct_matrix


def reference_dct(x: np.ndarray) -> np.ndarray:
    """Orthonormal DCT-II along the last axis by one FFT of length n (Makhoul 1980): reorder to even
    samples then odd ones reversed, FFT, rotate by exp(-i pi k / 2n), take the real part, scale."""
    n = x.shape[-1]
    v = np.concatenate([x[..., ::2], x[..., 1::2][..., ::-1]], axis=-1)
    k = np.arange(n)
    y = np.real(np.exp(-1j * np.pi * k / (2 * n)) * np.fft.fft(v, axis=-1))
    scale = np.full(n, math.sqrt(2.0 / n))
    scale[0] = math.sqrt(1.0 / n)
    return y * scale


@pytest.mark.parametrize("n", [1, 2, 8, 16, 48, 64])
def test_dct_matrix_is_orthonormal(n):
    d = dct_matrix(n).double()
    torch.testing.assert_close(d @ d.T, torch.eye(n, dtype=torch.float64), rtol=0, atol=1e-6)


@pytest.mark.parametrize("n", [2, 8, 16, 64])
def test_dct_matrix_equals_the_fft_algorithm(n):
    x = np.random.default_rng(n).normal(size=(5, n))
    ours = (torch.from_numpy(x).float() @ dct_matrix(n).T).double().numpy()
    np.testing.assert_allclose(ours, reference_dct(x), rtol=0, atol=1e-5)


def test_tile_dct_is_the_separable_2d_transform_and_inverts():
    layout = ChunkLayout(shape=(32, 48), tile_rows=8, tile_cols=16, k=4)
    x = torch.from_numpy(np.random.default_rng(3).normal(size=(32, 48))).float()
    chunks = layout.to_chunks(x)
    got = dct_chunks(chunks, layout).double().numpy().reshape(-1, 8, 16)
    tiles = chunks.double().numpy().reshape(-1, 8, 16)
    expected = reference_dct(np.swapaxes(reference_dct(tiles), -1, -2))   # columns, then rows
    np.testing.assert_allclose(got, np.swapaxes(expected, -1, -2), rtol=0, atol=1e-4)
    # Energy is kept (Parseval) and the inverse gives the chunks back.
    assert float((dct_chunks(chunks, layout) ** 2).sum()) == pytest.approx(float((chunks ** 2).sum()), rel=1e-5)
    torch.testing.assert_close(dct_chunks(dct_chunks(chunks, layout), layout, inverse=True), chunks,
                               rtol=0, atol=1e-4)
