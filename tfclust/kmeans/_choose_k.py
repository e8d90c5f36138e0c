"""Choosing the number of clusters of unlabelled data: K-means per k, scored by silhouette."""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfclust._validation import check_array, check_int, check_random_state, fit_dtype
from tfclust.kmeans._estimator import KMeans
from tfclust.metrics import silhouette_score

logger = logging.getLogger("tfclust.kmeans")


class KChoice(NamedTuple):
    """The result of :func:`choose_n_clusters`.

    Attributes:
      n_clusters: the chosen k.
      ks: the k tried, ascending.
      inertia: K-means inertia (sum of squared distances to the closest centre) for each k.
      silhouette: silhouette score of each k's clustering, on the sampled rows.
      rule: one sentence stating how ``n_clusters`` was chosen.
      labels: (n_samples,) int32 cluster labels of the chosen fit (``KMeans.labels_``).
      cluster_centers: (n_clusters, n_features) centres of the chosen fit.
      n_iter: Lloyd iterations of the chosen fit's best restart (``KMeans.n_iter_``).

    Examples:
      >>> from tfclust.kmeans import KChoice
      >>> KChoice._fields
      ('n_clusters', 'ks', 'inertia', 'silhouette', 'rule', 'labels', 'cluster_centers', 'n_iter')
    """

    n_clusters: int
    ks: list[int]
    inertia: list[float]
    silhouette: list[float]
    rule: str
    labels: np.ndarray
    cluster_centers: np.ndarray
    n_iter: int


def _check_k_range(k_range, n_samples: int) -> list[int]:
    """The distinct k of ``k_range`` in ascending order, each in 2 .. n_samples - 1."""
    try:
        values = list(k_range)
    except TypeError as err:
        raise TypeError(f"k_range must be an iterable of integers, got {k_range!r}") from err
    if not values:
        raise ValueError("k_range is empty: give at least one number of clusters")
    ks = sorted({check_int(k, name="each k of k_range") for k in values})
    if ks[0] < 2:
        raise ValueError(
            f"k_range values must be >= 2 (a silhouette needs 2 clusters), got {ks[0]}"
        )
    if ks[-1] >= n_samples:
        raise ValueError(
            f"k_range values must be < n_samples ({n_samples}), got {ks[-1]}: the silhouette "
            "needs at most n_samples - 1 clusters"
        )
    return ks


def _describe(ks: list[int]) -> str:
    """``"2..15"`` for consecutive k, else ``"2, 4, 8"``."""
    if len(ks) > 2 and ks == list(range(ks[0], ks[-1] + 1)):
        return f"{ks[0]}..{ks[-1]}"
    return ", ".join(map(str, ks))


def choose_n_clusters(
    X, k_range=range(2, 16), *, n_init=3, random_state=0, sample_size: int | None = 5000
) -> KChoice:
    """Fit K-means for each k of ``k_range`` and choose the k with the highest silhouette score.

    For each k, ``KMeans(n_clusters=k, n_init=n_init, random_state=random_state)`` is fitted on
    all of X; its ``inertia_`` is recorded, and :func:`tfclust.metrics.silhouette_score` of its
    labels is computed on ``sample_size`` rows of X, the same rows for every k. The chosen k
    has the highest silhouette score; ties go to the smallest k. The result is that of the
    chosen fit. Progress is logged at INFO on the ``"tfclust.kmeans"`` logger, one line per k.

    The silhouette rewards compact, well separated clusters; inertia always decreases with k
    and is reported for an elbow plot, not used by the rule.

    Args:
      X: (n_samples, n_features) data, numpy array, sequence or tensor (float32 stays float32
        in K-means, other input becomes float64, as in :class:`tfclust.KMeans`).
      k_range: iterable of the integers k to try, each in 2 .. n_samples - 1; duplicates are
        dropped and the order does not matter. Default ``range(2, 16)``.
      n_init: K-means restarts per k (default 3); see :class:`tfclust.KMeans`.
      random_state: int, None, ``np.random.RandomState`` or ``np.random.Generator``: the seed
        of every fit and of the silhouette sample (default 0). Anything but an int is drawn
        from once, so all k share one seed.
      sample_size: rows on which the silhouette is computed (default 5000); None, or a value
        >= n_samples, uses every row.

    Returns:
      A :class:`KChoice`: ``n_clusters``, ``ks``, ``inertia``, ``silhouette``, ``rule``, and
      the chosen fit's ``labels``, ``cluster_centers`` and ``n_iter``.

    Raises:
      ValueError: X not 2-D or with NaN/inf; ``k_range`` empty or with a k < 2 or
        >= n_samples; ``sample_size`` not larger than the largest k.
      TypeError: ``k_range`` not iterable or holding non-integers; X a ``tf.data.Dataset``.

    Examples:
      >>> import numpy as np
      >>> from tfclust.kmeans import choose_n_clusters
      >>> rng = np.random.default_rng(0)
      >>> centres = rng.normal(scale=10.0, size=(3, 4))
      >>> X = np.concatenate([c + rng.normal(size=(50, 4)) for c in centres])
      >>> choice = choose_n_clusters(X, range(2, 5))
      >>> choice.n_clusters, choice.ks
      (3, [2, 3, 4])
      >>> print(choice.rule)
      the k in 2..4 with the highest silhouette score (on all 150 rows);
      ties go to the smallest k
      >>> np.bincount(choice.labels).tolist()
      [50, 50, 50]
    """
    # One conversion for every fit, in the dtype KMeans would choose for X itself.
    x = check_array(X, name="X", dtype=fit_dtype(X, None, tf.float64))
    n = x.shape[0]
    ks = _check_k_range(k_range, n)
    seed = check_random_state(random_state)
    if sample_size is not None:
        sample_size = check_int(sample_size, name="sample_size", low=1)
        if sample_size <= ks[-1]:
            raise ValueError(
                f"sample_size ({sample_size}) must be larger than the largest k ({ks[-1]}): the "
                "silhouette needs fewer clusters than sampled rows"
            )
    if sample_size is None or sample_size >= n:
        sample_size = None
        sampled = f"all {n} rows"
    else:
        sampled = f"{sample_size} sampled rows"
    inertia, silhouette = [], []
    best, best_score = None, -np.inf
    for k in ks:
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x)
        score = silhouette_score(x, km.labels_, sample_size=sample_size, random_state=seed)
        inertia.append(float(km.inertia_))
        silhouette.append(score)
        logger.info("k=%d: inertia %.6g, silhouette %.4f", k, km.inertia_, score)
        if score > best_score:  # strict: ties keep the smaller k
            best, best_score = km, score
    rule = (
        f"the k in {_describe(ks)} with the highest silhouette score (on {sampled}); "
        "ties go to the smallest k"
    )
    return KChoice(
        n_clusters=int(best.n_clusters),
        ks=ks,
        inertia=inertia,
        silhouette=silhouette,
        rule=rule,
        labels=best.labels_,
        cluster_centers=best.cluster_centers_,
        n_iter=int(best.n_iter_),
    )
