"""Quality metrics for clusterings and embeddings.

Label metrics (:func:`cluster_accuracy`, :func:`normalized_mutual_info`,
:func:`adjusted_rand_index`) work on the sparse contingency table in numpy/scipy and follow
scikit-learn's definitions and special cases. Label-free metrics of a clustering of data
without reference classes (:func:`silhouette_score`, :func:`calinski_harabasz_score`,
:func:`davies_bouldin_score`) have scikit-learn's names, arguments and results. Embedding
metrics (:func:`trustworthiness`, :func:`knn_accuracy`) and the silhouette do their pairwise
work in row tiles inside XLA-compiled TensorFlow functions, so memory grows with
``tile * n_samples``, never with ``n_samples ** 2``.

Every function accepts numpy arrays, sequences or ``tf.Tensor`` s and returns a Python ``float``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.optimize
import scipy.spatial
import scipy.stats
import tensorflow as tf

from tfclust._compile import compiled, specialised
from tfclust._neighbors import nearest_neighbors
from tfclust._precision import matmul
from tfclust._tiling import map_row_tiles, rows_per_tile, squared_distances
from tfclust._validation import (
    INT32_MAX,
    check_array,
    check_int,
    check_random_state,
    max_abs,
    power_of_two_scale,
)

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


def contingency_matrix(y_true, y_pred, *, match: bool = False):
    """Counts of samples per class and cluster, as ``sklearn.metrics.cluster.contingency_matrix``.

    Args:
      y_true: (n_samples,) class labels, any sortable dtype (ints, strings, ...).
      y_pred: (n_samples,) cluster labels.
      match: False (default): columns in sorted cluster order. True: the columns reordered by
        the matching of :func:`cluster_accuracy`: the matched clusters in the order of their
        classes (with as many clusters as classes, the diagonal holds the correctly matched
        samples), then the unmatched clusters in sorted order.

    Returns:
      ``(table, classes, clusters)``: ``table`` (n_classes, n_clusters) int64 counts,
      ``classes`` the sorted class values of its rows, ``clusters`` the cluster values of its
      columns.

    Raises:
      ValueError: labels not 1-D, empty, containing NaN, or of different lengths.

    Examples:
      >>> from tfclust.metrics import contingency_matrix
      >>> y_true, y_pred = [0, 0, 1, 1, 2], [1, 1, 0, 0, 0]
      >>> table, classes, clusters = contingency_matrix(y_true, y_pred)
      >>> table.tolist(), clusters.tolist()
      ([[0, 2], [2, 0], [1, 0]], [0, 1])
      >>> table, classes, clusters = contingency_matrix(y_true, y_pred, match=True)
      >>> table.tolist(), clusters.tolist()
      ([[2, 0], [0, 2], [0, 1]], [1, 0])
    """
    y_true, y_pred = _check_label_pair(y_true, y_pred)
    dense = _dense_contingency(y_true, y_pred)
    classes, clusters = np.unique(y_true), np.unique(y_pred)
    if match:
        rows, cols = scipy.optimize.linear_sum_assignment(dense, maximize=True)
        order = np.concatenate(
            [cols[np.argsort(rows)], np.setdiff1d(np.arange(clusters.size), cols)]
        )
        dense, clusters = dense[:, order], clusters[order]
    return dense, classes, clusters


def _dense_contingency(y_true, y_pred) -> np.ndarray:
    """The (n_classes, n_clusters) int64 contingency table of two labelings."""
    table = _contingency(y_true, y_pred)
    dense = np.zeros((table.class_sizes.size, table.cluster_sizes.size), dtype=np.int64)
    dense[table.rows, table.cols] = table.counts
    return dense


def cluster_accuracy(y_true, y_pred) -> float:
    """Unsupervised clustering accuracy: the best one-to-one matching of clusters to classes.

    The matching maximises the number of samples whose cluster is mapped to their class
    (Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``, on the contingency table,
    :func:`contingency_matrix`). With more clusters than classes the unmatched clusters count
    as errors; with fewer, the unmatched classes do.

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
    dense = _dense_contingency(y_true, y_pred)
    rows, cols = scipy.optimize.linear_sum_assignment(dense, maximize=True)
    return float(dense[rows, cols].sum() / dense.sum())


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
    X, X_embedded, n_neighbors: int = 10, *, memory_budget: int | None = None
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
      memory_budget: bytes one row tile of pairwise work may occupy (default None: the
        device profile's, ``_tiling.memory_budget_bytes``).

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
    X_embedded, labels, n_neighbors: int = 10, *, memory_budget: int | None = None
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
      memory_budget: bytes one row tile of pairwise work may occupy (default None: the
        device profile's, ``_tiling.memory_budget_bytes``).

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


def _check_clustering(X, labels) -> tuple[tf.Tensor, np.ndarray]:
    """Validate (n, d) data and their (n,) cluster labels: X as a float64 tensor, labels as is."""
    x = check_array(X, name="X", dtype=_DTYPE)
    labels = _check_labels(labels, "labels")
    if labels.shape[0] != x.shape[0]:
        raise ValueError(f"labels has {labels.shape[0]} entries but X has {x.shape[0]} samples")
    return x, labels


def _encode_clusters(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """``(codes, k)``: (n,) int32 codes in 0..k-1 of the k distinct labels (sorted), which must
    number 2 to n - 1 (scikit-learn's ``check_number_of_labels``, with its message)."""
    classes, codes = np.unique(labels, return_inverse=True)
    if not 1 < classes.size < labels.shape[0]:
        raise ValueError(
            f"Number of labels is {classes.size}. Valid values are 2 to n_samples - 1 (inclusive)"
        )
    return codes.astype(np.int32), classes.size


def _cluster_means(x: np.ndarray, codes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """(k, d) mean of the rows of ``x`` (n, d) in each cluster of ``codes`` (n,), of ``sizes``."""
    order = np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes[:-1])]).astype(np.int64)
    return np.add.reduceat(x[order], starts, axis=0) / sizes[:, np.newaxis]


def _silhouette_kernel(x: tf.Tensor, codes: tf.Tensor, n_clusters: int, tile: int) -> tf.Tensor:
    """(n,) silhouette coefficient of each row of ``x`` (n, d), in clusters ``codes`` (n,) int32.

    Per row tile, the (tile, n) euclidean distances times the (n, k) one-hot cluster matrix are
    each row's sums of distances to every cluster; no (n, n) matrix is ever formed.
    """
    onehot = tf.one_hot(codes, n_clusters, dtype=x.dtype)  # (n, k)
    sizes = tf.reduce_sum(onehot, axis=0)
    x_sq = tf.reduce_sum(tf.square(x), axis=1)
    columns = tf.range(x.shape[0])
    zero = tf.zeros((), x.dtype)

    def block(rows):
        d2 = squared_distances(tf.gather(x, rows), x, x_sq)  # (tile, n)
        # A point's distance to itself is 0, not the square root of a rounding error.
        is_self = tf.equal(rows[:, tf.newaxis], columns[tf.newaxis, :])
        sums = matmul(tf.where(is_self, zero, tf.sqrt(d2)), onehot)  # (tile, k)
        own = tf.gather(codes, rows)
        is_own = tf.one_hot(own, n_clusters, on_value=True, off_value=False)
        own_size = tf.gather(sizes, own)
        a = tf.reduce_sum(tf.where(is_own, sums, zero), axis=1) / tf.maximum(own_size - 1.0, 1.0)
        b = tf.reduce_min(tf.where(is_own, tf.constant(np.inf, x.dtype), sums / sizes), axis=1)
        scale = tf.maximum(a, b)
        # scikit-learn's convention: 0 in a singleton cluster, and where a = b = 0.
        defined = (own_size > 1.0) & (scale > 0.0)
        return tf.where(defined, (b - a) / tf.where(defined, scale, 1.0), zero)

    return map_row_tiles(block, columns, tile, tf.TensorSpec([tile], x.dtype))


def silhouette_score(
    X,
    labels,
    *,
    metric: str = "euclidean",
    sample_size: int | None = None,
    random_state=None,
    memory_budget: int | None = None,
) -> float:
    """Mean silhouette coefficient of all samples, as ``sklearn.metrics.silhouette_score``.

    For sample i, ``a(i)`` is its mean distance to the other members of its cluster and
    ``b(i)`` the smallest mean distance to the members of another cluster; its coefficient is
    ``(b - a) / max(a, b)``, and 0 in a singleton cluster. Near 1: compact, well separated
    clusters; near 0: overlapping ones; negative: samples closer to another cluster.

    Distances are euclidean, in float64 for any input dtype, computed one row tile at a time
    inside an XLA-compiled program (per-cluster sums by a one-hot matmul), so memory grows with
    ``tile * n_samples``: 60,000 samples fit in the default budget. Each compiled program is
    specific to (n_samples, n_features, number of labels, tile) and is reused across calls.

    Args:
      X: (n_samples, n_features) data, numpy array, sequence or tensor.
      labels: (n_samples,) cluster labels of any sortable dtype (ints, strings, ...).
      metric: only ``"euclidean"`` (the default) is supported.
      sample_size: if not None, the score is computed on this many rows drawn without
        replacement (all rows, shuffled, if it exceeds n_samples). Default None: every row.
      random_state: int, None, ``np.random.RandomState`` or ``np.random.Generator``: the draw
        of the sample. Rows are ``RandomState(seed).permutation(n_samples)[:sample_size]``, as
        scikit-learn draws them, so an int seed selects the same rows as there. Default None.
      memory_budget: bytes one row tile of pairwise work may occupy (default None: the device
        profile's, 256 MiB on a CPU).

    Returns:
      The mean silhouette coefficient, in [-1, 1], as a Python float.

    Raises:
      ValueError: metric other than ``"euclidean"``; X not 2-D or with NaN/inf; labels not
        1-D, containing NaN, or of another length than X; fewer than 2 or more than
        n_samples - 1 distinct labels (in the sample); ``sample_size`` < 1.
      TypeError: non-integer ``sample_size`` or a ``random_state`` of another type.

    Examples:
      >>> import numpy as np
      >>> from tfclust.metrics import silhouette_score
      >>> X = np.array([[0, 0], [0, 1], [1, 0], [10, 10], [10, 11], [11, 10]], dtype=float)
      >>> round(silhouette_score(X, [0, 0, 0, 1, 1, 1]), 4)
      0.9196
      >>> round(silhouette_score(X, ["a", "a", "a", "b", "b", "b"], sample_size=5,
      ...                        random_state=0), 4)
      0.9228
    """
    if metric != "euclidean":
        raise ValueError(f"metric must be 'euclidean' (the only one supported), got {metric!r}")
    x, labels = _check_clustering(X, labels)
    if sample_size is not None:
        sample_size = check_int(sample_size, name="sample_size", low=1, high=INT32_MAX)
        # scikit-learn's draw; a RandomState is drawn from directly, so it advances as there.
        if isinstance(random_state, np.random.RandomState):
            rng = random_state
        else:
            rng = np.random.RandomState(check_random_state(random_state))
        rows = rng.permutation(x.shape[0])[:sample_size]
        x, labels = tf.gather(x, rows), labels[rows]
    codes, n_labels = _encode_clusters(labels)
    # Centred, unit-scaled data: less cancellation in |x|^2 - 2 x.y + |y|^2, no overflow; both
    # leave every ratio (b - a) / max(a, b) unchanged.
    x = _unit_scaled(x - tf.reduce_mean(x, axis=0))
    n, d = x.shape
    tile = rows_per_tile(n, n * (2 * x.dtype.size + 1), memory_budget)
    program = specialised(_silhouette_kernel, n, d, n_labels, tile)
    return float(np.mean(program(x, tf.constant(codes), n_labels, tile).numpy()))


def calinski_harabasz_score(X, labels) -> float:
    """Calinski-Harabasz score (variance ratio criterion), as scikit-learn's.

    The between-cluster dispersion (sum over clusters of size times the squared distance of
    the centroid to the overall mean) over the within-cluster dispersion (sum of squared
    distances to the own centroid), times ``(n_samples - k) / (k - 1)``; 1.0 when the
    within-cluster dispersion is 0. Higher is better. float64 numpy, O(n_samples * n_features).

    Args:
      X: (n_samples, n_features) data, numpy array, sequence or tensor.
      labels: (n_samples,) cluster labels of any sortable dtype.

    Returns:
      The score (>= 0) as a Python float.

    Raises:
      ValueError: X not 2-D or with NaN/inf; labels not 1-D, containing NaN, or of another
        length than X; fewer than 2 or more than n_samples - 1 distinct labels.

    Examples:
      >>> from tfclust.metrics import calinski_harabasz_score
      >>> X = [[0, 0], [0, 1], [1, 0], [10, 10], [10, 11], [11, 10]]
      >>> round(calinski_harabasz_score(X, [0, 0, 0, 1, 1, 1]), 4)
      450.0
    """
    x, labels = _check_clustering(X, labels)
    codes, n_labels = _encode_clusters(labels)
    x = x.numpy()
    n = x.shape[0]
    sizes = np.bincount(codes).astype(np.float64)
    centroids = _cluster_means(x, codes, sizes)
    extra = np.sum(sizes * np.sum((centroids - x.mean(axis=0)) ** 2, axis=1))
    intra = np.sum((x - centroids[codes]) ** 2)
    if intra == 0.0:
        return 1.0
    return float(extra * (n - n_labels) / (intra * (n_labels - 1.0)))


def davies_bouldin_score(X, labels) -> float:
    """Davies-Bouldin score, as scikit-learn's.

    For each cluster, the largest over the other clusters of ``(s_i + s_j) / d(c_i, c_j)``,
    where ``s_i`` is the mean distance of cluster i's members to its centroid ``c_i``; the
    score is the mean of these over clusters. Lower is better (0 at best). As scikit-learn:
    0.0 when every ``s_i`` or every centroid distance is within 1e-8 of 0, and pairs of clusters
    with identical centroids are skipped. float64 numpy, O(n_samples * n_features + k**2).

    Args:
      X: (n_samples, n_features) data, numpy array, sequence or tensor.
      labels: (n_samples,) cluster labels of any sortable dtype.

    Returns:
      The score (>= 0) as a Python float.

    Raises:
      ValueError: X not 2-D or with NaN/inf; labels not 1-D, containing NaN, or of another
        length than X; fewer than 2 or more than n_samples - 1 distinct labels.

    Examples:
      >>> from tfclust.metrics import davies_bouldin_score
      >>> round(davies_bouldin_score([[0, 1], [1, 1], [3, 4]], [0, 0, 1]), 4)
      0.128
    """
    x, labels = _check_clustering(X, labels)
    codes, _ = _encode_clusters(labels)
    x = x.numpy()
    sizes = np.bincount(codes).astype(np.float64)
    centroids = _cluster_means(x, codes, sizes)
    spread = np.bincount(codes, weights=np.linalg.norm(x - centroids[codes], axis=1)) / sizes
    between = scipy.spatial.distance.cdist(centroids, centroids)
    if np.allclose(spread, 0.0) or np.allclose(between, 0.0):
        return 0.0
    between[between == 0.0] = np.inf
    return float(np.mean(np.max((spread[:, np.newaxis] + spread) / between, axis=1)))
