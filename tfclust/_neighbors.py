"""Exact k nearest neighbours in row tiles, shared by t-SNE's affinities and the embedding
metrics: distances to every row (matmul form for the euclidean family, broadcast differences for
manhattan and chebyshev, rows of the matrix for precomputed distances), the k smallest per tile
(``_selection.smallest_k``), and the selected distances recomputed by differences. Memory grows
with ``tile * N``, never with ``N ** 2``.

Metrics (scikit-learn's names): ``"euclidean"``, ``"sqeuclidean"``, ``"cosine"`` (euclidean on
the L2-normalised rows; a zero row is at distance 1 from every other, as scikit-learn),
``"manhattan"``, ``"chebyshev"`` and ``"precomputed"`` (x is the (N, N) distance matrix). The
kernels return *squared* metric distances ``d(x_i, x_j) ** 2``, the quantity t-SNE's Gaussians
use (scikit-learn squares every metric's distances, ``"sqeuclidean"``'s included).
"""

from __future__ import annotations

import math

import tensorflow as tf

from tfclust._compile import specialised
from tfclust._device import device_profile
from tfclust._selection import smallest_k
from tfclust._tiling import (
    map_row_tiles,
    pad_rows,
    padded_size,
    rows_per_tile,
    squared_distances,
)

METRICS = ("euclidean", "sqeuclidean", "cosine", "manhattan", "chebyshev", "precomputed")
"""The metrics the kernels compute (see the module docstring)."""

_MATMUL_METRICS = ("euclidean", "sqeuclidean", "cosine")
"""The metrics whose distances are euclidean ones of prepared rows (:func:`prepared`)."""


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


def prepared(x, metric: str, n_valid=None):
    """What :func:`metric_distances` compares for ``metric``: ``(x', sq_norms, ids)``, x' the
    centred rows (euclidean family), the L2-normalised rows (cosine; zero rows stay zero) or
    ``x`` itself (other metrics, and ``"precomputed"``, whose x is the distance matrix)."""
    if metric == "cosine":
        x = tf.math.l2_normalize(x, axis=1)  # a zero row stays zero
        return x, tf.reduce_sum(tf.square(x), axis=1), tf.range(x.shape[0])
    if metric in _MATMUL_METRICS:
        return centred_with_norms(x, n_valid)
    return x, tf.zeros([x.shape[0]], x.dtype), tf.range(x.shape[0])


def _from_squared_euclidean(d2, metric: str, rows_sq, cols_sq):
    """Squared ``metric`` distances from squared euclidean ones of prepared rows."""
    if metric == "sqeuclidean":
        return tf.square(d2)
    if metric == "cosine":  # |a - b|^2 / 2 = 1 - cos for unit rows; 1 against a zero row
        both = (rows_sq > 0.0) & (cols_sq > 0.0)
        return tf.square(tf.where(both, tf.minimum(d2 / 2.0, 2.0), tf.ones_like(d2)))
    return d2


def _from_differences(diff, metric: str):
    """Squared ``metric`` distances of the difference vectors ``diff`` (..., D)."""
    if metric == "manhattan":
        return tf.square(tf.reduce_sum(tf.abs(diff), axis=-1))
    if metric == "chebyshev":
        return tf.square(tf.reduce_max(tf.abs(diff), axis=-1))
    return tf.reduce_sum(tf.square(diff), axis=-1)


def metric_distances(rows, x, x_sq, metric: str):
    """(tile, N) squared ``metric`` distances from the (tile, D) ``rows`` to the N rows of
    ``x``, both from :func:`prepared` (``x_sq`` its squared norms); for ``"precomputed"``,
    ``rows`` are rows of the distance matrix (``x`` unused). Traceable."""
    if metric == "precomputed":
        return tf.square(rows)
    if metric in _MATMUL_METRICS:
        rows_sq = tf.reduce_sum(tf.square(rows), axis=1)
        d2 = squared_distances(rows, x, x_sq)
        return _from_squared_euclidean(d2, metric, rows_sq[:, None], x_sq[None, :])
    return _from_differences(rows[:, None, :] - x[None, :, :], metric)


