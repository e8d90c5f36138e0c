"""The k smallest keys of each row without sorting whole rows, for the k-NN searches.

``tf.math.top_k`` sorts whole rows on XLA:GPU above k = 16 and calls a comparator per entry on
XLA:CPU (about 9.7 of the 14.4 s of the 60,000-point, k = 91 search on this project's CPU).
:func:`smallest_k` selects in two smaller steps: the rows are cut into blocks of ``width``
columns, the k blocks with the smallest minima are chosen, and the k smallest keys are taken
among those blocks' ``k * width`` keys: ``n / width + k * width`` keys per row, about
``2 * sqrt(n * k)``, instead of n. The result is the same as one ``top_k``: every
key of the k smallest lies in a block whose minimum is among the k smallest minima (else k
blocks would each hold a key before it), and ties keep ``top_k``'s order (docs/accelerators.md,
"k-NN selection").
"""

from __future__ import annotations

import math

import tensorflow as tf

MIN_BLOCK_WIDTH = 16
"""Rows of fewer than ``MIN_BLOCK_WIDTH ** 2 * k`` keys are selected by one ``top_k``: on this
project's CPU the two steps gained nothing at 20,000 keys and k = 91 (width 14), and 1.3x at
65,536 (docs/accelerators.md, "k-NN selection")."""


def block_width(n: int, k: int) -> int:
    """Columns per block of :func:`smallest_k` for rows of ``n`` keys: ``floor(sqrt(n / k))``,
    which makes both steps about ``sqrt(n * k)`` keys; 1 (one ``top_k``) below
    :data:`MIN_BLOCK_WIDTH`."""
    width = math.isqrt(n // k)
    return width if width >= MIN_BLOCK_WIDTH else 1


def smallest_k(keys, k: int):
    """Column indices of the k smallest keys of each row, smallest first.

    Args:
      keys: (T, n) float32 tensor, n >= k (+inf for columns not to choose: they come last).
      k: keys per row (a Python int).

    Returns:
      (T, k) int32 column indices, ordered as ``tf.math.top_k(-keys, k)`` orders them: by key,
      ties to the lower column. Traceable; static shapes.
    """
    rows, n = keys.shape
    width = block_width(n, k)
    if width == 1:
        return tf.math.top_k(-keys, k=k, sorted=True).indices
    n_blocks = -(-n // width)
    padded = tf.pad(keys, [[0, 0], [0, n_blocks * width - n]], constant_values=math.inf)
    blocks = tf.reshape(padded, [rows, n_blocks, width])
    chosen = tf.math.top_k(-tf.reduce_min(blocks, axis=2), k=k, sorted=False).indices
    # In column order, so that ties among the candidates go to the lower column.
    chosen = tf.gather(
        chosen, tf.math.top_k(-tf.cast(chosen, tf.float32), k=k).indices, batch_dims=1
    )
    candidates = tf.reshape(tf.gather(blocks, chosen, batch_dims=1), [rows, k * width])
    picked = tf.math.top_k(-candidates, k=k, sorted=True).indices
    return tf.gather(chosen, picked // width, batch_dims=1) * width + picked % width
