"""Orthonormal DCT-II per chunk (DeMo's transform), optional before top-k.

Orthonormal means the inverse is the transpose, so error feedback in the parameter domain and the
energy of what is kept are both preserved.
"""
from __future__ import annotations

import functools
import math

import torch

from subnet.compression.chunking import ChunkLayout


@functools.lru_cache(maxsize=32)
def dct_matrix(n: int) -> torch.Tensor:
    """D with D[k, i] = s_k cos(pi (2i + 1) k / 2n); D @ D.T = I."""
    i = torch.arange(n, dtype=torch.float64)
    k = i[:, None]
    d = torch.cos(math.pi * (2 * i[None, :] + 1) * k / (2 * n))
    d[0] *= math.sqrt(1.0 / n)
    d[1:] *= math.sqrt(2.0 / n)
    return d.to(torch.float32)


def dct_chunks(chunks: torch.Tensor, layout: ChunkLayout, inverse: bool = False) -> torch.Tensor:
    """Forward (or inverse) DCT of every chunk of a (num_chunks, chunk_size) tensor."""
    cols = dct_matrix(layout.tile_cols)
    if inverse:
        cols = cols.T
    if not layout.is_2d:
        return chunks @ cols.T
    rows = dct_matrix(layout.tile_rows)
    if inverse:
        rows = rows.T
    tiles = chunks.reshape(-1, layout.tile_rows, layout.tile_cols)
    return (rows @ tiles @ cols.T).reshape(chunks.shape)
