"""The building blocks of one Lloyd iteration, shared by the in-memory and streaming kernels.

Every function here is traced inside a ``tf.function(jit_compile=True)``; none of them touches
the host. Shapes use R for the number of restarts run side by side, k for clusters, d for
features and T for the rows of one tile. Centres are stored as an (R, k, d) tensor so that all
restarts go through one (T, d) x (d, R*k) matmul per tile.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from .._precision import einsum, matmul


def pad_to_tiles(x: tf.Tensor, tile: int):
    """Zero-pad the (N, d) rows of ``x`` to whole tiles.

    Returns:
      xb: (n_tiles, tile, d) rows; the padding rows are zero.
      valid: (n_tiles, tile) bool, False on padding rows.
    """
    n, d = x.shape
    n_tiles = -(-n // tile)
    pad = n_tiles * tile - n
    xb = tf.reshape(tf.pad(x, [[0, pad], [0, 0]]), [n_tiles, tile, d])
    valid = tf.reshape(tf.range(n_tiles * tile) < n, [n_tiles, tile])
    return xb, valid


def fold_tiles(n_tiles: int, body, state):
    """Run ``state = body(t, *state)`` for t = 0..n_tiles-1 as one ``tf.while_loop``."""
    if n_tiles == 1:
        return tuple(body(tf.constant(0), *state))
    out = tf.while_loop(
        lambda t, *s: t < n_tiles,
        lambda t, *s: (t + 1, *body(t, *s)),
        (tf.constant(0), *state),
    )
    return tuple(out[1:])


def assign(xt: tf.Tensor, centers: tf.Tensor, c_sq: tf.Tensor):
    """Nearest centre of every row, for every restart.

    Args:
      xt: (T, d) rows.
      centers: (R, k, d) centres.
      c_sq: (R, k) squared norms of ``centers``.

    Returns:
      labels: (T, R) int32, the first index of the smallest distance (scikit-learn's tie rule).
      score: (T, R) ``|c|^2 - 2 x.c`` of that centre, i.e. the squared distance minus ``|x|^2``.
    """
    r, k, d = centers.shape
    cross = matmul(xt, tf.reshape(centers, [r * k, d]), transpose_b=True)
    scores = c_sq[tf.newaxis] - 2.0 * tf.reshape(cross, [-1, r, k])
    best = tf.reduce_min(scores, axis=-1, keepdims=True)
    # min + first-match is several times faster than tf.argmin under XLA on CPU.
    iota = tf.range(k, dtype=tf.int32)
    labels = tf.reduce_min(tf.where(scores == best, iota, k), axis=-1)
    return labels, best[..., 0]


def accumulate(
    xt: tf.Tensor,
    wt: tf.Tensor,
    labels: tf.Tensor,
    n_clusters: int,
    deterministic_sums: bool = False,
):
    """Per-centre weighted sums and weights of one tile.

    Args:
      xt: (T, d) rows; wt: (T,) weights (0 on padding rows); labels: (T, R) int32.
      deterministic_sums: Python bool (static; default False): sum through a (T, R k) one-hot
        matmul instead of scatter-adds, which an accelerator runs as float atomics whose order,
        and so whose rounding, varies run to run (the device profile's ``deterministic_sums``).

    Returns:
      sums: (R, k, d), counts: (R, k), in ``xt``'s dtype.
    """
    r = labels.shape[1]
    t = tf.shape(labels)[0]
    d = xt.shape[1]
    k = n_clusters
    if deterministic_sums:
        # The one-hot is as big as the tile's (T, R k) scores; the weights ride as a last column.
        one_hot = tf.reshape(tf.one_hot(labels, k, dtype=xt.dtype), [-1, r * k])
        rows = tf.concat([xt * wt[:, tf.newaxis], wt[:, tf.newaxis]], axis=1)
        both = matmul(one_hot, rows, transpose_a=True)  # (R k, d + 1)
        return tf.reshape(both[:, :d], [r, k, d]), tf.reshape(both[:, d], [r, k])
    # A scatter-add is cheaper here than a one-hot matmul under XLA on CPU (measured: 10 ms vs
    # 160 ms for 60k x 64 rows, 3 x 256 centres).
    seg = tf.reshape(labels + k * tf.range(r, dtype=tf.int32)[tf.newaxis], [-1])
    rows = tf.broadcast_to((xt * wt[:, tf.newaxis])[:, tf.newaxis, :], tf.stack([t, r, d]))
    sums = tf.math.unsorted_segment_sum(tf.reshape(rows, [-1, d]), seg, r * k)
    counts = tf.math.unsorted_segment_sum(
        tf.reshape(tf.broadcast_to(wt[:, tf.newaxis], tf.stack([t, r])), [-1]), seg, r * k
    )
    return tf.reshape(sums, [r, k, d]), tf.reshape(counts, [r, k])


def relocate_empty(sums, counts, far_x, far_label, far_dist, far_weight, active):
    """Re-seed empty clusters on the points farthest from their centres, as scikit-learn does.

    The j-th empty cluster (in index order) of a restart receives the j-th farthest point (with
    its sample weight); that point is taken out of the cluster it was assigned to. Nothing moves
    in a restart whose points all sit on their centres (then the averaging step copies the
    biggest cluster).

    Args:
      sums: (R, k, d); counts: (R, k) the accumulated sums and weights.
      far_x: (R, M, d) the M farthest points of each restart, farthest first.
      far_label: (R, M) int32 their clusters; far_dist: (R, M) their squared distances to them;
      far_weight: (R, M) their sample weights.
      active: (R,) bool; restarts that already converged are left alone.

    Returns:
      The updated (sums, counts).
    """
    k = counts.shape[1]
    m = far_x.shape[1]
    empty = counts == 0
    rank = tf.cumsum(tf.cast(empty, tf.int32), axis=1) - 1
    movable = empty & (rank < m) & (far_dist[:, :1] > 0) & active[:, tf.newaxis]
    idx = tf.clip_by_value(rank, 0, m - 1)
    pw = tf.gather(far_weight, idx, batch_dims=1)  # (R, k)
    px = tf.gather(far_x, idx, batch_dims=1) * pw[..., tf.newaxis]  # (R, k, d), weighted
    plab = tf.gather(far_label, idx, batch_dims=1)  # (R, k)
    removal = tf.one_hot(plab, k, dtype=sums.dtype) * tf.cast(movable, sums.dtype)[..., None]
    sums = sums - einsum("rno,rnd->rod", removal, px)
    counts = counts - einsum("rno,rn->ro", removal, pw)
    sums = tf.where(movable[..., tf.newaxis], px, sums)
    counts = tf.where(movable, pw, counts)
    return sums, counts


def average(sums: tf.Tensor, counts: tf.Tensor) -> tf.Tensor:
    """New (R, k, d) centres: sums / counts; an empty cluster takes the biggest one's centre."""
    nonempty = counts > 0
    centers = sums / tf.where(nonempty, counts, tf.ones_like(counts))[..., tf.newaxis]
    biggest = tf.argmax(counts, axis=1, output_type=tf.int32)
    fill = tf.gather(centers, biggest, batch_dims=1)
    return tf.where(nonempty[..., tf.newaxis], centers, fill[:, tf.newaxis, :])


class Convergence(NamedTuple):
    """Where each of R restarts stands; every field is (R,)."""

    done: tf.Tensor  # bool, converged (frozen)
    n_iter: tf.Tensor  # int32, iterations run
    strict: tf.Tensor  # bool, the last iteration changed no label
    shift: tf.Tensor  # the last iteration's summed squared centre shift

    @classmethod
    def start(cls, n_restarts: int, dtype) -> Convergence:
        no = tf.zeros([n_restarts], tf.bool)
        return cls(no, tf.zeros([n_restarts], tf.int32), no, tf.zeros([n_restarts], dtype))


def converge_step(i, centers, new_centers, changed, conv: Convergence, tol):
    """Freeze the restarts that converged at iteration ``i`` (scikit-learn's two criteria).

    A restart converges strictly when no label changed, or when the summed squared centre shift
    is within ``tol``. Its centres still take this iteration's update, as in scikit-learn.

    Args:
      i: int32 scalar, 0-based iteration; centers, new_centers: (R, k, d); changed: (R,) bool,
      whether any label changed; conv: the restarts' :class:`Convergence`; tol: scalar.

    Returns:
      (centers, conv, active) where ``active`` marks the restarts that were still running at
      this iteration.
    """
    active = ~conv.done
    shift = tf.reduce_sum(tf.square(new_centers - centers), axis=[1, 2])
    centers = tf.where(active[:, None, None], new_centers, centers)
    conv = Convergence(
        done=conv.done | ~changed | (shift <= tol),
        n_iter=tf.where(active, i + 1, conv.n_iter),
        strict=tf.where(active, ~changed, conv.strict),
        shift=tf.where(active, shift, conv.shift),
    )
    return centers, conv, active
