"""Exact Lloyd by passes over a ``tf.data.Dataset``, optionally across ``tf.distribute`` replicas.

For data that does not fit in memory: each Lloyd iteration is one pass over the batches that
accumulates per-centre sums and weights (and the number of rows whose label changed). Batches go
through jit-compiled steps; the host sees one result per pass. Under a multi-replica strategy the
dataset is distributed and the per-replica sums, weights and change counts are all-reduced
(``strategy.reduce(SUM)``) after every batch.

The result equals the in-memory fit's for the same initial centres: both centre the data on its
mean, use scikit-learn's convergence rules and relocate empty clusters onto the farthest points.
Instead of storing every label, a pass assigns each row against both the current and the
previous centres (one matmul against both) to tell whether any label changed; empty-cluster
relocation costs one extra pass, only in the iterations that need it.

Memory: one batch of B rows needs about B x 2 x n_init x k values; choose the batch size with it.

Labels: the first pass (moments) and the final labelling pass also take an order-sensitive
checksum of the rows (:func:`_row_checksum`); if they differ, the dataset yields its rows
differently on each pass, and no ``labels_`` can match its rows (see ``KMeans.fit``).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import tensorflow as tf

from .._compile import compiled
from .._device import device_profile
from .._validation import check_array, power_of_two_scale
from ._lloyd import seed_centers
from ._steps import Convergence, accumulate, assign, average, converge_step, relocate_empty

logger = logging.getLogger("tfclust.kmeans")
_SUM = tf.distribute.ReduceOp.SUM


def _first(element):
    return element[0] if isinstance(element, tuple | list) else element


def _as_batches(p, X, strategy):
    """(B, d) batches of ``p.dtype``: from a Dataset, or from an array (under a strategy)."""
    dtype = p.dtype
    if isinstance(X, tf.data.Dataset):
        if int(X.cardinality()) == int(tf.data.INFINITE_CARDINALITY):
            raise ValueError(
                "X is an infinite tf.data.Dataset (e.g. ds.repeat()); KMeans.fit makes several "
                "passes over X and needs a finite dataset: drop the repeat() or add take(n)"
            )
        spec = _first(X.element_spec)
        if not isinstance(spec, tf.TensorSpec) or spec.shape.rank != 2:
            raise ValueError(
                "X as a tf.data.Dataset must yield batches of shape (batch, n_features) (or "
                f"tuples whose first element is one); got element_spec {X.element_spec}"
            )
        if spec.shape[1] is None:
            raise ValueError("X as a tf.data.Dataset must have a known number of features")
        if not (spec.dtype.is_floating or spec.dtype.is_integer or spec.dtype == tf.bool):
            raise TypeError(f"X must be numeric, got a dataset of dtype {spec.dtype.name}")
        return X.map(lambda *e: tf.cast(_first(e), dtype))
    x = check_array(X, name="X", dtype=dtype)
    replicas = strategy.num_replicas_in_sync
    per_replica = max(1, p.memory_budget // (2 * p.n_init * p.n_clusters * dtype.size * 4))
    batch = replicas * min(per_replica, -(-x.shape[0] // replicas))
    return tf.data.Dataset.from_tensor_slices(x).batch(batch)


_GOLDEN = 0x9E3779B97F4A7C15  # 2**64 / golden ratio, odd: a multiplicative hash constant


def _row_checksum(batch, offset):
    """Order-sensitive int64 checksum of the rows of a (B, d) float batch whose first row is row
    ``offset`` (int64 scalar) of a pass: sum over rows of (position + 1) times a hash of the
    row's bits. Exact integer arithmetic (wrapping), so any grouping of the sum agrees."""
    d = batch.shape[1]
    coeff = (
        (np.arange(d, dtype=np.uint64) * np.uint64(2) + np.uint64(1)) * np.uint64(_GOLDEN)
    ).view(np.int64)
    bits = tf.cast(tf.bitcast(batch, tf.int32 if batch.dtype.size == 4 else tf.int64), tf.int64)
    h = tf.reduce_sum(bits * coeff, axis=1)
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, tf.constant(29, tf.int64)))
    pos = offset + tf.range(1, tf.shape(batch, out_type=tf.int64)[0] + 1, dtype=tf.int64)
    return tf.reduce_sum(pos * h)


