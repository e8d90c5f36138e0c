"""KL divergence of t-SNE and its gradient, split into attractive and repulsive forces.

With the heavy-tailed kernel of scikit-learn (``dof`` degrees of freedom, ``dof = 1`` is the
Cauchy kernel of standard t-SNE)::

    w_ij = (1 + |y_i - y_j|^2 / dof) ^ (-(dof + 1) / 2)       Z = sum_{i != j} w_ij
    attractive_i = sum_j p_ij w_ij (y_i - y_j)
    repulsive_i  = sum_j w_ij^2 (y_i - y_j)
    dC/dy_i      = c (exaggeration * attractive_i - repulsive_i / Z),  c = 2 (dof + 1) / dof

This is scikit-learn's ``_kl_divergence`` gradient ``c sum_j (p_ij - q_ij) w_ij (y_i - y_j)``
with ``q_ij = w_ij / Z`` (scikit-learn floors q at 2.2e-16 first; the floor only matters for
pairs whose force is below round-off, and the KL divergence here keeps it). Keeping the two
halves apart is what lets another method plug in: the attraction only needs P's non-zeros
(:func:`sparse_attractive_forces`), while the repulsion and Z may come from an approximation
(FFT interpolation) instead of the all-pairs sums of :class:`ExactObjective`.

An *objective* is a hashable object with two traceable methods, used by
:mod:`tfclust.tsne.optimize` inside its compiled descent loop::

    gradient(y, exaggeration, *operands) -> (N, d) gradient of the KL divergence
    kl_divergence(y, exaggeration, *operands) -> scalar KL(exaggeration * P || Q), nats

``operands`` are the tensors it needs (e.g. P), passed as arguments so that they are not baked
into the compiled program as constants.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from tfclust._tiling import DEFAULT_MEMORY_BUDGET, map_row_tiles, rows_per_tile
from tfclust.tsne.affinities import MACHINE_EPSILON

__all__ = [
    "ExactObjective",
    "degrees_of_freedom",
    "kl_gradient",
    "sparse_attractive_forces",
    "sparse_kl_divergence",
    "student_t_kernel",
]

# XLA:CPU materialises each tile's (tile, N) temporaries, so moderate tiles beat one huge tile
# (CPU time per gradient at N=2,500: ~10 ms with 280-row tiles, ~18 ms with one 2,500-row tile).
_TILE_CAP_BYTES = 16 * 2**20


def degrees_of_freedom(n_components: int) -> float:
    """scikit-learn's degrees of freedom of the Student-t kernel: ``max(n_components - 1, 1)``."""
    return float(max(n_components - 1, 1))


def student_t_kernel(sq_distances, dof: float):
    """Unnormalised similarities ``(1 + d^2 / dof) ^ (-(dof + 1) / 2)``; ``dof`` a Python float."""
    if dof == 1.0:
        return 1.0 / (1.0 + sq_distances)
    return tf.pow(1.0 + sq_distances / dof, -(dof + 1.0) / 2.0)


def kl_gradient(attractive, repulsive, z, dof: float, exaggeration):
    """Gradient of the KL divergence from its two halves (see the module docstring).

    Args:
      attractive: (N, d) attractive forces of the un-exaggerated P.
      repulsive: (N, d) unnormalised repulsive forces.
      z: scalar normaliser ``sum_{i != j} w_ij``.
      dof: degrees of freedom (Python float).
      exaggeration: scalar factor on P (early exaggeration).

    Returns:
      (N, d) gradient, dtype of the forces.
    """
    c = 2.0 * (dof + 1.0) / dof
    return c * (exaggeration * attractive - repulsive / z)


def _edge_kernel(y, indices, dof):
    rows, cols = indices[:, 0], indices[:, 1]
    diff = tf.gather(y, rows) - tf.gather(y, cols)
    return rows, diff, student_t_kernel(tf.reduce_sum(tf.square(diff), axis=1), dof)


def sparse_attractive_forces(y, indices, values, dof: float):
    """Attractive forces ``sum_j p_ij w_ij (y_i - y_j)`` over the non-zeros of a sparse P.

    Gathers the two ends of every edge and sums per row (a segment sum): O(nnz * d) work.
    Duplicate (i, j) entries add up, as they would in P.

    Args:
      y: (N, d) embedding.
      indices: (nnz, 2) integer tensor of (i, j) pairs, e.g. ``tf.SparseTensor.indices``.
      values: (nnz,) the matching p_ij, dtype of ``y``.
      dof: degrees of freedom (Python float).

    Returns:
      (N, d) tensor, dtype of ``y``.
    """
    rows, diff, w = _edge_kernel(y, indices, dof)
    return tf.math.unsorted_segment_sum((values * w)[:, None] * diff, rows, tf.shape(y)[0])


def sparse_kl_divergence(y, indices, values, z, dof: float, exaggeration=1.0):
    """``KL(exaggeration * P || Q)`` in nats for a sparse P, given the normaliser Z.

    ``sum p log(max(p, eps) / max(w / Z, eps))`` over P's non-zeros, with scikit-learn's floors;
    pairs outside P contribute nothing. ``indices`` must not repeat a pair.

    Args:
      y: (N, d) embedding.
      indices, values: P's non-zeros, as for :func:`sparse_attractive_forces`.
      z: scalar ``sum_{i != j} w_ij`` (exact or approximated).
      dof: degrees of freedom (Python float).
      exaggeration: scalar factor on P.

    Returns:
      Scalar, dtype of ``y``.
    """
    _, _, w = _edge_kernel(y, indices, dof)
    p = exaggeration * values
    q = tf.maximum(w / z, MACHINE_EPSILON)
    return tf.reduce_sum(p * tf.math.log(tf.maximum(p, MACHINE_EPSILON) / q))


