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
import math
from typing import NamedTuple

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
    "EdgeP",
    "ExactObjective",
    "FFTObjective",
    "degrees_of_freedom",
    "directed_attractive_forces",
    "directed_joint_probabilities",
    "directed_kl_divergence",
    "exact_repulsion",
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


def _pairwise_differences(y_rows, y):
    """Per-component differences and squared distances between a tile of points and all points.

    Returns a list of d (tile, N) differences ``y_i[k] - y_j[k]`` and the (tile, N) squared
    distances. Computed from differences, not the matmul form, because the largest forces come
    from near neighbours, where ``|y_i|^2 + |y_j|^2 - 2 y_i.y_j`` cancels; one 2-D array per
    component (not a (tile, N, d) array) so that XLA fuses everything into row reductions.
    """
    diffs = [y_rows[:, k, None] - y[None, :, k] for k in range(y.shape[1])]
    return diffs, tf.add_n([tf.square(diff) for diff in diffs])


def _pairwise(y_rows, y, dof):
    """:func:`_pairwise_differences`' differences and the (tile, N) kernel values."""
    diffs, sq_distances = _pairwise_differences(y_rows, y)
    return diffs, student_t_kernel(sq_distances, dof)


def _row_forces(weights, diffs):
    """(tile, d) forces ``sum_j weights_ij diff_ij``."""
    return tf.stack([tf.reduce_sum(weights * diff, axis=1) for diff in diffs], axis=1)


def _all_pairs_tile(n_samples, n_components, dtype, memory_budget=None) -> int:
    """Rows per tile of the all-pairs sums: (tile, N) temporaries under ``memory_budget`` bytes
    (None: the device profile's) and the profile's ``exact_tsne_tile_bytes``."""
    row_bytes = n_samples * (n_components + 4) * tf.as_dtype(dtype).size
    # XLA:CPU materialises each tile's (tile, N) temporaries, so moderate tiles beat one
    # huge tile: the device profile's cap (docs/accelerators.md).
    budget = min(memory_budget_bytes(memory_budget), device_profile().exact_tsne_tile_bytes)
    return rows_per_tile(n_samples, row_bytes, budget)


