"""Input-space affinities of t-SNE: perplexity calibration and the joint probabilities P.

Conventions are scikit-learn's (``sklearn.manifold._t_sne`` and ``_utils.pyx``): squared
distances (euclidean by default; any metric of :data:`tfclust._neighbors.METRICS`, whose
distances are squared as scikit-learn squares them), a Gaussian per point whose precision
``beta`` (1 / (2 sigma^2)) is found by bisection so that the conditional distribution has the
requested perplexity, then ``P = (P_cond + P_cond^T) / sum``.

Two forms:

* dense (``joint_probabilities``): all pairs, an (N, N) matrix, for ``method="exact"``;
* sparse (``joint_probabilities_nn``): each point's ``k = min(N - 1, 3 * perplexity + 1)``
  nearest neighbours, found exactly (tiled matmul distances + ``tf.math.top_k``), and P as a
  ``tf.SparseTensor``, for the interpolation-based method.

Every kernel works on row tiles so that peak memory is ``tile * N`` elements (plus, for the
dense form, the (N, N) result itself).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfclust._compile import compiled, specialised
from tfclust._neighbors import metric_distances, metric_row_bytes, nearest_neighbors, prepared
from tfclust._tiling import map_row_tiles, padded_size, rows_per_tile

__all__ = [
    "MACHINE_EPSILON",
    "binary_search_perplexity",
    "bucketed_conditionals",
    "calibrated_conditionals",
    "conditional_probabilities",
    "dense_calibrated_conditionals",
    "joint_probabilities",
    "joint_probabilities_from_neighbors",
    "joint_probabilities_nn",
    "symmetrised",
    "n_neighbors_for_perplexity",
    "nearest_neighbors",
]

MACHINE_EPSILON = float(np.finfo(np.float64).eps)
"""Floor of the dense P and of Q, as scikit-learn's ``MACHINE_EPSILON``."""

# sklearn's _utils.pyx declares these as C floats, so they are float32-rounded there.
_PERPLEXITY_TOLERANCE = float(np.float32(1e-5))
_EMPTY_ROW_SUM = float(np.float32(1e-8))
_N_STEPS = 100


def n_neighbors_for_perplexity(n_samples: int, perplexity: float) -> int:
    """Neighbours per point of the sparse P: ``min(n_samples - 1, int(3 * perplexity + 1))``."""
    return min(n_samples - 1, int(3.0 * perplexity + 1))


def _entropy_and_p(sq_distances, beta, keep):
    """Normalised Gaussian row distributions and their entropies (nats) for precisions ``beta``."""
    p = tf.exp(-sq_distances * beta[:, None])
    if keep is not None:
        p = tf.where(keep, p, tf.zeros_like(p))
    sum_p = tf.reduce_sum(p, axis=1)
    sum_p = tf.where(sum_p == 0.0, tf.cast(_EMPTY_ROW_SUM, p.dtype), sum_p)
    p = p / sum_p[:, None]
    entropy = tf.math.log(sum_p) + beta * tf.reduce_sum(sq_distances * p, axis=1)
    return p, entropy


def binary_search_perplexity(sq_distances, perplexity, keep=None):
    """Conditional probabilities ``p_{j|i}`` whose rows have the given perplexity: the first
    part of :func:`calibrated_conditionals`' result (see there)."""
    return calibrated_conditionals(sq_distances, perplexity, keep)[0]


class _Bisection(NamedTuple):
    """State of :func:`calibrated_conditionals`' loop: the step, each row's precision, its
    bracket and whether it converged."""

    step: tf.Tensor
    beta: tf.Tensor
    beta_min: tf.Tensor
    beta_max: tf.Tensor
    done: tf.Tensor


