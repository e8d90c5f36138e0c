"""The scikit-learn-compatible ``GaussianMixture`` estimator over the XLA kernels of
:mod:`tfclust.mixture._kernels`."""

from __future__ import annotations

import logging
import math
import time
import types
import warnings

import numpy as np
import tensorflow as tf

from tfclust._base import BaseEstimator
from tfclust._tiling import padded_size
from tfclust._validation import (
    INT32_MAX,
    ConvergenceWarning,
    check_array,
    check_float,
    check_int,
    check_is_fitted,
    check_random_state,
    fit_dtype,
    sklearn_compatible,
    stateless_seed,
)
from tfclust.mixture import _kernels
from tfclust.mixture._kernels import COVARIANCE_TYPES

logger = logging.getLogger("tfclust.mixture")

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")

# The lower bound of at most this many iterations is kept in ``lower_bounds_``.
_MAX_RECORDED_BOUNDS = 2**14

_ILL_DEFINED = (
    "Fitting the mixture model failed because some components have ill-defined empirical "
    "covariance (for instance caused by singleton or collapsed samples). Try to decrease the "
    "number of components, increase reg_covar, or scale the input data."
)


def _check_shape(param, shape, name):
    if param.shape != shape:
        raise ValueError(
            f"The parameter '{name}' should have the shape of {shape}, but got {param.shape}"
        )


def _as_float_array(value, name, dtype):
    if isinstance(value, tf.Tensor | tf.Variable):
        value = value.numpy()
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got an array of dtype {arr.dtype}")
    arr = arr.astype(dtype.as_numpy_dtype)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def _bounds_record_length(max_iter: int) -> int:
    """Length of the compiled loop's lower-bounds record: a power of two >= ``max_iter`` (at
    least 128, at most ``_MAX_RECORDED_BOUNDS``), so one program serves the usual ``max_iter``
    (the default 100 and smaller) and a few serve every other."""
    return min(_MAX_RECORDED_BOUNDS, max(128, 1 << max(0, max_iter - 1).bit_length()))