@tf.function
def _moments(ds):
    """Rows, feature means, feature variances (float64, Chan's merge), non-finite count, the
    largest magnitude of the finite rows and the rows' :func:`_row_checksum`."""
    d = _first(ds.element_spec).shape[1]
    n = tf.zeros([], tf.float64)
    mean = tf.zeros([d], tf.float64)
    m2 = tf.zeros([d], tf.float64)
    bad = tf.zeros([], tf.int64)
    largest = tf.zeros([], tf.float64)
    seen = tf.zeros([], tf.int64)
    checksum = tf.zeros([], tf.int64)
    for batch in ds:
        checksum += _row_checksum(batch, seen)
        seen += tf.shape(batch, out_type=tf.int64)[0]
        b = tf.cast(batch, tf.float64)
        finite = tf.reduce_all(tf.math.is_finite(b), axis=1)
        bad += tf.reduce_sum(tf.cast(~finite, tf.int64))
        b = tf.boolean_mask(b, finite)
        nb = tf.cast(tf.shape(b)[0], tf.float64)
        if nb > 0:
            largest = tf.maximum(largest, tf.reduce_max(tf.abs(b)))
            mb = tf.reduce_mean(b, axis=0)
            m2b = tf.reduce_sum(tf.square(b - mb), axis=0)
            total = n + nb
            delta = mb - mean
            mean += delta * nb / total
            m2 += m2b + tf.square(delta) * n * nb / total
            n = total
    return n, mean, m2 / tf.maximum(n, 1.0), bad, largest, checksum


@compiled
def _step_sums(x, mean, centers, prev, deterministic_sums: bool):
    """Sums (R, k, d), weights (R, k) and changed-label counts (R,) of one batch (B, d);
    ``deterministic_sums`` as in ``_steps.accumulate``."""
    r, k, _ = centers.shape
    xc = x - mean
    both = tf.concat([centers, prev], axis=0)
    labels, _ = assign(xc, both, tf.reduce_sum(tf.square(both), axis=-1))
    new, old = labels[:, :r], labels[:, r:]
    sums, counts = accumulate(xc, tf.ones_like(xc[:, 0]), new, k, deterministic_sums)
    changed = tf.reduce_sum(tf.cast(new != old, x.dtype), axis=0)
    return sums, counts, changed


@compiled
def _step_far(x, mean, centers, m: int):
    """The m rows of the batch farthest from their centres, per restart, padded with dist -1.

    Returns (dist (R, m), x (R, m, d), label (R, m) int32), farthest first.
    """
    r, _, d = centers.shape
    xc = x - mean
    labels, score = assign(xc, centers, tf.reduce_sum(tf.square(centers), axis=-1))
    dist = tf.maximum(score + tf.reduce_sum(tf.square(xc), axis=1)[:, tf.newaxis], 0.0)
    pad = tf.fill([m, r], tf.constant(-1.0, x.dtype))
    dist = tf.transpose(tf.concat([dist, pad], axis=0))  # (R, B + m)
    far_d, idx = tf.math.top_k(dist, m)
    rows = tf.concat([xc, tf.zeros([m, d], x.dtype)], axis=0)
    labels = tf.transpose(tf.concat([labels, tf.zeros([m, r], tf.int32)], axis=0))
    return far_d, tf.gather(rows, idx), tf.gather(labels, idx, batch_dims=1)


def _merge_far(a, b, m):
    d = tf.concat([a[0], b[0]], axis=1)
    far_d, idx = tf.math.top_k(d, m)
    return (
        far_d,
        tf.gather(tf.concat([a[1], b[1]], axis=1), idx, batch_dims=1),
        tf.gather(tf.concat([a[2], b[2]], axis=1), idx, batch_dims=1),
    )


@compiled
def _step_inertia(x, mean, centers):
    """Per-restart (R,) sum of squared distances of the batch's rows to their closest centre."""
    xc = x - mean
    _, score = assign(xc, centers, tf.reduce_sum(tf.square(centers), axis=-1))
    sq = tf.maximum(score + tf.reduce_sum(tf.square(xc), axis=1)[:, tf.newaxis], 0.0)
    return tf.reduce_sum(sq, axis=0)