def metric_row_bytes(metric: str, n: int, d: int, itemsize: int) -> int:
    """Bytes of :func:`metric_distances`' temporaries per row against ``n`` rows of ``d``
    features: (n,) rows, and (n, d) differences for manhattan and chebyshev."""
    return n * itemsize * (1 + (d if metric in ("manhattan", "chebyshev") else 0))


def _search(x, x_sq, cols, excluded, k: int, metric: str):
    """The tile search of :func:`_knn` and :func:`_knn_to`: ``block((rows, ids)) -> (idx,
    sq_distances)``, the k nearest of the prepared ``x`` to each row, skipping its own id and the
    ``excluded`` (1, N) columns."""

    def block(args):
        rows, ids = args
        d2 = metric_distances(rows, x, x_sq, metric)
        d2 = tf.where(
            (ids[:, None] == cols[None, :]) | excluded, tf.constant(math.inf, x.dtype), d2
        )
        # Selected on float32 keys: XLA's CPU top-k is fast for float32 only (float64 keys made
        # a 20,000-point kNN 70x slower); the selected distances are then recomputed.
        idx = smallest_k(tf.cast(d2, tf.float32), k)
        if metric == "precomputed":
            return idx, tf.gather(d2, idx, batch_dims=1)
        return idx, recomputed_distances(rows, x, x_sq, idx, metric)

    return block


def recomputed_distances(rows, x, x_sq, idx, metric: str):
    """(tile, k) squared ``metric`` distances from the (tile, D) ``rows`` to the rows ``idx``
    (tile, k) of ``x`` (prepared as the rows, ``x_sq`` its squared norms), by differences: the
    matmul form loses digits to cancellation exactly where neighbours are close. Traceable."""
    near = _from_differences(rows[:, None, :] - tf.gather(x, idx), metric)
    if metric in _MATMUL_METRICS:
        rows_sq = tf.reduce_sum(tf.square(rows), axis=1)
        near = _from_squared_euclidean(near, metric, rows_sq[:, None], tf.gather(x_sq, idx))
    return near


def _signature(tile: int, k: int, dtype):
    return (tf.TensorSpec([tile, k], tf.int32), tf.TensorSpec([tile, k], dtype))


def _knn(x, n_valid, k: int, tile: int, metric: str):
    x, x_sq, cols = prepared(x, metric, n_valid)
    # The rows from n_valid on are padding (a size bucket): no point's neighbour.
    excluded = cols[None, :] >= n_valid
    block = _search(x, x_sq, cols, excluded, k, metric)
    return map_row_tiles(block, (x, cols), tile, fn_output_signature=_signature(tile, k, x.dtype))


def _knn_to(queries, x, n_valid, k: int, tile: int, metric: str):
    if metric in _MATMUL_METRICS and metric != "cosine":  # centred as the reference rows
        valid = tf.cast(tf.range(x.shape[0]) < n_valid, x.dtype)[:, None]
        queries = queries - tf.reduce_sum(x * valid, axis=0) / tf.cast(n_valid, x.dtype)
    elif metric == "cosine":
        queries = tf.math.l2_normalize(queries, axis=1)
    x, x_sq, cols = prepared(x, metric, n_valid)
    excluded = cols[None, :] >= n_valid
    ids = tf.fill([queries.shape[0]], tf.constant(-1, tf.int32))  # no query is a reference row
    block = _search(x, x_sq, cols, excluded, k, metric)
    return map_row_tiles(
        block, (queries, ids), tile, fn_output_signature=_signature(tile, k, x.dtype)
    )