def calibrated_conditionals(sq_distances, perplexity, keep=None):
    """Conditional probabilities ``p_{j|i}`` whose rows have the given perplexity, and the
    Gaussians' precisions.

    All rows are searched at once in one ``tf.while_loop`` of 100 steps: each row's precision
    starts at 1 and is doubled/halved until bracketed, then bisected, until its entropy is
    within 1e-5 nats of ``log(perplexity)`` (then frozen) or the 100 steps have run
    (scikit-learn's ``_binary_search_perplexity``, step for step). The trip count is static,
    so that an accelerator needs no host round trip per step. Traceable inside
    ``jit_compile`` functions.

    Args:
      sq_distances: (rows, k) float tensor, squared distances from each row's point to its
        candidates (all points, or its nearest neighbours).
      perplexity: scalar, the desired perplexity (> 0).
      keep: optional (rows, k) bool tensor; False entries (the point itself, in the dense
        form) get probability 0 and do not count.

    Returns:
      ``(p, beta)``: (rows, k) tensor of the same dtype, every row summing to 1 (or all 0 if
      every candidate underflowed, as in scikit-learn), and the (rows,) precisions
      ``beta = 1 / (2 sigma^2)`` (scikit-learn's verbose "Mean sigma" is the mean of
      ``sqrt(1 / beta)``).
    """
    dtype = sq_distances.dtype
    rows = tf.shape(sq_distances)[0]
    target = tf.math.log(tf.cast(perplexity, dtype))
    inf = tf.fill([rows], tf.constant(math.inf, dtype))

    def body(st: _Bisection):
        _, entropy = _entropy_and_p(sq_distances, st.beta, keep)
        diff = entropy - target
        done = tf.logical_or(st.done, tf.abs(diff) <= _PERPLEXITY_TOLERANCE)
        too_flat = diff > 0.0  # entropy too high: sharpen (raise beta)
        new_min = tf.where(too_flat, st.beta, st.beta_min)
        new_max = tf.where(too_flat, st.beta_max, st.beta)
        up = tf.where(tf.math.is_inf(new_max), st.beta * 2.0, (st.beta + new_max) / 2.0)
        down = tf.where(tf.math.is_inf(new_min), st.beta / 2.0, (st.beta + new_min) / 2.0)
        new_beta = tf.where(too_flat, up, down)
        # Converged rows freeze the precision their P is computed with; after the last step
        # the others also keep the precision of that step, as scikit-learn's loop does.
        freeze = tf.logical_or(done, st.step + 1 >= _N_STEPS)
        return (
            _Bisection(
                st.step + 1,
                tf.where(freeze, st.beta, new_beta),
                tf.where(freeze, st.beta_min, new_min),
                tf.where(freeze, st.beta_max, new_max),
                done,
            ),
        )

    start = _Bisection(tf.constant(0), tf.ones([rows], dtype), -inf, inf, tf.zeros([rows], tf.bool))
    (state,) = tf.while_loop(lambda st: st.step < _N_STEPS, body, (start,))
    beta = state.beta
    p, _ = _entropy_and_p(sq_distances, beta, keep)
    return p, beta


def bucketed_conditionals(sq_distances, perplexity: float):
    """:func:`calibrated_conditionals` of k-NN distances, compiled once per size bucket.

    The search runs on the rows padded to their size bucket (``_tiling.padded_size``), so every
    N of a bucket shares one compiled program; the padding rows search at the last row's
    distances, so that they converge with it, and are dropped.

    Args:
      sq_distances: (N, k) float tensor, N >= 1, squared distances to each point's neighbours.
      perplexity: the desired perplexity (> 0).

    Returns:
      ``(p_cond, beta)``: (N, k) and (N,) tensors of sq_distances' dtype.
    """
    sq_distances = tf.convert_to_tensor(sq_distances)
    n, k = sq_distances.shape
    n_pad = padded_size(n)
    padded = tf.gather(sq_distances, tf.minimum(tf.range(n_pad), n - 1))
    search = specialised(calibrated_conditionals, n_pad, k, sq_distances.dtype)
    p_cond, beta = search(padded, tf.constant(perplexity, sq_distances.dtype))
    return p_cond[:n], beta[:n]


@compiled
def _conditional_dense(x, perplexity, tile: int, metric: str):
    x, x_sq, cols = prepared(x, metric)
    n = x.shape[0]

    def block(args):
        rows, ids = args
        d2 = metric_distances(rows, x, x_sq, metric)
        return calibrated_conditionals(d2, perplexity, keep=ids[:, None] != cols[None, :])

    return map_row_tiles(
        block,
        (x, cols),
        tile,
        fn_output_signature=(tf.TensorSpec([tile, n], x.dtype), tf.TensorSpec([tile], x.dtype)),
    )


def conditional_probabilities(
    x, perplexity: float, memory_budget: int | None = None, metric: str = "euclidean"
):
    """Dense conditional probabilities ``p_{j|i}`` over all other points: the first part of
    :func:`dense_calibrated_conditionals`' result (see there)."""
    return dense_calibrated_conditionals(x, perplexity, memory_budget, metric)[0]


def dense_calibrated_conditionals(
    x, perplexity: float, memory_budget: int | None = None, metric: str = "euclidean"
):
    """Dense conditional probabilities ``p_{j|i}`` over all other points, and the precisions.

    Args:
      x: (N, D) float32/float64 tensor (validated by the caller); for
        ``metric="precomputed"``, the (N, N) distance matrix.
      perplexity: desired perplexity, 0 < perplexity < N.
      memory_budget: bytes a tile of pairwise work may take (default None: the
        device profile's, ``_tiling.memory_budget_bytes``).
      metric: one of :data:`tfclust._neighbors.METRICS` (default ``"euclidean"``); the
        Gaussians are on the squared metric distances, as scikit-learn's.

    Returns:
      ``(p_cond, beta)`` as :func:`calibrated_conditionals`: (N, N) tensor of x's dtype, zero
      diagonal, rows summing to 1, and the (N,) precisions.
    """
    n, d = x.shape
    row_bytes = (3 * n + metric_row_bytes(metric, n, d, 1)) * x.dtype.size
    tile = rows_per_tile(n, row_bytes, memory_budget)
    return _conditional_dense(x, tf.constant(perplexity, x.dtype), tile, metric)


