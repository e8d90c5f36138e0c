"""The input-space distances of t-SNE for scikit-learn's ``metric`` parameter.

t-SNE's Gaussians use ``d(x_i, x_j) ** 2`` for every metric, as scikit-learn's (it squares
the distances of every metric but ``"euclidean"``, whose squared distances it computes
directly; so ``"sqeuclidean"`` enters squared again). Three sources:

* the metrics the XLA kernels compute in row tiles (:data:`tfclust._neighbors.METRICS`:
  euclidean, sqeuclidean, cosine, manhattan, chebyshev, and precomputed dense matrices);
* a precomputed sparse k-NN graph (scipy sparse, missing entries are non-neighbours, as
  scikit-learn), whose rows are ranked here on the host (:func:`sparse_neighbors`);
* other metrics of ``scipy.spatial.distance.cdist`` (:data:`HOST_METRICS`) and callables
  ``metric(u, v) -> float``, evaluated by scipy on the host in row tiles
  (:func:`host_neighbors`, :func:`host_distances`; a callable runs once per pair of rows, in
  Python: for small N only).
"""

from __future__ import annotations

import numpy as np

from tfclust._neighbors import METRICS
from tfclust._tiling import rows_per_tile

__all__ = [
    "HOST_METRICS",
    "METRIC_ALIASES",
    "check_distances",
    "host_distances",
    "host_neighbors",
    "is_sparse",
    "resolve_metric",
    "sparse_neighbors",
]

METRIC_ALIASES = {"l1": "manhattan", "cityblock": "manhattan", "l2": "euclidean"}
"""scikit-learn's other names of the kernels' metrics."""

HOST_METRICS = ("braycurtis", "canberra", "correlation", "mahalanobis", "minkowski", "seuclidean")
"""Metrics computed by ``scipy.spatial.distance.cdist`` on the host."""

_POSITIVE_MESSAGE = "All distances should be positive, the metric given is not correct"


def is_sparse(x) -> bool:
    """Whether ``x`` is a scipy sparse matrix or array (told without importing scipy)."""
    return type(x).__module__.startswith("scipy.sparse")


def resolve_metric(metric, metric_params):
    """Validate scikit-learn's ``metric`` and ``metric_params``.

    Returns:
      ``(metric, params)``: a name of :data:`tfclust._neighbors.METRICS` (aliases resolved) or
      of :data:`HOST_METRICS`, or the callable; and the keyword arguments of ``cdist`` (a dict;
      mahalanobis' ``V`` becomes its inverse ``VI``).

    Raises:
      ValueError: unknown metric, parameters for a metric that takes none, or a mahalanobis or
        seuclidean metric without its matrix/variances (computed per tile they would differ).
      TypeError: ``metric_params`` not a dict or None.
    """
    if metric_params is not None and not isinstance(metric_params, dict):
        raise TypeError(f"metric_params must be a dict or None, got {metric_params!r}")
    params = dict(metric_params or {})
    if callable(metric):
        return metric, params
    if not isinstance(metric, str) or (
        metric not in METRICS and metric not in METRIC_ALIASES and metric not in HOST_METRICS
    ):
        names = sorted((*METRICS, *METRIC_ALIASES, *HOST_METRICS))
        raise ValueError(f"metric must be a callable or one of {names}, got {metric!r}")
    metric = METRIC_ALIASES.get(metric, metric)
    if metric in METRICS and params:
        raise ValueError(f"metric={metric!r} takes no metric_params, got {sorted(params)}")
    if metric == "mahalanobis":
        if "V" in params:
            params["VI"] = np.linalg.inv(np.asarray(params.pop("V"), dtype=np.float64))
        if "VI" not in params:
            raise ValueError("Must provide either V or VI for Mahalanobis distance")
    if metric == "seuclidean" and "V" not in params:
        raise ValueError("metric='seuclidean' needs metric_params={'V': variances}")
    return metric, params