@compiled
def _step_labels(x, scale, mean, centers):
    """Labels (B,) and exact summed squared distance of a batch ``x * scale`` for one (k, d) set
    of centres (scaled, as ``mean``)."""
    xc = x * scale - mean
    c = centers[tf.newaxis]
    labels, _ = assign(xc, c, tf.reduce_sum(tf.square(c), axis=-1))
    labels = labels[:, 0]
    return labels, tf.reduce_sum(tf.square(xc - tf.gather(centers, labels)))


@compiled
def _update(i, centers, sums, counts, changed, conv, tol):
    return converge_step(i, centers, average(sums, counts), changed > 0, conv, tol)


class _Passes:
    """Runs one reduction pass of a step over the (possibly distributed) batches."""

    def __init__(self, ds, strategy):
        self.ds = ds
        self.strategy = strategy
        self.dist_ds = None if strategy is None else strategy.experimental_distribute_dataset(ds)
        self.deterministic_sums = device_profile().deterministic_sums  # read once, on the host

    def sums(self, mean, centers, prev):
        return self._sum_pass(self.dist_ds or self.ds, mean, centers, prev)

    def inertia(self, mean, centers):
        return self._inertia_pass(self.dist_ds or self.ds, mean, centers)

    def far(self, mean, centers, m):
        return self._far_pass(self.dist_ds or self.ds, mean, centers, m)

    def _run(self, fn, *args):
        """fn on this replica's batch; all-reduced (summed) under a strategy."""
        if self.strategy is None:
            return fn(*args)
        # The tf.function itself, not its cache guard: strategies run other callables eagerly.
        return self.strategy.reduce(_SUM, self.strategy.run(fn.function, args=args), axis=None)

    @tf.function
    def _sum_pass(self, ds, mean, centers, prev):
        r, k, d = centers.shape
        acc = (
            tf.zeros([r, k, d], centers.dtype),
            tf.zeros([r, k], centers.dtype),
            tf.zeros([r], centers.dtype),
        )
        for batch in ds:
            out = self._run(_step_sums, batch, mean, centers, prev, self.deterministic_sums)
            acc = tuple(a + o for a, o in zip(acc, out, strict=True))
        return acc

    @tf.function
    def _inertia_pass(self, ds, mean, centers):
        acc = tf.zeros([centers.shape[0]], centers.dtype)
        for batch in ds:
            acc += self._run(_step_inertia, batch, mean, centers)
        return acc

    @tf.function
    def _far_pass(self, ds, mean, centers, m):
        r, _, d = centers.shape
        acc = (
            tf.fill([r, m], tf.constant(-1.0, centers.dtype)),
            tf.zeros([r, m, d], centers.dtype),
            tf.zeros([r, m], tf.int32),
        )
        for batch in ds:
            if self.strategy is None:
                acc = _merge_far(acc, _step_far(batch, mean, centers, m), m)
            else:
                per = self.strategy.run(_step_far.function, args=(batch, mean, centers, m))
                for local in zip(
                    *(self.strategy.experimental_local_results(p) for p in per), strict=True
                ):
                    acc = _merge_far(acc, tuple(tf.identity(t) for t in local), m)
        return acc


def _labels(ds, scale, mean, centers):
    """Labels (n,) of the final pass over the unscaled batches ``ds``, the summed squared
    distances (scaled data) and the pass's :func:`_row_checksum`."""
    labels, inertia, checksum, seen = [], 0.0, 0, 0
    scale = tf.constant(scale, centers.dtype)
    for batch in ds:
        checksum += int(_row_checksum(batch, tf.constant(seen, tf.int64)))
        seen += int(batch.shape[0])
        lab, sq = _step_labels(batch, scale, mean, centers)
        labels.append(lab.numpy())
        inertia += float(sq)
    checksum %= 2**64  # the int64 sum, wrapped as the first pass's
    return np.concatenate(labels), inertia, checksum - 2**64 if checksum >= 2**63 else checksum


