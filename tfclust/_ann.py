"""Approximate k nearest neighbours for large N: an inverted file (IVF) over K-means lists.

The rows are clustered into ``n_lists`` lists by K-means (10 Lloyd iterations on a sample of
64 rows per list from random initial rows, then every row assigned to its nearest centre: a
program of its own, which compiles in about a second where ``tfclust.KMeans``' took 9-23 s)
and sorted by list. The search then runs one *job* at a time in a compiled loop with a static
trip count: a job's queries are up to ``query_capacity`` consecutive members of one list (a
list larger than that is split into several jobs), its candidates all members of the lists
whose centres are nearest to that list's centre, until they hold ``n_probe`` mean lists' worth
of rows (padded to the static ``candidate_capacity``, the largest such union), and its
neighbours are ranked by matmul distances (``_selection.smallest_k``), the selected distances
recomputed by differences (as the exact search, :mod:`tfclust._neighbors`). The host looks at
the list sizes once per search, to size the program.

Work is ``N * candidate_capacity`` distances instead of ``N ** 2``, memory one job's
``query_capacity * candidate_capacity``. Probing every list is the exact search. The default
``n_probe`` grows with the lists (:func:`default_n_probe`), so that candidates are about 10%
of the rows from 240 lists (58,000 rows) on: 4-7x less work than the exact search there, not
a lower order (docs/large_n.md).

Metrics: the euclidean family of :mod:`tfclust._neighbors` (``"euclidean"``,
``"sqeuclidean"``, ``"cosine"``).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from tfclust._compile import specialised
from tfclust._device import device_profile
from tfclust._neighbors import _MATMUL_METRICS, prepared, recomputed_distances
from tfclust._selection import smallest_k
from tfclust._tiling import (
    map_row_tiles,
    memory_budget_bytes,
    rows_per_tile,
    squared_distances,
)
from tfclust.kmeans._steps import accumulate

__all__ = [
    "METRICS",
    "approximate_nearest_neighbors",
    "default_n_lists",
    "default_n_probe",
    "search_program",
]

METRICS = _MATMUL_METRICS
"""The metrics of the approximate search (the euclidean family)."""


_KMEANS_ITERATIONS = 10
_KMEANS_SAMPLE_PER_LIST = 64  # K-means rows per list: centres for routing need not be precise
_QUERY_CAPACITIES = (32, 48, 64, 96, 128, 192, 256, 384, 512)
_JOB_OVERHEAD_ROWS = 16


def default_n_lists(n: int, k: int) -> int:
    """Lists of the default IVF over ``n`` rows for ``k`` neighbours: ``sqrt(n)``, at most
    ``n / (2 k)`` so that a list holds a few times the neighbours of its rows, at least 1."""
    return max(1, min(round(math.sqrt(n)), n // (2 * k)))


def default_n_probe(n_lists: int) -> int:
    """Lists' worth of candidates of the default search: ``max(40, ceil(n_lists / 10))``.

    On Fashion-MNIST latents (k = 91) a fixed count lost recall as N grew (24 of 245 lists:
    98.4% at N = 60,000; 24 of 500: 94.5% at N = 250,000, 48 of 500: 98.5%): the lists
    around a list's centre that hold its rows' neighbours grow in number with the lists. At
    60,000, 40 lists brought the t-SNE map's KL from 1.002x to 0.997x openTSNE's
    (docs/large_n.md)."""
    return max(40, -(-n_lists // 10))


def _nearest_centre(rows, centres):
    """(tile,) int32 index of each row's nearest centre."""
    c_sq = tf.reduce_sum(tf.square(centres), axis=1)
    return tf.argmin(squared_distances(rows, centres, c_sq), axis=1, output_type=tf.int32)


def _kmeans(x, sample, tiles, deterministic_sums: bool):
    """Lloyd's K-means of the rows ``sample`` (their first ``n_lists`` rows the initial
    centres), ``_KMEANS_ITERATIONS`` iterations; then every row of ``x`` assigned: ``(labels
    (N,) int32, centres (n_lists, D))``. An empty list keeps its centre. ``deterministic_sums``
    (static): per-list sums by one-hot matmuls, not float scatter-adds (``_steps.accumulate``)."""
    n_lists, sample_tile, tile = tiles
    weights = tf.ones_like(sample[:, 0])

    def labels_of(rows, centres, tile):
        return map_row_tiles(
            lambda block: _nearest_centre(block, centres),
            rows,
            tile,
            fn_output_signature=tf.TensorSpec([tile], tf.int32),
        )

    def step(i, centres):
        labels = labels_of(sample, centres, sample_tile)
        sums, counts = accumulate(
            sample, weights, labels[:, tf.newaxis], n_lists, deterministic_sums
        )
        counts = counts[0, :, tf.newaxis]
        return i + 1, tf.where(counts > 0, sums[0] / tf.maximum(counts, 1.0), centres)

    _, centres = tf.while_loop(
        lambda i, _: i < _KMEANS_ITERATIONS, step, (tf.constant(0), sample[:n_lists])
    )
    return labels_of(x, centres, tile), centres


