"""Lloyd iterations with triangle-inequality pruning (group bounds), restart by restart.

Same labels, centres and iteration counts as plain Lloyd (``_lloyd.lloyd``) up to rounding, at a
fraction of the work once the centres settle. The centres are split into G groups (Yinyang
k-means, Ding et al. 2015; with one centre per group this is Elkan's bound, with a single group
Hamerly's). Every row keeps an upper bound ``u`` on its distance to its own centre and, per group,
a lower bound on its distance to every other centre of that group. When the centres move, ``u``
grows by its own centre's move and each group bound shrinks by the largest move in its group.
Only rows whose ``u`` reaches their smallest group bound (less a rounding slack) can change
label; they are gathered, ``chunk`` rows at a time (the last chunk padded), into the distance
matmul. The bounds are stored relative to the centres' summed moves,
so a move costs O(k), not a rewrite of the whole table. The per-centre sums
and counts are updated with the rows that changed label only, so an iteration costs O(n G)
scalar work plus O(uncertain rows x k x d), not O(n x k x d). With ``deterministic_sums`` (the
device profile's: an accelerator's float scatter-adds are atomics whose order varies) every sum
over rows is a one-hot matmul, tile by tile in a fixed order.

Restarts run one after another inside the compiled loop, each with its own uncertain rows, so
``n_init`` restarts cost the sum of their iterations rather than ``n_init`` times the slowest one.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from .._precision import matmul, relative_error
from .._tiling import map_row_tiles
from ._steps import Convergence, average, converge_step, fold_tiles, pad_to_tiles, relocate_empty

# Iterations of the small K-means that groups a restart's initial centres.
_GROUPING_ITERS = 5
# Up to this many clusters, the rows that changed cluster update the per-centre sums through a
# (k, rows) one-hot matmul; above it, through scatter-adds, whose cost does not grow with k.
# Whole fits on 60k x 64 latents: at k=10 the scatter-adds take 1.5x as long, at k=32 1.13x;
# at k=64 they are 5% faster; at k=256 one 1,024-row chunk costs 22 us instead of 137 us.
_ONE_HOT_MAX_CLUSTERS = 48


def n_groups(n_clusters: int) -> int:
    """How many groups of centres keep a lower bound each: one per ten centres (Yinyang
    k-means' rule). Narrow bounds win on CPU: at k=10 on 60k x 64, one or three groups fitted
    ~15% faster than ten (Elkan's bounds), whose extra pruning costs more bookkeeping."""
    return max(1, -(-n_clusters // 10))


def group_centers(c: tf.Tensor, groups: int, deterministic_sums: bool) -> tf.Tensor:
    """(k,) int32 group of each centre of ``c`` (k, d): a few Lloyd steps on the centres.

    The first ``groups`` centres seed the groups (k-means++ spreads its first picks apart); the
    result only affects speed, never the clustering. ``deterministic_sums``: the groups' sums
    by a (k, G) one-hot matmul instead of scatter-adds.
    """
    k = c.shape[0]
    if groups == 1:
        return tf.zeros([k], tf.int32)

    def step(i, g):
        # Means of the current groups; an empty group keeps no centre and stays empty.
        if deterministic_sums:
            one_hot = tf.one_hot(g, groups, dtype=c.dtype)
            sums = matmul(one_hot, c, transpose_a=True)
            counts = tf.reduce_sum(one_hot, axis=0)  # exact: sums of ones
        else:
            sums = tf.math.unsorted_segment_sum(c, g, groups)
            counts = tf.math.unsorted_segment_sum(tf.ones([k], c.dtype), g, groups)
        means = sums / tf.maximum(counts, 1)[:, tf.newaxis]
        empty = tf.where(counts == 0, tf.constant(np.inf, c.dtype), tf.zeros((), c.dtype))
        d2 = tf.reduce_sum(tf.square(c[:, tf.newaxis] - means[tf.newaxis]), axis=2)
        return i + 1, tf.argmin(d2 + empty[tf.newaxis], axis=1, output_type=tf.int32)

    first = tf.argmin(
        tf.reduce_sum(tf.square(c[:, tf.newaxis] - c[tf.newaxis, :groups]), axis=2),
        axis=1,
        output_type=tf.int32,
    )
    return tf.while_loop(lambda i, _: i < _GROUPING_ITERS, step, (0, first))[1]


def _bound_rows(xs, xs_sq, c, c_sq, groups, n_groups_: int):
    """Nearest centre and fresh bounds of the rows ``xs`` (C, d), squared norms ``xs_sq`` (C,).

    Scores are laid out (k, C): the reductions over centres then run along rows, which XLA
    vectorises over the C rows, and the group minima need no transpose.

    Returns:
      labels (C,) int32, the distance (C,) to that centre and the distances (C, G) to the
      nearest other centre of each group.
    """
    k = c.shape[0]
    dtype = xs.dtype
    iota = tf.range(k, dtype=tf.int32)[:, tf.newaxis]
    zero = tf.zeros((), dtype)
    scores = c_sq[:, tf.newaxis] - 2.0 * matmul(c, xs, transpose_b=True)  # (k, C)
    best = tf.reduce_min(scores, axis=0)
    lab = tf.reduce_min(tf.where(scores == best, iota, k), axis=0)
    others = tf.where(iota == lab, tf.constant(np.inf, dtype), scores)
    if n_groups_ == 1:
        others = tf.reduce_min(others, axis=0, keepdims=True)
    else:
        others = tf.math.unsorted_segment_min(others, groups, n_groups_)  # (G, C)
    upper = tf.sqrt(tf.maximum(best + xs_sq, zero))
    lower = tf.sqrt(tf.maximum(others + xs_sq, zero))
    return lab, upper, tf.transpose(lower)


def _label_sums(rows, labels, k: int, tile: int):
    """(k, c) sums of the rows of ``rows`` (m, c) by their ``labels`` (m,) int32, as one-hot
    matmuls over ``tile``-row tiles added in order: no float atomics, no (m, k) one-hot."""
    rb, _ = pad_to_tiles(rows, tile)
    n_tiles = rb.shape[0]
    # Padding rows are zero: whatever label they get, they add nothing.
    lb = tf.reshape(tf.pad(labels, [[0, n_tiles * tile - labels.shape[0]]]), [n_tiles, tile])

    def body(t, total):
        return (total + matmul(tf.one_hot(lb[t], k, dtype=rows.dtype), rb[t], transpose_a=True),)

    return fold_tiles(n_tiles, body, (tf.zeros([k, rows.shape[1]], rows.dtype),))[0]


def _assign_all(
    x_ext, w_ext, mean, x_sq_ext, c, groups, n_groups_: int, chunk: int, deterministic_sums: bool
):
    """Bounds table, sums and counts after assigning every row to its nearest centre in ``c``.

    The same rows as :func:`_restart_pass` would compute, over contiguous tiles (no gathers or
    scatters: the first pass of a restart is dense). Arguments as in :func:`_restart_pass`.

    Returns:
      bounds (labels, upper, lower) as :func:`_restart_pass` takes them (all drifts zero), sums
      (k, d), counts (k,), weighted; the dummy row n counts in neither.
    """
    n = x_ext.shape[0] - 1
    k = c.shape[0]
    c_sq = tf.reduce_sum(tf.square(c), axis=1)

    def fn(block):
        xs, xs_sq = block
        return _bound_rows(xs - mean, xs_sq, c, c_sq, groups, n_groups_)

    tile = min(chunk, n + 1)
    spec = (
        tf.TensorSpec([tile], tf.int32),
        tf.TensorSpec([tile], x_ext.dtype),
        tf.TensorSpec([tile, n_groups_], x_ext.dtype),
    )
    bounds = map_row_tiles(fn, (x_ext, x_sq_ext), tile, spec)
    labels = bounds[0][:n]
    w = w_ext[:n]
    rows = (x_ext[:n] - mean) * w[:, tf.newaxis]
    if deterministic_sums:
        both = _label_sums(tf.concat([rows, w[:, tf.newaxis]], axis=1), labels, k, tile)
        return bounds, both[:, :-1], both[:, -1]
    sums = tf.math.unsorted_segment_sum(rows, labels, k)
    counts = tf.math.unsorted_segment_sum(w, labels, k)
    return bounds, sums, counts


def _running_count(mask):
    """(n,) int32 running count of the True entries of ``mask`` (n,) bool: an inclusive cumsum.

    Computed as a (n / 64, 64) x (64, 64) triangular matmul (exact: 0/1 inputs, sums <= 64) plus
    a cumsum over the blocks; XLA's cumsum over all n entries costs several times more on CPU.
    """
    n = mask.shape[0]
    width = 64
    blocks = tf.reshape(tf.pad(tf.cast(mask, tf.float32), [[0, -n % width]]), [-1, width])
    within = tf.cast(matmul(blocks, np.triu(np.ones((width, width), np.float32))), tf.int32)
    before = tf.cumsum(within[:, -1], exclusive=True)
    return tf.reshape(within + before[:, tf.newaxis], [-1])[:n]


def _restart_pass(
    x_ext,
    w_ext,
    n_valid,
    mean,
    x_sq_ext,
    c,
    groups,
    n_groups_: int,
    bounds,
    drift,
    group_drift,
    sums,
    counts,
    chunk: int,
    deterministic_sums: bool,
):
    """Re-assign the rows of one restart that may have changed cluster.

    Args:
      x_ext: (n + 1, d) rows plus a dummy row at index n equal to ``mean`` (d,); the kernels
        work on the centred rows ``x_ext - mean``, squared norms ``x_sq_ext`` (n + 1,); the rows
        from ``n_valid`` (int32 scalar) on are padding, which is never re-assigned.
      w_ext: (n + 1,) sample weights, 0 on the padding and the dummy row.
      c: (k, d) this restart's centres; groups: (k,) int32 group of each centre.
      bounds: per row, (labels (n + 1,) int32, upper (n + 1,), lower (n + 1, G)), the bounds
        relative to the drifts: the upper bound is ``upper + drift[labels]``, the G group lower
        bounds ``lower - group_drift``.
      drift: (k,) how far each centre has moved, summed over this restart's iterations;
        group_drift: (G,) the largest move per group, summed likewise.
      sums: (k, d), counts: (k,) the label-consistent per-centre sums and counts.
      chunk: rows per distance matmul (static).
      deterministic_sums: update the sums by one-hot matmuls at any k, never by float
        scatter-adds (static).

    Returns:
      (bounds, sums, counts) updated, and whether any label changed.
    """
    n = x_ext.shape[0] - 1
    k = c.shape[0]
    dtype = x_ext.dtype
    dump = n + chunk  # where the scatter below sends the rows that are certain

    c_sq = tf.reduce_sum(tf.square(c), axis=1)
    # Slack (squared units) for rounding in the matmul-form distances that set the bounds, from
    # the precision the matmuls run at (TF32 on a GPU: tfclust._precision).
    slack = 1024 * relative_error(dtype) * (x_sq_ext + tf.reduce_max(c_sq))
    # Keeping the bounds relative to the summed drifts spares rewriting the whole table every
    # iteration; the sums' rounding is covered by a relative margin.
    margin = 8 * np.finfo(dtype.as_numpy_dtype).eps
    labels, upper, lower = bounds
    own_drift = tf.gather(drift, labels)
    upper = upper + own_drift + margin * (tf.abs(upper) + own_drift)
    lower = lower * (1 - margin) - group_drift * (1 + margin)  # stored bounds are >= 0
    lower = tf.maximum(tf.reduce_min(lower, axis=1), 0.0)
    unsure = (tf.square(upper) + slack >= tf.square(lower)) & (tf.range(n + 1) < n_valid)
    running = _running_count(unsure)
    n_unsure = running[-1]
    target = tf.where(unsure, running - 1, dump)
    order = tf.tensor_scatter_nd_update(
        tf.fill([dump + 1], n), target[:, tf.newaxis], tf.range(n + 1)
    )
    iota = tf.range(k, dtype=tf.int32)[:, tf.newaxis]

    def chunk_step(size: int, start, bounds, sums, counts, changed):
        ids = tf.slice(order, [start], [size])
        # Centred as they are gathered: XLA then emits the gather inside an elementwise loop,
        # which on CPU runs several times faster than a bare gather of scattered rows.
        xs = tf.gather(x_ext, ids) - mean
        lab, up, low = _bound_rows(xs, tf.gather(x_sq_ext, ids), c, c_sq, groups, n_groups_)
        # Read from the labels as they were before the pass: the loop then only writes the
        # bounds, which XLA updates in place instead of copying them for every chunk.
        old = tf.gather(labels, ids)
        moved = (lab != old) & (ids < n_valid)
        at = ids[:, tf.newaxis]
        bounds = (
            tf.tensor_scatter_nd_update(bounds[0], at, lab),
            tf.tensor_scatter_nd_update(bounds[1], at, up - tf.gather(drift, lab)),
            tf.tensor_scatter_nd_update(bounds[2], at, low + group_drift),
        )
        # Rows that changed cluster leave the old sums and join the new ones (a cond that skips
        # this when nothing moved costs more than it saves).
        weight = tf.cast(moved, dtype) * tf.gather(w_ext, ids)
        if k <= _ONE_HOT_MAX_CLUSTERS or deterministic_sums:
            shift = (tf.cast(iota == lab, dtype) - tf.cast(iota == old, dtype)) * weight
            sums += matmul(shift, xs)
            counts += tf.reduce_sum(shift, axis=1)
        else:
            moved_xs = xs * weight[:, tf.newaxis]
            sums += tf.math.unsorted_segment_sum(moved_xs, lab, k) - tf.math.unsorted_segment_sum(
                moved_xs, old, k
            )
            counts += tf.math.unsorted_segment_sum(weight, lab, k) - tf.math.unsorted_segment_sum(
                weight, old, k
            )
        return start + size, bounds, sums, counts, changed | tf.reduce_any(moved)

    # Whole chunks only: the last one is padded with the dummy row, which no sum counts.
    state = tf.while_loop(
        lambda start, *_: start < n_unsure,
        lambda *s: chunk_step(chunk, *s),
        (tf.constant(0), bounds, sums, counts, tf.constant(False)),
    )
    return state[1:]


def _far_rows(x, w, valid, c, labels, m: int):
    """The m rows of ``x`` (rows ``valid``) farthest from their assigned centres, farthest first.

    Exact squared distances by differences (only runs when a cluster is empty).
    Returns (dist (m,), rows (m, d), labels (m,), weights (m,)); padding rows come last, at -1.
    """
    dist = tf.reduce_sum(tf.square(x - tf.gather(c, labels)), axis=1)
    far_d, far_i = tf.math.top_k(tf.where(valid, dist, -tf.ones_like(dist)), m)
    return far_d, tf.gather(x, far_i), tf.gather(labels, far_i), tf.gather(w, far_i)


class _RestartState(NamedTuple):
    """Loop state of one restart's pruned iterations."""

    i: tf.Tensor  # int32 scalar, iterations done
    centers: tf.Tensor  # (k, d)
    bounds: tuple  # (labels, upper, lower) as _restart_pass takes them
    drift: tf.Tensor  # (k,) summed centre moves
    group_drift: tf.Tensor  # (G,) summed largest move per group
    sums: tf.Tensor  # (k, d) label-consistent weighted sums
    counts: tf.Tensor  # (k,) label-consistent weights
    conv: Convergence  # of this restart, fields (1,)


def _one_restart(
    x_ext, w_ext, n_valid, mean, x_sq_ext, c, tol, max_iter, chunk: int, deterministic_sums: bool
):
    """Pruned Lloyd iterations of one restart from centres ``c`` (k, d) until it converges.

    Arguments as :func:`_restart_pass`. Returns (centres (k, d), its :class:`Convergence`,
    fields of shape (1,)).
    """
    n = x_ext.shape[0] - 1
    k = c.shape[0]
    g = n_groups(k)
    groups = group_centers(c, g, deterministic_sums)

    def body(st: _RestartState):
        bounds, sums, counts, changed = _restart_pass(
            x_ext,
            w_ext,
            n_valid,
            mean,
            x_sq_ext,
            st.centers,
            groups,
            g,
            st.bounds,
            st.drift,
            st.group_drift,
            st.sums,
            st.counts,
            chunk,
            deterministic_sums,
        )
        # Relocation changes this iteration's sums, not the labels (as in scikit-learn), so
        # the label-consistent sums carried to the next iteration stay as they are.
        new_sums, new_counts = sums, counts
        if k > 1:

            def relocate():
                far = _far_rows(
                    x_ext[:n] - mean,
                    w_ext[:n],
                    tf.range(n) < n_valid,
                    st.centers,
                    bounds[0][:n],
                    min(k - 1, n),
                )
                s, cnt = relocate_empty(
                    sums[tf.newaxis],
                    counts[tf.newaxis],
                    far[1][tf.newaxis],
                    far[2][tf.newaxis],
                    far[0][tf.newaxis],
                    far[3][tf.newaxis],
                    ~st.conv.done,
                )
                return s[0], cnt[0]

            new_sums, new_counts = tf.cond(
                tf.reduce_any(counts == 0), relocate, lambda: (sums, counts)
            )
        c, conv, _ = converge_step(
            st.i,
            st.centers[tf.newaxis],
            average(new_sums[tf.newaxis], new_counts[tf.newaxis]),
            changed[tf.newaxis] | (st.i == 0),
            st.conv,
            tol,
        )
        c = c[0]
        delta = tf.norm(c - st.centers, axis=1)  # (k,)
        if g == 1:
            group_delta = tf.reduce_max(delta, keepdims=True)
        else:
            group_delta = tf.maximum(tf.math.unsorted_segment_max(delta, groups, g), 0.0)
        return (
            _RestartState(
                st.i + 1,
                c,
                bounds,
                st.drift + delta,
                st.group_drift + group_delta,
                sums,
                counts,
                conv,
            ),
        )

    # The first iteration's assignment is dense; its pass in the loop then finds no row unsure
    # (bar rounding slack) and goes straight to the update.
    bounds, sums, counts = _assign_all(
        x_ext, w_ext, mean, x_sq_ext, c, groups, g, chunk, deterministic_sums
    )
    state = _RestartState(
        tf.constant(0),
        c,
        bounds,
        tf.zeros([k], c.dtype),
        tf.zeros([g], c.dtype),
        sums,
        counts,
        Convergence.start(1, c.dtype),
    )
    (out,) = tf.while_loop(lambda st: (st.i < max_iter) & ~st.conv.done[0], body, (state,))
    return out.centers, out.conv


def lloyd_bounded(
    x, sample_weight, n_valid, mean, centers, tol, max_iter, chunk: int, *, deterministic_sums: bool
):
    """Lloyd iterations of R restarts with pruning; same contract as ``_lloyd.lloyd``.

    Args:
      x: (n, d) rows, clustered centred: as ``x - mean`` with ``mean`` (d,); the rows from
      ``n_valid`` (int32 scalar) on are padding. sample_weight: (n,) weights, 0 on the padding.
      centers: (R, k, d) initial centres (centred). tol: absolute tolerance on the summed
      squared centre shift. max_iter: int32 scalar. chunk: rows per distance matmul.
      deterministic_sums: every per-centre sum by one-hot matmuls, none by float scatter-adds
        (static; the device profile's field of that name).

    Returns:
      centers (R, k, d) and the restarts' :class:`Convergence`.
    """
    r = centers.shape[0]
    x_ext = tf.concat([x, mean[tf.newaxis]], axis=0)
    w_ext = tf.concat([sample_weight, tf.zeros([1], sample_weight.dtype)], axis=0)
    x_sq_ext = tf.reduce_sum(tf.square(x_ext - mean), axis=1)

    def body(q, centers, conv):
        c, one = _one_restart(
            x_ext,
            w_ext,
            n_valid,
            mean,
            x_sq_ext,
            centers[q],
            tol,
            max_iter,
            chunk,
            deterministic_sums,
        )
        conv = Convergence(
            *(tf.tensor_scatter_nd_update(a, [[q]], b) for a, b in zip(conv, one, strict=True))
        )
        return q + 1, tf.tensor_scatter_nd_update(centers, [[q]], c[tf.newaxis]), conv

    _, centers, conv = tf.while_loop(
        lambda q, *_: q < r, body, (tf.constant(0), centers, Convergence.start(r, centers.dtype))
    )
    return centers, conv
