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

An *objective* is a hashable object with four traceable methods, used by
:mod:`tfclust.tsne.optimize` inside its compiled descent loop::

    gradient(y, exaggeration, *operands) -> (N, d) gradient of the KL divergence
    kl_divergence(y, exaggeration, *operands) -> scalar KL(exaggeration * P || Q), nats
    gradient_and_kl(y, exaggeration, *operands) -> (gradient, KL), one evaluation of Z
    extent(y, *operands) -> scalar the objective's compiled settings depend on

and one host method, ``at_extent(extent) -> objective``: the objective to compile for an
embedding of that extent (the FFT grid size; the exact objective returns itself). The descent
asks for it once per chunk, so that no compiled loop branches at run time.

``operands`` are the tensors it needs (e.g. P), passed as arguments so that they are not baked
into the compiled program as constants.

Two objectives: :class:`ExactObjective` (dense P, all pairs, scikit-learn's kernels) and
:class:`FFTObjective` (P on the k-NN graph's edges, FFT-interpolated repulsion, openTSNE's
kernels).
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from tfclust._compile import specialised
from tfclust._device import device_profile
from tfclust._tiling import map_row_tiles, memory_budget_bytes, rows_per_tile
from tfclust.tsne.affinities import MACHINE_EPSILON
from tfclust.tsne.fft import (
    INTS_IN_INTERVAL,
    LADDER_GROWTH,
    MAX_NUM_INTERVALS,
    MIN_NUM_INTERVALS,
    fft_repulsion,
    fixed_point_segment_sum,
    grid_extent,
    grid_intervals,
)

__all__ = [
    "ExactObjective",
    "FFTObjective",
    "degrees_of_freedom",
    "directed_attractive_forces",
    "directed_joint_probabilities",
    "directed_kl_divergence",
    "kl_gradient",
    "sparse_attractive_forces",
    "sparse_kl_divergence",
    "student_t_kernel",
]


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
    def for_problem(cls, n_samples, n_components, dtype, memory_budget=None):
        """The objective for N points in d dimensions with tiles under ``memory_budget`` bytes."""
        row_bytes = n_samples * (n_components + 4) * tf.as_dtype(dtype).size
        # XLA:CPU materialises each tile's (tile, N) temporaries, so moderate tiles beat one
        # huge tile: the device profile's cap (docs/accelerators.md).
        budget = min(memory_budget_bytes(memory_budget), device_profile().exact_tsne_tile_bytes)
        return cls(
            dof=degrees_of_freedom(n_components), tile=rows_per_tile(n_samples, row_bytes, budget)
        )

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

    def gradient_and_kl(self, y, exaggeration, p):
        """The gradient and the KL divergence (a second pass over P, with the gradient's Z)."""
        attractive, repulsive, z = self.forces(y, p)
        kl = self._kl_given_z(y, exaggeration, p, z)
        return kl_gradient(attractive, repulsive, z, self.dof, exaggeration), kl

    def extent(self, y, p):
        """0: the exact sums do not depend on the embedding's extent."""
        return tf.zeros([], y.dtype)

    def at_extent(self, extent: float) -> ExactObjective:
        """This objective (its programs do not depend on the extent)."""
        return self

    def kl_divergence(self, y, exaggeration, p):
        """Scalar ``KL(exaggeration * P || Q)`` as scikit-learn's ``_kl_divergence`` (two passes:
        Z, then the floored sum)."""
        return self._kl_given_z(y, exaggeration, p, self._z(y, p))

    def _kl_given_z(self, y, exaggeration, p, z):
        def block(args):
            y_rows, p_rows = args
            _, w = _pairwise(y_rows, y, self.dof)
            pe = exaggeration * p_rows
            q = tf.maximum(w / z, MACHINE_EPSILON)
            return (tf.reduce_sum(pe * tf.math.log(tf.maximum(pe, MACHINE_EPSILON) / q), axis=1),)

        (kl_rows,) = self._row_map(block, y, p, [[]])
        return tf.reduce_sum(kl_rows)


# --- The FFT-interpolated method: P on directed k-NN edges, repulsion by FFT interpolation. ---
#
# P is kept in the layout of the k-NN graph itself: row i holds the k neighbours of point i
# (an (N, k) index array) and one weight per directed edge i -> j, chosen so that
#
#     p_ij = sum of the weights of the directed edges between i and j (one or two of them).
#
# A pair that is a neighbour both ways carries half its p_ij on each edge; a one-way pair carries
# all of it on its single edge. Sums over P's non-zeros then become dense (N, k) row reductions
# plus one scatter (the "incoming" end of every edge) over N k edges, instead of gathers and a
# scatter over the ~1.45 N k entries of the symmetric tf.SparseTensor (attraction: ~25 ms against
# ~75 ms per call at N = 60,000, k = 91 on 2 CPU cores), and the layout needs no sparse
# re-ordering to build (~3 s saved at N = 60,000).


def _directed_p(neighbors, p_cond, tile: int):
    n, k = neighbors.shape
    ids = tf.range(n, dtype=neighbors.dtype)

    def block(args):
        rows_neighbors, rows_ids = args
        # Row j of the k-NN graph for every neighbour j of the tile's points: (tile, k, k).
        match = tf.gather(neighbors, rows_neighbors) == rows_ids[:, None, None]
        back = tf.gather(p_cond, rows_neighbors)
        reverse = tf.reduce_sum(tf.where(match, back, tf.zeros_like(back)), axis=2)
        return reverse, tf.reduce_any(match, axis=2)

    reverse, mutual = map_row_tiles(
        block,
        (neighbors, ids),
        tile,
        fn_output_signature=(
            tf.TensorSpec([tile, k], p_cond.dtype),
            tf.TensorSpec([tile, k], tf.bool),
        ),
    )
    total = tf.maximum(2.0 * tf.reduce_sum(p_cond), MACHINE_EPSILON)
    p = (p_cond + reverse) / total  # p_ij of the pair each edge belongs to
    weights = tf.where(mutual, 0.5 * p, p)
    entropy = 2.0 * tf.reduce_sum(weights * tf.math.log(tf.maximum(p, MACHINE_EPSILON)))
    return weights, entropy


def directed_joint_probabilities(neighbors, p_cond, memory_budget: int | None = None):
    """The symmetric joint probabilities of a k-NN graph, as weights on its directed edges.

    ``P = (P_cond + P_cond^T) / sum`` (the same P as
    :func:`tfclust.tsne.affinities.joint_probabilities_from_neighbors`), stored on the graph's
    edges: ``weights[i, a]`` belongs to the edge ``i -> neighbors[i, a]``, and ``p_ij`` is the
    sum of the weights of the edges between i and j (half of ``p_ij`` on each when the pair is
    mutual). Mutual pairs are found by looking for i among the neighbours of each of its
    neighbours, in row tiles of at most ``memory_budget`` bytes of (tile, k, k) temporaries.

    Args:
      neighbors: (N, k) int32 tensor, the neighbours of each point (distinct, not the point).
      p_cond: (N, k) float tensor, the matching conditional probabilities ``p_{j|i}``.
      memory_budget: bytes one tile may take (default None: the
        device profile's, ``_tiling.memory_budget_bytes``).

    Returns:
      ``(weights, entropy)``: (N, k) tensor of p_cond's dtype, and the scalar
      ``sum_{ij in P} p_ij log p_ij`` (nats; p floored at ``MACHINE_EPSILON`` inside the log).
    """
    neighbors = tf.convert_to_tensor(neighbors)
    p_cond = tf.convert_to_tensor(p_cond)
    n, k = p_cond.shape
    if tuple(neighbors.shape) != (n, k) or neighbors.dtype != tf.int32:
        raise ValueError(
            f"neighbors must be an int32 tensor of p_cond's shape {(n, k)}, got "
            f"{neighbors.dtype.name} {tuple(neighbors.shape)}"
        )
    row_bytes = k * k * (neighbors.dtype.size + p_cond.dtype.size + 1)
    tile = rows_per_tile(n, row_bytes, memory_budget)
    return specialised(_directed_p, n, k, p_cond.dtype, tile)(neighbors, p_cond, tile)


def _directed_edges(y, neighbors):
    """Differences ``y_i - y_j`` ((N, k, d)) and squared lengths ((N, k)) of the directed edges
    ``i -> neighbors[i, a]``."""
    diffs = y[:, tf.newaxis, :] - tf.gather(y, neighbors)
    return diffs, tf.reduce_sum(tf.square(diffs), axis=2)


def directed_attractive_forces(
    y, neighbors, weights, dof: float = 1.0, deterministic_sums: bool = False
):
    """Attractive forces ``sum_j p_ij (1 + |y_i - y_j|^2 / dof)^-1 (y_i - y_j)``, P on edges.

    Every edge's force is added to its source row (a dense (N, k) row sum) and subtracted from its
    target (one scatter of N k rows): O(N k d) work. For ``dof = 1`` the factor is t-SNE's
    ``w_ij``, as in :func:`sparse_attractive_forces`.

    Args:
      y: (N, d) embedding.
      neighbors, weights: P from :func:`directed_joint_probabilities`.
      dof: degrees of freedom ``a`` of the kernel (Python float).
      deterministic_sums: scatter the targets' forces in 64-bit fixed point
        (:func:`~tfclust.tsne.fft.fixed_point_segment_sum`, the same sums on every run of an
        accelerator) rather than as float atomics (static Python bool, default False).

    Returns:
      (N, d) tensor, dtype of ``y``.
    """
    diffs, sq = _directed_edges(y, neighbors)
    coef = weights / (1.0 + sq / dof) if dof != 1.0 else weights / (1.0 + sq)
    forces = coef[:, :, tf.newaxis] * diffs  # (N, k, d)
    outgoing = tf.reduce_sum(forces, axis=1)
    segment_sum = fixed_point_segment_sum if deterministic_sums else tf.math.unsorted_segment_sum
    incoming = segment_sum(
        tf.reshape(forces, [-1, y.shape[1]]), tf.reshape(neighbors, [-1]), tf.shape(y)[0]
    )
    return outgoing - incoming


def directed_kl_divergence(y, neighbors, weights, entropy, z, dof: float = 1.0, exaggeration=1.0):
    """``KL(exaggeration * P || Q)`` in nats, P on edges, given the normaliser Z.

    With ``q_ij = w_ij / Z``, ``w_ij = (1 + |y_i - y_j|^2 / dof)^-dof`` and ``sum p = 1``::

        KL(a P || Q) = a (sum p log p + log a) - a sum_{ij in P} p_ij log max(q_ij, eps)

    Only P's non-zeros enter, so this is exact given Z (Z is the FFT's estimate in
    :class:`FFTObjective`); it equals :func:`sparse_kl_divergence` on the same P and Z up to the
    floor of ``a p`` (a difference below 1e-13 nats).

    Args:
      y: (N, d) embedding.
      neighbors, weights, entropy: P from :func:`directed_joint_probabilities`.
      z: scalar ``sum_{i != j} w_ij``.
      dof: degrees of freedom of the kernel (Python float).
      exaggeration: scalar factor ``a`` on P.

    Returns:
      Scalar, dtype of ``y``.
    """
    _, sq = _directed_edges(y, neighbors)
    log_w = -tf.math.log1p(sq) if dof == 1.0 else -dof * tf.math.log1p(sq / dof)
    log_q = tf.maximum(log_w - tf.math.log(z), tf.math.log(tf.constant(MACHINE_EPSILON, y.dtype)))
    cross = 2.0 * tf.reduce_sum(weights * log_q)
    return exaggeration * (entropy + tf.math.log(exaggeration) - cross)


@dataclasses.dataclass(frozen=True)
class FFTObjective:
    """t-SNE objective with FFT-interpolated repulsion (FIt-SNE) and P on k-NN edges.

    Per call: the attraction over P's ``N k`` edges (:func:`directed_attractive_forces`) and
    the repulsion and Z from :func:`tfclust.tsne.fft.fft_repulsion`, O(N k + G log G) time and
    O(N k + G) memory for a grid of G nodes. Kernel ``w = (1 + d^2 / dof)^-dof`` (openTSNE's
    heavy tails; ``dof = 1`` is standard t-SNE), gradient ``4 (exaggeration * attractive -
    repulsive / Z)``.

    Operands: ``(neighbors, weights, entropy, charge)`` from :meth:`operands`; ``charge`` (N,) is
    0 on the padding rows of a size bucket (see :func:`~tfclust.tsne.fft.fft_repulsion`).

    Attributes: the interpolation settings of :func:`~tfclust.tsne.fft.fft_repulsion`, with its
    defaults, and ``dof``; each combination is one compiled program. ``n_boxes`` None (the
    default) chooses the grid from the extent on each eager call; the descent sets it once per chunk
    (:meth:`at_extent`). ``deterministic_sums`` (bool; default: the device profile's when the
    objective is made) sums the grid charges and the attractive forces in fixed point, with no
    float atomics (:func:`~tfclust.tsne.fft.fixed_point_segment_sum`); being a field, it is
    part of the compiled programs' key.
    """

    n_interpolation_points: int | None = None
    min_num_intervals: int = MIN_NUM_INTERVALS
    ints_in_interval: float = INTS_IN_INTERVAL
    max_num_intervals: int = MAX_NUM_INTERVALS
    stencil_size: int | None = None
    dof: float = 1.0
    ladder_growth: float = LADDER_GROWTH
    n_boxes: int | None = None
    deterministic_sums: bool = dataclasses.field(
        default_factory=lambda: device_profile().deterministic_sums
    )

    @staticmethod
    def operands(neighbors, p_cond, memory_budget: int | None = None, charge=None):
        """``(neighbors, weights, entropy, charge)``: P of the k-NN graph, see
        :func:`directed_joint_probabilities`; ``charge`` defaults to ones."""
        weights, entropy = directed_joint_probabilities(neighbors, p_cond, memory_budget)
        if charge is None:
            charge = tf.ones_like(weights[:, 0])
        return tf.convert_to_tensor(neighbors), weights, entropy, charge

    def repulsion(self, y, charge=None):
        """``(repulsive (N, d), z)`` by FFT interpolation."""
        return fft_repulsion(
            y,
            charge,
            n_interpolation_points=self.n_interpolation_points,
            min_num_intervals=self.min_num_intervals,
            ints_in_interval=self.ints_in_interval,
            max_num_intervals=self.max_num_intervals,
            dof=self.dof,
            stencil_size=self.stencil_size,
            ladder_growth=self.ladder_growth,
            n_boxes=self.n_boxes,
            deterministic_sums=self.deterministic_sums,
        )

    def gradient(self, y, exaggeration, neighbors, weights, entropy, charge):
        """(N, d) gradient of ``KL(exaggeration * P || Q)``."""
        return self._gradient_and_z(y, exaggeration, neighbors, weights, charge)[0]

    def gradient_and_kl(self, y, exaggeration, neighbors, weights, entropy, charge):
        """The gradient and the KL divergence, given the same Z."""
        grad, z = self._gradient_and_z(y, exaggeration, neighbors, weights, charge)
        return grad, directed_kl_divergence(
            y, neighbors, weights, entropy, z, self.dof, exaggeration
        )

    def extent(self, y, neighbors, weights, entropy, charge):
        """Side of the charged points' bounding square (:func:`~tfclust.tsne.fft.grid_extent`)."""
        return grid_extent(y, charge)

    def at_extent(self, extent: float) -> FFTObjective:
        """This objective with the grid of an embedding whose bounding square has side
        ``extent`` (:func:`~tfclust.tsne.fft.grid_intervals`)."""
        n_boxes = grid_intervals(
            extent,
            min_num_intervals=self.min_num_intervals,
            ints_in_interval=self.ints_in_interval,
            max_num_intervals=self.max_num_intervals,
            ladder_growth=self.ladder_growth,
        )
        return dataclasses.replace(self, n_boxes=n_boxes)

    def kl_divergence(self, y, exaggeration, neighbors, weights, entropy, charge):
        """Scalar ``KL(exaggeration * P || Q)``, exact given the interpolated Z."""
        _, z = self.repulsion(y, charge)
        return directed_kl_divergence(y, neighbors, weights, entropy, z, self.dof, exaggeration)

    def _gradient_and_z(self, y, exaggeration, neighbors, weights, charge):
        attractive = directed_attractive_forces(
            y, neighbors, weights, self.dof, self.deterministic_sums
        )
        repulsive, z = self.repulsion(y, charge)
        return 4.0 * (exaggeration * attractive - repulsive / z), z