@compiled
def symmetrised(p_cond):
    """Dense joint P from (N, N) conditional probabilities (see :func:`joint_probabilities`)."""
    p = p_cond + tf.transpose(p_cond)
    total = tf.maximum(tf.reduce_sum(p), MACHINE_EPSILON)
    p = tf.maximum(p / total, MACHINE_EPSILON)
    return tf.linalg.set_diag(p, tf.zeros([p.shape[0]], p.dtype))


def joint_probabilities(x, perplexity: float, memory_budget: int | None = None):
    """Dense joint probabilities ``P`` of t-SNE's exact method.

    ``P = max((P_cond + P_cond^T) / sum, MACHINE_EPSILON)`` off the diagonal and 0 on it: the
    square form of scikit-learn's ``_joint_probabilities`` (which returns the condensed form).

    Args:
      x: (N, D) float32/float64 tensor, N >= 2.
      perplexity: desired perplexity, 0 < perplexity < N.
      memory_budget: bytes a tile of pairwise work may take (default None: the
        device profile's, ``_tiling.memory_budget_bytes``).

    Returns:
      (N, N) symmetric tensor of x's dtype summing to 1 (up to the floor).
    """
    return symmetrised(conditional_probabilities(x, perplexity, memory_budget))


@compiled
def _conditional_nn(sq_distances, perplexity, tile: int):
    return map_row_tiles(
        lambda d2: binary_search_perplexity(d2, perplexity),
        sq_distances,
        tile,
        fn_output_signature=tf.TensorSpec([tile, sq_distances.shape[1]], sq_distances.dtype),
    )


def joint_probabilities_from_neighbors(
    indices, sq_distances, perplexity: float, memory_budget: int | None = None
) -> tf.SparseTensor:
    """Sparse joint probabilities from a k-nearest-neighbour graph.

    The conditional distribution of point i is restricted to its k neighbours; then
    ``P = (P_cond + P_cond^T) / sum`` with the sparse sum merging pairs that are neighbours both
    ways. No floor (as scikit-learn's ``_joint_probabilities_nn``).

    Args:
      indices: (N, k) integer tensor, the neighbours of each point (not the point itself).
      sq_distances: (N, k) float tensor, the matching squared distances.
      perplexity: desired perplexity (> 0).
      memory_budget: bytes a tile of the search may take (default None: the
        device profile's, ``_tiling.memory_budget_bytes``).

    Returns:
      (N, N) ``tf.SparseTensor`` of sq_distances' dtype, indices in row-major order, symmetric,
      values summing to 1.
    """
    sq_distances = tf.convert_to_tensor(sq_distances)
    n, k = sq_distances.shape
    tile = rows_per_tile(n, 4 * k * sq_distances.dtype.size, memory_budget)
    p_cond = _conditional_nn(sq_distances, tf.constant(perplexity, sq_distances.dtype), tile)
    rows = tf.repeat(tf.range(n, dtype=tf.int64), k)
    cols = tf.reshape(tf.cast(indices, tf.int64), [-1])
    cond = tf.sparse.reorder(
        tf.SparseTensor(tf.stack([rows, cols], axis=1), tf.reshape(p_cond, [-1]), [n, n])
    )
    p = tf.sparse.add(cond, tf.sparse.reorder(tf.sparse.transpose(cond)))
    total = tf.maximum(tf.reduce_sum(p.values), MACHINE_EPSILON)
    return tf.SparseTensor(p.indices, p.values / total, p.dense_shape)


def joint_probabilities_nn(
    x, perplexity: float, memory_budget: int | None = None
) -> tf.SparseTensor:
    """Sparse joint probabilities over each point's ``3 * perplexity + 1`` nearest neighbours.

    Args:
      x: (N, D) float32/float64 tensor, N >= 2.
      perplexity: desired perplexity, 0 < perplexity < N.
      memory_budget: bytes a tile of pairwise work may take (default None: the
        device profile's, ``_tiling.memory_budget_bytes``).

    Returns:
      (N, N) ``tf.SparseTensor`` as :func:`joint_probabilities_from_neighbors`.
    """
    k = n_neighbors_for_perplexity(x.shape[0], perplexity)
    indices, sq_distances = nearest_neighbors(x, k, memory_budget)
    return joint_probabilities_from_neighbors(indices, sq_distances, perplexity, memory_budget)