def exact_repulsion(y, charge, dof: float = 1.0, memory_budget: int | None = None):
    """The sums :func:`~tfclust.tsne.fft.fft_repulsion` estimates, exactly, over all pairs.

    With ``b_ij = 1 + |y_i - y_j|^2 / dof`` and charges ``c``::

        repulsive_i = c_i sum_j c_j b_ij^-(dof + 1) (y_i - y_j)
        z           = sum_{i != j} c_i c_j b_ij^-dof

    O(N^2) time in row tiles of (tile, N) temporaries (no N x N array above the tile budget),
    one compiled program per N: faster than the FFT grid for small N, where the grid's size
    (and so its program) would change as the embedding grows.

    Args:
      y: (N, d) float32/float64 embedding, static N.
      charge: (N,) tensor of y's dtype: 1 for the points, 0 for padding rows.
      dof: degrees of freedom of the kernel (Python float > 0; 1 is standard t-SNE).
      memory_budget: bytes of one tile's temporaries (None: the device profile's).

    Returns:
      ``(repulsive, z)``: (N, d) tensor and scalar tensor, both of y's dtype.
    """
    n, d = y.shape

    def block(args):
        y_rows, c_rows = args
        diffs, sq_distances = _pairwise_differences(y_rows, y)
        base = 1.0 + sq_distances / dof
        w = charge[None, :] * (1.0 / base if dof == 1.0 else base**-dof)
        repulsive = c_rows[:, None] * _row_forces(w / base, diffs)
        # w_ii = c_i (zero difference), taken out by subtraction.
        return repulsive, c_rows * (tf.reduce_sum(w, axis=1) - c_rows)

    tile = _all_pairs_tile(n, d, y.dtype, memory_budget)
    repulsive, z_rows = map_row_tiles(
        block,
        (y, charge),
        tile,
        fn_output_signature=(tf.TensorSpec([tile, d], y.dtype), tf.TensorSpec([tile], y.dtype)),
    )
    return repulsive, tf.reduce_sum(z_rows)


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
        return cls(
            dof=degrees_of_freedom(n_components),
            tile=_all_pairs_tile(n_samples, n_components, dtype, memory_budget),
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
# (an (N, k) index array) and, on each directed edge i -> j, the p_ij of its pair. A pair that
# is a neighbour both ways (mutual) is then complete in both rows; a one-way pair only in its
# source's row, so sums over P's ordered pairs are dense (N, k) row reductions plus the
# one-way edges once more, seen from their targets (a gather, or for the forces a scatter, over
# ~0.43 N k edges at perplexity 30). This beats the symmetric tf.SparseTensor (~1.45 N k entries,
# gathers and a scatter: ~75 ms against ~25 ms per call at N = 60,000, k = 91, 2 CPU cores) and
# halving P on mutual edges and scattering all N k of them (250,000 points: 116 against 139 ms
# per attraction, docs/large_n.md); it needs no sparse re-ordering to build.


class EdgeP(NamedTuple):
    """The joint probabilities P of a k-NN graph on its directed edges.

    Attributes:
      neighbors: (N, k) int32, the graph: edge (i, a) is ``i -> neighbors[i, a]``.
      weights: (N, k), ``p_ij`` of the pair of each edge (whichever way it is listed).
      entropy: scalar ``sum_{i != j} p_ij log p_ij`` (nats).
      one_way: (C,) int32 flat indices ``i * k + a`` of the edges whose target does not list
        their source, in increasing order, then padding up to a capacity C (a multiple of
        ``N k / 8``, so that similar graphs share compiled programs).
      one_way_targets: (C,) int32 ``neighbors[i, a]`` of those edges, N on the padding.
    """

    neighbors: tf.Tensor
    weights: tf.Tensor
    entropy: tf.Tensor
    one_way: tf.Tensor
    one_way_targets: tf.Tensor


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
    # Ordered pairs: a mutual pair's two edges count once each, a one-way pair's edge twice.
    times = tf.where(mutual, tf.ones_like(p), 2.0 * tf.ones_like(p))
    entropy = tf.reduce_sum(times * p * tf.math.log(tf.maximum(p, MACHINE_EPSILON)))
    return p, mutual, entropy


def directed_joint_probabilities(neighbors, p_cond, memory_budget: int | None = None) -> EdgeP:
    """The symmetric joint probabilities of a k-NN graph, on its directed edges.

    ``P = (P_cond + P_cond^T) / sum`` (the same P as
    :func:`tfclust.tsne.affinities.joint_probabilities_from_neighbors`), stored on the graph's
    edges as :class:`EdgeP`. Mutual pairs are found by looking for i among the neighbours of
    each of its neighbours, in row tiles of at most ``memory_budget`` bytes of (tile, k, k)
    temporaries; the one-way edges are then listed on the device (one host read of their count).
    Self-loops (the padding of a size bucket) count as mutual: they carry no probability.

    Args:
      neighbors: (N, k) int32 tensor, the neighbours of each point (distinct, not the point).
      p_cond: (N, k) float tensor, the matching conditional probabilities ``p_{j|i}``.
      memory_budget: bytes one tile may take (default None: the
        device profile's, ``_tiling.memory_budget_bytes``).

    Returns:
      :class:`EdgeP`, weights and entropy of p_cond's dtype (p floored at ``MACHINE_EPSILON``
      inside the entropy's log).
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
    weights, mutual, entropy = specialised(_directed_p, n, k, p_cond.dtype, tile)(
        neighbors, p_cond, tile
    )
    one_way = tf.cast(tf.where(tf.reshape(~mutual, [-1]))[:, 0], tf.int32)
    count = int(one_way.shape[0])
    eighths = max(1, math.ceil(8 * count / (n * k)))
    padding = math.ceil(eighths * n * k / 8) - count
    targets = tf.gather(tf.reshape(neighbors, [-1]), one_way)
    return EdgeP(
        neighbors,
        weights,
        entropy,
        tf.pad(one_way, [[0, padding]]),
        tf.pad(targets, [[0, padding]], constant_values=n),
    )


def _directed_edges(y, neighbors):
    """Differences ``y_i - y_j`` ((N, k, d)) and squared lengths ((N, k)) of the directed edges
    ``i -> neighbors[i, a]``."""
    diffs = y[:, tf.newaxis, :] - tf.gather(y, neighbors)
    return diffs, tf.reduce_sum(tf.square(diffs), axis=2)


def _one_way_rows(values, p: EdgeP):
    """(C, ...) rows of ``values`` ((N, k, ...), one per edge) at the one-way edges; the padding
    slots hold any edge's row (their target, N, is dropped or masked by the caller)."""
    return tf.gather(tf.reshape(values, [-1, *values.shape[2:]]), p.one_way)


def directed_attractive_forces(y, p: EdgeP, dof: float = 1.0, deterministic_sums: bool = False):
    """Attractive forces ``sum_j p_ij (1 + |y_i - y_j|^2 / dof)^-1 (y_i - y_j)``, P on edges.

    Each row sums the forces of its own edges (a dense (N, k) row reduction, which completes
    the mutual pairs), and the one-way edges' forces are subtracted from their targets (one
    scatter of C rows): O(N k d) work. For ``dof = 1`` the factor is t-SNE's ``w_ij``, as in
    :func:`sparse_attractive_forces`.

    Args:
      y: (N, d) embedding.
      p: P from :func:`directed_joint_probabilities`.
      dof: degrees of freedom ``a`` of the kernel (Python float).
      deterministic_sums: scatter the targets' forces in 64-bit fixed point
        (:func:`~tfclust.tsne.fft.fixed_point_segment_sum`, the same sums on every run of an
        accelerator) rather than as float atomics (static Python bool, default False).

    Returns:
      (N, d) tensor, dtype of ``y``.
    """
    diffs, sq = _directed_edges(y, p.neighbors)
    coef = p.weights / (1.0 + sq / dof) if dof != 1.0 else p.weights / (1.0 + sq)
    forces = coef[:, :, tf.newaxis] * diffs  # (N, k, d)
    segment_sum = fixed_point_segment_sum if deterministic_sums else tf.math.unsorted_segment_sum
    n = y.shape[0]
    # Segment N collects the padding slots and is dropped.
    incoming = segment_sum(_one_way_rows(forces, p), p.one_way_targets, n + 1)[:n]
    return tf.reduce_sum(forces, axis=1) - incoming


def directed_kl_divergence(y, p: EdgeP, z, dof: float = 1.0, exaggeration=1.0):
    """``KL(exaggeration * P || Q)`` in nats, P on edges, given the normaliser Z.

    With ``q_ij = w_ij / Z``, ``w_ij = (1 + |y_i - y_j|^2 / dof)^-dof`` and ``sum p = 1``::

        KL(a P || Q) = a (sum p log p + log a) - a sum_{ij in P} p_ij log max(q_ij, eps)

    Only P's non-zeros enter, so this is exact given Z (Z is the FFT's estimate in
    :class:`FFTObjective`); it equals :func:`sparse_kl_divergence` on the same P and Z up to the
    floor of ``a p`` (a difference below 1e-13 nats).

    Args:
      y: (N, d) embedding.
      p: P from :func:`directed_joint_probabilities`.
      z: scalar ``sum_{i != j} w_ij``.
      dof: degrees of freedom of the kernel (Python float).
      exaggeration: scalar factor ``a`` on P.

    Returns:
      Scalar, dtype of ``y``.
    """
    _, sq = _directed_edges(y, p.neighbors)
    log_w = -tf.math.log1p(sq) if dof == 1.0 else -dof * tf.math.log1p(sq / dof)
    log_q = tf.maximum(log_w - tf.math.log(z), tf.math.log(tf.constant(MACHINE_EPSILON, y.dtype)))
    terms = p.weights * log_q
    one_way = tf.where(
        p.one_way_targets < y.shape[0], _one_way_rows(terms, p), tf.zeros_like(p.one_way, y.dtype)
    )
    cross = tf.reduce_sum(terms) + tf.reduce_sum(one_way)
    return exaggeration * (p.entropy + tf.math.log(exaggeration) - cross)


@dataclasses.dataclass(frozen=True)
class FFTObjective:
    """t-SNE objective with FFT-interpolated repulsion (FIt-SNE) and P on k-NN edges.

    Per call: the attraction over P's edges (:func:`directed_attractive_forces`) and
    the repulsion and Z from :func:`tfclust.tsne.fft.fft_repulsion`, O(N k + G log G) time and
    O(N k + G) memory for a grid of G nodes. Kernel ``w = (1 + d^2 / dof)^-dof`` (openTSNE's
    heavy tails; ``dof = 1`` is standard t-SNE), gradient ``4 (exaggeration * attractive -
    repulsive / Z)``.

    Operands: ``(p, charge)`` from :meth:`operands`: P as :class:`EdgeP`, and ``charge`` (N,),
    0 on the padding rows of a size bucket (see :func:`~tfclust.tsne.fft.fft_repulsion`).

    Attributes: the interpolation settings of :func:`~tfclust.tsne.fft.fft_repulsion`, with its
    defaults, and ``dof``; each combination is one compiled program. ``n_boxes`` None (the
    default) chooses the grid from the extent on each eager call; the descent sets it once per chunk
    (:meth:`at_extent`). ``deterministic_sums`` (bool; default: the device profile's when the
    objective is made) sums the grid charges and the attractive forces in fixed point, with no
    float atomics (:func:`~tfclust.tsne.fft.fixed_point_segment_sum`); being a field, it is
    part of the compiled programs' key. ``exact_repulsion`` (bool, default False) sums the
    repulsion and Z over all pairs instead (:func:`exact_repulsion`): for small N, where it is
    faster than the grid and compiles one program instead of one per grid size.
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
    exact_repulsion: bool = False

    @staticmethod
    def operands(neighbors, p_cond, memory_budget: int | None = None, charge=None):
        """``(p, charge)``: the :class:`EdgeP` of the k-NN graph (see
        :func:`directed_joint_probabilities`) and the (N,) charges, default ones."""
        p = directed_joint_probabilities(neighbors, p_cond, memory_budget)
        if charge is None:
            charge = tf.ones_like(p.weights[:, 0])
        return p, charge

    def repulsion(self, y, charge=None):
        """``(repulsive (N, d), z)`` by FFT interpolation (or exactly, ``exact_repulsion``)."""
        if self.exact_repulsion:
            charge = tf.ones_like(y[:, 0]) if charge is None else charge
            return exact_repulsion(y, charge, self.dof)
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

    def gradient(self, y, exaggeration, p, charge):
        """(N, d) gradient of ``KL(exaggeration * P || Q)``."""
        return self._gradient_and_z(y, exaggeration, p, charge)[0]

    def gradient_and_kl(self, y, exaggeration, p, charge):
        """The gradient and the KL divergence, given the same Z."""
        grad, z = self._gradient_and_z(y, exaggeration, p, charge)
        return grad, directed_kl_divergence(y, p, z, self.dof, exaggeration)

    def extent(self, y, p, charge):
        """Side of the charged points' bounding square (:func:`~tfclust.tsne.fft.grid_extent`)."""
        return grid_extent(y, charge)

    def at_extent(self, extent: float) -> FFTObjective:
        """This objective with the grid of an embedding whose bounding square has side
        ``extent`` (:func:`~tfclust.tsne.fft.grid_intervals`); itself with ``exact_repulsion``."""
        if self.exact_repulsion:
            return self
        n_boxes = grid_intervals(
            extent,
            min_num_intervals=self.min_num_intervals,
            ints_in_interval=self.ints_in_interval,
            max_num_intervals=self.max_num_intervals,
            ladder_growth=self.ladder_growth,
        )
        return dataclasses.replace(self, n_boxes=n_boxes)

    def kl_divergence(self, y, exaggeration, p, charge):
        """Scalar ``KL(exaggeration * P || Q)``, exact given the interpolated Z."""
        _, z = self.repulsion(y, charge)
        return directed_kl_divergence(y, p, z, self.dof, exaggeration)

    def _gradient_and_z(self, y, exaggeration, p, charge):
        attractive = directed_attractive_forces(y, p, self.dof, self.deterministic_sums)
        repulsive, z = self.repulsion(y, charge)
        return 4.0 * (exaggeration * attractive - repulsive / z), z