def _lists(x, n_lists: int, seed: int, memory_budget: int):
    """K-means lists of the prepared rows ``x`` ((N, D) tensor), from a random sample of
    ``_KMEANS_SAMPLE_PER_LIST`` rows per list: ``(labels (N,), centres)``, numpy."""
    n, d = x.shape
    rng = np.random.default_rng(seed)
    sample = tf.gather(x, rng.choice(n, min(n, _KMEANS_SAMPLE_PER_LIST * n_lists), replace=False))
    row_bytes = 2 * n_lists * x.dtype.size
    tiles = (
        n_lists,
        rows_per_tile(sample.shape[0], row_bytes, memory_budget),
        rows_per_tile(n, row_bytes, memory_budget),
    )
    deterministic_sums = device_profile().deterministic_sums
    program = specialised(_kmeans, n, d, sample.shape[0], x.dtype, tiles, deterministic_sums)
    labels, centres = program(x, sample, tiles, deterministic_sums)
    return labels.numpy(), centres.numpy()


def _probes(centres, counts, n_probe: int, k: int):
    """(n_lists, P) lists to search for each list's queries: those of nearest centre (the list
    itself first) until they hold ``n_probe`` lists' worth of rows (``n_probe`` times the mean
    list size; every list from n_probe = n_lists on), and at least ``k + 1`` rows; short rows
    padded with ``n_lists``, an empty list.

    A budget of rows rather than a count of lists evens out the candidates of dense and sparse
    regions, and so the static candidate capacity (the largest union) wastes less."""
    n_lists = len(centres)
    c = centres.astype(np.float64)
    d2 = (c**2).sum(1)[:, None] - 2.0 * c @ c.T + (c**2).sum(1)[None, :]
    np.fill_diagonal(d2, -1.0)
    ranked = np.argsort(d2, axis=1, kind="stable")
    held = np.cumsum(counts[ranked], axis=1)
    wanted = max(k + 1, math.ceil(n_probe * counts.sum() / n_lists))
    needed = 1 + np.argmax(held >= min(wanted, counts.sum()), axis=1)
    width = int(needed.max())
    probes = np.where(np.arange(width)[None, :] < needed[:, None], ranked[:, :width], n_lists)
    return probes.astype(np.int32)


def _search(xs, xs_sq, order, offsets, counts, probes, jobs, k: int, capacities, metric: str):
    """The compiled search over the list-sorted prepared rows ``xs``: (N, k) ids and squared
    distances in the original row order (``order``: sorted position -> row id)."""
    query_capacity, candidate_capacity = capacities
    n = xs.shape[0]
    inf = tf.constant(math.inf, xs.dtype)
    slots = tf.range(query_capacity)
    places = tf.range(candidate_capacity)

    def job(args):
        (job,) = args
        start, length, listed = job[0, 0], job[0, 1], job[0, 2]
        query = tf.where(slots < length, start + slots, 0)
        rows = tf.gather(xs, query)
        probed = tf.gather(probes, listed)
        sizes = tf.gather(counts, probed)
        ends = tf.cumsum(sizes)
        # Candidate place p is in the probed list whose cumulative size first exceeds p.
        which = tf.reduce_sum(tf.cast(places[:, None] >= ends[None, :], tf.int32), axis=1)
        which = tf.minimum(which, probed.shape[0] - 1)
        within = places - tf.gather(ends - sizes, which)
        real = places < ends[-1]
        candidates = tf.where(real, tf.gather(tf.gather(offsets, probed), which) + within, 0)
        d2 = squared_distances(rows, tf.gather(xs, candidates), tf.gather(xs_sq, candidates))
        skip = ~real[None, :] | (query[:, None] == candidates[None, :])
        d2 = tf.where(skip, inf, d2)
        picked = smallest_k(tf.cast(d2, tf.float32), k)
        picked = tf.gather(candidates, picked)
        near = recomputed_distances(rows, xs, xs_sq, picked, metric)
        target = tf.where(slots < length, tf.gather(order, query), n)
        return target[None], tf.gather(order, picked)[None], near[None]

    signature = (
        tf.TensorSpec([1, query_capacity], tf.int32),
        tf.TensorSpec([1, query_capacity, k], tf.int32),
        tf.TensorSpec([1, query_capacity, k], xs.dtype),
    )
    target, idx, d2 = map_row_tiles(job, (jobs,), 1, fn_output_signature=signature)
    # Unused slots write to row n, dropped.
    target = tf.reshape(target, [-1, 1])
    idx = tf.tensor_scatter_nd_update(
        tf.zeros([n + 1, k], tf.int32), target, tf.reshape(idx, [-1, k])
    )
    d2 = tf.tensor_scatter_nd_update(
        tf.zeros([n + 1, k], xs.dtype), target, tf.reshape(d2, [-1, k])
    )
    return idx[:n], d2[:n]


