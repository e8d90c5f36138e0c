"""Clustering on a neighbour embedding: N2D's idea (McConville et al., ICPR 2020: a manifold
learner on autoencoder latents, then a Gaussian mixture), built from tfclust's own t-SNE,
Gaussian mixture and K-means. The measurements behind the defaults: docs/clustering.md.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from tfclust._base import BaseEstimator, SavedStatePickle
from tfclust._validation import (
    INT32_MAX,
    check_float,
    check_int,
    check_is_fitted,
    check_random_state,
)
from tfclust.kmeans import KMeans
from tfclust.mixture import GaussianMixture
from tfclust.persistence import estimator_from_record, estimator_record
from tfclust.tsne import TSNE

__all__ = ["CLUSTERERS", "ManifoldClustering"]

logger = logging.getLogger("tfclust.manifold_clustering")

CLUSTERERS = ("gmm", "kmeans")
"""What clusters the map: a full-covariance Gaussian mixture, or K-means."""


def _log(verbose: int, text: str) -> None:
    """Log ``text`` at INFO level, and print it when ``verbose``."""
    logger.info(text)
    if verbose:
        print(f"[ManifoldClustering] {text}")


class ManifoldClustering(SavedStatePickle, BaseEstimator):
    """Cluster the points of a t-SNE map of X (N2D's manifold clustering with tfclust's parts).

    A neighbour embedding pulls each class's manifold together and apart from the others, so
    a mixture of ``n_clusters`` Gaussians fits the 2-D map far better than the raw latents: on
    the MNIST sample's autoencoder latents, accuracy 0.79 against K-means' 0.47 on the latents
    (docs/clustering.md). ``fit`` runs :class:`~tfclust.TSNE` (FFT method) on X, then a
    :class:`~tfclust.GaussianMixture` (or :class:`~tfclust.KMeans`) on the map. New points are
    placed on the fitted map (:meth:`TSNE.transform <tfclust.TSNE.transform>`) and assigned
    there.

    Args:
      n_clusters: number of clusters (int >= 1, default 10).
      perplexity: perplexity of the t-SNE (> 0 and below n_samples, default 30.0): the
        effective number of neighbours each point keeps close.
      clusterer: ``"gmm"`` (default): a Gaussian mixture with ``covariance_type`` covariances,
        the best of ``n_init`` restarts from K-means starts by likelihood; ``"kmeans"``:
        K-means with ``n_init`` restarts.
      covariance_type: the mixture's covariance type (``"full"``, default, ``"tied"``,
        ``"diag"`` or ``"spherical"``); unused by ``"kmeans"``.
      n_init: restarts of the clusterer on the map (int >= 1, default 10); the map itself is
        fitted once.
      random_state: None (fresh entropy) or an int seed in 0 .. 2**32 - 1: seeds the t-SNE and
        the clusterer; an int repeats the fit on the same machine.
      verbose: 0 (default) prints nothing; >= 1 prints the stages and their seconds (also
        logged at INFO level on the ``tfclust.manifold_clustering`` logger).
      dtype: the map's dtype, which the clusterer fits in: ``"float32"`` (default, as
        ``TSNE``'s), ``"float64"``, or None (X's own float dtype).

    Fitted attributes: ``labels_`` ((n_samples,) int32 cluster of each row of X),
    ``embedding_`` ((n_samples, 2) map of ``dtype``), ``tsne_`` (the fitted ``TSNE``),
    ``clusterer_`` (the fitted ``GaussianMixture`` or ``KMeans`` on the map),
    ``n_features_in_`` (int).

    Examples:
      >>> import numpy as np
      >>> from tfclust import ManifoldClustering
      >>> rng = np.random.default_rng(0)
      >>> X = np.concatenate([rng.normal(c, 1.0, (60, 5)) for c in (0, 10, 20)])
      >>> model = ManifoldClustering(n_clusters=3, perplexity=10, random_state=0).fit(X)
      >>> model.labels_.shape, model.embedding_.shape
      ((180,), (180, 2))
      >>> [len(set(model.labels_[i : i + 60])) for i in (0, 60, 120)]  # one cluster per blob
      [1, 1, 1]
      >>> bool(model.predict(X[:5]).tolist() == model.labels_[:5].tolist())
      True
    """

    _estimator_type = "clusterer"
    _fitted_attribute = "clusterer_"

    def __init__(
        self,
        n_clusters=10,
        *,
        perplexity=30.0,
        clusterer="gmm",
        covariance_type="full",
        n_init=10,
        random_state=None,
        verbose=0,
        dtype="float32",
    ):
        self.n_clusters = n_clusters
        self.perplexity = perplexity
        self.clusterer = clusterer
        self.covariance_type = covariance_type
        self.n_init = n_init
        self.random_state = random_state
        self.verbose = verbose
        self.dtype = dtype

    def _parts(self, X):
        """The unfitted t-SNE and clusterer of these parameters for a fit on X, all checked
        before the map is fitted."""
        n_clusters = check_int(self.n_clusters, name="n_clusters", low=1, high=INT32_MAX)
        perplexity = check_float(self.perplexity, name="perplexity", low=0.0, low_inclusive=False)
        n_init = check_int(self.n_init, name="n_init", low=1, high=INT32_MAX)
        if not isinstance(self.clusterer, str) or self.clusterer not in CLUSTERERS:
            raise ValueError(f"clusterer must be one of {CLUSTERERS}, got {self.clusterer!r}")
        verbose = check_int(int(self.verbose), name="verbose", low=0)
        seed = check_random_state(self.random_state)
        tsne = TSNE(
            perplexity=perplexity,
            random_state=seed,
            verbose=max(verbose - 1, 0),
            dtype=self.dtype,
        )
        if self.clusterer == "gmm":
            clusterer = GaussianMixture(
                n_clusters,
                covariance_type=self.covariance_type,
                n_init=n_init,
                random_state=seed,
            )
        else:
            clusterer = KMeans(n_clusters, n_init=n_init, random_state=seed)
        clusterer._check_params(X)
        return tsne, clusterer, verbose

    def fit(self, X, y=None):
        """Fit the map of X, then cluster it.

        Args:
          X: (n_samples, n_features) array-like or tensor, finite, with more rows than
            ``perplexity`` and at least ``n_clusters`` rows.
          y: ignored.

        Returns:
          self.

        Raises:
          ValueError: bad parameters or X.
        """
        tsne, clusterer, verbose = self._parts(X)
        start = time.perf_counter()
        embedding = tsne.fit_transform(X)
        _log(verbose, f"t-SNE map of {len(embedding)} points: {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        self.labels_ = np.asarray(clusterer.fit_predict(embedding), dtype=np.int32)
        _log(verbose, f"{self.clusterer} on the map: {time.perf_counter() - start:.1f} s")
        self.embedding_ = np.asarray(embedding)
        self.tsne_, self.clusterer_ = tsne, clusterer
        self.n_features_in_ = int(tsne.n_features_in_)
        if hasattr(tsne, "feature_names_in_"):
            self.feature_names_in_ = tsne.feature_names_in_
        return self

    def fit_predict(self, X, y=None):
        """Fit and return ``labels_`` ((n_samples,) int32)."""
        return self.fit(X).labels_

    def transform(self, X):
        """Place new rows on the fitted map (:meth:`TSNE.transform <tfclust.TSNE.transform>`):
        (n, 2) float32 numpy array."""
        check_is_fitted(self, "clusterer_")
        return np.asarray(self.tsne_.transform(X))

    def predict(self, X):
        """The cluster of each new row, from its place on the map: (n,) int32."""
        placed = self.transform(X)
        return np.asarray(self.clusterer_.predict(placed), dtype=np.int32)

    def score(self, X, y=None):
        """The clusterer's score of the new rows' places on the map: the mixture's mean
        log-likelihood per row, or minus K-means' inertia (float; higher is better)."""
        placed = self.transform(X)
        return float(self.clusterer_.score(placed))

    def predict_proba(self, X):
        """``clusterer="gmm"`` only: each new row's cluster probabilities, (n, n_clusters)."""
        check_is_fitted(self, "clusterer_")
        if not hasattr(self.clusterer_, "predict_proba"):
            raise AttributeError("predict_proba needs clusterer='gmm'")
        return np.asarray(self.clusterer_.predict_proba(self.transform(X)))

    # -- persistence ----------------------------------------------------------------------------

    def _get_saved_state(self) -> dict:
        """The fitted state for :mod:`tfclust.persistence` and pickling: the map, the labels
        and the fitted t-SNE and clusterer (as estimator records); empty before ``fit``."""
        if getattr(self, "clusterer_", None) is None:
            return {}
        state = {
            "labels_": self.labels_,
            "embedding_": self.embedding_,
            "n_features_in_": self.n_features_in_,
            "tsne_": estimator_record(self.tsne_),
            "clusterer_": estimator_record(self.clusterer_),
        }
        if hasattr(self, "feature_names_in_"):
            state["feature_names_in_"] = [str(v) for v in self.feature_names_in_]
        return state

    def _set_saved_state(self, state: dict) -> None:
        for key, value in state.items():
            if key in ("tsne_", "clusterer_"):
                value = estimator_from_record(value)
            elif key == "feature_names_in_":
                value = np.asarray(value, dtype=object)
            setattr(self, key, value)
