"""The ``TSNE`` estimator: scikit-learn's interface over the XLA kernels of this package."""

from __future__ import annotations

import logging
import time

import numpy as np
import tensorflow as tf

from tfclust._tiling import DEFAULT_MEMORY_BUDGET
from tfclust._validation import (
    check_array,
    check_float,
    check_int,
    check_random_state,
    resolve_dtype,
)
from tfclust.tsne.affinities import joint_probabilities
from tfclust.tsne.gradients import ExactObjective
from tfclust.tsne.optimize import pca_embedding, random_embedding, tsne_descent

__all__ = ["TSNE"]

logger = logging.getLogger("tfclust.tsne")

_METHODS = ("exact",)


class TSNE:
    """t-distributed Stochastic Neighbor Embedding, compiled with XLA.

    Parameters and defaults follow ``sklearn.manifold.TSNE`` (exact method), except ``method``:

    Args:
      n_components: dimension of the embedding (>= 1).
      perplexity: perplexity of the input-space Gaussians, 0 < perplexity < n_samples.
      early_exaggeration: factor (>= 1) on P during the first 250 iterations.
      learning_rate: step size (> 0), or ``"auto"``: ``max(n_samples / early_exaggeration / 4,
        50)``. scikit-learn's scale (4x openTSNE's/FIt-SNE's).
      max_iter: total iterations (>= 250), early exaggeration included.
      n_iter_without_progress: stop when the KL divergence has not improved for more than this
        many iterations (checked every 50, after the exaggeration stage).
      min_grad_norm: stop when the gain-scaled gradient norm falls to this (checked every 50).
      init: ``"pca"`` (principal components scaled to standard deviation 1e-4, signs as
        scikit-learn's PCA), ``"random"`` (Gaussian, std 1e-4) or an array of shape
        (n_samples, n_components).
      verbose: 0 logs per-chunk progress (iteration, KL divergence, gradient norm, seconds; one
        line per 50 iterations) at DEBUG level on the ``tfclust.tsne`` logger; >= 1 at INFO.
        Fit start/end lines are INFO. Configure ``logging`` to see them.
      random_state: None (fresh entropy) or an int seed, used by ``init="random"``; the same seed
        gives the same embedding on the same device.
      method: ``"exact"`` (all pairs, O(N^2) time per iteration, dense (N, N) P in memory). The
        only method for now, hence the default (scikit-learn defaults to Barnes-Hut; tfclust's
        default will be the FFT-interpolated method once it is integrated).
      dtype: ``"float32"`` (default) or ``"float64"`` (for comparisons with scikit-learn).
      memory_budget: bytes one tile of pairwise work may take.

    Fitted attributes: ``embedding_`` ((n_samples, n_components) numpy array of ``dtype``),
    ``kl_divergence_`` (float, nats: KL(P || Q) at the start of the last iteration),
    ``n_iter_`` (int, index of the last iteration run, as scikit-learn: 999 for max_iter=1000),
    ``learning_rate_`` (float), ``n_features_in_`` (int).
    """

    def __init__(
        self,
        n_components=2,
        *,
        perplexity=30.0,
        early_exaggeration=12.0,
        learning_rate="auto",
        max_iter=1000,
        n_iter_without_progress=300,
        min_grad_norm=1e-7,
        init="pca",
        verbose=0,
        random_state=None,
        method="exact",
        dtype="float32",
        memory_budget=DEFAULT_MEMORY_BUDGET,
    ):
        self.n_components = n_components
        self.perplexity = perplexity
        self.early_exaggeration = early_exaggeration
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.n_iter_without_progress = n_iter_without_progress
        self.min_grad_norm = min_grad_norm
        self.init = init
        self.verbose = verbose
        self.random_state = random_state
        self.method = method
        self.dtype = dtype
        self.memory_budget = memory_budget

    def _check_params(self):
        check_int(self.n_components, name="n_components", low=1)
        check_float(self.perplexity, name="perplexity", low=0.0, low_inclusive=False)
        check_float(self.early_exaggeration, name="early_exaggeration", low=1.0)
        if isinstance(self.learning_rate, str):
            if self.learning_rate != "auto":
                raise ValueError(
                    f"learning_rate must be 'auto' or a positive number, got {self.learning_rate!r}"
                )
        else:
            check_float(self.learning_rate, name="learning_rate", low=0.0, low_inclusive=False)
        check_int(self.max_iter, name="max_iter", low=250)
        check_int(self.n_iter_without_progress, name="n_iter_without_progress", low=-1)
        check_float(self.min_grad_norm, name="min_grad_norm", low=0.0)
        check_int(self.verbose, name="verbose", low=0)
        check_int(self.memory_budget, name="memory_budget", low=1)
        if not isinstance(self.method, str) or self.method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {self.method!r}")
        if isinstance(self.init, str):
            if self.init not in ("pca", "random"):
                raise ValueError(
                    "init must be 'pca', 'random' or an array of shape (n_samples, "
                    f"n_components), got {self.init!r}"
                )
        elif not isinstance(self.init, np.ndarray | tf.Tensor):
            raise ValueError(
                "init must be 'pca', 'random' or an array of shape (n_samples, n_components), "
                f"got {type(self.init).__name__}"
            )
        return resolve_dtype(self.dtype), check_random_state(self.random_state)

    def _initial_embedding(self, x, seed, dtype):
        n, n_features = x.shape
        if isinstance(self.init, str) and self.init == "pca":
            if self.n_components > n_features:
                raise ValueError(
                    f"init='pca' needs n_components ({self.n_components}) <= n_features "
                    f"({n_features})"
                )
            return pca_embedding(x, self.n_components)
        if isinstance(self.init, str):
            return random_embedding(n, self.n_components, seed, dtype)
        y0 = check_array(self.init, name="init", dtype=dtype)
        if tuple(y0.shape) != (n, self.n_components):
            raise ValueError(
                f"init must have shape (n_samples, n_components) = ({n}, {self.n_components}), "
                f"got {tuple(y0.shape)}"
            )
        return y0

    def _objective(self, x):
        """The method's objective and its operands (P in the form the method needs)."""
        p = joint_probabilities(x, float(self.perplexity), self.memory_budget)
        objective = ExactObjective.for_problem(
            x.shape[0], self.n_components, x.dtype, self.memory_budget
        )
        return objective, objective.operands(p)

    def fit(self, X, y=None):
        """Embed ``X``.

        Args:
          X: (n_samples, n_features) array-like or tensor, n_samples >= 2, finite.
          y: ignored.

        Returns:
          self.
        """
        dtype, seed = self._check_params()
        x = check_array(X, name="X", dtype=dtype, min_samples=2)
        n, n_features = x.shape
        if self.perplexity >= n:
            raise ValueError(f"perplexity ({self.perplexity}) must be less than n_samples ({n})")
        y0 = self._initial_embedding(x, seed, dtype)
        if self.learning_rate == "auto":
            learning_rate = max(n / self.early_exaggeration / 4.0, 50.0)
        else:
            learning_rate = float(self.learning_rate)

        t0 = time.perf_counter()
        logger.info("TSNE fit start: %d x %d, perplexity=%g, method=%s, dtype=%s", n, n_features,
                    self.perplexity, self.method, dtype.name)
        objective, operands = self._objective(x)
        logger.info("[t-SNE] Computed joint probabilities in %.3fs",
                    time.perf_counter() - t0)
        level = logging.INFO if self.verbose else logging.DEBUG
        result = tsne_descent(
            objective,
            operands,
            y0,
            early_exaggeration=float(self.early_exaggeration),
            learning_rate=learning_rate,
            max_iter=self.max_iter,
            n_iter_without_progress=self.n_iter_without_progress,
            min_grad_norm=float(self.min_grad_norm),
            log_level=level,
            summary_level=level,
        )
        self.embedding_ = result.embedding.numpy()
        self.kl_divergence_ = float(result.kl_divergence)
        self.n_iter_ = int(result.last_iter)
        self.learning_rate_ = float(learning_rate)
        self.n_features_in_ = int(n_features)
        logger.info("TSNE fit end: KL divergence %.6f after %d iterations, %.3f s",
                    self.kl_divergence_, self.n_iter_ + 1, time.perf_counter() - t0)
        return self

    def fit_transform(self, X, y=None):
        """Embed ``X`` and return ``embedding_`` ((n_samples, n_components) numpy array)."""
        return self.fit(X).embedding_