def _jobs(counts, offsets, query_capacity: int):
    """(J, 3) int32 ``(start, length, list)`` of the jobs: each list cut into
    ``ceil(count / query_capacity)`` near-equal runs of consecutive sorted rows."""
    jobs = []
    for listed, (count, offset) in enumerate(zip(counts, offsets, strict=True)):
        parts = -(-int(count) // query_capacity)
        bounds = np.linspace(0, count, parts + 1).round().astype(int)
        jobs += [(offset + a, b - a, listed) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return np.asarray(jobs, np.int32).reshape(-1, 3)


def _query_capacity(counts, most: int) -> int:
    """The job size (query rows) of least padded work for lists of ``counts`` rows, at most
    ``most``: the rows of all jobs plus ``_JOB_OVERHEAD_ROWS`` per job (its candidates'
    gathers); a job of the largest list's size padded lists 2-3x on Fashion-MNIST latents."""
    sizes = [s for s in _QUERY_CAPACITIES if s < most] + [most]
    counts = counts[counts > 0]
    cost = [np.sum(-(-counts // s)) * (s + _JOB_OVERHEAD_ROWS) for s in sizes]
    return sizes[int(np.argmin(cost))]


def search_program(
    x, k: int, n_lists: int, n_probe: int, metric: str, seed: int, memory_budget: int
):
    """The compiled search of :func:`approximate_nearest_neighbors` for the validated
    arguments, and its arguments: ``(program, args)``, ``program(*args)`` the result (the
    K-means lists and the host's sizing are done here)."""
    xp, _, _ = prepared(x, metric)
    labels, centres = _lists(xp, n_lists, seed, memory_budget)
    order = np.argsort(labels, kind="stable").astype(np.int32)
    counts = np.bincount(labels, minlength=n_lists)
    offsets = np.cumsum(counts) - counts
    probes = _probes(centres, counts, n_probe, k)
    candidate_capacity = int(np.append(counts, 0)[probes].sum(axis=1).max())
    row_bytes = 3 * candidate_capacity * x.dtype.size
    budget = memory_budget_bytes(memory_budget)
    most = min(int(counts.max()), budget // row_bytes, device_profile().knn_max_tile)
    query_capacity = _query_capacity(counts, max(1, most))
    jobs = _jobs(counts, offsets, query_capacity)
    xs = tf.gather(xp, order)
    capacities = (query_capacity, candidate_capacity)
    n, d = x.shape
    program = specialised(_search, n, d, x.dtype, len(jobs), k, capacities, metric)
    args = (
        xs,
        tf.reduce_sum(tf.square(xs), axis=1),
        tf.constant(order),
        tf.constant(np.append(offsets, 0), tf.int32),
        tf.constant(np.append(counts, 0), tf.int32),
        tf.constant(probes),
        tf.constant(jobs),
        k,
        capacities,
        metric,
    )
    return program, args


def approximate_nearest_neighbors(
    x,
    k: int,
    *,
    n_lists: int | None = None,
    n_probe: int | None = None,
    metric: str = "euclidean",
    seed: int = 0,
    memory_budget: int | None = None,
):
    """Approximate k nearest neighbours of every point among the others (IVF over K-means).

    See the module docstring for the method. One program is compiled per list layout (the
    number of jobs and the capacities, from the list sizes of this ``x``).

    Args:
      x: (N, D) float32/float64 tensor or array, N >= 2.
      k: neighbours per point, 1 <= k <= N - 1.
      n_lists: K-means lists, 1 <= n_lists <= N; default :func:`default_n_lists`.
      n_probe: how many lists' worth of rows (times the mean list size) the queries of a list
        are compared with: the lists of nearest centre (itself first) until they hold that
        many rows, and at least k + 1; >= 1, default :func:`default_n_probe`; from n_lists on
        every list, the exact search.
      metric: one of :data:`METRICS` (default ``"euclidean"``).
      seed: seed of the K-means sample and initial centres.
      memory_budget: bytes one job's distances may take (default None: the
        device profile's, ``_tiling.memory_budget_bytes``).

    Returns:
      ``(indices, sq_distances)`` as :func:`tfclust._neighbors.nearest_neighbors`: (N, k)
      int32 and (N, k) x.dtype squared ``metric`` distances, nearest first among those found.
    """
    if metric not in METRICS:
        raise ValueError(
            f"approximate neighbours support the metrics {METRICS}, got {metric!r}; use the "
            "exact search for other metrics"
        )
    x = tf.convert_to_tensor(x)
    n = x.shape[0]
    if not 1 <= k <= n - 1:
        raise ValueError(f"k must be in [1, {n - 1}], got {k}")
    n_lists = default_n_lists(n, k) if n_lists is None else n_lists
    if not 1 <= n_lists <= n:
        raise ValueError(f"n_lists must be in [1, {n}], got {n_lists}")
    n_probe = default_n_probe(n_lists) if n_probe is None else n_probe
    if n_probe < 1:
        raise ValueError(f"n_probe must be >= 1, got {n_probe}")
    program, args = search_program(
        x, int(k), n_lists, min(n_probe, n_lists), metric, seed, memory_budget
    )
    return program(*args)
