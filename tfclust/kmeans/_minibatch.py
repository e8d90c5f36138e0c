"""Mini-batch K-means (Sculley 2010; scikit-learn's ``MiniBatchKMeans``) as XLA programs.

Each step assigns a batch of rows to the nearest centres and moves every centre that won rows to
the weighted mean of all the rows it has won so far (its running weight sum sets the learning
rate). Centres that won too little are re-seeded on random batch rows from time to time.
``fit_minibatch`` runs the steps of a fit in compiled chunks of ``CHUNK_STEPS`` steps
(``fit_chunk``), sampling batches with stateless random ops; the host reads three integers
after each chunk and stops with scikit-learn's two criteria (small centre change, or no
improvement of the smoothed batch inertia). A chunk's trip count is static and its steps hold
no branch (steps past the end are masked, the re-seeding is computed every step and selected),
so an accelerator never waits on the host inside a chunk (docs/accelerators.md).
``partial_fit_step`` is one step on a batch the caller supplies. Rows are centred by the caller
(as in ``_lloyd``).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import tensorflow as tf

from .._compile import compiled
from .._device import device_profile
from ._init import kmeans_plusplus, random_rows
from ._steps import accumulate, assign, pad_to_tiles

logger = logging.getLogger("tfclust.kmeans")

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


def _step(xb, wb, centers, weight_sums, reassign, reassignment_ratio, seed, deterministic_sums):
    """One mini-batch step on the rows ``xb`` (B, d) of sample weights ``wb`` (B,).

    Args:
      centers: (k, d); weight_sums: (k,) weight won so far per centre; reassign: bool scalar,
      whether light centres may be re-seeded in this step; reassignment_ratio: scalar >= 0;
      seed: (2,) int32 for the re-seeding draw; deterministic_sums: Python bool, per-centre
      sums by a one-hot matmul rather than scatter-adds (see ``_steps.accumulate``).

    Returns:
      centers (k, d), weight_sums (k,), and the batch's inertia (weighted sum of squared
      distances to the centres before the update).
    """
    k = centers.shape[0]
    labels, dist = assign_batch(xb, centers)
    sums, counts = accumulate(xb, wb, labels[:, tf.newaxis], k, deterministic_sums)
    sums, counts = sums[0], counts[0]
    total = weight_sums + counts
    won = counts > 0
    moved = (centers * weight_sums[:, tf.newaxis] + sums) / tf.where(won, total, 1.0)[:, None]
    new_centers = tf.where(won[:, tf.newaxis], moved, centers)
    # Re-seeded every step and selected, not branched on: no conditional inside a loop.
    reseeded, reseeded_total = _reassign_light(xb, new_centers, total, reassignment_ratio, seed)
    reassign &= reassignment_ratio > 0
    new_centers = tf.where(reassign, reseeded, new_centers)
    total = tf.where(reassign, reseeded_total, total)
    return new_centers, total, tf.reduce_sum(dist * wb)


@compiled
def partial_fit_step(
    xb, wb, centers, weight_sums, reassign, reassignment_ratio, seed, *, deterministic_sums: bool
):
    """``_step`` as its own compiled program, for ``MiniBatchKMeans.partial_fit``."""
    return _step(
        xb, wb, centers, weight_sums, reassign, reassignment_ratio, seed, deterministic_sums
    )


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


CHUNK_STEPS = 16
"""Mini-batch steps per compiled chunk of :func:`fit_chunk`: a fit that stops early runs at
most 15 masked steps. Measured on the 2-core CPU (60,000 x 64 latents, k=10, defaults, 44 to
142 steps): chunks of 4, 8, 16, 32, 64 steps fit in 0.32, 0.19, 0.17, 0.19, 0.19 s (median)."""


class FitState(NamedTuple):
    """Where the steps of :func:`fit_minibatch` stand between chunks."""

    i: tf.Tensor  # int32 scalar, steps done
    centers: tf.Tensor  # (k, d)
    weight_sums: tf.Tensor  # (k,) weight won so far per centre
    since: tf.Tensor  # int32 scalar, rows seen since the last re-seeding check
    ewa: tf.Tensor  # smoothed mean batch inertia
    ewa_min: tf.Tensor  # its lowest value so far
    stale: tf.Tensor  # int32 scalar, steps without improving ewa_min
    small_change: tf.Tensor  # bool scalar, stopped by the centre change
    no_improvement: tf.Tensor  # bool scalar, stopped by the smoothed inertia

    @classmethod
    def start(cls, centers) -> FitState:
        """The state before the first step from ``centers`` (k, d)."""
        k, dtype = centers.shape[0], centers.dtype
        zero, no = tf.zeros((), dtype), tf.constant(False)
        return cls(
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


@compiled
def fit_chunk(
    x,
    sample_weight,
    n_valid,
    seed,
    state,
    n_steps,
    tol,
    max_no_improvement,
    reassignment_ratio,
    *,
    batch_size: int,
    length: int,
    deterministic_sums: bool,
):
    """``length`` mini-batch steps from ``state``, a trip count XLA knows; steps from
    ``n_steps`` on, or after a stopping rule fired, are masked (the state does not change).

    Batches are ``batch_size`` rows of the first ``n_valid`` (int32 scalar) of ``x`` (n, d),
    drawn uniformly with replacement; ``sample_weight`` (n,) weighs them in the update, as
    scikit-learn. The stopping rules are scikit-learn's: the summed squared centre change of a
    step is within ``tol`` (if ``tol > 0``), or the smoothed mean batch inertia has not improved
    for ``max_no_improvement`` steps (if that is >= 0).

    Args:
      state: :class:`FitState`; seed: (2,) int32; n_steps, max_no_improvement: int32 scalars;
      tol, reassignment_ratio: scalars of ``x``'s dtype; deterministic_sums: Python bool (see
      :func:`_step`).

    Returns:
      The :class:`FitState` after the chunk, and its progress: (3,) int32, the steps done and
      whether each stopping rule (centre change, no improvement) fired.
    """
    k = state.centers.shape[0]
    dtype = x.dtype
    alpha = tf.minimum(batch_size * 2.0 / tf.cast(n_valid + 1, dtype), 1.0)

    def advance(st: FitState) -> FitState:
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
            deterministic_sums,
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
        return FitState(
            i + 1,
            new_centers,
            weight_sums,
            since,
            ewa,
            ewa_min,
            stale,
            small_change,
            no_improvement,
        )

    def body(j, st: FitState):
        running = (st.i < n_steps) & ~st.small_change & ~st.no_improvement
        new = advance(st)
        return j + 1, FitState(*(tf.where(running, a, b) for a, b in zip(new, st, strict=True)))

    _, out = tf.while_loop(lambda j, _: j < length, body, (tf.constant(0), state))
    progress = tf.stack(
        [out.i, tf.cast(out.small_change, tf.int32), tf.cast(out.no_improvement, tf.int32)]
    )
    return out, progress


def fit_minibatch(
    x,
    sample_weight,
    n_valid,
    centers,
    seed,
    n_steps: int,
    tol,
    max_no_improvement,
    reassignment_ratio,
    *,
    batch_size: int,
):
    """Up to ``n_steps`` mini-batch steps from ``centers`` (k, d) on the first ``n_valid``
    (int32 scalar) rows of ``x`` (n, d), weighted by ``sample_weight`` (n,); the rest is
    padding.

    Runs :func:`fit_chunk` (``CHUNK_STEPS`` steps, the device profile's choice of sums) until
    ``n_steps`` (a Python int) steps are done or a stopping rule fires, reading its progress
    once per chunk. ``tol`` (scalar of ``x``'s dtype), ``max_no_improvement`` (int32 scalar, -1
    for none) and ``reassignment_ratio`` are as in :func:`fit_chunk`.

    Returns:
      A dict: centers (k, d), weight_sums (k,), n_steps (int, steps run), ewa_inertia (the
      smoothed mean batch inertia, per row), and why it stopped early (bools): small_change,
      no_improvement.
    """
    state = FitState.start(centers)
    n_steps_t = tf.constant(n_steps, tf.int32)
    deterministic_sums = device_profile().deterministic_sums
    while True:
        state, progress = fit_chunk(
            x,
            sample_weight,
            n_valid,
            seed,
            state,
            n_steps_t,
            tol,
            max_no_improvement,
            reassignment_ratio,
            batch_size=batch_size,
            length=CHUNK_STEPS,
            deterministic_sums=deterministic_sums,
        )
        # The one host read per chunk.
        steps, small_change, no_improvement = progress.numpy().tolist()
        logger.debug("MiniBatchKMeans: %d/%d steps", steps, n_steps)
        if small_change or no_improvement or steps >= n_steps:
            break
    return {
        "centers": state.centers,
        "weight_sums": state.weight_sums,
        "n_steps": steps,
        "ewa_inertia": state.ewa,
        "small_change": bool(small_change),
        "no_improvement": bool(no_improvement),
    }
