"""The scikit-learn-compatible ``KMeans`` estimator over the XLA kernels, and the base class it
shares with ``MiniBatchKMeans``: the common parameter checks and the fitted-model methods."""

from __future__ import annotations

import logging
import math
import time
import types
import warnings

import numpy as np
import tensorflow as tf

from .._base import BaseEstimator, prefixed_feature_names
from .._device import device_profile
from .._tiling import pad_rows, padded_size, rows_per_tile
from .._validation import (
    INT32_MAX,
    ConvergenceWarning,
    check_array,
    check_float,
    check_int,
    check_is_fitted,
    check_memory_budget,
    check_random_state,
    check_sample_weight,
    fit_dtype,
    max_abs,
    power_of_two_scale,
    sklearn_compatible,
    stateless_seed,
)
from . import _lloyd, _streaming

logger = logging.getLogger("tfclust.kmeans")

# Tiles of the device profile's size (on a CPU: 4 MiB, ~2x faster than 60k-row tiles on a
# 2-core EPYC, whose caches they fit) keep at least _MIN_TILE_ROWS rows so the matmul stays
# efficient. The budget can only lower them. docs/accelerators.md.
_MIN_TILE_ROWS = 512
# Live (rows x R*k) temporaries per tile row in the Lloyd step: matmul output, scores, the
# first-match mask, with slack for XLA's buffers.
_TILE_COPIES = 4


def seeding_tile_rows(n_rows: int, width: int, itemsize: int, memory_budget: int) -> int:
    """Rows per tile of the k-means++ sweeps: as many as ``memory_budget`` allows. Each of the
    k sequential steps sweeps the tiles, so fewer, longer tiles win here (measured at k=256,
    3 restarts on 60k x 64: one tile 0.72 s, five 1.05 s) where the Lloyd step prefers cache."""
    return rows_per_tile(n_rows, width * itemsize * _TILE_COPIES, memory_budget)


def n_local_trials(n_clusters: int) -> int:
    """Candidates per k-means++ step: 2 + log(k), as scikit-learn."""
    return 2 + int(math.log(n_clusters))


def data_scale(x, n_features: int, dtype, *others) -> float:
    """The power of two (1.0 if none is needed) by which the rows ``x`` (and the centres in
    ``others``) are multiplied so that squared distances cannot overflow ``dtype``
    (:func:`tfclust._validation.power_of_two_scale`); exact, so labels are unchanged."""
    largest = max([max_abs(x), *(max_abs(o) for o in others if o is not None)])
    return power_of_two_scale(largest, n_features, dtype)


def tile_rows(n_rows: int, width: int, itemsize: int, memory_budget: int) -> int:
    """Rows per tile for (rows x ``width``) temporaries under ``memory_budget`` bytes."""
    row_bytes = width * itemsize * _TILE_COPIES
    tile_bytes = device_profile().kmeans_tile_bytes
    budget = min(int(memory_budget), max(tile_bytes, _MIN_TILE_ROWS * row_bytes))
    return rows_per_tile(n_rows, row_bytes, budget)


def print_restarts(result) -> None:
    """Print each restart's end to stdout in scikit-learn's words (``KMeans(verbose=1)``): its
    last iteration's inertia and why it stopped. The compiled loop keeps no per-iteration
    record (that would cost a host round trip per iteration), so earlier iterations are not
    listed."""
    for r, n_iter in enumerate(result["n_iter_all"]):
        last = int(n_iter) - 1
        print("Initialization complete")
        print(f"Iteration {last}, inertia {result['inertia_all'][r]}.")
        if result["strict_all"][r]:
            print(f"Converged at iteration {last}: strict convergence.")
        elif result["converged_all"][r]:
            print(
                f"Converged at iteration {last}: center shift {result['shift_all'][r]} within "
                f"tolerance {result['tol']}."
            )


