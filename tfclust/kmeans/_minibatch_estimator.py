"""The scikit-learn-compatible ``MiniBatchKMeans`` estimator over the ``_minibatch`` kernels."""

from __future__ import annotations

import logging
import math
import time
import warnings

import numpy as np
import tensorflow as tf

from .._device import device_profile
from .._tiling import pad_rows, padded_size
from .._validation import INT32_MAX, check_array, check_float, check_int, check_sample_weight
from . import _minibatch
from ._estimator import _BaseKMeans, data_scale

logger = logging.getLogger("tfclust.kmeans")


class MiniBatchKMeans(_BaseKMeans):
    """Mini-batch K-means (Sculley 2010) compiled with XLA; scikit-learn's ``MiniBatchKMeans``.

    Each step draws ``batch_size`` rows (uniformly, with replacement), assigns them to the
    nearest centres, and moves each centre to the mean of every row it has won so far. The
    steps of a fit run in compiled chunks of a fixed number of steps, the host checking the
    stopping rules between chunks. Faster than ``KMeans`` on large data, at a somewhat
    higher inertia.

    Args:
      n_clusters: number of clusters k.
      init: ``"k-means++"`` (default), ``"random"``, an array (k, n_features) of initial
        centres, or a callable ``init(X, n_clusters, random_state)`` returning one (as in
        ``KMeans``; with ``n_init`` > 1 the call of lowest inertia on X is kept).
      max_iter: passes over the data: the fit runs at most ``max_iter * n_samples // batch_size``
        steps (capped at 2**31 - 1); 1 .. 2**31 - 1.
      batch_size: rows per step (capped at n_samples).
      verbose: 0 (default) is quiet; > 0 prints why the fit stopped early, as scikit-learn
        ("Converged (small centers change) at step 12/500"), and logs its summary at INFO
        level on the ``tfclust.kmeans`` logger.
      compute_labels: whether ``fit`` ends with a full pass that sets ``labels_`` and
        ``inertia_``; otherwise ``inertia_`` is the smoothed batch inertia times n_samples.
      random_state: None (default; fresh entropy), an int seed in 0 .. 2**32 - 1, or a numpy
        ``RandomState``/``Generator`` (one seed is drawn from it).
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
      dtype: None (default: X's float32/float64, else float64, as ``KMeans``), ``"float32"``
        or ``"float64"``. Data whose squared distances would
        overflow it are scaled by a power of two inside (exact), as in ``KMeans``.
      memory_budget: bytes one distance tile may take in the final labelling pass; None
        (default): the device profile's (256 MiB on a CPU, 2 GiB on a GPU or TPU).

    Fitted attributes: ``cluster_centers_``, ``labels_`` and ``inertia_`` (if
    ``compute_labels``), ``n_iter_`` (passes over the data, rounded up), ``n_steps_``,
    ``n_features_in_``.

    Examples:
      >>> import numpy as np
      >>> from tfclust import MiniBatchKMeans
      >>> X = np.array([[1, 2], [1, 4], [1, 0], [4, 2], [4, 0], [4, 4],
      ...               [4, 5], [0, 1], [2, 2], [3, 2], [5, 5], [1, -1]], dtype=float)
      >>> mb = MiniBatchKMeans(n_clusters=2, batch_size=6, random_state=0).fit(X)
      >>> mb.cluster_centers_.shape, mb.labels_.shape
      ((2, 2), (12,))
      >>> mb = MiniBatchKMeans(n_clusters=2, random_state=0)
      >>> mb = mb.partial_fit(X[:6]).partial_fit(X[6:])  # batches as they come
      >>> mb.predict([[0, 0], [4, 4]]).shape
      (2,)
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
        dtype=None,
        memory_budget=None,
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

    def _check_params(self, X):
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
        p = super()._check_params(X)
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
        if p.init_size is not None and p.init_size < p.n_clusters:
            warnings.warn(
                f"init_size={p.init_size} should be larger than n_clusters={p.n_clusters}. "
                "Setting it to min(3*n_clusters, n_samples)",
                RuntimeWarning,
                stacklevel=4,
            )
            size = 3 * p.n_clusters
        return min(max(size, 3 * p.n_clusters), n)

    def _begin(self, X, sample_weight):
        """Validate the parameters, X and ``sample_weight`` (for ``partial_fit``, the first
        batch's), and set what a fit and the ``partial_fit`` calls after it share: the validated
        parameters, the seed, the batch size, and the offset every batch is centred on (X's
        mean, for the matmul-form distances).

        Returns the rows x (n, d) and their weights w (n,) as tensors.
        """
        p = self._check_params(X)
        x = check_array(X, name="X", dtype=p.dtype)
        n, d = x.shape
        w = check_sample_weight(sample_weight, n, p.dtype)
        self._check_enough_samples(p, n)
        self._call_init(p, x)
        self._check_init_shape(p, d)
        self._p = p
        self._seed = p.seed
        self._batch_size = min(p.batch_size, n)
        scale = data_scale(x, d, p.dtype, p.init_array)  # the mean of huge rows: no overflow
        self._offset = tf.reduce_mean(x * scale, axis=0) / scale
        self._n_since_last_reassign = 0
        self.n_features_in_ = d
        self._check_feature_names(X, reset=True)
        return x, w

    def _initial_centers(self, centred, w, scale, seed):
        """(k, d) initial centres, centred and scaled, for the centred, scaled rows ``centred``
        of weights ``w``: the given array's (of the lowest inertia, for a callable's
        ``n_init``), or the best of ``n_init`` seedings."""
        p = self._p
        if p.kind == "array":
            centers = (p.init_array - self._offset) * scale
            if centers.shape[0] > 1:
                inertia = [
                    float(tf.reduce_sum(_minibatch.assign_batch(centred, c)[1] * w))
                    for c in centers
                ]
                return centers[int(np.argmin(inertia))]
            return centers[0]
        n = centred.shape[0]
        n_pad = padded_size(n)
        return _minibatch.init_minibatch(
            pad_rows(centred, n_pad),
            pad_rows(w, n_pad),
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

        ``sample_weight``: (n_samples,) non-negative weights of the rows (default None, all
        ones), as scikit-learn's: batches are drawn uniformly and each row weighs its weight in
        the seeding, the centre updates and the inertia.

        Returns:
          self.
        """
        x, w = self._begin(X, sample_weight)
        p = self._p
        n, d = x.shape
        start = time.perf_counter()
        batch_size, fold = self._batch_size, tf.random.experimental.stateless_fold_in
        centred = x - self._offset
        scale = self._centred_scale(centred)
        if scale != 1.0:
            centred = centred * scale
        centers = self._initial_centers(centred, w, scale, fold(self._seed, 0))
        scaled = x if scale == 1.0 else x * scale
        abs_tol = float(tf.reduce_mean(tf.math.reduce_variance(scaled, axis=0))) * p.tol
        # Steps are counted in int32 inside: a huge max_iter runs until the stopping rules.
        n_steps = min(p.max_iter * n // batch_size, INT32_MAX)
        n_pad = padded_size(n)
        out = _minibatch.fit_minibatch(
            pad_rows(centred, n_pad),
            pad_rows(w, n_pad),
            tf.constant(n, tf.int32),
            centers,
            fold(self._seed, 1),
            n_steps,
            tf.constant(abs_tol, x.dtype),
            tf.constant(-1 if p.max_no_improvement is None else p.max_no_improvement, tf.int32),
            tf.constant(p.reassignment_ratio, x.dtype),
            batch_size=batch_size,
        )
        centers = out["centers"] if scale == 1.0 else out["centers"] / scale
        self.cluster_centers_ = (centers + self._offset).numpy()
        self._counts = out["weight_sums"].numpy()  # partial_fit goes on from these
        self.n_steps_ = out["n_steps"]
        self.n_iter_ = math.ceil(self.n_steps_ * batch_size / n)
        if p.verbose:  # scikit-learn's words, once the compiled steps are over
            reason = (
                "small centers change"
                if out["small_change"]
                else "lack of improvement in inertia"
                if out["no_improvement"]
                else None
            )
            if reason:
                print(f"Converged ({reason}) at step {self.n_steps_}/{n_steps}")
        if p.compute_labels:
            self._store_labels(x, w)
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

    def _store_labels(self, x, w):
        centers = tf.constant(self.cluster_centers_)
        self.labels_, self.inertia_ = self._labels_inertia(x, centers, w)

    def partial_fit(self, X, y=None, sample_weight=None):
        """One mini-batch step on the rows of X (n_samples, n_features), weighted by
        ``sample_weight`` ((n_samples,), default None: all ones); the first call also
        initialises the centres from X. Each distinct batch shape compiles once.

        Returns:
          self.
        """
        if getattr(self, "cluster_centers_", None) is None:
            x, w = self._begin(X, sample_weight)
            centred = x - self._offset
            scale = self._centred_scale(centred)
            centers = self._initial_centers(centred * scale, w, scale, self._seed) / scale
            self.cluster_centers_ = (centers + self._offset).numpy()
            self._counts = np.zeros(self._p.n_clusters, self.cluster_centers_.dtype)
            self.n_steps_ = 0
        else:
            x, _ = self._check_test_data(X)
            w = check_sample_weight(sample_weight, x.shape[0], x.dtype)
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
            w,
            centers * scale if scale != 1.0 else centers,
            tf.constant(self._counts),
            tf.constant(reassign),
            tf.constant(p.reassignment_ratio, x.dtype),
            tf.random.experimental.stateless_fold_in(self._seed, self.n_steps_ + 1),
            deterministic_sums=device_profile().deterministic_sums,
        )
        centers = centers if scale == 1.0 else centers / scale
        self.cluster_centers_ = (centers + self._offset).numpy()
        self._counts = counts.numpy()
        self.n_steps_ += 1
        if p.compute_labels:
            self._store_labels(x, w)
        return self
