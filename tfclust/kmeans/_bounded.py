"""Lloyd iterations with triangle-inequality pruning (Hamerly's bounds), restart by restart.

Same labels, centres and iteration counts as plain Lloyd (``_lloyd.lloyd``) up to rounding, at a
fraction of the work once the centres settle. Every row keeps, per restart, an upper bound ``u``
on its distance to its own centre and a lower bound ``l`` on its distance to every other centre.
When the centres move by ``delta``, ``u`` grows by its own centre's move and ``l`` shrinks by the
largest move of any other centre. Only rows with ``u >= l`` (less a rounding slack) can change
label; they are gathered, ``chunk`` rows at a time, into the distance matmul. The per-centre
sums and counts are updated with the rows that changed label only, so an iteration costs
O(n) scalar work plus O(uncertain rows x k x d), not O(n x k x d).

Restarts run one after another inside the compiled loop, each with its own uncertain rows; a
restart that has converged costs nothing, so ``n_init`` restarts cost the sum of their
iterations rather than ``n_init`` times the slowest one.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ._steps import average, converge_step, relocate_empty


def _restart_pass(x_ext, x_sq_ext, c, labels, upper, lower, sums, counts, chunk: int):
    """Re-assign the rows of one restart that may have changed cluster.

    Args:
      x_ext: (n + 1, d) centred rows plus a zero dummy row at index n; x_sq_ext: (n + 1,).
      c: (k, d) this restart's centres; labels: (n + 1,) int32; upper, lower: (n + 1,) bounds;
      sums: (k, d), counts: (k,) the label-consistent per-centre sums and counts.

    Returns:
      (labels, upper, lower, sums, counts) updated, and whether any label changed.
    """
    n = x_ext.shape[0] - 1
    k = c.shape[0]
    dtype = x_ext.dtype
    n_chunks = -(-n // chunk)
    dump = n_chunks * chunk  # where the scatter below sends the rows that are certain

    c_sq = tf.reduce_sum(tf.square(c), axis=1)
    # Slack (squared units) for rounding in the matmul-form distances that set the bounds.
    slack = 1024 * np.finfo(dtype.as_numpy_dtype).eps * (x_sq_ext + tf.reduce_max(c_sq))
    unsure = tf.square(upper) + slack >= tf.square(tf.maximum(lower, 0.0))
    unsure = tf.concat([unsure[:n], [False]], axis=0)
    n_unsure = tf.reduce_sum(tf.cast(unsure, tf.int32))
    target = tf.where(unsure, tf.cumsum(tf.cast(unsure, tf.int32)) - 1, dump)
    order = tf.tensor_scatter_nd_update(
        tf.fill([dump + 1], n), target[:, tf.newaxis], tf.range(n + 1)
    )
    iota = tf.range(k, dtype=tf.int32)
    inf = tf.constant(np.inf, dtype)
    zero = tf.zeros((), dtype)

    def body(j, labels, upper, lower, sums, counts, changed):
        ids = tf.slice(order, [j * chunk], [chunk])
        xs = tf.gather(x_ext, ids)
        xs_sq = tf.gather(x_sq_ext, ids)
        scores = c_sq[tf.newaxis] - 2.0 * tf.matmul(xs, c, transpose_b=True)
        best = tf.reduce_min(scores, axis=1, keepdims=True)
        lab = tf.reduce_min(tf.where(scores == best, iota, k), axis=1)
        second = tf.reduce_min(tf.where(iota == lab[:, tf.newaxis], inf, scores), axis=1)
        old = tf.gather(labels, ids)
        moved = (lab != old) & (ids < n)
        # Rows that changed cluster leave the old sums and join the new ones. A (C, k) one-hot
        # matmul is several times faster here than scatter-adds under XLA on CPU.
        shift = (tf.one_hot(lab, k, dtype=dtype) - tf.one_hot(old, k, dtype=dtype)) * tf.cast(
            moved, dtype)[:, tf.newaxis]
        sums += tf.matmul(shift, xs, transpose_a=True)
        counts += tf.reduce_sum(shift, axis=0)
        at = ids[:, tf.newaxis]
        labels = tf.tensor_scatter_nd_update(labels, at, lab)
        upper = tf.tensor_scatter_nd_update(upper, at, tf.sqrt(tf.maximum(best[:, 0] + xs_sq,
                                                                          zero)))
        lower = tf.tensor_scatter_nd_update(lower, at, tf.sqrt(tf.maximum(second + xs_sq, zero)))
        return j + 1, labels, upper, lower, sums, counts, changed | tf.reduce_any(moved)

    out = tf.while_loop(
        lambda j, *_: j * chunk < n_unsure, body,
        (tf.constant(0), labels, upper, lower, sums, counts, tf.constant(False)),
    )
    return out[1:]


def _far_rows(x, centers, labels, m: int):
    """The m rows farthest from their assigned centres, per restart, farthest first.

    Exact squared distances by differences, one restart at a time (only runs when a cluster is
    empty). Returns (dist (R, m), rows (R, m, d), labels (R, m)).
    """
    def one(args):
        c, lab = args
        dist = tf.reduce_sum(tf.square(x - tf.gather(c, lab)), axis=1)
        far_d, far_i = tf.math.top_k(dist, m)
        return far_d, tf.gather(x, far_i), tf.gather(lab, far_i)

    spec = (tf.TensorSpec([m], x.dtype), tf.TensorSpec([m, x.shape[1]], x.dtype),
            tf.TensorSpec([m], tf.int32))
    return tf.map_fn(one, (centers, labels), fn_output_signature=spec)


def lloyd_bounded(x, centers, tol, max_iter, chunk: int):
    """Lloyd iterations of R restarts with pruning; same contract as ``_lloyd.lloyd``.

    Args:
      x: (n, d) centred rows. centers: (R, k, d) initial centres. tol: absolute tolerance on the
      summed squared centre shift. max_iter: int32 scalar. chunk: rows per distance matmul.

    Returns:
      centers (R, k, d) and n_iter (R,) int32.
    """
    n, d = x.shape
    r, k, _ = centers.shape
    dtype = x.dtype
    x_ext = tf.concat([x, tf.zeros([1, d], dtype)], axis=0)
    x_sq_ext = tf.reduce_sum(tf.square(x_ext), axis=1)

    def body(i, centers, labels, upper, lower, sums, counts, done, n_iter, strict):
        def one(q, labels, upper, lower, sums, counts, changed):
            state = (labels, upper, lower, sums, counts)

            def work():
                out = _restart_pass(x_ext, x_sq_ext, centers[q],
                                    *(s[q] for s in state), chunk)
                updated = tuple(tf.tensor_scatter_nd_update(a, [[q]], v[tf.newaxis])
                                for a, v in zip(state, out[:-1], strict=True))
                return (*updated, tf.tensor_scatter_nd_update(changed, [[q]], out[-1:]))

            return (q + 1, *tf.cond(done[q], lambda: (*state, changed), work))

        _, labels, upper, lower, sums, counts, changed = tf.while_loop(
            lambda q, *_: q < r, one,
            (tf.constant(0), labels, upper, lower, sums, counts, tf.zeros([r], tf.bool)),
        )
        # Relocation changes this iteration's sums, not the labels (as in scikit-learn), so
        # the label-consistent sums carried to the next iteration stay as they are.
        new_sums, new_counts = sums, counts
        if k > 1:
            need = tf.reduce_any((counts == 0) & ~done[:, tf.newaxis])

            def relocate():
                far_d, far_x, far_lab = _far_rows(x, centers, labels[:, :n], min(k - 1, n))
                return relocate_empty(sums, counts, far_x, far_lab, far_d, ~done)

            new_sums, new_counts = tf.cond(need, relocate, lambda: (sums, counts))
        old = centers
        centers, done, n_iter, strict, _ = converge_step(
            i, centers, average(new_sums, new_counts), changed | (i == 0), done, n_iter,
            strict, tol,
        )
        delta = tf.norm(centers - old, axis=2)  # (R, k); 0 for frozen restarts
        top, arg = tf.math.top_k(delta, min(2, k))
        second = top[:, -1] if k > 1 else tf.zeros([r], dtype)
        own_is_max = labels == arg[:, :1]
        upper = upper + tf.gather(delta, labels, batch_dims=1)
        lower = lower - tf.where(own_is_max, second[:, tf.newaxis], top[:, :1])
        return i + 1, centers, labels, upper, lower, sums, counts, done, n_iter, strict

    no = tf.zeros([r], tf.bool)
    # Everything starts in cluster 0 with unknown bounds, so the first pass assigns every row.
    first = tf.cast(tf.range(k) == 0, dtype)
    state = (
        tf.constant(0), centers, tf.zeros([r, n + 1], tf.int32),
        tf.fill([r, n + 1], tf.constant(np.inf, dtype)),
        tf.fill([r, n + 1], tf.constant(-np.inf, dtype)),
        tf.tile((first[:, tf.newaxis] * tf.reduce_sum(x, axis=0))[tf.newaxis], [r, 1, 1]),
        tf.tile((first * n)[tf.newaxis], [r, 1]),
        no, tf.zeros([r], tf.int32), no,
    )
    out = tf.while_loop(lambda i, c, lab, u, low, s, cnt, done, *_:
                        (i < max_iter) & tf.reduce_any(~done), body, state)
    return out[1], out[8]
