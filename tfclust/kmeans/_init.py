"""Initial centres for R restarts at once: greedy k-means++ and uniform random rows.

Both run inside the compiled fit program on row tiles (see ``_steps.pad_to_tiles``): ``xb`` is
(n_tiles, T, d), ``wb`` the (n_tiles, T) row weights (0 on padding rows). Randomness comes from
stateless ops keyed by ``seed`` (an int32 tensor of shape (2,)), so a seed fixes the result.
"""

from __future__ import annotations

import tensorflow as tf

from .._precision import einsum, matmul
from .._tiling import squared_distances
from ._steps import fold_tiles


def _uniform(shape, seed, dtype):
    """Uniform [0, 1) draws in ``dtype``, drawn in float32 whatever ``dtype`` is, so that a
    seed picks the same rows for float32 and float64 data (as scikit-learn's one RNG does).
    Each call compiles its own random-number code, so each seeding calls it once
    (docs/first_call.md)."""
    return tf.cast(tf.random.stateless_uniform(shape, seed=seed), dtype)


def kmeans_plusplus(
    xb, wb, seed, n_clusters: int, n_restarts: int, n_local_trials: int, n_valid: int
):
    """Greedy k-means++ (Arthur & Vassilvitskii; scikit-learn's ``_kmeans_plusplus``).

    The first centre is a row drawn with probability proportional to its weight; each further
    centre is the best of ``n_local_trials`` candidates drawn with probability proportional to
    the weighted squared distance to the nearest centre so far (inverse-CDF sampling on running
    sums), the best being the one that lowers the potential most.

    Returns:
      (R, k, d) initial centres, in ``xb``'s dtype.
    """
    n_tiles, tile, d = xb.shape
    r, k, trials = n_restarts, n_clusters, n_local_trials
    dtype = xb.dtype
    x_flat = tf.reshape(xb, [-1, d])
    w_flat = tf.reshape(wb, [-1])

    # All draws up front, in one call: the first centre's (R,) and the candidates' (k, R, L).
    # Drawn inside the loop, XLA would fuse the random-number generation into the
    # (rows x R x trials) comparison below and recompute it for every row.
    u, draws = tf.split(_uniform([r * (1 + k * trials)], seed, dtype), [r, r * k * trials])
    draws = tf.reshape(draws, [k, r, trials])

    # First centre: numpy's choice(p=w/sum(w)) is searchsorted(cdf, u, side="right").
    cdf = tf.cumsum(w_flat)
    u = u * cdf[-1]
    first = tf.reduce_sum(tf.cast(cdf[tf.newaxis] <= u[:, tf.newaxis], tf.int32), axis=1)
    first_x = tf.gather(x_flat, tf.minimum(first, n_valid - 1))  # (R, d)
    centers = tf.tensor_scatter_nd_update(
        tf.zeros([r, k, d], dtype), tf.stack([tf.range(r), tf.zeros([r], tf.int32)], 1), first_x
    )

    def count_below(ct, wt, offset, v):
        """Running sums of ``wt * ct`` (T, R) from ``offset`` (R,): their last row, and how many
        fall below ``v`` (R, L), numpy's searchsorted(cumsum(w * closest), v) (side="left"): the
        candidates drawn for the next centre."""
        running = tf.cumsum(wt[:, tf.newaxis] * ct, axis=0) + offset
        below = tf.reduce_sum(tf.cast(running[:, :, tf.newaxis] < v[tf.newaxis], tf.int32), axis=0)
        return running[-1], below

    def update_closest(closest, new_x, v):
        """closest = min(closest, d(., new_x)) tile by tile, and the draws below ``v``."""
        new_sq = tf.reduce_sum(tf.square(new_x), axis=1)

        def body(t, closest, offset, below):
            ct = tf.minimum(closest[t], squared_distances(xb[t], new_x, new_sq))  # (T, R)
            closest = tf.tensor_scatter_nd_update(closest, [[t]], ct[tf.newaxis])
            offset, tile_below = count_below(ct, wb[t], offset, v)
            return closest, offset, below + tile_below

        return fold_tiles(
            n_tiles, body, (closest, tf.zeros([r], dtype), tf.zeros([r, trials], tf.int32))
        )

    closest = tf.fill([n_tiles, tile, r], tf.constant(float("inf"), dtype))
    # With closest = inf the first sweep only fills in d(., first); its draws are discarded.
    closest, _, _ = update_closest(closest, first_x, tf.zeros([r, trials], dtype))
    pot = einsum("ntr,nt->r", closest, wb)
    _, _, below = update_closest(closest, first_x, draws[0] * pot[:, tf.newaxis])

    def step(c, centers, closest, below):
        cand = tf.minimum(below, n_valid - 1)  # (R, L); rounding can overshoot the last row
        cand_x = tf.reshape(tf.gather(x_flat, cand), [r * trials, d])
        cand_sq = tf.reduce_sum(tf.square(cand_x), axis=1)

        def nearer_and_pots(t):
            """(T, R L) min(closest, d(., candidate)) of tile t and the (R, L) potentials."""
            dist = tf.reshape(squared_distances(xb[t], cand_x, cand_sq), [tile, r, trials])
            nearer = tf.reshape(tf.minimum(closest[t][..., tf.newaxis], dist), [tile, -1])
            # (1, T) x (T, R L): the einsum "trl,t->rl" became a dot that first copied the
            # (T, R, L) minima transposed (1.3 ms of every step at 60k rows).
            return nearer, tf.reshape(matmul(wb[t][tf.newaxis], nearer), [r, trials])

        if n_tiles == 1:
            nearer, pots = nearer_and_pots(0)
        else:
            (pots,) = fold_tiles(
                n_tiles,
                lambda t, pots: (pots + nearer_and_pots(t)[1],),
                (tf.zeros([r, trials], dtype),),
            )
        best = tf.argmin(pots, axis=1, output_type=tf.int32)
        new_pot = tf.gather(pots, best, batch_dims=1)
        best_x = tf.gather(x_flat, tf.gather(cand, best, batch_dims=1))  # (R, d)
        slot = tf.cast(tf.range(k) == c, dtype)[tf.newaxis, :, tf.newaxis]
        centers = centers * (1 - slot) + best_x[:, tf.newaxis, :] * slot
        v = tf.gather(draws, c) * new_pot[:, tf.newaxis]
        if n_tiles == 1:
            # The new closest distances are the chosen candidates' columns of ``nearer``: no
            # second sweep over the rows.
            ct = tf.gather(nearer, tf.range(r) * trials + best, axis=1)  # (T, R)
            _, below = count_below(ct, wb[0], tf.zeros([r], dtype), v)
            closest = ct[tf.newaxis]
        else:
            closest, _, below = update_closest(closest, best_x, v)
        return c + 1, centers, closest, below

    _, centers, _, _ = tf.while_loop(
        lambda c, *_: c < k, step, (tf.constant(1), centers, closest, below)
    )
    return centers


def random_rows(xb, wb, seed, n_clusters: int, n_restarts: int):
    """k distinct rows per restart, drawn without replacement with probability proportional to
    weight (Gumbel top-k; scikit-learn's ``choice(replace=False, p=w/sum(w))``).

    Returns:
      (R, k, d) initial centres.
    """
    d = xb.shape[2]
    x_flat = tf.reshape(xb, [-1, d])
    w_flat = tf.reshape(wb, [-1])
    u = _uniform([n_restarts, w_flat.shape[0]], seed, xb.dtype)
    tiny = tf.constant(1e-30, xb.dtype)
    gumbel = -tf.math.log(-tf.math.log(tf.maximum(u, tiny)) + tiny)
    keys = tf.where(
        w_flat > 0,
        tf.math.log(tf.maximum(w_flat, tiny)) + gumbel,
        tf.constant(-float("inf"), xb.dtype),
    )
    _, idx = tf.math.top_k(keys, n_clusters)
    return tf.gather(x_flat, idx)
