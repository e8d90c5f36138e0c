"""New points on a fixed t-SNE map: the gradient descent of ``TSNE.transform``.

Each new point i is placed on its own against the fixed reference embedding (openTSNE's
``TSNEEmbedding.transform``, Poličar et al. 2019): its conditional affinities ``p_{j|i}`` to its
nearest reference points (rows summing to 1), the heavy-tailed similarities to *all* reference
points ``w_ij = (1 + |y_i - y_j|^2 / dof)^-dof`` normalised per point, ``q_{j|i} = w_ij / Z_i``,
and the descent of ``KL(P_i || Q_i)`` with the gradient in openTSNE's scale (no factor 2)::

    grad_i = exaggeration * sum_j p_{j|i} (1 + |y_i - y_j|^2 / dof)^-1 (y_i - y_j)
             - sum_j (1 + |y_i - y_j|^2 / dof)^-(dof + 1) (y_i - y_j) / Z_i

The attraction runs over the k neighbours, the repulsion and ``Z_i`` over every reference point
through a grid computed once per call (:func:`tfclust.tsne.fft.reference_grid`). The new points
do not interact with each other, so any number of them can be placed at once. The descent is
scikit-learn's (momentum, gains) with openTSNE's per-point gradient clipping, as one compiled
loop of a static trip count with no branch inside.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from tfclust._compile import specialised
from tfclust._device import use_deterministic_sums
from tfclust.tsne.fft import ReferenceGrid, grid_repulsion, reference_grid

__all__ = ["GRID_PADDING", "place_points", "placement_gradient"]

GRID_PADDING = 0.25
"""Room around the reference map (a fraction of its side) the new points may move in, as
openTSNE's ``prepare_interpolation_grid``; points are kept inside it."""

_MIN_GAIN = 0.01


def placement_gradient(
    y, neighbor_positions, p, grid: ReferenceGrid, stencil_size: int, dof, exaggeration
):
    """Gradient of each new point's ``KL(P_i || Q_i)`` against the reference (module docstring).

    Args:
      y: (N, d) positions of the new points.
      neighbor_positions: (N, k, d) positions of each point's reference neighbours.
      p: (N, k) their conditional affinities ``p_{j|i}`` (rows sum to 1; 0 on padding).
      grid: the reference points' potentials, :func:`~tfclust.tsne.fft.reference_grid`.
      stencil_size: nodes per axis of the interpolation stencil (as for ``grid``).
      dof: degrees of freedom of the kernel (Python float).
      exaggeration: scalar factor on P.

    Returns:
      (N, d) tensor of y's dtype.
    """
    diffs = y[:, tf.newaxis, :] - neighbor_positions
    sq = tf.reduce_sum(tf.square(diffs), axis=2)
    attractive = tf.reduce_sum((p / (1.0 + sq / dof))[:, :, tf.newaxis] * diffs, axis=1)
    repulsive, z = grid_repulsion(y, grid, stencil_size)
    return exaggeration * attractive - repulsive / tf.maximum(z, 1e-12)[:, tf.newaxis]


class _Descent(NamedTuple):
    y: tf.Tensor
    update: tf.Tensor
    gains: tf.Tensor


def _place(
    y0,
    neighbor_positions,
    p,
    reference,
    charge,
    learning_rate,
    exaggeration,
    momentum,
    max_grad_norm,
    *,
    n_iter: int,
    n_boxes: int,
    n_interpolation_points: int,
    stencil_size: int,
    dof: float,
    deterministic_sums: bool,
):
    grid = reference_grid(
        reference,
        charge,
        n_boxes=n_boxes,
        n_interpolation_points=n_interpolation_points,
        stencil_size=stencil_size,
        padding=GRID_PADDING,
        dof=dof,
        deterministic_sums=deterministic_sums,
    )
    lo = grid.lo
    hi = lo + grid.spacing * tf.cast(n_boxes * n_interpolation_points, y0.dtype)

    def body(i, state):
        grad = placement_gradient(
            state.y, neighbor_positions, p, grid, stencil_size, dof, exaggeration
        )
        norm = tf.norm(grad, axis=1, keepdims=True)
        grad = grad * tf.minimum(1.0, max_grad_norm / (norm + 1e-6))  # openTSNE's clipping
        gains = tf.where(state.update * grad < 0.0, state.gains + 0.2, state.gains * 0.8)
        gains = tf.maximum(gains, _MIN_GAIN)
        update = momentum * state.update - learning_rate * gains * grad
        return i + 1, _Descent(tf.clip_by_value(state.y + update, lo, hi), update, gains)

    state = _Descent(y0, tf.zeros_like(y0), tf.ones_like(y0))
    _, state = tf.while_loop(lambda i, _: i < n_iter, body, (tf.constant(0), state))
    return state.y


def place_points(
    y0,
    neighbor_positions,
    p,
    reference,
    charge,
    *,
    n_iter: int,
    learning_rate: float,
    exaggeration: float,
    momentum: float,
    max_grad_norm: float,
    n_boxes: int,
    n_interpolation_points: int,
    stencil_size: int,
    dof: float = 1.0,
    deterministic_sums: bool | None = None,
):
    """``n_iter`` iterations of the placement descent from ``y0``, the reference fixed.

    Args:
      y0: (N, d) float tensor, d in {1, 2}: initial positions of the new points.
      neighbor_positions: (N, k, d) positions of their reference neighbours.
      p: (N, k) conditional affinities to those neighbours (rows sum to 1).
      reference: (M, d) the reference embedding; ``charge`` (M,) 1 for its points, 0 for
        padding rows.
      n_iter: iterations (static: one compiled program per value).
      learning_rate, exaggeration, momentum: the descent's step, factor on P and momentum.
      max_grad_norm: each point's gradient is scaled down to at most this norm.
      n_boxes, n_interpolation_points, stencil_size: the reference grid (static).
      dof: degrees of freedom of the kernel.
      deterministic_sums: tabulate the reference grid in fixed point (see
        :func:`~tfclust.tsne.fft.reference_grid`); None (default): the device profile's.

    Returns:
      (N, d) tensor of y0's dtype: the placed points, inside the reference grid.
    """
    dtype = y0.dtype
    scalars = [
        tf.constant(v, dtype) for v in (learning_rate, exaggeration, momentum, max_grad_norm)
    ]
    sums = use_deterministic_sums(deterministic_sums)
    static = dict(
        n_iter=int(n_iter),
        n_boxes=int(n_boxes),
        n_interpolation_points=int(n_interpolation_points),
        stencil_size=int(stencil_size),
        dof=float(dof),
        deterministic_sums=bool(sums),
    )
    key = (dtype, tuple(neighbor_positions.shape), tuple(reference.shape), *static.values())
    return specialised(_place, *key)(
        y0,
        neighbor_positions,
        p,
        reference,
        charge,
        *scalars,
        **static,
    )
