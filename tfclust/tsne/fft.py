"""FFT-accelerated interpolation of the t-SNE repulsive forces (FIt-SNE).

The repulsive half of the t-SNE gradient and the normalisation ``Z`` are sums over all pairs of
points of a smooth, translation-invariant kernel. Following Linderman et al. (2019, "Fast
interpolation-based t-SNE for improved visualization of single-cell RNA-seq data", Nature Methods
16:243) and openTSNE's implementation of it, this module evaluates them in O(N + G log G) time
and O(N + G) memory (G grid nodes) instead of O(N^2):

1. the bounding square of the embedding is cut into ``n_boxes`` intervals per axis and each
   interval holds ``n_interpolation_points`` equispaced nodes (a uniform grid of
   ``M = n_boxes * n_interpolation_points`` nodes per axis);
2. every point spreads a unit charge onto the nearest ``stencil_size`` nodes per axis with
   Lagrange-polynomial weights;
3. the kernels are applied on the grid as convolutions (circulant embedding of size ``2M`` per
   axis, real FFTs, pointwise products, inverse FFTs): the vector force kernel
   ``F(|o|^2) o`` (one field per axis), and Z's kernel, whose total energy comes from the
   charges' spectrum by Parseval's identity;
4. the force fields are interpolated back to the points with the same weights.

FIt-SNE instead convolves the scalar force kernel with the charges ``[1, y]`` (plus ``|y|^2``
for Z); one unit-charge channel here needs a third of the forward transforms and two thirds of
the inverse ones, at about twice the force error on the same grid (its interpolation errors no
longer cancel between channels), which a 1.25x finer grid buys back for less.

Everything is static-shaped and made of plain TF ops, so :func:`fft_repulsion` compiles with XLA
and can be called inside another ``jit_compile=True`` function (e.g. a descent-loop body). The
number of intervals follows the embedding's extent: the host picks it among a static ladder of
sizes (:func:`grid_intervals`), once per call or per chunk of descent iterations, so that an
embedding that is still small (early exaggeration) pays for a small grid, and no compiled loop
holds a run-time branch (docs/accelerators.md).

Spreading the charges on the grid sums many points into each node. An accelerator runs that
float scatter-add as atomic adds in a varying order, so the grid would differ run to run in its
last bits; with ``deterministic_sums`` (the device profile's) the charges are summed in 64-bit
fixed point instead (:func:`fixed_point_segment_sum`), whose integer additions give the same
sum in any order.

See :func:`fft_repulsion` for the exact quantities computed and how they enter the gradient.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfclust._compile import compiled
from tfclust._device import use_deterministic_sums
from tfclust._precision import matmul

__all__ = [
    "INTS_IN_INTERVAL",
    "LADDER_GROWTH",
    "MAX_NUM_INTERVALS",
    "MIN_NUM_INTERVALS",
    "ReferenceGrid",
    "default_nodes",
    "fft_repulsion",
    "fixed_point_segment_sum",
    "grid_extent",
    "grid_intervals",
    "grid_repulsion",
    "interval_ladder",
    "reference_grid",
]

LADDER_GROWTH = 1.5
"""Default ratio between consecutive compiled grid sizes. 1.25 (ten sizes from 32 to 250
intervals) ended the tutorial's 5,000-point fit at KL 1.3752, 1.5 (six) at 1.3791 for 44% less
compilation, 2 (four) at 1.3903; docs/first_call.md."""

MIN_NUM_INTERVALS = 32
"""Default fewest grid intervals per axis, of ``TSNE`` and of every kernel here (openTSNE's is 50;
the measurements are in ``TSNE``'s docstring)."""

INTS_IN_INTERVAL = 0.8
"""Default interval side in embedding units (openTSNE's is 1, with 3 nodes per interval)."""

MAX_NUM_INTERVALS = 250
"""Default most grid intervals per axis: the largest static grid XLA compiles for."""


def default_nodes(dim: int) -> tuple[int, int]:
    """``(n_interpolation_points, stencil_size)`` by default (``TSNE``'s ``"auto"``) for a
    ``dim``-D embedding: 2 nodes per interval and 4-node stencils in 2-D, 5 and 5 in 1-D."""
    return (2, 4) if dim == 2 else (5, 5)


_MIN_EXTENT = 1e-3
"""Smallest side (embedding units) of the grid, so that coincident points give a valid grid."""

_FIXED_POINT_BITS = 62
"""Bits below which :func:`fixed_point_segment_sum` keeps every int64 sum (one spare bit under
int64's 63 for the entries' rounding)."""


def _is_smooth(n: int) -> bool:
    """True when ``n`` has no prime factor above 7 (so FFT lengths ``2 p n`` stay fast)."""
    for p in (2, 3, 5, 7):
        while n % p == 0:
            n //= p
    return n == 1


def interval_ladder(min_num_intervals: int, max_num_intervals: int, growth: float = LADDER_GROWTH):
    """The static box counts among which :func:`grid_intervals` chooses.

    Starts at ``min_num_intervals`` rounded up to a 7-smooth number, then each rung is the
    smallest 7-smooth number at least ``growth`` times the previous one (dropped if within
    ``sqrt(growth)`` of the top), and the last rung is ``max_num_intervals`` itself. Every rung
    used is one compiled program, so ``growth`` trades compile time against how far the chosen
    box count may be from the wanted one.

    Returns:
      tuple of Python ints, strictly increasing, ending with ``max_num_intervals``.
    """
    if min_num_intervals < 1 or max_num_intervals < min_num_intervals:
        raise ValueError(
            "need 1 <= min_num_intervals <= max_num_intervals, got "
            f"{min_num_intervals} and {max_num_intervals}"
        )
    if growth <= 1.0:
        raise ValueError(f"growth must be > 1, got {growth}")
    rungs = []
    n = min_num_intervals
    while True:
        while not _is_smooth(n):
            n += 1
        # A rung within sqrt(growth) of the last one would be a compiled branch for ~no gain.
        if n >= max_num_intervals or (rungs and n * math.sqrt(growth) > max_num_intervals):
            break
        rungs.append(n)
        n = max(n + 1, math.ceil(n * growth))
    rungs.append(max_num_intervals)
    return tuple(rungs)


def _lagrange_weights(v: tf.Tensor, n: int) -> tf.Tensor:
    """Lagrange basis polynomials of the nodes ``0, 1, .., n - 1`` evaluated at ``v``.

    Args:
      v: (...,) positions in node-spacing units relative to the first node.
    Returns:
      (..., n) weights, same dtype as ``v``; they sum to 1.
    """
    weights = []
    for k in range(n):
        num = tf.ones_like(v)
        den = 1.0
        for j in range(n):
            if j != k:
                num = num * (v - float(j))
                den *= float(k - j)
        weights.append(num * (1.0 / den))
    return tf.stack(weights, axis=-1)


def _even_extension(x: tf.Tensor, m: int) -> tf.Tensor:
    """Extend samples at offsets ``0..m`` (last axis) to the even length-``2m`` circulant."""
    return tf.concat([x, tf.reverse(x[..., 1:m], axis=[-1])], axis=-1)


def _odd_extension(x: tf.Tensor, m: int) -> tf.Tensor:
    """Extend samples at offsets ``0..m`` (last axis) of an odd sequence to its length-``2m``
    circulant (zero at offsets 0 and m)."""
    zero = tf.zeros_like(x[..., :1])
    return tf.concat([zero, x[..., 1:m], zero, -tf.reverse(x[..., 1:m], axis=[-1])], axis=-1)


def _kernel_spectra(force_fn, z_fn, m: int, spacing, dim: int, dtype):
    """Spectra of the length-``2m`` circulant embeddings of the force and Z kernels.

    The force kernel ``D(o) = force_fn(|o|^2) o`` (vector offset o) is odd along its own axis and
    even along the others, so its spectrum is imaginary; Z's kernel is even and its spectrum real.
    The kernels are only evaluated at non-negative offsets (a quarter of the circulant in 2-D),
    and the symmetries turn the 2-D transform into two passes of ``m + 1`` real FFTs. The y
    component's spectrum is the x component's transposed (``D_y(a, b) = D_x(b, a)``).

    Args:
      force_fn, z_fn: functions of the squared distance.
      m: grid nodes per axis.
      spacing: scalar node spacing.
    Returns:
      ``(force, z)``: in 1-D, (1, m+1) imaginary parts and (m+1,) values over the rfft
      frequencies; in 2-D, (2, m+1, 2m) imaginary parts (x and y components) and (m+1, 2m)
      values, laid out as [v, u] (frequency v of the last grid axis first), as in
      :func:`_convolve`.
    """
    off = tf.cast(tf.range(m + 1), dtype) * spacing
    off2 = tf.square(off)
    if dim == 1:
        force = tf.math.imag(tf.signal.rfft(_odd_extension(force_fn(off2) * off, m)))
        return force[tf.newaxis], tf.math.real(tf.signal.rfft(_even_extension(z_fn(off2), m)))
    r2 = off2[:, None] + off2[None, :]  # [a, b]
    values = tf.stack([force_fn(r2) * off[:, None], z_fn(r2)])  # D_x and Z's kernel, [k, a, b]
    half = tf.math.real(tf.signal.rfft(_even_extension(values, m)))  # both even along b
    half = tf.transpose(half, [0, 2, 1])  # [k, v, a]
    spectra = tf.signal.rfft(tf.stack([_odd_extension(half[0], m), _even_extension(half[1], m)]))
    force_x = tf.math.imag(spectra[0])  # [v, u <= m]
    force_y = _even_extension(tf.transpose(force_x), m)  # D_y's spectrum, D_x's transposed
    force = tf.stack([_odd_extension(force_x, m), force_y])
    return force, _even_extension(tf.math.real(spectra[1]), m)


def _convolve(
    charges: tf.Tensor,
    force_hat: tf.Tensor,
    z_hat: tf.Tensor,
    m: int,
    dim: int,
    potential: bool = False,
):
    """Aperiodic convolution of the grid charges with the force kernel, and Z's energy.

    The charges are zero-padded to a ``2m`` circulant per axis. In 2-D the transform is done one
    axis at a time so that the all-zero half of the rows is never transformed forward, and only
    the ``m`` wanted rows are transformed back (a quarter fewer FFT rows than ``rfft2d``).

    Args:
      charges: (m,) for dim 1 or (m, m) for dim 2: unit charges spread on the grid nodes.
      force_hat, z_hat: spectra from :func:`_kernel_spectra`.
      m: nodes per axis.
      dim: 1 or 2.
      potential: also return Z's potential, the charges convolved with Z's kernel.
    Returns:
      ``(forces, energy)``: (d, m[, m]) the charges convolved with each component of the force
      kernel (then Z's potential as a last channel, with ``potential``), and the scalar
      ``<Z kernel * q, q>`` summed over the grid, obtained from the spectra by Parseval's
      identity, so that it needs no inverse transform.
    """
    if dim == 1:
        charges_hat = tf.signal.rfft(tf.pad(charges, [[0, m]]))  # (m+1,)
    else:
        rows = tf.signal.rfft(tf.pad(charges, [[0, 0], [0, m]]))  # (m, m+1)
        rows = tf.pad(tf.transpose(rows), [[0, 0], [0, m]])
        charges_hat = tf.signal.fft(rows)  # (m+1, 2m): [v, u], v <= m
    # The half spectrum along v stands for the whole: interior frequencies count twice.
    twice = tf.concat([[1.0], tf.fill([m - 1], 2.0), [1.0]], axis=0)
    power = tf.square(tf.math.real(charges_hat)) + tf.square(tf.math.imag(charges_hat))
    if dim == 2:
        twice = twice[:, tf.newaxis]
    energy = tf.reduce_sum(tf.cast(twice, power.dtype) * z_hat * power) / (2 * m) ** dim
    # Times an imaginary spectrum i K: (a + ib) i K = -b K + i a K.
    products = tf.complex(
        -tf.math.imag(charges_hat) * force_hat, tf.math.real(charges_hat) * force_hat
    )  # (d, ...)
    if potential:  # times a real spectrum
        z_product = tf.complex(tf.math.real(charges_hat) * z_hat, tf.math.imag(charges_hat) * z_hat)
        products = tf.concat([products, z_product[tf.newaxis]], axis=0)
    if dim == 1:
        return tf.signal.irfft(products, fft_length=[2 * m])[:, :m], energy
    cols = tf.signal.ifft(products)[:, :, :m]  # (channels, m+1, m): [channel, v, x]
    forces = tf.signal.irfft(tf.transpose(cols, [0, 2, 1]), fft_length=[2 * m])[:, :, :m]
    return forces, energy


def _kernel_fns(dof: float, z_exponent: float):
    """Force kernel ``(1 + r2/dof)^-(dof + 1)`` and Z kernel ``(1 + r2/dof)^-z_exponent``."""
    if dof == 1.0:

        def force_kernel(r2):
            return 1.0 / tf.square(1.0 + r2)

    else:

        def force_kernel(r2):
            return tf.pow(1.0 + r2 / dof, -(dof + 1.0))

    if dof == 1.0 and z_exponent == 1.0:

        def kernel(r2):
            return 1.0 / (1.0 + r2)

    else:

        def kernel(r2):
            return tf.pow(1.0 + r2 / dof, -z_exponent)

    return force_kernel, kernel


def _self_interaction(weights: tf.Tensor, kernel_fn, spacing) -> tf.Tensor:
    """Each point's interpolated interaction with itself, ``sum_ab w_a w_b K(x_a - x_b)``.

    Spreading a point and interpolating its own potential back does not return exactly
    ``K(0) = 1``; subtracting this value instead of 1 removes the self-term from Z exactly, which
    keeps Z accurate (and positive) even when it is tiny (few, far-apart points).

    Args:
      weights: (N, d, t) Lagrange weights on t consecutive nodes per axis.
      kernel_fn: maps squared distances to kernel values.
      spacing: scalar node spacing.
    Returns:
      (N,) self-interactions.
    """
    t = weights.shape[-1]
    # Autocorrelation of the weights over node offsets -(t-1) .. t-1, per point and axis.
    corr = tf.stack(
        [
            tf.reduce_sum(
                weights[..., max(0, -k) : t - max(0, k)] * weights[..., max(0, k) : t - max(0, -k)],
                axis=-1,
            )
            for k in range(-(t - 1), t)
        ],
        axis=-1,
    )  # (N, d, 2t-1)
    off = tf.cast(tf.range(-(t - 1), t), weights.dtype) * spacing
    if weights.shape[1] == 1:
        return tf.linalg.matvec(corr[:, 0, :], kernel_fn(tf.square(off)))
    kmat = kernel_fn(tf.square(off)[:, None] + tf.square(off)[None, :])
    return tf.reduce_sum(matmul(corr[:, 0, :], kmat) * corr[:, 1, :], axis=1)


def _repulsion_on_grid(
    y,
    charge,
    lo,
    extent,
    *,
    n_boxes: int,
    n_interp: int,
    n_taps: int,
    dof: float,
    z_exponent: float,
    deterministic_sums: bool,
):
    """Repulsion and Z on a grid of exactly ``n_boxes`` intervals per axis (static).

    Args:
      y: (N, d) points relative to the grid centre.
      charge: (N,) 1 for a point, 0 for padding (no charge, no force).
      lo: (d,) lower corner of the grid, relative to the same centre.
      extent: scalar side length of the (square) grid.
      deterministic_sums: spread the charges in fixed point (static; see :func:`_spread`).
    Returns:
      (repulsive (N, d), z scalar).
    """
    dim = y.shape[1]
    m = n_boxes * n_interp
    spacing = extent / n_boxes / n_interp
    weights, flat_nodes, flat_w = _stencil(y, lo, spacing, m, n_taps)

    # Unit charges only: the force kernel D(o) = F(|o|^2) o carries the offsets, so every force
    # component comes out of one charge channel. The self-force vanishes exactly: D is odd and
    # a point's spreading and interpolation weights are the same.
    grid = _spread(flat_nodes, flat_w * charge[:, None], m, dim, deterministic_sums)
    force_kernel, kernel = _kernel_fns(dof, z_exponent)
    force_hat, z_hat = _kernel_spectra(force_kernel, kernel, m, spacing, dim, y.dtype)
    # sum_i of Z's potential at y_i is <potential, charges> on the grid, which _convolve
    # returns without transforming that potential back.
    fields, energy = _convolve(grid, force_hat, z_hat, m, dim)  # (d, m[, m]), scalar
    fields = tf.transpose(tf.reshape(fields, [dim, m**dim]))  # (m^d, d)
    repulsive = _interpolate(fields, flat_nodes, flat_w)
    z = energy - tf.reduce_sum(_self_interaction(weights, kernel, spacing) * charge)
    repulsive *= charge[:, None]
    return repulsive, z


def _stencil(y, lo, spacing, m: int, n_taps: int):
    """Each point's interpolation stencil on the grid of ``m`` nodes per axis from ``lo``.

    Returns:
      ``(weights, flat_nodes, flat_w)``: (N, d, taps) Lagrange weights per axis, and the flat
      grid index and weight of each of the taps^d nodes of the stencil, (N, taps^d) each.
    """
    n, dim = y.shape
    s = tf.clip_by_value((y - lo) / spacing, 0.0, float(m))  # in node spacings
    start = tf.cast(tf.floor(s - 0.5 * (n_taps - 1)), tf.int32)
    start = tf.clip_by_value(start, 0, m - n_taps)  # (N, d)
    weights = _lagrange_weights(s - 0.5 - tf.cast(start, y.dtype), n_taps)  # (N, d, taps)
    nodes = start[:, :, None] + tf.range(n_taps, dtype=tf.int32)  # (N, d, taps)
    if dim == 1:
        return weights, nodes[:, 0, :], weights[:, 0, :]
    flat_nodes = nodes[:, 0, :, None] * m + nodes[:, 1, None, :]  # (N, taps, taps)
    flat_w = weights[:, 0, :, None] * weights[:, 1, None, :]
    taps2 = n_taps * n_taps
    return weights, tf.reshape(flat_nodes, [n, taps2]), tf.reshape(flat_w, [n, taps2])


def _spread(flat_nodes, flat_w, m: int, dim: int, deterministic_sums: bool):
    """The (m[, m]) grid of the charges ``flat_w`` spread on their stencils' nodes; in 64-bit
    fixed point with ``deterministic_sums`` (static), else by a float scatter-add."""
    segment_sum = fixed_point_segment_sum if deterministic_sums else tf.math.unsorted_segment_sum
    grid = segment_sum(tf.reshape(flat_w, [-1]), tf.reshape(flat_nodes, [-1]), m**dim)
    return tf.reshape(grid, [m] * dim)


def _power_of_two(exponent, dtype):
    """``2.0 ** exponent`` in ``dtype`` (float32 or float64), exactly, built from its exponent
    bits; ``exponent`` an int32 scalar tensor within the dtype's normal range."""
    info = np.finfo(dtype.as_numpy_dtype)
    bits = tf.int32 if dtype == tf.float32 else tf.int64
    field = tf.cast(exponent + (info.maxexp - 1), bits)
    return tf.bitcast(tf.bitwise.left_shift(field, tf.cast(info.nmant, bits)), dtype)


def fixed_point_segment_sum(values, segment_ids, num_segments: int):
    """``tf.math.unsorted_segment_sum`` in 64-bit fixed point: the same sums whatever order the
    additions run in (an accelerator runs a float scatter-add as atomics in a varying order).

    Every value is scaled by the power of two ``2**s`` that puts the largest ``|value|`` just
    below ``2**(62 - h)``, ``h = ceil(log2(m))`` for the ``m`` rows of ``values``, rounded to an
    int64, and summed as integers: integer addition is associative, and m such entries cannot
    overflow. The sums are scaled back by ``2**-s``, exactly, then rounded once to the dtype.

    Precision: each value is rounded to a multiple of ``2**-s <= 2**(h + 1 - 62) * max|value|``,
    so a sum of j entries is within ``j * 2**(h - 62) * max|value|`` of the exact sum (for
    m = 10 million rows, ``4e-12 * max|value|`` per entry): far within float32 rounding
    (``6e-8`` of the sum), but coarser than float64's for entries much smaller than the largest.

    Args:
      values: (m, ...) float32 or float64 tensor, static m >= 1, finite (zeros, a single row and
        values up to the dtype's largest are fine; sums beyond it become inf, as in floats).
      segment_ids: (m,) int32 in ``[0, num_segments)``.
      num_segments: Python int or int32 scalar tensor.

    Returns:
      (num_segments, ...) tensor of ``values``' dtype.
    """
    dtype = values.dtype
    info = np.finfo(dtype.as_numpy_dtype)
    bits = tf.int32 if dtype == tf.float32 else tf.int64
    largest = tf.maximum(tf.reduce_max(tf.abs(values)), tf.constant(info.tiny, dtype))
    # |value| < 2**top, read exactly from the largest's exponent field.
    field = tf.bitwise.right_shift(tf.bitcast(largest, bits), tf.cast(info.nmant, bits))
    top = tf.cast(field, tf.int32) - (info.maxexp - 1) + 1
    headroom = (values.shape[0] - 1).bit_length()  # ceil(log2(m))
    shift = _FIXED_POINT_BITS - headroom - top
    # Two factors: 2**shift alone leaves the dtype's range for tiny or huge values.
    half = shift // 2
    scaled = values * _power_of_two(half, dtype) * _power_of_two(shift - half, dtype)
    ints = tf.cast(tf.round(scaled), tf.int64)
    total = tf.cast(tf.math.unsorted_segment_sum(ints, segment_ids, num_segments), dtype)
    return total * _power_of_two(-half, dtype) * _power_of_two(half - shift, dtype)


def _interpolate(fields, flat_nodes, flat_w):
    """(N, c) values at the points of the (m^d, c) grid ``fields``, through their stencils."""
    return tf.reduce_sum(tf.gather(fields, flat_nodes) * flat_w[:, :, None], axis=1)


def grid_extent(y, charge=None):
    """Side of the bounding square of the points of ``y`` (N, d) that carry charge (all when
    ``charge`` is None), at least ``_MIN_EXTENT``: the quantity the grid size is chosen from.
    Traceable; scalar of y's dtype, embedding units."""
    return _bounds(y, charge)[1]


def _bounds(y, charge):
    """``(centre (d,), side)`` of the bounding square of the charged points of ``y``."""
    if charge is None:
        charge = tf.ones_like(y[:, 0])
    big = tf.constant(np.finfo(y.dtype.as_numpy_dtype).max, y.dtype)
    present = charge[:, None] > 0
    y_min = tf.reduce_min(tf.where(present, y, big), axis=0)
    y_max = tf.reduce_max(tf.where(present, y, -big), axis=0)
    side = tf.maximum(tf.reduce_max(y_max - y_min), tf.cast(_MIN_EXTENT, y.dtype))
    return 0.5 * (y_min + y_max), side


def grid_intervals(
    side: float,
    *,
    min_num_intervals: int = MIN_NUM_INTERVALS,
    ints_in_interval: float = INTS_IN_INTERVAL,
    max_num_intervals: int = MAX_NUM_INTERVALS,
    ladder_growth: float = LADDER_GROWTH,
) -> int:
    """Intervals per axis for an embedding whose bounding square has side ``side``: the rung of
    :func:`interval_ladder` nearest (in ratio) to ``side / ints_in_interval``.

    Chosen on the host, once per call or per chunk of descent iterations, so that the compiled
    programs hold one grid size each and no run-time branch (docs/accelerators.md).

    Returns:
      Python int, a rung of ``interval_ladder(min_num_intervals, max_num_intervals,
      ladder_growth)``.
    """
    ladder = interval_ladder(int(min_num_intervals), int(max_num_intervals), ladder_growth)
    # Nearest in ratio, not the next rung up: intervals stay within sqrt(ladder_growth) of the
    # nominal width, which at n = 5,000 cut the time by 15% for 0.1% in the final KL.
    mids = [math.sqrt(a * b) for a, b in zip(ladder[:-1], ladder[1:], strict=True)]
    return ladder[sum(mid < side / ints_in_interval for mid in mids)]


def fft_repulsion(
    y,
    charge=None,
    *,
    n_boxes: int | None = None,
    n_interpolation_points: int | None = None,
    min_num_intervals: int = MIN_NUM_INTERVALS,
    ints_in_interval: float = INTS_IN_INTERVAL,
    max_num_intervals: int = MAX_NUM_INTERVALS,
    dof: float = 1.0,
    z_exponent: float | None = None,
    stencil_size: int | None = None,
    ladder_growth: float = LADDER_GROWTH,
    deterministic_sums: bool | None = None,
):
    """Unnormalised t-SNE repulsive forces and normalisation ``Z`` by FFT interpolation.

    With ``a = dof`` and ``e = z_exponent`` (default ``a``)::

        repulsive_i = sum_{j != i} (1 + |y_i - y_j|^2 / a)^-(a + 1) (y_i - y_j)
        z           = sum_{i != j} (1 + |y_i - y_j|^2 / a)^-e

    For standard t-SNE (``a = e = 1``), with ``w_ij = 1 / (1 + |y_i - y_j|^2)``, these are
    ``repulsive_i = sum_j w_ij^2 (y_i - y_j)`` and ``z = sum_{i != j} w_ij``, and the KL gradient
    is ``4 * (exaggeration * attractive_i - repulsive_i / z)``, ``attractive_i =
    sum_j p_ij w_ij (y_i - y_j)``. For other ``a``, ``e = a`` is openTSNE's kernel
    ``w = (1 + d^2/a)^-a``; ``e = (a + 1) / 2`` is scikit-learn's (tfclust.tsne.gradients), whose
    ``repulsive_i = sum_j w_ij^2 (y_i - y_j)`` is the same force as above.

    Both outputs are interpolation estimates. With 5 nodes per interval of side 1 (50-200
    intervals), on 2,000-point Gaussian mixtures spanning 30-130 units, the force error
    ``||R - R_exact||_F / ||R_exact||_F`` is below 1e-3 and the relative error of ``z`` below
    1e-5, in float32 and float64 (tests/test_tsne_fft.py); the defaults (``TSNE``'s) trade some
    of that accuracy for speed, measured by the final KL divergence (``TSNE``'s docstring).

    Grid: the bounding square of ``y`` is cut into ``n_boxes`` intervals per axis; by default
    (``n_boxes=None``) into :func:`grid_intervals` of its side, i.e. ``side /
    ints_in_interval`` clipped to ``[min_num_intervals, max_num_intervals]`` and rounded to the
    nearest (in ratio) rung of :func:`interval_ladder`, so intervals are at most
    ``sqrt(ladder_growth)`` (~22% at the default) wider or narrower than asked (openTSNE rounds
    up to FFT-friendly sizes). Each interval holds ``n_interpolation_points`` equispaced nodes
    (FIt-SNE's grid, node spacing ``interval / n_interpolation_points``), and each point is
    interpolated from the ``stencil_size`` nodes per axis nearest to it: a centred Lagrange
    stencil, ~3x more accurate than FIt-SNE's "the nodes of the point's own interval" at the
    same cost. Beyond ``max_num_intervals`` the intervals widen instead, and accuracy degrades
    gently.

    Accuracy is set by the node spacing (0.4 units at the 2-D defaults, 0.2 with 5 nodes per
    unit interval). openTSNE's default of 3 nodes per interval (spacing 1/3) gives ~2e-2 force
    error on the same data; ``n_interpolation_points=3, stencil_size=5`` gives ~9e-3.

    Compiled with XLA, one program per grid size; with a static ``n_boxes`` it is traceable
    inside another compiled function (e.g. a descent loop's body), and holds no run-time branch.
    ``n_boxes=None`` reads the extent back to the host first, so it needs eager tensors.

    Args:
      y: (N, d) float32 or float64 tensor, d in {1, 2}, static N >= 1: the embedding.
      charge: optional (N,) tensor of y's dtype, 1 for the points and 0 for padding rows (a size
        bucket), which neither repel, feel a force (their rows are 0) nor set the grid; default
        all ones.
      n_boxes: intervals per axis (a Python int >= 1), or None (default): chosen from the
        extent by :func:`grid_intervals` with the next four settings.
      n_interpolation_points: grid nodes per interval and axis; None (default):
        :func:`default_nodes` of y's dimension, with its stencil size.
      min_num_intervals: fewest intervals per axis (default :data:`MIN_NUM_INTERVALS`).
      ints_in_interval: target interval side in embedding units (openTSNE's meaning: smaller is
        more accurate; intervals = side / ints_in_interval; default :data:`INTS_IN_INTERVAL`).
      max_num_intervals: most intervals per axis (default :data:`MAX_NUM_INTERVALS`). Bounds
        time and memory per
        call: the largest grid has ``M = n_interpolation_points * max_num_intervals`` nodes per
        axis, and the 2-D transforms hold about ``4 * 2 M^2`` complex values at once (~100 MB in
        float32 for M = 1000), on top of O(N * stencil_size^d) for the points.
      dof: degrees of freedom ``a`` of the heavy-tailed kernel (> 0, default 1); any value, same
        cost.
      z_exponent: exponent ``e`` of Z's kernel (> 0); None (default) means ``dof`` (openTSNE).
      stencil_size: nodes per axis each point is interpolated from (None: n_interpolation_points,
        or :func:`default_nodes`' when that is None too).
      ladder_growth: ratio between consecutive grid sizes (> 1, default
        :data:`LADDER_GROWTH`).
      deterministic_sums: spread the charges in 64-bit fixed point
        (:func:`fixed_point_segment_sum`: the same grid on every run of an accelerator, to well
        within float32 rounding of the float sums) rather than by a float scatter-add; None
        (default): the device profile's ``deterministic_sums``, read when called (inside a
        compiled function, pass it explicitly).

    Returns:
      ``(repulsive, z)``: (N, d) tensor and scalar tensor, both of y's dtype.
    """
    y = tf.convert_to_tensor(y)
    if y.dtype not in (tf.float32, tf.float64):
        raise TypeError(f"y must be float32 or float64, got {y.dtype.name}")
    if y.shape.rank != 2 or y.shape[1] not in (1, 2) or y.shape[0] is None:
        raise ValueError(f"y must have a static shape (N, 1) or (N, 2), got {y.shape}")
    if n_interpolation_points is None:
        n_interp, n_taps = default_nodes(y.shape[1])
    else:
        n_interp = n_taps = int(n_interpolation_points)
    n_taps = n_taps if stencil_size is None else int(stencil_size)
    if n_interp < 1 or n_taps < 1:
        raise ValueError(
            f"n_interpolation_points and stencil_size must be >= 1, got {n_interp}, {n_taps}"
        )
    ladder = interval_ladder(int(min_num_intervals), int(max_num_intervals), ladder_growth)
    smallest = ladder[0] if n_boxes is None else int(n_boxes)
    if smallest < 1 or n_taps > smallest * n_interp:
        raise ValueError(f"stencil_size {n_taps} exceeds the smallest grid ({smallest * n_interp})")
    if not ints_in_interval > 0:
        raise ValueError(f"ints_in_interval must be > 0, got {ints_in_interval}")
    if not dof > 0:
        raise ValueError(f"dof must be > 0, got {dof}")
    if z_exponent is not None and not z_exponent > 0:
        raise ValueError(f"z_exponent must be > 0, got {z_exponent}")
    if charge is None:
        charge = tf.ones_like(y[:, 0])
    deterministic_sums = use_deterministic_sums(deterministic_sums)
    if n_boxes is None:
        if not tf.executing_eagerly():
            raise ValueError(
                "fft_repulsion inside a compiled function needs a static n_boxes (choose it "
                "on the host with grid_intervals)"
            )
        n_boxes = grid_intervals(
            float(grid_extent(y, charge)),
            min_num_intervals=min_num_intervals,
            ints_in_interval=ints_in_interval,
            max_num_intervals=max_num_intervals,
            ladder_growth=ladder_growth,
        )
    program = _fixed_grid_repulsion_fixed_point if deterministic_sums else _fixed_grid_repulsion
    return program(
        y,
        charge,
        n_boxes=int(n_boxes),
        n_interp=n_interp,
        n_taps=n_taps,
        dof=float(dof),
        z_exponent=float(dof if z_exponent is None else z_exponent),
    )


def _centred_repulsion(y, charge, deterministic_sums: bool, **settings):
    """:func:`fft_repulsion` on a grid of ``n_boxes`` intervals over the charged points' square;
    ``settings``: the static keywords of :func:`_repulsion_on_grid`."""
    centre, extent = _bounds(y, charge)
    # The kernels are translation invariant; positions relative to the grid centre keep the
    # most float precision for the node coordinates.
    lo = -0.5 * extent * tf.ones_like(centre)
    return _repulsion_on_grid(
        y - centre, charge, lo, extent, deterministic_sums=deterministic_sums, **settings
    )


@compiled
def _fixed_grid_repulsion(y, charge, *, n_boxes, n_interp, n_taps, dof, z_exponent):
    """:func:`fft_repulsion` on a grid of ``n_boxes`` intervals over the charged points' square,
    the charges spread by a float scatter-add."""
    return _centred_repulsion(
        y,
        charge,
        False,
        n_boxes=n_boxes,
        n_interp=n_interp,
        n_taps=n_taps,
        dof=dof,
        z_exponent=z_exponent,
    )


@compiled
def _fixed_grid_repulsion_fixed_point(y, charge, *, n_boxes, n_interp, n_taps, dof, z_exponent):
    """:func:`_fixed_grid_repulsion` with the charges spread in 64-bit fixed point."""
    return _centred_repulsion(
        y,
        charge,
        True,
        n_boxes=n_boxes,
        n_interp=n_interp,
        n_taps=n_taps,
        dof=dof,
        z_exponent=z_exponent,
    )


class ReferenceGrid(NamedTuple):
    """The repulsion of fixed points, tabulated on a grid (see :func:`reference_grid`).

    Attributes:
      fields: (m^d, d + 1) tensor: at each node, the d components of ``sum_j D(x - y_j)`` and
        Z's potential ``sum_j K(x - y_j)`` (then the node spacing's units).
      lo: (d,) lower corner of the grid, embedding units.
      spacing: scalar node spacing, embedding units.
    """

    fields: tf.Tensor
    lo: tf.Tensor
    spacing: tf.Tensor


def reference_grid(
    y,
    charge,
    *,
    n_boxes: int,
    n_interpolation_points: int,
    stencil_size: int,
    padding: float,
    dof: float = 1.0,
    deterministic_sums: bool = False,
) -> ReferenceGrid:
    """The force and Z potentials of the points ``y`` on a fixed grid, for points that move
    against them (t-SNE's ``transform``: the reference embedding does not move).

    The grid is the bounding square of ``y`` widened by ``padding`` (a fraction of its side, as
    openTSNE's ``prepare_interpolation_grid``), cut into ``n_boxes`` intervals per axis of
    ``n_interpolation_points`` nodes. The potentials are those of :func:`fft_repulsion` (kernel
    ``(1 + d^2 / dof)^-dof`` for Z, ``^-(dof + 1)`` times the offset for the force), computed
    once; :func:`grid_repulsion` then reads them at any point through its stencil. Traceable.

    Args:
      y: (N, d) float tensor, d in {1, 2}: the fixed points.
      charge: (N,) 1 for a point, 0 for a padding row.
      n_boxes, n_interpolation_points, stencil_size: the grid (static Python ints).
      padding: fraction of the side added around the points (> 0 leaves room to move).
      dof: degrees of freedom of the kernel.
      deterministic_sums: spread the charges in 64-bit fixed point, as :func:`fft_repulsion`
        does with it (static; default False: a float scatter-add).

    Returns:
      :class:`ReferenceGrid`.
    """
    dim = y.shape[1]
    m = n_boxes * n_interpolation_points
    centre, side = _bounds(y, charge)
    extent = side * (1.0 + padding)
    lo = centre - 0.5 * extent
    spacing = extent / m
    _, flat_nodes, flat_w = _stencil(y, lo, spacing, m, stencil_size)
    grid = _spread(flat_nodes, flat_w * charge[:, None], m, dim, deterministic_sums)
    force_kernel, kernel = _kernel_fns(dof, dof)
    force_hat, z_hat = _kernel_spectra(force_kernel, kernel, m, spacing, dim, y.dtype)
    fields, _ = _convolve(grid, force_hat, z_hat, m, dim, potential=True)
    return ReferenceGrid(tf.transpose(tf.reshape(fields, [dim + 1, m**dim])), lo, spacing)


def grid_repulsion(y, grid: ReferenceGrid, stencil_size: int):
    """The repulsion on the points ``y`` from the points tabulated in ``grid``.

    Args:
      y: (N, d) float tensor; points outside the grid are read at its edge.
      grid: from :func:`reference_grid`.
      stencil_size: as given to :func:`reference_grid`.

    Returns:
      ``(repulsive, z)``: (N, d) ``sum_j (1 + |y_i - y_j|^2 / dof)^-(dof + 1) (y_i - y_j)`` and
      (N,) ``sum_j (1 + |y_i - y_j|^2 / dof)^-dof`` over the grid's points j, interpolated.
    """
    m = round(grid.fields.shape[0] ** (1.0 / y.shape[1]))
    _, flat_nodes, flat_w = _stencil(y, grid.lo, grid.spacing, m, stencil_size)
    values = _interpolate(grid.fields, flat_nodes, flat_w)
    return values[:, :-1], values[:, -1]
