"""Quality metrics for clusterings and embeddings.

Label metrics (:func:`cluster_accuracy`, :func:`normalized_mutual_info`,
:func:`adjusted_rand_index`) work on the sparse contingency table in numpy/scipy and follow
scikit-learn's definitions and special cases. Embedding metrics (:func:`trustworthiness`,
:func:`knn_accuracy`) do their pairwise work in row tiles inside XLA-compiled TensorFlow
functions, so memory grows with ``tile * n_samples``, never with ``n_samples ** 2``.

Every function accepts numpy arrays, sequences or ``tf.Tensor`` s and returns a Python ``float``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.optimize
import scipy.stats
import tensorflow as tf

from tfclust._compile import compiled
from tfclust._neighbors import nearest_neighbors
from tfclust._tiling import DEFAULT_MEMORY_BUDGET, map_row_tiles, rows_per_tile, squared_distances
from tfclust._validation import INT32_MAX, check_array, check_int, max_abs, power_of_two_scale

_DTYPE = tf.float64
"""Distances are computed in float64: near neighbours in a 2-D map lie far closer together than
the coordinates' magnitude, and ``|x|^2 - 2 x.y + |y|^2`` in float32 would reorder them."""


def _unit_scaled(x: tf.Tensor) -> tf.Tensor:
    """``x`` times the power of two that brings its largest magnitude into [0.5, 1).

    Exact (no rounding), so every ranking of distances is unchanged, and the embedding metrics
    give the same result at any scale of the coordinates (1e-200 or 1e200 included): squared
    distances neither overflow nor underflow, in float64 or in the float32 keys of the k-NN
    search."""
    return x * power_of_two_scale(max_abs(x), x.shape[1], x.dtype, always=True)


class _Contingency(NamedTuple):
    """Sparse contingency table of two labelings of ``n`` samples (int64 arrays)."""

    rows: np.ndarray  # (n_cells,) class index of each non-empty cell
    cols: np.ndarray  # (n_cells,) cluster index of each non-empty cell
    counts: np.ndarray  # (n_cells,) number of samples in the cell, > 0
    class_sizes: np.ndarray  # (n_classes,)
    cluster_sizes: np.ndarray  # (n_clusters,)


