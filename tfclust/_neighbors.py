"""Exact k nearest neighbours in row tiles, shared by t-SNE's affinities and the embedding
metrics: matmul-form distances to every row, ``tf.math.top_k`` per tile, and the selected
distances recomputed by differences. Memory grows with ``tile * N``, never with ``N ** 2``."""

from __future__ import annotations

import math

import tensorflow as tf

from tfclust._compile import specialised
from tfclust._tiling import (
    DEFAULT_MEMORY_BUDGET,
    map_row_tiles,
    pad_rows,
    padded_size,
    rows_per_tile,
    squared_distances,
)


def centred_with_norms(x, n_valid=None):
    """``x`` minus the column means of its first ``n_valid`` rows (default all), its rows'
    squared norms, and the row ids ``0..N-1``.

    Centring leaves distances unchanged and makes the matmul form's cancellation smaller.
    """
    if n_valid is None:
        mean = tf.reduce_mean(x, axis=0, keepdims=True)
    else:
        valid = tf.cast(tf.range(x.shape[0]) < n_valid, x.dtype)[:, None]
        mean = tf.reduce_sum(x * valid, axis=0, keepdims=True) / tf.cast(n_valid, x.dtype)
    x = x - mean
    return x, tf.reduce_sum(tf.square(x), axis=1), tf.range(x.shape[0])


def _knn(x, n_valid, k: int, tile: int):
    x, x_sq, cols = centred_with_norms(x, n_valid)
    # The rows from n_valid on are padding (a size bucket): no point's neighbour.
    excluded = cols[None, :] >= n_valid

    def block(args):
        rows, ids = args
        d2 = squared_distances(rows, x, x_sq)
        d2 = tf.where(
            (ids[:, None] == cols[None, :]) | excluded, tf.constant(math.inf, x.dtype), d2
        )
        # Selected on float32 keys: XLA's CPU top-k is fast for float32 only (float64 keys made
        # a 20,000-point kNN 70x slower). Recompute the selected distances directly: the
        # matmul form loses digits to cancellation exactly where neighbours are close.
        _, idx = tf.math.top_k(-tf.cast(d2, tf.float32), k=k, sorted=True)
        diff = rows[:, None, :] - tf.gather(x, idx)
        return idx, tf.reduce_sum(tf.square(diff), axis=2)

    return map_row_tiles(
        block,
        (x, cols),
        tile,
        fn_output_signature=(tf.TensorSpec([tile, k], tf.int32), tf.TensorSpec([tile, k], x.dtype)),
    )


def nearest_neighbors(x, k: int, memory_budget: int = DEFAULT_MEMORY_BUDGET):
    """Exact k nearest neighbours of every point among the others (squared euclidean).

    The search runs on the rows padded to their size bucket (``_tiling.padded_size``), so every
    N of a bucket shares one compiled program.

    Args:
      x: (N, D) float32/float64 tensor.
      k: neighbours per point, 1 <= k <= N - 1.
      memory_budget: bytes a tile of pairwise work may take.

    Returns:
      ``(indices, sq_distances)``: (N, k) int32 and (N, k) x.dtype, nearest first as ranked by
      the squared distances rounded to float32; ties (there) go to the lower index.
    """
    n, d = x.shape
    if not 1 <= k <= n - 1:
        raise ValueError(f"k must be in [1, {n - 1}], got {k}")
    n_pad = padded_size(n)
    x_pad = pad_rows(x, n_pad)
    row_bytes = max(3 * n_pad, 2 * k * d) * x.dtype.size
    tile = rows_per_tile(n_pad, row_bytes, memory_budget)
    program = specialised(_knn, n_pad, d, x.dtype, int(k), tile)
    idx, d2 = program(x_pad, tf.constant(n, tf.int32), int(k), tile)
    return idx[:n], d2[:n]