class _BaseKMeans(BaseEstimator):
    """What ``KMeans`` and ``MiniBatchKMeans`` share: the checks of their common parameters and
    the methods of a fitted model. Subclasses set the constructor attributes."""

    _default_n_init = 10  # what n_init="auto" means for init="random", as in scikit-learn
    _estimator_type = "clusterer"
    _fitted_attribute = "cluster_centers_"

    def _check_params(self, X):
        """Validate the shared constructor arguments for a fit on ``X``; return them as a
        namespace of plain Python values (``int(...)`` of numpy integers: kernels never see the
        raw attributes), with ``kind`` (init kind: a string, ``"array"`` or ``"callable"``),
        ``init_array`` ((n_init, k, d) tensor of initial centres, or None; a callable's are
        drawn by :meth:`_call_init`), ``n_init``, ``dtype`` (``X``'s when the ``dtype``
        parameter is None) and ``seed`` ((2,) int32 stateless seed)."""
        p = types.SimpleNamespace(
            n_clusters=check_int(self.n_clusters, name="n_clusters", low=1, high=INT32_MAX),
            max_iter=check_int(self.max_iter, name="max_iter", low=1, high=INT32_MAX),
            tol=check_float(self.tol, name="tol", low=0.0),
            verbose=check_int(
                int(self.verbose) if isinstance(self.verbose, bool) else self.verbose,
                name="verbose",
                low=0,
            ),
            memory_budget=check_memory_budget(self.memory_budget),
            init_size=None
            if self.init_size is None
            else check_int(self.init_size, name="init_size", low=1, high=INT32_MAX),
            dtype=fit_dtype(X, self.dtype, tf.float64),
        )
        if callable(self.init):
            p.kind, p.init_array = "callable", None
        elif isinstance(self.init, str):
            if self.init not in ("k-means++", "random"):
                raise ValueError(
                    f"init must be 'k-means++', 'random', a callable or an array of shape "
                    f"(n_clusters, n_features), got {self.init!r}"
                )
            p.kind, p.init_array = self.init, None
        else:
            p.kind = "array"
            p.init_array = check_array(self.init, name="init", dtype=p.dtype)[tf.newaxis]
        if isinstance(self.n_init, str) and self.n_init == "auto":
            p.n_init = self._default_n_init if p.kind in ("random", "callable") else 1
        else:
            if isinstance(self.n_init, str):
                raise ValueError(f"n_init must be 'auto' or an integer, got {self.n_init!r}")
            p.n_init = check_int(self.n_init, name="n_init", low=1, high=INT32_MAX)
            if p.kind == "array" and p.n_init != 1:
                warnings.warn(
                    f"Explicit initial center position passed: performing only one init in "
                    f"{type(self).__name__} instead of n_init={p.n_init}.",
                    RuntimeWarning,
                    stacklevel=3,
                )
                p.n_init = 1
        p.random_state = check_random_state(self.random_state)
        p.seed = stateless_seed(p.random_state, 0x5EED)
        p.n_local_trials = n_local_trials(p.n_clusters)
        return p

    @staticmethod
    def _check_init_shape(p, n_features):
        if p.init_array is None:
            return
        shape = tuple(p.init_array.shape[1:])
        if shape[0] != p.n_clusters:
            raise ValueError(
                f"init has shape {shape}. The shape of the initial centers {shape} does not "
                f"match the number of clusters {p.n_clusters}."
            )
        if shape[1] != n_features:
            raise ValueError(
                f"init has shape {shape}. The shape of the initial centers {shape} does not "
                f"match the number of features of the data {n_features}."
            )

    def _call_init(self, p, x):
        """For a callable ``init``: set ``p.init_array`` to the (n_init, k, d) centres of
        ``n_init`` calls ``init(X, n_clusters, random_state=RandomState)`` on the rows ``x``
        (a numpy array of the fit's dtype), as scikit-learn; then ``p.kind`` is ``"array"``."""
        if p.kind != "callable":
            return
        rng = np.random.RandomState(p.random_state)
        x_np = x.numpy()
        p.init_array = tf.stack(
            [
                check_array(
                    self.init(x_np, p.n_clusters, random_state=rng), name="init", dtype=p.dtype
                )
                for _ in range(p.n_init)
            ]
        )
        p.kind = "array"

    @staticmethod
    def _check_enough_samples(p, n):
        if n < p.n_clusters:
            raise ValueError(f"n_samples={n} should be >= n_clusters={p.n_clusters}.")

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit and return ``labels_`` (n_samples,) int32."""
        labels = self._fit_weighted(X, sample_weight).labels_
        if labels is None:
            raise ValueError(
                "fit_predict: this fit set no labels_ (the dataset yields its rows in a different "
                "order on each pass); call predict on the rows instead"
            )
        return labels

    def fit_transform(self, X, y=None, sample_weight=None):
        """Fit and return the (n_samples, k) distances to the centres."""
        return self._fit_weighted(X, sample_weight).transform(X)

    def _fit_weighted(self, X, sample_weight):
        """``fit``, passing ``sample_weight`` only when given (``MiniBatchKMeans.fit`` takes
        none)."""
        if sample_weight is None:
            return self.fit(X)
        return self.fit(X, sample_weight=sample_weight)

    # -- using the fitted centres -------------------------------------------------------------

    def _check_test_data(self, X):
        check_is_fitted(self, "cluster_centers_")
        self._check_feature_names(X, reset=False)
        x = check_array(X, name="X", dtype=self.cluster_centers_.dtype)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {x.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return x, tf.constant(self.cluster_centers_)

    def _tile(self, n, width=None):
        """Rows per tile of n rows against the centres: (rows x ``width``) temporaries, k wide
        by default."""
        memory_budget = check_memory_budget(self.memory_budget)
        k, itemsize = self.cluster_centers_.shape[0], self.cluster_centers_.dtype.itemsize
        return tile_rows(n, width or k, itemsize, memory_budget)

    def _labels_inertia(self, x, centers, sample_weight=None):
        """Labels (n,) int32 numpy array and weighted inertia (float) of the rows ``x`` (n, d).

        Data whose squared distances would overflow are scaled by a power of two (exact: the
        labels are those of the data) and the inertia scaled back, in float64 on the host."""
        n = x.shape[0]
        w = check_sample_weight(sample_weight, n, x.dtype)
        scale = data_scale(x, x.shape[1], x.dtype, centers)
        if scale != 1.0:
            x, centers = x * scale, centers * scale
        n_pad = padded_size(n)
        labels, sq = _lloyd.assign_rows(pad_rows(x, n_pad), centers, tile=self._tile(n_pad))
        return labels.numpy()[:n], float(tf.reduce_sum(sq[:n] * w)) / scale / scale

    def predict(self, X):
        """Index (n_samples,) int32 of the closest centre for each row of X (n_samples, d)."""
        x, centers = self._check_test_data(X)
        return self._labels_inertia(x, centers)[0]

    def transform(self, X):
        """Euclidean distances (n_samples, k) from each row of X to each centre."""
        x, centers = self._check_test_data(X)
        n = x.shape[0]
        scale = data_scale(x, x.shape[1], x.dtype, centers)
        if scale != 1.0:
            x, centers = x * scale, centers * scale
        n_pad = padded_size(n)
        width = centers.shape[0] * centers.shape[1]  # the (rows x k x d) differences
        tile = self._tile(n_pad, width)
        out = _lloyd.distances_to_centers(pad_rows(x, n_pad), centers, tile=tile)
        out = out.numpy()[:n]
        return out if scale == 1.0 else out / out.dtype.type(scale)

    def get_feature_names_out(self, input_features=None):
        """Names of the ``transform`` output columns: ``["kmeans0", ..., "kmeans{k-1}"]`` (the
        class name in lower case, as scikit-learn's ``ClassNamePrefixFeaturesOutMixin``)."""
        return prefixed_feature_names(self, "cluster_centers_", input_features)

    def score(self, X, y=None, sample_weight=None):
        """Opposite of X's inertia: the sum of squared distances to the closest centre,
        weighted by ``sample_weight`` ((n_samples,), default ones)."""
        x, centers = self._check_test_data(X)
        return -self._labels_inertia(x, centers, sample_weight)[1]


class KMeans(_BaseKMeans):
    """K-means clustering (Lloyd's algorithm) compiled with XLA.

    Parameters follow ``sklearn.cluster.KMeans``:

    Args:
      n_clusters: number of clusters k.
      init: ``"k-means++"`` (default; greedy, 2 + log(k) local trials), ``"random"`` (k
        distinct rows), an array of shape (k, n_features) of initial centres (then one run
        only), or a callable ``init(X, n_clusters, random_state)`` returning such an array
        (``X`` the numpy rows in the fit's dtype, ``random_state`` a ``np.random.RandomState``),
        called once per restart.
      n_init: number of restarts, or ``"auto"`` (default: 1 for k-means++ and an array, 10 for
        random and a callable).
        Restarts run in one compiled program; the lowest inertia wins.
      max_iter: maximum Lloyd iterations per restart, 1 .. 2**31 - 1 (a fit stops at
        convergence, so a huge value is fine).
      tol: convergence tolerance, relative to the mean per-feature variance of X: a restart stops
        when the summed squared centre shift is within ``tol * mean(var(X, axis=0))``, or when no
        label changed.
      verbose: 0 (default) is quiet; >0 prints each restart's end to stdout as scikit-learn
        does ("Iteration 11, inertia ...", "Converged at iteration 11: strict convergence."),
        only its last iteration: the compiled loop keeps no per-iteration record (that would
        need a host round trip). On a ``tf.data.Dataset`` it also logs each pass at INFO level
        on the ``tfclust.kmeans`` logger.
      random_state: None (default; fresh entropy), an int seed in 0 .. 2**32 - 1 (the same seed
        gives the same result on the same device), or a numpy ``RandomState``/``Generator``
        (one seed is drawn from it).
      dtype: None (default): X's own dtype when it is float32 or float64, else float64, as
        scikit-learn (float64 in, float64 out); ``"float32"`` or ``"float64"``: X is cast to
        it (float32 is the fast choice on accelerators). Data so large (or
        small) that squared distances would overflow (or underflow) the dtype are scaled by a
        power of two inside (exact), so labels stay right and ``inertia_`` is computed correctly.
      memory_budget: bytes one distance tile (rows x n_init x k) may take; None (default): the
        device profile's (256 MiB on a CPU, 2 GiB on a GPU or TPU).
      init_size: rows drawn for k-means++/random initialisation when fitting a
        ``tf.data.Dataset`` (the first ``init_size`` rows it yields); default
        ``max(10_000, 20 * n_clusters)``.
      algorithm: ``"lloyd"`` runs all restarts side by side (vectorised), every row against
        every centre each iteration; ``"elkan"`` prunes with triangle-inequality bounds (Yinyang
        k-means: a lower bound per group of about ten centres), restarts one after
        another in the same program, each stopping when it converges; ``"auto"`` (default) is
        ``"elkan"`` on a CPU and ``"lloyd"`` on a GPU or TPU (the device profile,
        docs/accelerators.md). Both give the same result (up to rounding); only the in-memory
        fit uses the choice. With one cluster, ``"lloyd"`` runs.
      copy_x: accepted for scikit-learn compatibility (default True); X is never modified,
        as the fit works on a copy in TensorFlow's memory either way.

    Fitted attributes: ``cluster_centers_`` (k, n_features) numpy array of ``dtype``,
    ``labels_`` (n_samples,) int32 (see ``fit`` for a ``tf.data.Dataset``), ``inertia_`` (float,
    sum of squared distances to the closest centre; inf only if that exceeds the float64 range),
    ``n_iter_`` (int), ``n_features_in_``.

    Under a multi-replica ``tf.distribute`` strategy (or when X is a ``tf.data.Dataset``) the fit
    runs exact Lloyd by passes over batches; see ``tfclust.kmeans._streaming``.

    Compilation: the in-memory fit, ``predict``, ``transform`` and ``score`` compile once per
    size bucket of n_samples (4 per doubling; the padding rows weigh nothing), and compiled
    programs persist on disk across processes (see ``docs/compilation_cache.md``).

    Examples:
      >>> import numpy as np
      >>> from tfclust import KMeans
      >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]], dtype=float)
      >>> km = KMeans(n_clusters=2, random_state=0, n_init="auto").fit(X)
      >>> sorted(km.cluster_centers_.tolist())
      [[1.0, 2.0], [10.0, 2.0]]
      >>> km.predict([[0, 0], [12, 3]]).tolist() == [km.labels_[0], km.labels_[3]]
      True
      >>> km.inertia_, km.cluster_centers_.dtype  # float64 in, float64 out
      (16.0, dtype('float64'))
    """

    def __init__(
        self,
        n_clusters=8,
        *,
        init="k-means++",
        n_init="auto",
        max_iter=300,
        tol=1e-4,
        verbose=0,
        random_state=None,
        dtype=None,
        memory_budget=None,
        init_size=None,
        algorithm="auto",
        copy_x=True,
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.dtype = dtype
        self.memory_budget = memory_budget
        self.init_size = init_size
        self.algorithm = algorithm
        self.copy_x = copy_x

    @classmethod
    def from_cluster_centers(cls, cluster_centers, **params) -> KMeans:
        """A KMeans ready for ``predict``, ``transform`` and ``score`` from known centres.

        Args:
          cluster_centers: (n_clusters, n_features) array of centres (numpy, tensor or
            array-like), or the path (str or ``os.PathLike``) of a ``.npy`` file of them, such
            as a run's ``kmeans_centers.npy`` or one written by
            ``tfclust.serving.save_centers`` (read by ``tfclust.serving.load_centers``: float32).
          **params: other constructor parameters (``dtype``, ``memory_budget``, ...);
            ``n_clusters`` is taken from the centres (given, it must match them).

        The centres are kept in KMeans' dtype rule: the ``dtype`` parameter when given, else
        an array's own dtype if float32 or float64 (so ``predict`` gives exactly the labels of
        the KMeans they came from), else float64; a file's centres are float32 unless
        ``dtype`` says otherwise. Fitted attributes set: ``cluster_centers_`` (a copy),
        ``n_features_in_``; the fit-only ones are unknown: ``labels_`` and ``inertia_`` are
        None, ``n_iter_`` is 0. Calling ``fit`` later fits from scratch as usual.

        Returns:
          The KMeans.

        Raises:
          ValueError: centres that are not 2-D, empty, or hold NaN/inf; a file that is not a
            numeric ``.npy``; ``n_clusters`` not the number of centres; a bad ``dtype``.
          FileNotFoundError: no such file.
          TypeError: non-numeric centres, or an unknown parameter.

        Examples:
          >>> import os, tempfile
          >>> import numpy as np
          >>> from tfclust import KMeans
          >>> km = KMeans.from_cluster_centers(np.array([[0.0, 0.0], [10.0, 0.0]]))
          >>> km.n_clusters, km.predict([[1, 1], [9, -1]]).tolist()
          (2, [0, 1])
          >>> path = os.path.join(tempfile.mkdtemp(), "kmeans_centers.npy")
          >>> np.save(path, np.array([[0, 0], [10, 0]], dtype=np.float32))
          >>> km = KMeans.from_cluster_centers(path)
          >>> km.cluster_centers_.dtype, km.transform([[10, 0]]).tolist()
          (dtype('float32'), [[10.0, 0.0]])
        """
        import os

        if isinstance(cluster_centers, str | bytes | os.PathLike):
            from .._validation import resolve_dtype
            from ..serving import load_centers  # lazily: serving imports Keras

            centers = load_centers(os.fsdecode(cluster_centers))
            if params.get("dtype") is not None:
                centers = centers.astype(resolve_dtype(params["dtype"]).as_numpy_dtype)
        else:
            dtype = fit_dtype(cluster_centers, params.get("dtype"), tf.float64)
            centers = check_array(cluster_centers, name="cluster_centers", dtype=dtype).numpy()
        k, d = centers.shape
        if "n_clusters" in params and params["n_clusters"] != k:
            raise ValueError(
                f"n_clusters={params['n_clusters']!r} but cluster_centers has {k} centres"
            )
        km = cls(**{**params, "n_clusters": k})
        km.cluster_centers_ = np.array(centers)  # own copy, writeable
        km.labels_ = None
        km.inertia_ = None
        km.n_iter_ = 0
        km.n_features_in_ = d
        return km

    def _check_params(self, X):
        if not isinstance(self.algorithm, str) or self.algorithm not in ("auto", "lloyd", "elkan"):
            raise ValueError(
                f"algorithm must be 'auto', 'lloyd' or 'elkan', got {self.algorithm!r}"
            )
        p = super()._check_params(X)
        auto = self.algorithm == "auto"
        p.algorithm = device_profile().kmeans_algorithm if auto else self.algorithm
        if p.algorithm == "elkan" and p.n_clusters == 1:
            if self.algorithm == "elkan":
                warnings.warn(
                    "algorithm='elkan' doesn't make sense for a single cluster. Using 'lloyd' "
                    "instead.",
                    RuntimeWarning,
                    stacklevel=3,
                )
            p.algorithm = "lloyd"
        if not isinstance(self.copy_x, bool | np.bool_):
            raise TypeError(f"copy_x must be a bool, got {self.copy_x!r}")
        return p

    # -- fitting ------------------------------------------------------------------------------

    def fit(self, X, y=None, sample_weight=None):
        """Compute the clustering.

        Args:
          X: (n_samples, n_features) numpy array or ``tf.Tensor`` (integers are cast), or a
            finite ``tf.data.Dataset`` yielding (batch, n_features) batches (or tuples whose
            first element is such a batch); an infinite one (``ds.repeat()``) is refused.
          y: ignored.
          sample_weight: (n_samples,) non-negative weights of the rows in the centres, the
            inertia and k-means++ (as scikit-learn's); default None, all ones. Not with a
            ``tf.data.Dataset`` or a multi-replica strategy.

        With a ``tf.data.Dataset``, ``labels_`` come from one more pass after convergence, in
        the order that pass yields the rows, which ``fit`` checks (by an order-sensitive
        checksum of the rows) is the order of its first pass. A dataset that yields its rows
        differently on each pass (``shuffle`` with ``reshuffle_each_iteration=True``, random
        augmentation) has no such order: the fit then sets ``labels_ = None`` with a
        ``RuntimeWarning``; use ``predict`` on the rows. ``cluster_centers_`` and ``inertia_``
        do not depend on the order.

        Returns:
          self.
        """
        p = self._check_params(X)
        start = time.perf_counter()
        strategy = tf.distribute.get_strategy()
        distributed = tf.distribute.has_strategy() and strategy.num_replicas_in_sync > 1
        if isinstance(X, tf.data.Dataset) or distributed:
            if sample_weight is not None or p.kind == "callable":
                raise ValueError(
                    "sample_weight and a callable init are not supported when fitting a "
                    "tf.data.Dataset or under a multi-replica strategy"
                )
            logger.info(
                "KMeans fit start: streaming, k=%d, n_init=%d, init=%s",
                p.n_clusters,
                p.n_init,
                p.kind,
            )
            result = _streaming.fit_dataset(
                p,
                X,
                check_init_shape=self._check_init_shape,
                strategy=strategy if distributed else None,
            )
        else:
            dtype = p.dtype
            x = check_array(X, name="X", dtype=dtype)
            n, d = x.shape
            self._check_enough_samples(p, n)
            self._call_init(p, x)
            self._check_init_shape(p, d)
            w = check_sample_weight(sample_weight, n, dtype)
            logger.info(
                "KMeans fit start: %d x %d, k=%d, n_init=%d, init=%s, dtype=%s",
                n,
                d,
                p.n_clusters,
                p.n_init,
                p.kind,
                dtype.name,
            )
            # Squared distances must not overflow: scale huge (or tiny) data by a power of two.
            scale = data_scale(x, d, dtype, p.init_array)
            init_array = p.init_array
            if scale != 1.0:
                x = x * scale
                init_array = None if init_array is None else init_array * scale
            # One compiled program per size bucket: the padding rows have zero weight.
            n_pad = padded_size(n)
            k = p.n_clusters
            tile = tile_rows(n_pad, p.n_init * k, dtype.size, p.memory_budget)
            out = _lloyd.fit(
                pad_rows(x, n_pad),
                pad_rows(w, n_pad),
                tf.constant(n, tf.int32),
                init_array,
                p.seed,
                tf.constant(p.tol, dtype),
                p.max_iter,
                n_clusters=k,
                n_restarts=p.n_init,
                init=p.kind,
                tile=tile,
                init_tile=seeding_tile_rows(
                    n_pad, p.n_init * p.n_local_trials, dtype.size, p.memory_budget
                ),
                n_local_trials=p.n_local_trials,
                algorithm=p.algorithm,
                chunk=min(
                    device_profile().kmeans_max_chunk_rows,
                    tile_rows(n_pad, k, dtype.size, p.memory_budget),
                ),
            )
            result = {key: value.numpy() for key, value in out.items()}
            result["labels"] = result["labels"][:n]
            if scale != 1.0:
                result["centers"] = result["centers"] / result["centers"].dtype.type(scale)
                result["inertia"] = float(result["inertia"]) / scale / scale
                with np.errstate(over="ignore"):  # inf: beyond float64, as documented
                    for key in ("inertia_all", "shift_all", "tol"):
                        result[key] = result[key].astype(np.float64) / scale / scale
        self._store(result, p.n_clusters)
        self._check_feature_names(X, reset=True)
        logger.info(
            "KMeans fit end: inertia=%.6g, n_iter=%d, %.3f s",
            self.inertia_,
            self.n_iter_,
            time.perf_counter() - start,
        )
        for r, (inertia, n_iter) in enumerate(
            zip(result["inertia_all"], result["n_iter_all"], strict=True)
        ):
            logger.debug("restart %d: inertia %.6g after %d iterations", r, inertia, n_iter)
        if p.verbose:
            print_restarts(result)
        return self

    def _store(self, result, n_clusters):
        self.cluster_centers_ = result["centers"]
        self.labels_ = result["labels"]
        self.inertia_ = float(result["inertia"])
        self.n_iter_ = int(result["n_iter"])
        self.n_features_in_ = self.cluster_centers_.shape[1]
        if self.labels_ is None:
            return
        distinct = len(np.unique(self.labels_))
        if distinct < n_clusters:
            warnings.warn(
                f"Number of distinct clusters ({distinct}) found smaller than n_clusters "
                f"({n_clusters}). Possibly due to duplicate points in X.",
                sklearn_compatible(ConvergenceWarning),
                stacklevel=3,
            )