def _check_labels(labels, name: str) -> np.ndarray:
    """Return ``labels`` as a non-empty 1-D numpy array without NaN/inf, else raise."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def _check_label_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """Validate two labelings of the same samples."""
    y_true = _check_labels(y_true, "y_true")
    y_pred = _check_labels(y_pred, "y_pred")
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(
            f"y_true and y_pred have different lengths: {y_true.shape[0]} != {y_pred.shape[0]}"
        )
    return y_true, y_pred


def _contingency(y_true, y_pred) -> _Contingency:
    """Validate two labelings and count their co-occurrences (labels of any sortable dtype)."""
    y_true, y_pred = _check_label_pair(y_true, y_pred)
    _, true_idx = np.unique(y_true, return_inverse=True)
    _, pred_idx = np.unique(y_pred, return_inverse=True)
    n_clusters = int(pred_idx.max()) + 1
    cells, counts = np.unique(true_idx.astype(np.int64) * n_clusters + pred_idx, return_counts=True)
    rows, cols = np.divmod(cells, n_clusters)
    return _Contingency(
        rows,
        cols,
        counts.astype(np.int64),
        np.bincount(true_idx).astype(np.int64),
        np.bincount(pred_idx).astype(np.int64),
    )


def cluster_accuracy(y_true, y_pred) -> float:
    """Unsupervised clustering accuracy: the best one-to-one matching of clusters to classes.

    The matching maximises the number of samples whose cluster is mapped to their class
    (Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``, on the contingency table).
    With more clusters than classes the unmatched clusters count as errors; with fewer, the
    unmatched classes do.

    Args:
      y_true: (n_samples,) class labels, any sortable dtype (ints, strings, ...).
      y_pred: (n_samples,) cluster labels; their values need not coincide with the classes'.

    Returns:
      The fraction of correctly matched samples, in [0, 1].

    Raises:
      ValueError: labels not 1-D, empty, containing NaN, or of different lengths.

    Examples:
      >>> from tfclust.metrics import cluster_accuracy
      >>> cluster_accuracy([0, 0, 1, 1, 2], [1, 1, 0, 0, 0])
      0.8
    """
    table = _contingency(y_true, y_pred)
    dense = np.zeros((table.class_sizes.size, table.cluster_sizes.size), dtype=np.int64)
    dense[table.rows, table.cols] = table.counts
    rows, cols = scipy.optimize.linear_sum_assignment(dense, maximize=True)
    return float(dense[rows, cols].sum() / table.counts.sum())


def _entropy(sizes: np.ndarray) -> float:
    """Shannon entropy (nats) of a labeling given its (n_labels,) cluster sizes."""
    total = sizes.sum()
    return float(-np.sum(sizes / total * (np.log(sizes) - np.log(total))))


def _mutual_info(table: _Contingency) -> float:
    """Mutual information (nats) of the two labelings of a contingency table, clipped at 0."""
    if table.class_sizes.size == 1 or table.cluster_sizes.size == 1:
        return 0.0
    n = table.counts.sum()
    log_ratio = (
        np.log(table.counts)
        + np.log(n)
        - np.log(table.class_sizes[table.rows])
        - np.log(table.cluster_sizes[table.cols])
    )
    return max(float(np.sum(table.counts / n * log_ratio)), 0.0)


def normalized_mutual_info(y_true, y_pred) -> float:
    """Mutual information normalised by the arithmetic mean of the two entropies.

    Same definition and special cases as ``sklearn.metrics.normalized_mutual_info_score`` with
    its default ``average_method="arithmetic"``: 1.0 when both labelings are a single cluster,
    0.0 whenever the mutual information is 0. Symmetric, invariant to relabeling.

    Args:
      y_true: (n_samples,) reference labels, any sortable dtype.
      y_pred: (n_samples,) cluster labels.

    Returns:
      NMI in [0, 1].

    Raises:
      ValueError: labels not 1-D, empty, containing NaN, or of different lengths.

    Examples:
      >>> from tfclust.metrics import normalized_mutual_info
      >>> round(normalized_mutual_info([0, 0, 1, 1], [1, 1, 0, 0]), 6)
      1.0
      >>> round(normalized_mutual_info([0, 0, 1, 1], [0, 1, 2, 3]), 4)
      0.6667
    """
    table = _contingency(y_true, y_pred)
    if table.class_sizes.size == table.cluster_sizes.size == 1:
        return 1.0
    mi = _mutual_info(table)
    if mi == 0.0:
        return 0.0
    mean_entropy = (_entropy(table.class_sizes) + _entropy(table.cluster_sizes)) / 2.0
    return float(mi / mean_entropy)


def adjusted_rand_index(y_true, y_pred) -> float:
    """Rand index adjusted for chance (Hubert & Arabie), as ``sklearn.metrics.adjusted_rand_score``.

    Computed from the pair confusion counts in exact integer arithmetic (no overflow for any
    ``n_samples``), then one float division; 1.0 when the labelings agree on every pair.

    Args:
      y_true: (n_samples,) reference labels, any sortable dtype.
      y_pred: (n_samples,) cluster labels.

    Returns:
      ARI in [-0.5, 1]; about 0 for random labelings.

    Raises:
      ValueError: labels not 1-D, empty, containing NaN, or of different lengths.

    Examples:
      >>> from tfclust.metrics import adjusted_rand_index
      >>> adjusted_rand_index([0, 0, 1, 1], [1, 1, 0, 0])
      1.0
      >>> round(adjusted_rand_index([0, 0, 1, 1], [0, 0, 1, 2]), 4)
      0.5714
    """
    table = _contingency(y_true, y_pred)
    n = int(table.counts.sum())
    same_both = int(np.sum(table.counts**2))
    same_class = int(np.sum(table.class_sizes**2))
    same_cluster = int(np.sum(table.cluster_sizes**2))
    # Ordered pairs of distinct samples: together in both / only in the clustering / only in
    # the classes / in neither.
    tp = same_both - n
    fp = same_cluster - same_both
    fn = same_class - same_both
    tn = n * n - same_cluster - same_class + same_both
    if fp == 0 and fn == 0:
        return 1.0
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))


def _self_masked_sq_distances(x: tf.Tensor, rows: tf.Tensor, x_sq: tf.Tensor) -> tf.Tensor:
    """(tile, n) squared distances from ``x[rows]`` to every row of ``x``; self pairs are inf."""
    d2 = squared_distances(tf.gather(x, rows), x, x_sq)
    is_self = tf.equal(rows[:, tf.newaxis], tf.range(x.shape[0])[tf.newaxis, :])
    return tf.where(is_self, tf.constant(np.inf, d2.dtype), d2)


@compiled
def _rank_penalty_kernel(x: tf.Tensor, neighbors: tf.Tensor, tile: int) -> tf.Tensor:
    """Sum over i and j in ``neighbors[i]`` of ``max(0, rank_x(i, j) - k)``, as int64.

    ``rank_x(i, j)`` is 1 + the number of points other than i strictly closer to ``x[i]`` than
    ``x[j]``, counted by comparisons against one row tile of distances at a time.
    """
    k = neighbors.shape[1]
    x_sq = tf.reduce_sum(tf.square(x), axis=1)

    def block(rows):
        d2 = _self_masked_sq_distances(x, rows, x_sq)  # (tile, n)
        threshold = tf.gather(d2, tf.gather(neighbors, rows), batch_dims=1)  # (tile, k)
        closer = d2[:, tf.newaxis, :] < threshold[:, :, tf.newaxis]  # (tile, k, n)
        ranks = tf.reduce_sum(tf.cast(closer, tf.int32), axis=2) + 1
        return tf.reduce_sum(tf.cast(tf.maximum(ranks - k, 0), tf.int64), axis=1)

    rows = tf.range(x.shape[0])
    return tf.reduce_sum(map_row_tiles(block, rows, tile, tf.TensorSpec([tile], tf.int64)))


def _check_embedding_pair(x, x_embedded) -> tuple[tf.Tensor, tf.Tensor]:
    """Validate the original (n, d) and embedded (n, d') data as float64 tensors."""
    x = check_array(x, name="X", dtype=_DTYPE)
    x_embedded = check_array(x_embedded, name="X_embedded", dtype=_DTYPE)
    if x.shape[0] != x_embedded.shape[0]:
        raise ValueError(
            f"X and X_embedded have different numbers of samples: "
            f"{x.shape[0]} != {x_embedded.shape[0]}"
        )
    return _unit_scaled(x), _unit_scaled(x_embedded)


def trustworthiness(
    X, X_embedded, n_neighbors: int = 10, *, memory_budget: int = DEFAULT_MEMORY_BUDGET
) -> float:
    """How well the embedding's neighbourhoods are neighbourhoods of the original data.

    Same definition as ``sklearn.manifold.trustworthiness`` (euclidean metric)::

        T(k) = 1 - 2 / (n k (2n - 3k - 1)) * sum_i sum_{j in N_k^emb(i)} max(0, r(i, j) - k)

    where ``r(i, j)`` is the rank of j among i's neighbours in the original space. Ranks are
    computed without an (n, n) matrix: for each row tile, distances to all points are compared
    with the distances to the embedded neighbours (XLA-compiled, float64), so 60,000 points fit
    in the default memory budget. Scale-invariant: each input is first multiplied by the power
    of two that brings its largest magnitude into [0.5, 1) (exact), so coordinates of any
    magnitude give the same result.

    Ties: a point tied in distance with others gets the lowest rank of the tie (scikit-learn's
    depends on ``argsort`` order), and embedded neighbours tied in distance are taken in index
    order; results agree with scikit-learn exactly on data without ties.

    Args:
      X: (n_samples, n_features) original data, numpy array or tensor.
      X_embedded: (n_samples, n_components) embedding of the same samples.
      n_neighbors: k, with ``1 <= k < n_samples / 2``.
      memory_budget: bytes one row tile of pairwise work may occupy.

    Returns:
      Trustworthiness in [0, 1] (1: every embedded neighbour is an original neighbour).

    Raises:
      ValueError: not 2-D, NaN/inf, different numbers of samples, or k out of range.

    Examples:
      >>> import numpy as np
      >>> from tfclust.metrics import trustworthiness
      >>> x = np.random.default_rng(0).normal(size=(40, 5))
      >>> trustworthiness(x, x, n_neighbors=5)
      1.0
      >>> 0.5 < trustworthiness(x, x[:, :2], n_neighbors=5) < 1.0
      True
    """
    x, x_embedded = _check_embedding_pair(X, X_embedded)
    n = x.shape[0]
    k = check_int(n_neighbors, name="n_neighbors", low=1, high=INT32_MAX)
    if k >= n / 2:
        raise ValueError(f"n_neighbors ({k}) should be less than n_samples / 2 ({n / 2})")
    neighbors, _ = nearest_neighbors(x_embedded, k, memory_budget)
    tile = rows_per_tile(n, n * (2 * x.dtype.size + 4 * k), memory_budget)
    penalty = int(_rank_penalty_kernel(x, neighbors, tile))
    return 1.0 - penalty * (2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)))