def check_distances(d, *, precomputed: bool = False, method: str = "fit") -> None:
    """Raise ``ValueError`` unless the distances ``d`` (numpy) are finite and non-negative
    (scikit-learn's messages: a precomputed matrix is the caller's, passed to TSNE's
    ``method``, a computed one the metric's)."""
    if not np.all(np.isfinite(d)):
        raise ValueError("The distances contain NaN or infinity, the metric given is not correct")
    if np.any(d < 0):
        raise ValueError(
            f"Negative values in data passed to TSNE.{method}(). With metric='precomputed', X "
            "should contain positive distances."
            if precomputed
            else _POSITIVE_MESSAGE
        )


def _host_tiles(x, metric, params, memory_budget):
    """(row slice, (rows, N) distances) for consecutive row tiles of ``x``, checked."""
    from scipy.spatial.distance import cdist

    n = x.shape[0]
    tile = rows_per_tile(n, 3 * n * 8, memory_budget)
    for start in range(0, n, tile):
        rows = slice(start, min(start + tile, n))
        d = cdist(x[rows], x, metric, **params)
        check_distances(d)
        yield rows, d


def host_distances(x, metric, params, memory_budget: int | None = None):
    """The (N, N) float64 matrix of ``metric`` distances between the rows of ``x`` ((N, D)
    numpy), zero diagonal (the exact method's; it holds an (N, N) P anyway).

    Raises:
      ValueError: a distance is negative or not finite.
    """
    n = x.shape[0]
    out = np.empty((n, n))
    for rows, d in _host_tiles(x, metric, params, memory_budget):
        out[rows] = d
    np.fill_diagonal(out, 0.0)
    return out


def _ranked(distances, k: int):
    """Columns of the k smallest entries of each row and those entries, nearest first, ranked
    on float32 keys with ties to the lower column (as the kernels' k-NN search)."""
    order = np.argsort(distances.astype(np.float32), axis=1, kind="stable")[:, :k]
    return order.astype(np.int32), np.take_along_axis(distances, order, axis=1)


def host_neighbors(x, k: int, metric, params, memory_budget: int | None = None):
    """The k nearest neighbours of every row of ``x`` ((N, D) numpy) among the others, by
    ``metric``, in row tiles of at most ``memory_budget`` bytes.

    Returns:
      ``(indices, distances)``: (N, k) int32 and (N, k) float64 (unsquared), nearest first.

    Raises:
      ValueError: a distance is negative or not finite.
    """
    n = x.shape[0]
    indices, distances = np.empty((n, k), np.int32), np.empty((n, k))
    for rows, d in _host_tiles(x, metric, params, memory_budget):
        d[np.arange(d.shape[0]), np.arange(rows.start, rows.stop)] = np.inf  # not itself
        indices[rows], distances[rows] = _ranked(d, k)
    return indices, distances


def sparse_neighbors(graph, k: int):
    """The k nearest neighbours of every point in a precomputed sparse distance graph.

    As scikit-learn's: stored entries are distances (explicit zeros included), missing ones are
    non-neighbours, and a point's own entry is ignored.

    Args:
      graph: (N, N) scipy sparse matrix or array of non-negative distances.
      k: neighbours per point.

    Returns:
      ``(indices, distances)``: (N, k) int32 and (N, k) float64 (unsquared), nearest first.

    Raises:
      ValueError: some point has fewer than k stored neighbours (counted with the point
        itself, as scikit-learn's message).
    """
    csr = graph.tocsr(copy=True)
    csr.sort_indices()  # ties go to the lower column
    n = csr.shape[0]
    rows = np.repeat(np.arange(n), np.diff(csr.indptr))
    other = csr.indices != rows
    rows, cols, values = rows[other], csr.indices[other], np.asarray(csr.data, np.float64)[other]
    counts = np.bincount(rows, minlength=n)
    if counts.min() < k:
        raise ValueError(
            f"{k + 1} neighbors per samples are required, but some samples have only "
            f"{counts.min() + 1} (the sample itself counted); raise the graph's neighbours or "
            "lower perplexity (k = min(n_samples - 1, 3 * perplexity + 1))"
        )
    width = counts.max()
    slot = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    padded = np.full((n, width), np.inf)
    padded_cols = np.zeros((n, width), np.int64)
    padded[rows, slot] = values
    padded_cols[rows, slot] = cols
    order, distances = _ranked(padded, k)
    return np.take_along_axis(padded_cols, order, axis=1).astype(np.int32), distances
