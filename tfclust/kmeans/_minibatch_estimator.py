"""The scikit-learn-compatible ``MiniBatchKMeans`` estimator over the ``_minibatch`` kernels."""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import tensorflow as tf

from .._tiling import DEFAULT_MEMORY_BUDGET, pad_rows, padded_size
from .._validation import INT32_MAX, check_array, check_float, check_int, check_sample_weight
from . import _minibatch
from ._estimator import _BaseKMeans, data_scale

logger = logging.getLogger("tfclust.kmeans")


class MiniBatchKMeans(_BaseKMeans):
    """Mini-batch K-means (Sculley 2010) compiled with XLA; scikit-learn's ``MiniBatchKMeans``.

    Each step draws ``batch_size`` rows (uniformly, with replacement), assigns them to the
    nearest centres, and moves each centre to the mean of every row it has won so far. All the
    steps of a fit run in one compiled loop. Faster than ``KMeans`` on large data, at a somewhat
    higher inertia.

    Args:
      n_clusters: number of clusters k.
      init: ``"k-means++"``, ``"random"``, or an array (k, n_features) of initial centres.
      max_iter: passes over the data: the fit runs at most ``max_iter * n_samples // batch_size``
        steps (capped at 2**31 - 1); 1 .. 2**31 - 1.
      batch_size: rows per step (capped at n_samples).
      verbose: > 0 logs the fit's summary at INFO level on the ``tfclust.kmeans`` logger.
      compute_labels: whether ``fit`` ends with a full pass that sets ``labels_`` and
        ``inertia_``; otherwise ``inertia_`` is the smoothed batch inertia times n_samples.
      random_state: None (fresh entropy) or an int seed in 0 .. 2**32 - 1.
      tol: stop when the summed squared centre change of a step is within ``tol`` times the
        mean per-feature variance of X; 0 (default) disables it.
      max_no_improvement: stop after this many steps without improving the smoothed batch
        inertia; None disables it.
      init_size: rows drawn for the initialisation (default ``3 * batch_size``, at least
        ``3 * n_clusters``, at most n_samples); the inits are scored on another draw of as many.
      n_init: initialisations tried, the best on the scoring rows kept; ``"auto"`` is 1 for
        k-means++ and an array, 3 for random.
      reassignment_ratio: every ``10 * n_clusters`` rows seen (and whenever a centre has won
        nothing), the centres whose share of the rows won is below this fraction of the largest
        are moved to random batch rows. 0 disables it.
      dtype: ``"float32"`` (default) or ``"float64"``. Data whose squared distances would
        overflow it are scaled by a power of two inside (exact), as in ``KMeans``.
      memory_budget: bytes one distance tile may take in the final labelling pass.

    Fitted attributes: ``cluster_centers_``, ``labels_`` and ``inertia_`` (if
    ``compute_labels``), ``n_iter_`` (passes over the data, rounded up), ``n_steps_``,
    ``n_features_in_``.
    """

    _default_n_init = 3

    def __init__(
        self,
        n_clusters=8,
        *,
        init="k-means++",
        max_iter=100,
        batch_size=1024,
        verbose=0,
        compute_labels=True,
        random_state=None,
        tol=0.0,
        max_no_improvement=10,
        init_size=None,
        n_init="auto",
        reassignment_ratio=0.01,
        dtype="float32",
        memory_budget=DEFAULT_MEMORY_BUDGET,
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.verbose = verbose
        self.compute_labels = compute_labels
        self.random_state = random_state
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.init_size = init_size
        self.n_init = n_init
        self.reassignment_ratio = reassignment_ratio
        self.dtype = dtype
        self.memory_budget = memory_budget

    def _check_params(self):
        batch_size = check_int(self.batch_size, name="batch_size", low=1, high=INT32_MAX)
        max_no_improvement = (
            None
            if self.max_no_improvement is None
            else check_int(
                self.max_no_improvement, name="max_no_improvement", low=0, high=INT32_MAX
            )
        )
        ratio = check_float(self.reassignment_ratio, name="reassignment_ratio", low=0.0)
        if not isinstance(self.compute_labels, bool | np.bool_):
            raise TypeError(f"compute_labels must be a bool, got {self.compute_labels!r}")
        p = super()._check_params()
        p.batch_size, p.max_no_improvement, p.reassignment_ratio = (
            batch_size,
            max_no_improvement,
            ratio,
        )
        p.compute_labels = bool(self.compute_labels)
        return p

    @staticmethod
    def _init_size(p, n, batch_size):
        size = p.init_size if p.init_size is not None else 3 * batch_size
        return min(max(size, 3 * p.n_clusters), n)

    def _begin(self, X):
        """Validate the parameters and X (for ``partial_fit``, the first batch), and set what a
        fit and the ``partial_fit`` calls after it share: the validated parameters, the seed,
        the batch size, and the offset every batch is centred on (X's mean, for the matmul-form
        distances).

        Returns the rows x (n, d) as a tensor.
        """
        p = self._check_params()
        x = check_array(X, name="X", dtype=p.dtype)
        n, d = x.shape
        self._check_enough_samples(p, n)
        self._check_init_shape(p, d)
        self._p = p
        self._seed = p.seed
        self._batch_size = min(p.batch_size, n)
        scale = data_scale(x, d, p.dtype, p.init_array)  # the mean of huge rows: no overflow
        self._offset = tf.reduce_mean(x * scale, axis=0) / scale
        self._n_since_last_reassign = 0
        self.n_features_in_ = d
        return x

    def _initial_centers(self, centred, scale, seed):
        """(k, d) initial centres, centred and scaled, for the centred, scaled rows ``centred``."""
        p = self._p
        if p.kind == "array":
            return (p.init_array - self._offset) * scale
        n = centred.shape[0]
        return _minibatch.init_minibatch(
            pad_rows(centred, padded_size(n)),
            tf.constant(n, tf.int32),
            seed,
            n_clusters=p.n_clusters,
            n_init=p.n_init,
            init=p.kind,
            init_size=self._init_size(p, n, self._batch_size),
            n_local_trials=p.n_local_trials,
        )

    def _centred_scale(self, centred, centers=None):
        """The power of two by which the centred rows (and centred ``centers``) are scaled."""
        p = self._p
        others = [centers] if centers is not None else []
        if p.init_array is not None and centers is None:
            others.append(p.init_array - self._offset)
        return data_scale(centred, centred.shape[1], centred.dtype, *others)

    def fit(self, X, y=None, sample_weight=None):
        """Compute the clustering by mini-batch steps over X (n_samples, n_features).

        ``sample_weight``: None, or (n_samples,) weights that are all equal (which weigh
        nothing: the fit is the unweighted one); unequal weights are not implemented yet
        (``NotImplementedError``). Accepted so that scikit-learn code passing uniform weights
        works.

        Returns:
          self.
        """
        x = self._begin(X)
        p = self._p
        n, d = x.shape
        if sample_weight is not None:
            w = check_sample_weight(sample_weight, n, p.dtype).numpy()
            if not np.all(w == w[0]):
                raise NotImplementedError(
                    "MiniBatchKMeans supports only uniform sample_weight (all weights equal); "
                    "use KMeans for weighted rows"
                )
        start = time.perf_counter()
        batch_size, fold = self._batch_size, tf.random.experimental.stateless_fold_in
        centred = x - self._offset
        scale = self._centred_scale(centred)
        if scale != 1.0:
            centred = centred * scale
        centers = self._initial_centers(centred, scale, fold(self._seed, 0))
        scaled = x if scale == 1.0 else x * scale
        abs_tol = float(tf.reduce_mean(tf.math.reduce_variance(scaled, axis=0))) * p.tol
        # Steps are counted in int32 inside: a huge max_iter runs until the stopping rules.
        n_steps = min(p.max_iter * n // batch_size, INT32_MAX)
        out = _minibatch.fit_minibatch(
            pad_rows(centred, padded_size(n)),
            tf.constant(n, tf.int32),
            centers,
            fold(self._seed, 1),
            tf.constant(n_steps, tf.int32),
            tf.constant(abs_tol, x.dtype),
            tf.constant(-1 if p.max_no_improvement is None else p.max_no_improvement, tf.int32),
            tf.constant(p.reassignment_ratio, x.dtype),
            batch_size=batch_size,
        )
        centers = out["centers"] if scale == 1.0 else out["centers"] / scale
        self.cluster_centers_ = (centers + self._offset).numpy()
        self._counts = out["weight_sums"].numpy()  # partial_fit goes on from these
        self.n_steps_ = int(out["n_steps"])
        self.n_iter_ = math.ceil(self.n_steps_ * batch_size / n)
        if p.compute_labels:
            self._store_labels(x)
        else:
            self.inertia_ = float(out["ewa_inertia"]) * n / scale / scale
        logger.log(
            logging.INFO if p.verbose else logging.DEBUG,
            "MiniBatchKMeans fit: %d x %d, k=%d, %d steps of %d rows, inertia %.6g, %.3f s",
            n,
            d,
            p.n_clusters,
            self.n_steps_,
            batch_size,
            getattr(self, "inertia_", float("nan")),
            time.perf_counter() - start,
        )
        return self

    def _store_labels(self, x):
        self.labels_, self.inertia_ = self._labels_inertia(x, tf.constant(self.cluster_centers_))

    def partial_fit(self, X, y=None):
        """One mini-batch step on the rows of X (n_samples, n_features); the first call also
        initialises the centres from X. Each distinct batch shape compiles once.

        Returns:
          self.
        """
        if getattr(self, "cluster_centers_", None) is None:
            x = self._begin(X)
            centred = x - self._offset
            scale = self._centred_scale(centred)
            centers = self._initial_centers(centred * scale, scale, self._seed) / scale
            self.cluster_centers_ = (centers + self._offset).numpy()
            self._counts = np.zeros(self._p.n_clusters, self.cluster_centers_.dtype)
            self.n_steps_ = 0
        else:
            x, _ = self._check_test_data(X)
        p = self._p
        self._n_since_last_reassign += self._batch_size
        reassign = bool((self._counts == 0).any()) or (
            self._n_since_last_reassign >= _minibatch.REASSIGN_EVERY_ROWS_PER_CLUSTER * p.n_clusters
        )
        if reassign:
            self._n_since_last_reassign = 0
        centred = x - self._offset
        centers = tf.constant(self.cluster_centers_) - self._offset
        scale = self._centred_scale(centred, centers)
        centers, counts, _ = _minibatch.partial_fit_step(
            centred * scale if scale != 1.0 else centred,
            centers * scale if scale != 1.0 else centers,
            tf.constant(self._counts),
            tf.constant(reassign),
            tf.constant(p.reassignment_ratio, x.dtype),
            tf.random.experimental.stateless_fold_in(self._seed, self.n_steps_ + 1),
        )
        centers = centers if scale == 1.0 else centers / scale
        self.cluster_centers_ = (centers + self._offset).numpy()
        self._counts = counts.numpy()
        self.n_steps_ += 1
        if p.compute_labels:
            self._store_labels(x)
        return self