def _pairwise(y_rows, y, dof):
    """Per-component differences and kernel values between a tile of points and all points.

    Returns a list of d (tile, N) differences ``y_i[k] - y_j[k]`` and the (tile, N) kernel.
    Computed from differences, not the matmul form, because the largest forces come from near
    neighbours, where ``|y_i|^2 + |y_j|^2 - 2 y_i.y_j`` cancels; one 2-D array per component
    (not a (tile, N, d) array) so that XLA fuses everything into row reductions.
    """
    diffs = [y_rows[:, k, None] - y[None, :, k] for k in range(y.shape[1])]
    sq_distances = tf.add_n([tf.square(diff) for diff in diffs])
    return diffs, student_t_kernel(sq_distances, dof)


def _row_forces(weights, diffs):
    """(tile, d) forces ``sum_j weights_ij diff_ij``."""
    return tf.stack([tf.reduce_sum(weights * diff, axis=1) for diff in diffs], axis=1)


@dataclasses.dataclass(frozen=True)
class ExactObjective:
    """All-pairs t-SNE objective over a dense P, in row tiles of ``tile`` points.

    Operands: ``(p,)`` from :meth:`operands`, the dense (N, N) P with rows zero-padded to a
    multiple of ``tile`` (padded once, so the descent loop never copies P). Each call streams
    over P once; peak extra memory is about ``tile * N * (d + 4)`` elements.

    Attributes:
      dof: degrees of freedom of the kernel.
      tile: rows per tile (static: one compiled program per value).
    """

    dof: float
    tile: int

    @classmethod
    def for_problem(cls, n_samples, n_components, dtype, memory_budget=DEFAULT_MEMORY_BUDGET):
        """The objective for N points in d dimensions with tiles under ``memory_budget`` bytes."""
        row_bytes = n_samples * (n_components + 4) * tf.as_dtype(dtype).size
        budget = min(int(memory_budget), _TILE_CAP_BYTES)
        return cls(dof=degrees_of_freedom(n_components),
                   tile=rows_per_tile(n_samples, row_bytes, budget))

    def operands(self, p):
        """``(p_padded,)``: P's rows zero-padded to a multiple of ``tile``."""
        n = p.shape[0]
        pad = -n % self.tile
        return (tf.pad(p, [[0, pad], [0, 0]]) if pad else p,)

    def _row_map(self, fn, y, p, out_widths):
        n, n_pad = y.shape[0], p.shape[0]
        y_rows = tf.pad(y, [[0, n_pad - n], [0, 0]])
        sig = tuple(tf.TensorSpec([self.tile, *w], y.dtype) for w in out_widths)
        out = map_row_tiles(fn, (y_rows, p), self.tile, fn_output_signature=sig)
        # Padded rows are dropped before anything is summed over rows.
        return tuple(t[:n] for t in out)

    def _z(self, y, p):
        def block(args):
            y_rows, _ = args
            _, w = _pairwise(y_rows, y, self.dof)
            # w_ii is exactly 1 (zero difference), so the diagonal is taken out by subtraction.
            return (tf.reduce_sum(w, axis=1) - 1.0,)

        (z_rows,) = self._row_map(block, y, p, [[]])
        return tf.reduce_sum(z_rows)

    def forces(self, y, p):
        """``(attractive (N, d), repulsive (N, d), Z)`` of the un-exaggerated P, in one pass."""

        def block(args):
            y_rows, p_rows = args
            diffs, w = _pairwise(y_rows, y, self.dof)
            attractive = _row_forces(p_rows * w, diffs)
            repulsive = _row_forces(tf.square(w), diffs)
            return attractive, repulsive, tf.reduce_sum(w, axis=1) - 1.0

        d = y.shape[1]
        attractive, repulsive, z_rows = self._row_map(block, y, p, [[d], [d], []])
        return attractive, repulsive, tf.reduce_sum(z_rows)

    def gradient(self, y, exaggeration, p):
        """(N, d) gradient of ``KL(exaggeration * P || Q)``."""
        attractive, repulsive, z = self.forces(y, p)
        return kl_gradient(attractive, repulsive, z, self.dof, exaggeration)

    def kl_divergence(self, y, exaggeration, p):
        """Scalar ``KL(exaggeration * P || Q)`` as scikit-learn's ``_kl_divergence`` (two passes:
        Z, then the floored sum)."""
        z = self._z(y, p)

        def block(args):
            y_rows, p_rows = args
            _, w = _pairwise(y_rows, y, self.dof)
            pe = exaggeration * p_rows
            q = tf.maximum(w / z, MACHINE_EPSILON)
            return (tf.reduce_sum(pe * tf.math.log(tf.maximum(pe, MACHINE_EPSILON) / q), axis=1),)

        (kl_rows,) = self._row_map(block, y, p, [[]])
        return tf.reduce_sum(kl_rows)
