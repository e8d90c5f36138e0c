"""Row tiling and pairwise squared distances for the XLA kernels.

Pairwise work between an (n, d) matrix and an (m, d) matrix is done ``tile`` rows at a time, so
peak memory is ``tile * m`` elements instead of ``n * m``. Tiles have a static size (the input is
padded up to a multiple of it) so that XLA compiles one program for every tile.
"""

from __future__ import annotations

import math

import tensorflow as tf

from tfclust._device import device_profile
from tfclust._precision import matmul

_MIN_BUCKET = 8


def padded_size(n: int) -> int:
    """The size bucket of ``n`` rows: the smallest ``m * 2**e >= n`` with m in 4..8.

    Kernels compile for the bucket and mask the padding rows, so every N of a bucket shares one
    compiled program; at most 25% of the rows (12% on average) are padding. 8 below 8.
    """
    if n <= _MIN_BUCKET:
        return _MIN_BUCKET
    step = 2 ** (int(n).bit_length() - 3)
    return -(-int(n) // step) * step


def pad_rows(x, n_rows: int):
    """``x`` (n, ...) followed by zero rows up to ``n_rows``; a tensor of x's dtype."""
    x = tf.convert_to_tensor(x)
    pad = n_rows - x.shape[0]
    if pad < 0:
        raise ValueError(f"cannot pad {x.shape[0]} rows down to {n_rows}")
    return tf.pad(x, [[0, pad]] + [[0, 0]] * (x.shape.rank - 1)) if pad else x


def squared_distances(x: tf.Tensor, y: tf.Tensor, y_sq_norms: tf.Tensor | None = None) -> tf.Tensor:
    """Squared euclidean distances ``|x|^2 - 2 x.y + |y|^2``, clamped at zero.

    Args:
      x: (n, d) float tensor.
      y: (m, d) float tensor of the same dtype.
      y_sq_norms: optional precomputed (m,) squared norms of ``y`` (saves work in loops).

    Returns:
      (n, m) tensor of squared distances, same dtype as ``x``.
    """
    x_sq = tf.reduce_sum(tf.square(x), axis=1, keepdims=True)
    if y_sq_norms is None:
        y_sq_norms = tf.reduce_sum(tf.square(y), axis=1)
    d2 = x_sq - 2.0 * matmul(x, y, transpose_b=True) + y_sq_norms[tf.newaxis, :]
    return tf.maximum(d2, tf.zeros((), d2.dtype))


def memory_budget_bytes(memory_budget: int | None = None) -> int:
    """``memory_budget``, or when None the device profile's (256 MiB on a CPU, 2 GiB on a GPU or
    TPU; ``tfclust._device``): the bytes one tile of pairwise work may take."""
    return device_profile().memory_budget if memory_budget is None else int(memory_budget)


def rows_per_tile(n_rows: int, row_bytes: int, memory_budget: int | None = None) -> int:
    """How many rows of ``row_bytes`` bytes each fit in ``memory_budget`` (None: the device
    profile's, :func:`memory_budget_bytes`), at most ``n_rows``.

    Tiles whose size does not divide ``n_rows`` are evened out (e.g. 60,000 rows under a budget of
    25,000 become three tiles of 20,000) so that little padding is wasted.
    """
    if n_rows < 1:
        raise ValueError(f"n_rows must be >= 1, got {n_rows}")
    max_rows = max(1, memory_budget_bytes(memory_budget) // max(1, int(row_bytes)))
    if max_rows >= n_rows:
        return n_rows
    n_tiles = math.ceil(n_rows / max_rows)
    return math.ceil(n_rows / n_tiles)


def map_row_tiles(fn, x, tile: int, fn_output_signature):
    """Apply ``fn`` to consecutive ``tile``-row blocks of ``x`` and concatenate the results.

    Runs as one ``tf.while_loop`` with a single counter, so XLA knows its trip count (no host
    round trip per tile on an accelerator; ``tf.map_fn``'s loop has two counters, whose trip
    count XLA could not prove). The last block is zero-padded; its padded rows are dropped from
    the output.

    Args:
      fn: maps a (tile, ...) tensor (or the nest of such blocks, when ``x`` is a nest) to a
        tensor or nest of tensors with leading dimension tile.
      x: (n, ...) tensor with a static first dimension, or a nest (tuple, list, dict) of such
        tensors that all have the same first dimension n; row i of every tensor goes in the
        same block.
      tile: rows per block (a Python int).
      fn_output_signature: as for ``tf.map_fn``: the per-block output's ``tf.TensorSpec``s.

    Returns:
      The blocks' outputs concatenated along axis 0 and trimmed to n rows.
    """
    n = tf.nest.flatten(x)[0].shape[0]
    n_tiles = -(-n // tile)
    pad = n_tiles * tile - n

    def blocks(t):
        if t.shape[0] != n:
            raise ValueError(f"all tensors of x need {n} rows, got shape {t.shape}")
        padded = tf.pad(t, [[0, pad]] + [[0, 0]] * (t.shape.rank - 1)) if pad else t
        return tf.reshape(padded, [n_tiles, tile] + t.shape[1:].as_list())

    tiles = tf.nest.map_structure(blocks, x)
    outputs = tf.nest.map_structure(
        lambda spec: tf.TensorArray(spec.dtype, size=n_tiles, element_shape=spec.shape),
        fn_output_signature,
    )

    def body(t, outputs):
        result = fn(tf.nest.map_structure(lambda b: tf.gather(b, t), tiles))
        return t + 1, tf.nest.map_structure(lambda ta, r: ta.write(t, r), outputs, result)

    _, outputs = tf.while_loop(lambda t, _: t < n_tiles, body, (tf.constant(0), outputs))
    return tf.nest.map_structure(
        lambda ta: tf.reshape(ta.stack(), [n_tiles * tile] + ta.element_shape[1:].as_list())[:n],
        outputs,
    )
