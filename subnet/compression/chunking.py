"""Cutting a tensor into equal chunks for per-chunk top-k.

Matrices are cut into tr x tc tiles, where tr (tc) is the largest divisor of the row (column) count
not above `tile`, so a 64-multiple shape gets 64x64 tiles and odd shapes still cut evenly. Vectors are
cut into 1-D chunks of the largest divisor of their length not above tile*tile. Tensors with more
than two dimensions are treated as (shape[0], rest). Every chunk of a tensor has the same size, so
each carries the same k; k is scaled from `topk` per tile*tile values to keep density constant.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def largest_divisor_at_most(n: int, limit: int) -> int:
    for d in range(min(n, limit), 0, -1):
        if n % d == 0:
            return d
    return 1


@dataclass(frozen=True)
class ChunkLayout:
    shape: tuple[int, ...]
    tile_rows: int  # 1 for a 1-D layout
    tile_cols: int
    k: int          # values kept per chunk

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def chunk_size(self) -> int:
        return self.tile_rows * self.tile_cols

    @property
    def num_chunks(self) -> int:
        return self.numel // self.chunk_size

    @property
    def is_2d(self) -> bool:
        return len(self.shape) >= 2

    @property
    def num_kept(self) -> int:
        return self.num_chunks * self.k

    def to_chunks(self, x: torch.Tensor) -> torch.Tensor:
        """(num_chunks, chunk_size) view (a copy for tiles) of a tensor of this layout's shape."""
        if not self.is_2d:
            return x.reshape(self.num_chunks, self.chunk_size)
        rows = self.shape[0]
        cols = self.numel // rows
        tr, tc = self.tile_rows, self.tile_cols
        return (x.reshape(rows // tr, tr, cols // tc, tc).permute(0, 2, 1, 3)
                .reshape(self.num_chunks, self.chunk_size))

    def flat_positions(self, indices: torch.Tensor) -> torch.Tensor:
        """Where (chunk c, index i) pairs land in the flattened tensor, for (num_chunks, k) indices:
        the inverse of `to_chunks` applied to positions, so values can be written straight in place."""
        chunk = torch.arange(self.num_chunks, dtype=torch.int64).unsqueeze(1)
        if not self.is_2d:
            return chunk * self.chunk_size + indices
        cols = self.numel // self.shape[0]
        tiles_per_row = cols // self.tile_cols
        row = (chunk // tiles_per_row) * self.tile_rows + indices // self.tile_cols
        col = (chunk % tiles_per_row) * self.tile_cols + indices % self.tile_cols
        return row * cols + col

    def from_chunks(self, chunks: torch.Tensor) -> torch.Tensor:
        if not self.is_2d:
            return chunks.reshape(self.shape)
        rows = self.shape[0]
        cols = self.numel // rows
        tr, tc = self.tile_rows, self.tile_cols
        return (chunks.reshape(rows // tr, cols // tc, tr, tc).permute(0, 2, 1, 3)
                .reshape(self.shape))


def chunk_layout(shape: tuple[int, ...], tile: int, topk: int) -> ChunkLayout:
    shape = tuple(int(d) for d in shape)
    numel = math.prod(shape)
    if numel == 0:
        raise ValueError(f"cannot compress an empty tensor of shape {shape}")
    if len(shape) >= 2:
        rows = shape[0]
        tr = largest_divisor_at_most(rows, tile)
        tc = largest_divisor_at_most(numel // rows, tile)
    else:
        tr, tc = 1, largest_divisor_at_most(numel, tile * tile)
    size = tr * tc
    k = max(1, min(size, round(topk * size / (tile * tile))))
    return ChunkLayout(shape=shape, tile_rows=tr, tile_cols=tc, k=k)