def knn_accuracy(
    X_embedded, labels, n_neighbors: int = 10, *, memory_budget: int = DEFAULT_MEMORY_BUDGET
) -> float:
    """Leave-one-out k-nearest-neighbour label accuracy in an embedding.

    Each point's label is predicted by a majority vote of its ``n_neighbors`` nearest other
    points (euclidean, exact, tiled top-k in XLA); the result is the fraction predicted right.
    Scale-invariant, as :func:`trustworthiness`.
    Tie-breaks: neighbours equidistant from the point are taken in index order; labels with
    equal votes go to the smallest label (as ``KNeighborsClassifier`` with uniform weights,
    fitted on all the other points).

    Args:
      X_embedded: (n_samples, n_components) embedding, numpy array or tensor.
      labels: (n_samples,) labels of any sortable dtype.
      n_neighbors: k, with ``1 <= k < n_samples``.
      memory_budget: bytes one row tile of pairwise work may occupy.

    Returns:
      Accuracy in [0, 1].

    Raises:
      ValueError: bad shapes, NaN/inf, length mismatch or k out of range.

    Examples:
      >>> import numpy as np
      >>> from tfclust.metrics import knn_accuracy
      >>> embedding = np.array([[0, 0], [0.1, 0], [0, 0.1], [5, 5], [5.1, 5], [5, 5.1]])
      >>> knn_accuracy(embedding, [0, 0, 0, 1, 1, 1], n_neighbors=2)
      1.0
    """
    x = _unit_scaled(check_array(X_embedded, name="X_embedded", dtype=_DTYPE))
    labels = _check_labels(labels, "labels")
    n = x.shape[0]
    if labels.shape[0] != n:
        raise ValueError(f"labels has {labels.shape[0]} entries but X_embedded has {n} samples")
    k = check_int(n_neighbors, name="n_neighbors", low=1, high=INT32_MAX)
    if k >= n:
        raise ValueError(f"n_neighbors ({k}) must be less than n_samples ({n})")
    _, codes = np.unique(labels, return_inverse=True)
    neighbors = nearest_neighbors(x, k, memory_budget)[0].numpy()
    votes = scipy.stats.mode(codes[neighbors], axis=1).mode
    return float(np.mean(votes == codes))