def _search_tile(n_queries: int, n: int, d: int, k: int, metric: str, dtype, memory_budget: int):
    """Query rows per tile of the k-NN search against ``n`` reference rows of ``d`` features, at
    most the device profile's ``knn_max_tile`` (on a CPU 512: one tile of all rows ran 12-27x
    slower than 136-273-row tiles, 1,000-4,000 queries against 2,000-5,000 points)."""
    row_bytes = max(2 * n + metric_row_bytes(metric, n, d, 1), 2 * k * d) * dtype.size
    return min(rows_per_tile(n_queries, row_bytes, memory_budget), device_profile().knn_max_tile)


def nearest_neighbors(x, k: int, memory_budget: int | None = None, metric: str = "euclidean"):
    """Exact k nearest neighbours of every point among the others.

    The search runs on the rows padded to their size bucket (``_tiling.padded_size``), so every
    N of a bucket shares one compiled program.

    Args:
      x: (N, D) float32/float64 tensor; for ``metric="precomputed"``, the (N, N) distances.
      k: neighbours per point, 1 <= k <= N - 1.
      memory_budget: bytes a tile of pairwise work may take (default None: the
        device profile's, ``_tiling.memory_budget_bytes``).
      metric: one of :data:`METRICS` (default ``"euclidean"``).

    Returns:
      ``(indices, sq_distances)``: (N, k) int32 and (N, k) x.dtype, the squared ``metric``
      distances, nearest first as ranked by them rounded to float32; ties (there) go to the
      lower index.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    n, d = x.shape
    if not 1 <= k <= n - 1:
        raise ValueError(f"k must be in [1, {n - 1}], got {k}")
    n_pad = padded_size(n)
    x_pad = pad_rows(x, n_pad)
    if metric == "precomputed":  # padding columns too, excluded from the search
        x_pad = tf.pad(x_pad, [[0, 0], [0, n_pad - n]])
        d = n_pad
    tile = _search_tile(n_pad, n_pad, d, k, metric, x.dtype, memory_budget)
    program = specialised(_knn, n_pad, d, x.dtype, int(k), tile, metric)
    idx, d2 = program(x_pad, tf.constant(n, tf.int32), int(k), tile, metric)
    return idx[:n], d2[:n]


def nearest_reference_neighbors(
    queries, x, k: int, memory_budget: int | None = None, metric: str = "euclidean"
):
    """Exact k nearest neighbours of every query among the rows of ``x`` (the reference).

    As :func:`nearest_neighbors`, for points that are not in ``x`` (t-SNE's ``transform``); the
    queries and the reference are padded to their size buckets (one compiled program per pair).

    Args:
      queries: (Q, D) float tensor of x's dtype; for ``metric="precomputed"``, the (Q, N)
        distances from each query to the N reference rows (``x`` then only gives N).
      x: (N, D) float32/float64 tensor, the reference.
      k: neighbours per query, 1 <= k <= N.
      memory_budget: bytes a tile of pairwise work may take (default None: the
        device profile's, ``_tiling.memory_budget_bytes``).
      metric: one of :data:`METRICS` (default ``"euclidean"``).

    Returns:
      ``(indices, sq_distances)``: (Q, k) int32 rows of ``x`` and (Q, k) squared ``metric``
      distances of x's dtype, nearest first (ranked as in :func:`nearest_neighbors`).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    (q, d), n = queries.shape, x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    n_pad, q_pad = padded_size(n), padded_size(q)
    queries = pad_rows(queries, q_pad)
    x = pad_rows(x, n_pad)
    if metric == "precomputed":  # the reference's padding columns, excluded from the search
        queries = tf.pad(queries, [[0, 0], [0, n_pad - n]])
        x = tf.zeros([n_pad, 1], x.dtype)
        d = n_pad
    tile = _search_tile(q_pad, n_pad, d, k, metric, x.dtype, memory_budget)
    program = specialised(_knn_to, q_pad, n_pad, d, x.dtype, int(k), tile, metric)
    idx, d2 = program(queries, x, tf.constant(n, tf.int32), int(k), tile, metric)
    return idx[:q], d2[:q]