class GaussianMixture(BaseEstimator):
    """Gaussian mixture model fitted by expectation-maximisation, compiled with XLA.

    Parameters, fitted attributes and results follow ``sklearn.mixture.GaussianMixture``
    (the same formulas: each component is kept as the Cholesky factor of its precision
    matrix; the lower bound is the mean log-likelihood of the training rows).

    Args:
      n_components: number of mixture components k (default 1), 1 .. n_samples.
      covariance_type: ``"full"`` (default; one (d, d) covariance per component),
        ``"tied"`` (one (d, d) covariance shared by all), ``"diag"`` (one (d,) diagonal per
        component) or ``"spherical"`` (one variance per component).
      tol: convergence threshold (default 1e-3, >= 0): EM stops when the lower bound changes
        by less than ``tol`` in an iteration.
      reg_covar: non-negative value (default 1e-6) added to the diagonal of the covariances,
        so they stay positive definite.
      max_iter: maximum EM iterations per initialisation (default 100, >= 0; 0 keeps the
        initial parameters).
      n_init: number of initialisations (default 1); the one with the largest lower bound is
        kept.
      init_params: how initial responsibilities are drawn: ``"kmeans"`` (default; the labels
        of ``tfclust.KMeans(n_clusters=k, n_init=1)``), ``"k-means++"`` (one row per
        component, by greedy k-means++), ``"random"`` (uniform, normalised per row) or
        ``"random_from_data"`` (k distinct random rows).
      weights_init: (k,) initial weights (non-negative, summing to 1), or None (default;
        from ``init_params``).
      means_init: (k, n_features) initial means, or None (default).
      precisions_init: initial precisions (inverse covariances), or None (default); of shape
        (k, d, d) for ``"full"``, (d, d) for ``"tied"``, (k, d) for ``"diag"``, (k,) for
        ``"spherical"``; symmetric positive definite (or positive).
      random_state: None (default; fresh entropy), an int seed in 0 .. 2**32 - 1, or a numpy
        ``RandomState``/``Generator``; seeds the initialisations and ``sample``.
      warm_start: if True, a fit after the first starts from the fitted parameters (one
        initialisation, ``n_init`` ignored). Default False.
      verbose: 0 (default) is quiet; 1 prints each initialisation and every
        ``verbose_interval``-th iteration, >= 2 also the lower bound's change (taken from
        the compiled loop's record after it ends).
      verbose_interval: iterations between printed lines (default 10, >= 1).
      dtype: None (default): X's own dtype when it is float32 or float64, else float64 (as
        scikit-learn); ``"float32"`` or ``"float64"``: X is cast to it.

    Fitted attributes (numpy arrays of ``dtype`` unless said): ``weights_`` (k,), ``means_``
    (k, n_features), ``covariances_``, ``precisions_`` and ``precisions_cholesky_`` (shaped
    as ``precisions_init``), ``converged_`` (bool), ``n_iter_`` (int), ``lower_bound_``
    (float, the best initialisation's), ``lower_bounds_`` (list of floats, its lower bound
    per iteration; the first 16,384), ``n_features_in_`` and ``feature_names_in_`` (when X
    is a DataFrame with string column names).

    Compilation: the fit and the predicting methods compile once per size bucket of
    n_samples (4 per doubling; padding rows weigh nothing) and per ``covariance_type``.

    Raises (in ``fit``):
      ValueError: bad parameters or initial values, fewer samples than components, or a
        covariance that stops being positive definite during EM (decrease ``n_components``,
        increase ``reg_covar`` or scale the data).

    Examples:
      >>> import numpy as np
      >>> from tfclust import GaussianMixture
      >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]], dtype=float)
      >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
      >>> sorted(gm.means_.round(6).tolist())
      [[1.0, 2.0], [10.0, 2.0]]
      >>> labels = gm.predict([[0, 0], [12, 3]])
      >>> labels.tolist() == [gm.predict(X)[0], gm.predict(X)[3]]
      True
      >>> float(gm.predict_proba([[0, 0]]).max().round(3)), gm.converged_, gm.means_.dtype
      (1.0, True, dtype('float64'))
    """

    _estimator_type = "clusterer"
    _fitted_attribute = "means_"

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        dtype=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.dtype = dtype

    # -- parameters ---------------------------------------------------------------------------

    def _check_params(self, X):
        """The constructor arguments for a fit on ``X``, validated, as a namespace of plain
        Python values (the initial arrays are checked later, against X's shape)."""
        if not isinstance(self.covariance_type, str) or self.covariance_type not in (
            COVARIANCE_TYPES
        ):
            raise ValueError(
                f"covariance_type must be one of {', '.join(map(repr, COVARIANCE_TYPES))}, "
                f"got {self.covariance_type!r}"
            )
        if not isinstance(self.init_params, str) or self.init_params not in INIT_PARAMS:
            raise ValueError(
                f"init_params must be one of {', '.join(map(repr, INIT_PARAMS))}, "
                f"got {self.init_params!r}"
            )
        if not isinstance(self.warm_start, bool | np.bool_):
            raise TypeError(f"warm_start must be a bool, got {self.warm_start!r}")
        return types.SimpleNamespace(
            n_components=check_int(self.n_components, name="n_components", low=1, high=INT32_MAX),
            covariance_type=self.covariance_type,
            tol=check_float(self.tol, name="tol", low=0.0),
            reg_covar=check_float(self.reg_covar, name="reg_covar", low=0.0),
            max_iter=check_int(self.max_iter, name="max_iter", low=0, high=INT32_MAX),
            n_init=check_int(self.n_init, name="n_init", low=1, high=INT32_MAX),
            init_params=self.init_params,
            random_state=check_random_state(self.random_state),
            verbose=check_int(
                int(self.verbose) if isinstance(self.verbose, bool) else self.verbose,
                name="verbose",
                low=0,
            ),
            verbose_interval=check_int(self.verbose_interval, name="verbose_interval", low=1),
            dtype=fit_dtype(X, self.dtype, tf.float64),
        )

    def _check_initial_values(self, p, n_features):
        """Set ``p.weights_init``, ``p.means_init`` and ``p.precisions_init`` (numpy arrays of
        the fit's dtype, or None), checked as scikit-learn checks them."""
        k, d, dtype = p.n_components, n_features, p.dtype
        p.weights_init = p.means_init = p.precisions_init = None
        if self.weights_init is not None:
            w = _as_float_array(self.weights_init, "weights_init", dtype)
            _check_shape(w, (k,), "weights")
            if np.any(w < 0.0) or np.any(w > 1.0):
                raise ValueError(
                    f"The parameter 'weights' should be in the range [0, 1], but got max value "
                    f"{w.max():.5f}, min value {w.min():.5f}"
                )
            atol = 1e-6 if dtype == tf.float32 else 1e-8
            if abs(1.0 - float(np.sum(w))) > atol:
                raise ValueError(
                    f"The parameter 'weights' should be normalized, but got sum(weights) = "
                    f"{np.sum(w):.5f}"
                )
            p.weights_init = w
        if self.means_init is not None:
            m = _as_float_array(self.means_init, "means_init", dtype)
            _check_shape(m, (k, d), "means")
            p.means_init = m
        if self.precisions_init is not None:
            kind = p.covariance_type
            prec = _as_float_array(self.precisions_init, "precisions_init", dtype)
            shape = {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[kind]
            _check_shape(prec, shape, f"{kind} precision")
            if kind in ("full", "tied"):
                mats = prec.reshape(-1, d, d).astype(np.float64)
                symmetric = np.allclose(mats, np.swapaxes(mats, 1, 2))
                if not symmetric or not np.all(np.linalg.eigvalsh(mats) > 0.0):
                    raise ValueError(f"'{kind} precision' should be symmetric, positive-definite")
            elif np.any(prec <= 0.0):
                raise ValueError(f"'{kind} precision' should be positive")
            p.precisions_init = prec

    # -- fitting ------------------------------------------------------------------------------

    def fit(self, X, y=None):
        """Estimate the model's parameters with EM, ``n_init`` times; keep the best.

        Args:
          X: (n_samples, n_features) array-like or ``tf.Tensor`` (integers are cast), at least
            2 rows and ``n_components`` rows.
          y: ignored.

        Returns:
          self.
        """
        self._fit(X)
        return self

    def fit_predict(self, X, y=None):
        """Fit, then return the (n_samples,) int32 component of each row of X: the labels of
        a final E-step, so always those of ``predict(X)``."""
        x3, n = self._fit(X)
        _, log_resp = self._log_prob_resp(x3)
        return np.argmax(log_resp.numpy()[:n], axis=1).astype(np.int32)

    def _fit(self, X):
        p = self._check_params(X)
        x = check_array(X, name="X", dtype=p.dtype, min_samples=2)
        n, d = x.shape
        if n < p.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {p.n_components}, "
                f"n_samples = {n}"
            )
        self._check_initial_values(p, d)
        start = time.perf_counter()
        do_init = not (self.warm_start and getattr(self, "converged_", None) is not None)
        if not do_init and self.means_.shape != (p.n_components, d):
            raise ValueError(
                f"warm_start: the fitted means_ have shape {self.means_.shape}, but X has {d} "
                f"features and n_components is {p.n_components}"
            )
        n_init = p.n_init if do_init else 1
        n_pad = padded_size(n)
        tile = _kernels.tile_rows(n_pad, p.n_components, d, p.dtype.size)
        x3 = _kernels.as_tiles(x, n_pad, tile)
        w3 = _kernels.as_tiles(tf.ones([n], p.dtype), n_pad, tile)
        logger.info(
            "GaussianMixture fit start: %d x %d, k=%d, %s, n_init=%d, init=%s, dtype=%s",
            n,
            d,
            p.n_components,
            p.covariance_type,
            n_init,
            p.init_params,
            p.dtype.name,
        )
        rng = np.random.RandomState(p.random_state)
        n_bounds = _bounds_record_length(p.max_iter)
        best, best_bound = None, -np.inf
        for init in range(n_init):
            if p.verbose:
                print(f"Initialization {init}")
            if do_init:
                params = self._initialize(p, x, x3, w3, n, rng)
                prev_bound = -np.inf
            else:
                params = tuple(
                    tf.constant(a, p.dtype)
                    for a in (
                        self.weights_,
                        self.means_,
                        self.covariances_,
                        self.precisions_cholesky_,
                    )
                )
                prev_bound = float(self.lower_bound_)
            if p.max_iter == 0:
                result = {
                    "n_iter": 0,
                    "lower_bound": prev_bound,
                    "converged": False,
                    "params": tuple(a.numpy() for a in params),
                    "lower_bounds": [],
                }
            else:
                out = _kernels.em_program(p.covariance_type, n_bounds)(
                    x3,
                    w3,
                    *params,
                    tf.constant(prev_bound, p.dtype),
                    tf.constant(p.tol, p.dtype),
                    tf.constant(p.reg_covar, p.dtype),
                    tf.constant(p.max_iter, tf.int32),
                    covariance_type=p.covariance_type,
                    n_bounds=n_bounds,
                )
                if not bool(out["ok"]):
                    raise ValueError(_ill_defined(p.dtype))
                n_iter = int(out["n_iter"])
                result = {
                    "n_iter": n_iter,
                    "lower_bound": float(out["lower_bound"]),
                    "converged": bool(out["converged"]),
                    "params": tuple(
                        out[key].numpy() for key in ("weights", "means", "covariances", "prec_chol")
                    ),
                    "lower_bounds": out["lower_bounds"].numpy()[: min(n_iter, n_bounds)].tolist(),
                }
                if p.verbose:
                    _print_restart(result, p.verbose, p.verbose_interval, prev_bound)
            logger.debug(
                "initialisation %d: lower bound %.6g after %d iterations%s",
                init,
                result["lower_bound"],
                result["n_iter"],
                "" if result["converged"] else " (not converged)",
            )
            # scikit-learn's rule: a larger bound wins; while none is finite, the last one.
            if result["lower_bound"] > best_bound or best_bound == -np.inf:
                best, best_bound = result, result["lower_bound"]
        if not best["converged"] and p.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                sklearn_compatible(ConvergenceWarning),
                stacklevel=3,
            )
        self._store(best, p.covariance_type)
        self.n_features_in_ = d
        self._check_feature_names(X, reset=True)
        logger.info(
            "GaussianMixture fit end: lower bound=%.6g, n_iter=%d, %.3f s",
            self.lower_bound_,
            self.n_iter_,
            time.perf_counter() - start,
        )
        return x3, n

    def _initialize(self, p, x, x3, w3, n, rng):
        """Initial ``(weights, means, covariances, prec_chol)`` tensors of one initialisation,
        as scikit-learn's ``_initialize_parameters``: from responsibilities drawn by
        ``init_params`` (unless all three initial values are given), then replaced by the
        given initial values."""
        dtype, kind = p.dtype, p.covariance_type
        given = (p.weights_init, p.means_init, p.precisions_init)
        if all(v is not None for v in given):
            weights = tf.constant(p.weights_init)
            means = tf.constant(p.means_init)
            cov = prec_chol = None
        else:
            resp = self._initial_resp(p, x, x3, w3, n, rng)
            weights, means, cov, prec_chol, ok = _kernels.initial_parameters_program(kind)(
                x3,
                w3,
                _kernels.as_tiles(resp, x3.shape[0] * x3.shape[1], x3.shape[1]),
                tf.constant(p.reg_covar, dtype),
                covariance_type=kind,
            )
            if p.precisions_init is None and not bool(ok):
                raise ValueError(_ill_defined(dtype))
            if p.weights_init is not None:
                weights = tf.constant(p.weights_init)
            if p.means_init is not None:
                means = tf.constant(p.means_init)
        if p.precisions_init is not None:
            prec = tf.constant(p.precisions_init)
            if kind in ("full", "tied"):
                # The upper factor U of prec = U U^T, as scikit-learn: J chol(J prec J) J.
                flip = tf.reverse(prec, [-2, -1])
                prec_chol = tf.reverse(tf.linalg.cholesky(flip), [-2, -1])
                cov = tf.linalg.inv(prec)
            else:
                prec_chol = tf.sqrt(prec)
                cov = 1.0 / prec
        return weights, means, cov, prec_chol

    def _initial_resp(self, p, x, x3, w3, n, rng):
        """(n, k) initial responsibilities of the rows ``x``, as ``init_params`` says."""
        k, dtype = p.n_components, p.dtype
        seed = int(rng.randint(0, 2**32, dtype=np.int64))
        if p.init_params == "kmeans":
            from tfclust.kmeans import KMeans

            labels = (
                KMeans(n_clusters=k, n_init=1, random_state=seed, dtype=dtype.name).fit(x).labels_
            )
            return tf.one_hot(labels, k, dtype=dtype)
        if p.init_params == "random":
            u = tf.random.stateless_uniform([n, k], stateless_seed(seed, 0x6A55), dtype=dtype)
            return u / tf.reduce_sum(u, axis=1, keepdims=True)
        if p.init_params == "random_from_data":
            u = tf.random.stateless_uniform([n], stateless_seed(seed, 0x6A55), dtype=tf.float32)
            rows = tf.math.top_k(u, k).indices
        else:  # k-means++
            rows = _kernels.kmeans_plusplus_rows_program(k, 2 + int(math.log(k)))(
                tf.reshape(x3, [-1, x3.shape[2]]),
                tf.reshape(w3, [-1]),
                stateless_seed(seed, 0x5EED),
                tf.constant(n, tf.int32),
                n_clusters=k,
                n_local_trials=2 + int(math.log(k)),
            )
        return tf.tensor_scatter_nd_update(
            tf.zeros([n, k], dtype),
            tf.stack([rows, tf.range(k, dtype=rows.dtype)], axis=1),
            tf.ones([k], dtype),
        )

    def _store(self, result, covariance_type):
        weights, means, cov, prec_chol = result["params"]
        self.weights_ = weights
        self.means_ = means
        self.covariances_ = cov
        self.precisions_cholesky_ = prec_chol
        if covariance_type == "full":
            self.precisions_ = np.einsum("kij,klj->kil", prec_chol, prec_chol)
        elif covariance_type == "tied":
            self.precisions_ = prec_chol @ prec_chol.T
        else:
            self.precisions_ = prec_chol**2
        self.converged_ = result["converged"]
        self.n_iter_ = result["n_iter"]
        self.lower_bound_ = result["lower_bound"]
        self.lower_bounds_ = result["lower_bounds"]

    # -- using the fitted model ---------------------------------------------------------------

    def _check_test_data(self, X):
        """X checked against the fitted model: ``(x3, n)`` (rows padded to their bucket, in
        tiles)."""
        check_is_fitted(self, "means_")
        self._check_feature_names(X, reset=False)
        x = check_array(X, name="X", dtype=self.means_.dtype)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {x.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        n = x.shape[0]
        n_pad = padded_size(n)
        k, d = self.means_.shape
        tile = _kernels.tile_rows(n_pad, k, d, self.means_.dtype.itemsize)
        return _kernels.as_tiles(x, n_pad, tile), n

    def _log_prob_resp(self, x3):
        kind = self.covariance_type
        return _kernels.log_prob_resp_program(kind)(
            x3,
            tf.constant(self.weights_),
            tf.constant(self.means_),
            tf.constant(self.precisions_cholesky_),
            covariance_type=kind,
        )

    def predict(self, X):
        """The (n_samples,) int32 most probable component of each row of X (n_samples, d)."""
        x3, n = self._check_test_data(X)
        _, log_resp = self._log_prob_resp(x3)
        return np.argmax(log_resp.numpy()[:n], axis=1).astype(np.int32)

    def predict_proba(self, X):
        """The (n_samples, k) posterior probability of each component for each row of X."""
        x3, n = self._check_test_data(X)
        _, log_resp = self._log_prob_resp(x3)
        return np.exp(log_resp.numpy()[:n])

    def score_samples(self, X):
        """The (n_samples,) log-likelihood of each row of X under the model."""
        x3, n = self._check_test_data(X)
        norm, _ = self._log_prob_resp(x3)
        return norm.numpy()[:n]

    def score(self, X, y=None):
        """The mean log-likelihood (float) of the rows of X under the model."""
        return float(np.mean(self.score_samples(X), dtype=np.float64))

    def _n_parameters(self) -> int:
        """Number of free parameters of the model."""
        k, d = self.means_.shape
        cov_params = {
            "full": k * d * (d + 1) / 2.0,
            "diag": k * d,
            "tied": d * (d + 1) / 2.0,
            "spherical": k,
        }[self.covariance_type]
        return int(cov_params + d * k + k - 1)

    def bic(self, X):
        """Bayesian information criterion (float; lower is better) of the model on X:
        ``-2 * score(X) * n_samples + n_parameters * log(n_samples)``."""
        n = np.shape(X)[0]
        return -2.0 * self.score(X) * n + self._n_parameters() * math.log(n)

    def aic(self, X):
        """Akaike information criterion (float; lower is better) of the model on X:
        ``-2 * score(X) * n_samples + 2 * n_parameters``."""
        return -2.0 * self.score(X) * np.shape(X)[0] + 2 * self._n_parameters()

    def sample(self, n_samples=1):
        """Draw ``n_samples`` rows from the fitted mixture.

        As scikit-learn's (the same draws for the same int ``random_state``): the number of
        rows of each component is multinomial in ``weights_``; rows come grouped by component.

        Returns:
          ``(X, y)``: (n_samples, n_features) float64 rows and (n_samples,) int64 components.
        """
        check_is_fitted(self, "means_")
        n_samples = check_int(n_samples, name="n_samples", low=1)
        if isinstance(self.random_state, np.random.RandomState):
            rng = self.random_state
        else:
            rng = np.random.RandomState(check_random_state(self.random_state))
        counts = rng.multinomial(n_samples, self.weights_.astype(np.float64))
        means = self.means_.astype(np.float64)
        cov = self.covariances_.astype(np.float64)
        if self.covariance_type == "full":
            parts = [
                rng.multivariate_normal(m, c, int(s))
                for m, c, s in zip(means, cov, counts, strict=True)
            ]
        elif self.covariance_type == "tied":
            parts = [
                rng.multivariate_normal(m, cov, int(s)) for m, s in zip(means, counts, strict=True)
            ]
        else:
            parts = [
                m + rng.standard_normal(size=(s, means.shape[1])) * np.sqrt(c)
                for m, c, s in zip(means, cov, counts, strict=True)
            ]
        y = np.concatenate([np.full(int(s), i, dtype=np.int64) for i, s in enumerate(counts)])
        return np.vstack(parts), y


def _ill_defined(dtype) -> str:
    if dtype == tf.float32:
        return (
            _ILL_DEFINED + " The numerical accuracy can also be improved by passing float64 "
            "data instead of float32."
        )
    return _ILL_DEFINED


def _print_restart(result, verbose, interval, prev_bound):
    """Print one initialisation's iterations in scikit-learn's words, from the loop's record
    of lower bounds (after the loop: no per-iteration host round trip)."""
    bounds = [prev_bound, *result["lower_bounds"]]
    for it in range(1, len(bounds)):
        if it % interval == 0:
            if verbose == 1:
                print(f"  Iteration {it}")
            else:
                print(f"  Iteration {it}\t ll change {bounds[it] - bounds[it - 1]:.5f}")
    status = "converged" if result["converged"] else "did not converge"
    if verbose == 1:
        print(f"Initialization {status}.")
    else:
        print(f"Initialization {status}. lower bound {result['lower_bound']:.5f}.")