def fit_dataset(p, X, *, check_init_shape, strategy):
    """Fit K-means (the validated parameters ``p`` of ``KMeans._check_params``) on a dataset of
    batches; returns the same dict as the in-memory fit (``labels`` None if the dataset yields
    its rows differently on each pass).

    Under ``strategy`` (a multi-replica ``tf.distribute.Strategy``) the passes are distributed.
    """
    k, dtype = p.n_clusters, p.dtype
    ds = _as_batches(p, X, strategy)
    n, mean64, var64, bad, largest, checksum = (t.numpy() for t in _moments(ds))
    n = int(n)
    if bad:
        raise ValueError(f"X contains NaN or infinity ({int(bad)} rows)")
    if n == 0:
        raise ValueError("X is empty: the dataset yielded no rows")
    if n < k:
        raise ValueError(f"n_samples={n} should be >= n_clusters={k}.")
    d = mean64.shape[0]
    check_init_shape(p, d)
    # Squared distances must not overflow: scale huge (or tiny) data by a power of two (exact).
    init_abs = 0.0 if p.init_array is None else float(tf.reduce_max(tf.abs(p.init_array)))
    scale = power_of_two_scale(max(float(largest), init_abs), d, dtype)
    scaled = ds if scale == 1.0 else ds.map(lambda b: b * tf.constant(scale, dtype))
    if not (np.all(np.isfinite(mean64)) and np.all(np.isfinite(var64))):
        # float64 data beyond ~1e154 overflow the moments themselves: again on scaled rows.
        _, mean64, var64, *_ = (t.numpy() for t in _moments(scaled))
    else:
        mean64, var64 = mean64 * scale, var64 * scale * scale
    mean = tf.constant(mean64, dtype)
    tol = tf.constant(float(np.mean(var64)) * p.tol, dtype)

    if p.kind == "array":
        centers = p.init_array * scale - mean
    else:
        size = min(n, p.init_size or max(10_000, 20 * k))
        sample = np.concatenate([b.numpy() for b in scaled.unbatch().take(size).batch(size)])
        centers = seed_centers(
            tf.constant(sample) - mean,
            p.seed,
            n_clusters=k,
            n_restarts=p.n_init,
            init=p.kind,
            tile=size,
            n_local_trials=p.n_local_trials,
        )
    passes = _Passes(scaled, strategy)
    r = p.n_init
    conv = Convergence.start(r, centers.dtype)
    prev = centers
    for i in range(p.max_iter):
        sums, counts, changed = passes.sums(mean, centers, prev)
        if i == 0:  # scikit-learn's labels start at -1: nothing is unchanged at first
            changed = tf.ones_like(changed)
        if k > 1 and bool(tf.reduce_any((counts == 0) & ~conv.done[:, tf.newaxis])):
            m = min(k - 1, n)
            far = passes.far(mean, centers, m)
            sums, counts = relocate_empty(
                sums, counts, far[1], far[2], far[0], tf.ones_like(far[0]), ~conv.done
            )
        prev = centers
        centers, conv, _ = _update(tf.constant(i), centers, sums, counts, changed, conv, tol)
        if p.verbose:
            logger.info(
                "pass %d: %d restart(s) still running",
                i,
                int(tf.reduce_sum(tf.cast(~conv.done, tf.int32))),
            )
        if bool(tf.reduce_all(conv.done)):
            break

    with np.errstate(over="ignore"):  # inf only beyond the float64 range (see KMeans)
        inertia_all = passes.inertia(mean, centers).numpy().astype(np.float64) / scale / scale
    best = int(np.argmin(inertia_all))
    labels, inertia, last_checksum = _labels(ds, scale, mean, centers[best])
    if labels.shape[0] != n or last_checksum != int(checksum):
        warnings.warn(
            "KMeans.fit: the tf.data.Dataset yields its rows in a different order (or different "
            "rows) on each pass, e.g. shuffle() with reshuffle_each_iteration=True, so no labels "
            "match its rows: labels_ is None. Call predict() on the rows to label them.",
            RuntimeWarning,
            stacklevel=3,
        )
        labels = None
    centers_best = (centers[best] + mean).numpy()
    return {
        "centers": centers_best if scale == 1.0 else centers_best / centers_best.dtype.type(scale),
        "labels": labels,
        "inertia": inertia / scale / scale,
        "n_iter": int(conv.n_iter[best]),
        "inertia_all": inertia_all,
        "n_iter_all": conv.n_iter.numpy(),
        "converged_all": conv.done.numpy(),
        "strict_all": conv.strict.numpy(),
        "shift_all": conv.shift.numpy() / scale / scale,
        "tol": float(tol) / scale / scale,
    }
