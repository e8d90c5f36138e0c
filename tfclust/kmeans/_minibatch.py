"""Mini-batch K-means (Sculley 2010; scikit-learn's ``MiniBatchKMeans``) as XLA programs.

Each step assigns a batch of rows to the nearest centres and moves every centre that won rows to
the weighted mean of all the rows it has won so far (its running weight sum sets the learning
rate). Centres that won too little are re-seeded on random batch rows from time to time.
``fit_minibatch`` runs every step of a fit in one compiled ``tf.while_loop``, sampling batches
with stateless random ops and stopping early with scikit-learn's two criteria (small centre
change, or no improvement of the smoothed batch inertia); ``partial_fit_step`` is one step on a
batch the caller supplies. Rows are centred by the caller (as in ``_lloyd``).
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from .._compile import compiled
from ._init import kmeans_plusplus, random_rows
from ._steps import assign, pad_to_tiles

# scikit-learn re-seeds light centres each time this many rows per cluster have been seen.
REASSIGN_EVERY_ROWS_PER_CLUSTER = 10


def _fold(seed, step):
    return tf.random.experimental.stateless_fold_in(seed, step)


def assign_batch(xb, centers):
    """Labels (B,) int32 and squared distances (B,) of the rows ``xb`` (B, d) to ``centers``."""
    c_sq = tf.reduce_sum(tf.square(centers), axis=1)
    labels, score = assign(xb, centers[tf.newaxis], c_sq[tf.newaxis])
    dist = tf.maximum(score[:, 0] + tf.reduce_sum(tf.square(xb), axis=1), 0.0)
    return labels[:, 0], dist


def _reassign_light(xb, centers, weight_sums, reassignment_ratio, seed):
    """Re-seed the centres whose weight sum is below ``reassignment_ratio`` times the largest.

    As scikit-learn: at most half a batch of centres (the lightest) move, each to a distinct
    batch row drawn uniformly, and their weight sums become the smallest of the others'.
    Returns the updated (centers (k, d), weight_sums (k,)).
    """
    k = centers.shape[0]
    b = xb.shape[0]
    light = weight_sums < reassignment_ratio * tf.reduce_max(weight_sums)
    cap = int(0.5 * b)
    if cap < k:
        rank = tf.argsort(tf.argsort(weight_sums, stable=True), stable=True)
        light &= rank < cap
    n_draw = min(k, b)
    _, rows = tf.math.top_k(tf.random.stateless_uniform([b], seed), n_draw)
    slot = tf.clip_by_value(tf.cumsum(tf.cast(light, tf.int32)) - 1, 0, n_draw - 1)
    centers = tf.where(light[:, tf.newaxis], tf.gather(xb, tf.gather(rows, slot)), centers)
    floor = tf.reduce_min(
        tf.where(light, tf.constant(float("inf"), weight_sums.dtype), weight_sums)
    )
    floor = tf.where(tf.math.is_inf(floor), tf.reduce_min(weight_sums), floor)
    return centers, tf.where(light, floor, weight_sums)


def _step(xb, wb, centers, weight_sums, reassign, reassignment_ratio, seed):
    """One mini-batch step on the rows ``xb`` (B, d) of sample weights ``wb`` (B,).

    Args:
      centers: (k, d); weight_sums: (k,) weight won so far per centre; reassign: bool scalar,
      whether light centres may be re-seeded in this step; reassignment_ratio: scalar >= 0;
      seed: (2,) int32 for the re-seeding draw.

    Returns:
      centers (k, d), weight_sums (k,), and the batch's inertia (weighted sum of squared
      distances to the centres before the update).
    """
    k = centers.shape[0]
    labels, dist = assign_batch(xb, centers)
    sums = tf.math.unsorted_segment_sum(xb * wb[:, tf.newaxis], labels, k)
    counts = tf.math.unsorted_segment_sum(wb, labels, k)
    total = weight_sums + counts
    won = counts > 0
    moved = (centers * weight_sums[:, tf.newaxis] + sums) / tf.where(won, total, 1.0)[:, None]
    new_centers = tf.where(won[:, tf.newaxis], moved, centers)
    new_centers, total = tf.cond(
        reassign & (reassignment_ratio > 0),
        lambda: _reassign_light(xb, new_centers, total, reassignment_ratio, seed),
        lambda: (new_centers, total),
    )
    return new_centers, total, tf.reduce_sum(dist * wb)


@compiled
def partial_fit_step(xb, wb, centers, weight_sums, reassign, reassignment_ratio, seed):
    """``_step`` as its own compiled program, for ``MiniBatchKMeans.partial_fit``."""
    return _step(xb, wb, centers, weight_sums, reassign, reassignment_ratio, seed)


@compiled
def init_minibatch(
    x,
    sample_weight,
    n_valid,
    seed,
    *,
    n_clusters: int,
    n_init: int,
    init: str,
    init_size: int,
    n_local_trials: int,
):
    """The best of ``n_init`` seedings drawn on ``init_size`` random rows of ``x`` (n, d), of
    which the first ``n_valid`` (int32 scalar) are real and the rest padding; the rows weigh
    ``sample_weight`` (n,) in the seeding and the scoring.

    As scikit-learn: the inits are drawn on a random subset of rows (here one subset shared by
    all inits, seeded side by side) and scored on another one; the lowest inertia wins.
    Returns (k, d) centres.
    """
    subset_rows = tf.random.stateless_uniform([init_size], _fold(seed, 0), 0, n_valid, tf.int32)
    valid_rows = tf.random.stateless_uniform([init_size], _fold(seed, 1), 0, n_valid, tf.int32)
    valid = tf.gather(x, valid_rows)
    xb, mask = pad_to_tiles(tf.gather(x, subset_rows), init_size)
    wb, _ = pad_to_tiles(tf.gather(sample_weight, subset_rows)[:, tf.newaxis], init_size)
    wb = tf.cast(mask, x.dtype) * wb[..., 0]
    if init == "k-means++":
        centers = kmeans_plusplus(
            xb, wb, _fold(seed, 2), n_clusters, n_init, n_local_trials, init_size
        )
    else:
        centers = random_rows(xb, wb, _fold(seed, 2), n_clusters, n_init)
    c_sq = tf.reduce_sum(tf.square(centers), axis=-1)
    _, score = assign(valid, centers, c_sq)  # (init_size, R)
    sq = score + tf.reduce_sum(tf.square(valid), axis=1)[:, None]
    inertia = tf.reduce_sum(sq * tf.gather(sample_weight, valid_rows)[:, None], axis=0)
    return tf.gather(centers, tf.argmin(inertia, output_type=tf.int32))


class _FitState(NamedTuple):
    """The loop state of :func:`fit_minibatch`."""

    i: tf.Tensor  # int32 scalar, steps done
    centers: tf.Tensor  # (k, d)
    weight_sums: tf.Tensor  # (k,) weight won so far per centre
    since: tf.Tensor  # int32 scalar, rows seen since the last re-seeding check
    ewa: tf.Tensor  # smoothed mean batch inertia
    ewa_min: tf.Tensor  # its lowest value so far
    stale: tf.Tensor  # int32 scalar, steps without improving ewa_min
    small_change: tf.Tensor  # bool scalar, stopped by the centre change
    no_improvement: tf.Tensor  # bool scalar, stopped by the smoothed inertia


@compiled
def fit_minibatch(
    x,
    sample_weight,
    n_valid,
    centers,
    seed,
    n_steps,
    tol,
    max_no_improvement,
    reassignment_ratio,
    *,
    batch_size: int,
):
    """Up to ``n_steps`` mini-batch steps from ``centers`` (k, d) on the first ``n_valid``
    (int32 scalar) rows of ``x`` (n, d), weighted by ``sample_weight`` (n,); the rest is
    padding.

    Batches are ``batch_size`` rows drawn uniformly with replacement (the weights weigh them in
    the update, as scikit-learn). Stops early, as scikit-learn, when the summed squared centre
    change is within ``tol`` (if ``tol > 0``), or when the smoothed mean batch inertia has not
    improved for ``max_no_improvement`` steps (if that is >= 0).

    Returns:
      A dict: centers (k, d), weight_sums (k,), n_steps (int32, steps run), ewa_inertia (the
      smoothed mean batch inertia, per row), and why it stopped early (bool scalars):
      small_change, no_improvement.
    """
    k = centers.shape[0]
    dtype = x.dtype
    alpha = tf.minimum(batch_size * 2.0 / tf.cast(n_valid + 1, dtype), 1.0)

    def body(st: _FitState):
        i = st.i
        rows = tf.random.stateless_uniform([batch_size], _fold(seed, 2 * i), 0, n_valid, tf.int32)
        since = st.since + batch_size
        reassign = tf.reduce_any(st.weight_sums == 0) | (
            since >= REASSIGN_EVERY_ROWS_PER_CLUSTER * k
        )
        since = tf.where(reassign, 0, since)
        new_centers, weight_sums, inertia = _step(
            tf.gather(x, rows),
            tf.gather(sample_weight, rows),
            st.centers,
            st.weight_sums,
            reassign,
            reassignment_ratio,
            _fold(seed, 2 * i + 1),
        )
        change = tf.reduce_sum(tf.square(new_centers - st.centers))
        # scikit-learn's _mini_batch_convergence: the first step only warms up; the smoothed
        # inertia starts at the second step's batch inertia.
        batch_inertia = inertia / batch_size
        first, second = i == 0, i == 1
        ewa = tf.where(second, batch_inertia, st.ewa * (1 - alpha) + batch_inertia * alpha)
        improved = second | (ewa < st.ewa_min)
        ewa_min = tf.where(first, st.ewa_min, tf.where(improved, ewa, st.ewa_min))
        stale = tf.where(first, st.stale, tf.where(improved, 0, st.stale + 1))
        small_change = ~first & (tol > 0) & (change <= tol)
        no_improvement = ~first & (max_no_improvement >= 0) & (stale >= max_no_improvement)
        return (
            _FitState(
                i + 1,
                new_centers,
                weight_sums,
                since,
                ewa,
                ewa_min,
                stale,
                small_change,
                no_improvement,
            ),
        )

    zero, no = tf.zeros((), dtype), tf.constant(False)
    state = _FitState(
        tf.constant(0),
        centers,
        tf.zeros([k], dtype),
        tf.constant(0),
        zero,
        zero,
        tf.constant(0),
        no,
        no,
    )
    (out,) = tf.while_loop(
        lambda st: (st.i < n_steps) & ~st.small_change & ~st.no_improvement, body, (state,)
    )
    return {
        "centers": out.centers,
        "weight_sums": out.weight_sums,
        "n_steps": out.i,
        "ewa_inertia": out.ewa,
        "small_change": out.small_change,
        "no_improvement": out.no_improvement,
    }
