"""XLA kernels of the Gaussian mixture: log-densities, the E- and M-steps and the EM loop.

The formulas are scikit-learn's (``sklearn/mixture/_gaussian_mixture.py``): each component is
kept as the Cholesky factor of its precision matrix, ``precisions_cholesky`` (``P`` with
``P @ P.T`` the precision), so a log-density is ``-0.5 * (d log 2 pi + |(x - mu) P|^2) +
log det P``. The shapes of the covariance parameters follow ``covariance_type``:

- ``"full"``: (k, d, d); ``"tied"``: (d, d); ``"diag"``: (k, d); ``"spherical"``: (k,).

Every kernel takes the rows padded to a size bucket (:func:`tfclust._tiling.padded_size`), then
to whole tiles, as (T, tile, d) with (T, tile) row weights, 1 for a row of X and 0 for
padding, so one compiled program serves all the n of a bucket. The E- and M-steps sweep the
tiles (:func:`m_step`), so temporaries are (tile x k x d) whatever n; within a tile, all k
components are computed together (one matmul or batched matmul each). Nothing is n x n.
"""

from __future__ import annotations

import math
import typing

import numpy as np
import tensorflow as tf

from tfclust._compile import specialised
from tfclust._precision import einsum, matmul

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def log_det_cholesky(prec_chol, covariance_type: str, n_features: int):
    """(k,) log-determinants of the precision Cholesky factors (a scalar for ``"tied"``)."""
    if covariance_type == "full":
        return tf.reduce_sum(tf.math.log(tf.linalg.diag_part(prec_chol)), axis=1)
    if covariance_type == "tied":
        return tf.reduce_sum(tf.math.log(tf.linalg.diag_part(prec_chol)))
    if covariance_type == "diag":
        return tf.reduce_sum(tf.math.log(prec_chol), axis=1)
    return n_features * tf.math.log(prec_chol)


def log_gaussian_prob(x, means, prec_chol, covariance_type: str):
    """(n, k) log-densities of the rows ``x`` (n, d) under each component."""
    d = x.shape[1]
    k = means.shape[0]
    log_det = log_det_cholesky(prec_chol, covariance_type, d)
    if covariance_type == "full":
        # One (n, d) @ (d, k*d) matmul for all components: y[:, j] = x @ P_j - mu_j @ P_j.
        stacked = tf.reshape(tf.transpose(prec_chol, [1, 0, 2]), [d, k * d])
        mu_p = einsum("kd,kde->ke", means, prec_chol)
        y = tf.reshape(matmul(x, stacked), [-1, k, d]) - mu_p[tf.newaxis]
        maha = tf.reduce_sum(tf.square(y), axis=2)
    elif covariance_type == "tied":
        y = matmul(x, prec_chol)[:, tf.newaxis, :] - matmul(means, prec_chol)[tf.newaxis]
        maha = tf.reduce_sum(tf.square(y), axis=2)
    elif covariance_type == "diag":
        precisions = tf.square(prec_chol)
        maha = (
            tf.reduce_sum(tf.square(means) * precisions, axis=1)[tf.newaxis]
            - 2.0 * matmul(x, means * precisions, transpose_b=True)
            + matmul(tf.square(x), precisions, transpose_b=True)
        )
    else:  # spherical
        precisions = tf.square(prec_chol)
        maha = (
            (tf.reduce_sum(tf.square(means), axis=1) * precisions)[tf.newaxis]
            - 2.0 * matmul(x, means, transpose_b=True) * precisions[tf.newaxis]
            + tf.reduce_sum(tf.square(x), axis=1, keepdims=True) * precisions[tf.newaxis]
        )
    const = tf.constant(d * math.log(2.0 * math.pi), x.dtype)
    return -0.5 * (const + maha) + log_det


def log_prob_resp(x, weights, means, prec_chol, covariance_type: str):
    """``(log_prob_norm, log_resp)``: (n,) log-likelihoods of the rows ``x`` under the mixture
    and (n, k) log-responsibilities (scikit-learn's ``_estimate_log_prob_resp``)."""
    weighted = log_gaussian_prob(x, means, prec_chol, covariance_type) + tf.math.log(weights)
    norm = tf.reduce_logsumexp(weighted, axis=1)
    return norm, weighted - norm[:, tf.newaxis]


def m_step(x3, w3, resp_of_tile, n_components: int, reg_covar, covariance_type: str):
    """``(bound_sum, nk, means, covariances)`` (scikit-learn's ``_estimate_gaussian_parameters``)
    by sweeps over row tiles, so that temporaries are (tile x k x d), whatever n.

    Args:
      x3: (T, tile, d) rows; w3: (T, tile) row weights (0 for padding).
      resp_of_tile: ``(t, x_t, w_t) -> (resp_t, bound_t)``: tile t's (tile, k) responsibilities,
        zero on padding rows, and its contribution to ``bound_sum`` (a scalar).
      n_components: k; reg_covar: scalar of x's dtype; covariance_type: static.

    One sweep gathers the sums (``nk``, weighted sums of rows, and for ``"tied"`` the scatter
    matrix, scikit-learn's formula); for the others a second sweep adds each component's
    scatter (``"full"``) or squared deviations (``"diag"``, ``"spherical"``) about its new mean,
    from the responsibilities kept by the first. Centred, so there is no cancellation (for
    ``"full"`` as scikit-learn; for ``"diag"``/``"spherical"`` scikit-learn's ``E[x^2] -
    mu^2`` can turn a nearly constant feature's variance negative in float32: here it cannot).
    """
    n_tiles, tile, d = x3.shape
    k = n_components
    dtype = x3.dtype
    full = covariance_type == "full"
    centred = covariance_type != "tied"
    sq_shape = [d, d] if covariance_type == "tied" else [0]

    def sweep(t, bound, nk, sx, sq, kept):
        xt, wt = x3[t], w3[t]
        resp_t, bound_t = resp_of_tile(t, xt, wt)
        if centred:
            kept = tf.tensor_scatter_nd_update(kept, t[tf.newaxis, tf.newaxis], resp_t[tf.newaxis])
        else:
            sq = sq + matmul(xt, xt, transpose_a=True)
        return (
            t + 1,
            bound + bound_t,
            nk + tf.reduce_sum(resp_t, axis=0),
            sx + matmul(resp_t, xt, transpose_a=True),
            sq,
            kept,
        )

    zero = tf.constant(0.0, dtype)
    _, bound, nk, sx, sq, kept = tf.while_loop(
        lambda t, *_: t < n_tiles,
        sweep,
        (
            tf.constant(0),
            zero,
            tf.zeros([k], dtype),
            tf.zeros([k, d], dtype),
            tf.zeros(sq_shape, dtype),
            tf.zeros([n_tiles, tile, k] if centred else [0, 0, 0], dtype),
        ),
    )
    eps = tf.constant(10.0 * float(np.finfo(dtype.as_numpy_dtype).eps), dtype)
    nk = nk + eps
    means = sx / nk[:, tf.newaxis]
    eye = tf.eye(d, dtype=dtype)
    if centred:

        def scatter(t, cov):
            # (k, tile, d) differences scaled by sqrt(resp), k-major so that the batch
            # dimension of the matmul leads (measured: ~3x faster than an (n, k, d) einsum).
            sqrt_resp = tf.sqrt(tf.transpose(kept[t]))[:, :, tf.newaxis]
            diff = (x3[t][tf.newaxis] - means[:, tf.newaxis]) * sqrt_resp
            if full:
                return t + 1, cov + matmul(diff, diff, transpose_a=True)
            return t + 1, cov + tf.reduce_sum(tf.square(diff), axis=1)

        _, cov = tf.while_loop(
            lambda t, _: t < n_tiles,
            scatter,
            (tf.constant(0), tf.zeros([k, d, d] if full else [k, d], dtype)),
        )
        if full:
            cov = cov / nk[:, tf.newaxis, tf.newaxis] + reg_covar * eye
        else:
            cov = cov / nk[:, tf.newaxis] + reg_covar
            if covariance_type == "spherical":
                cov = tf.reduce_mean(cov, axis=1)
    else:
        avg_means2 = matmul(nk[:, tf.newaxis] * means, means, transpose_a=True)
        cov = (sq - avg_means2) / tf.reduce_sum(nk) + reg_covar * eye
    return bound, nk, means, cov


def precision_cholesky(covariances, covariance_type: str):
    """``(prec_chol, ok)``: the Cholesky factors of the precisions from the covariances
    (scikit-learn's ``_compute_precision_cholesky``), and whether every covariance was
    positive definite (if not, ``prec_chol`` holds NaN or inf and must not be used)."""
    if covariance_type in ("full", "tied"):
        chol = tf.linalg.cholesky(covariances)
        eye = tf.eye(covariances.shape[-1], batch_shape=covariances.shape[:-2], dtype=chol.dtype)
        prec_chol = tf.linalg.matrix_transpose(tf.linalg.triangular_solve(chol, eye, lower=True))
        # XLA's Cholesky leaves NaN where a matrix is not positive definite.
        ok = tf.reduce_all(tf.math.is_finite(prec_chol)) & tf.reduce_all(
            tf.linalg.diag_part(chol) > 0
        )
        return prec_chol, ok
    return tf.math.rsqrt(covariances), tf.reduce_all(covariances > 0)


# Tiles of about this many bytes of (tile x k x d) temporaries: the E- and M-steps' largest,
# kept cache-sized whatever n (at least _MIN_TILE_ROWS rows, so the matmuls stay efficient).
_TILE_BYTES = 4 * 2**20
_MIN_TILE_ROWS = 512


def tile_rows(n_pad: int, n_components: int, n_features: int, itemsize: int) -> int:
    """Rows per tile: a power of two, about ``_TILE_BYTES`` of (tile x k x d) temporaries, at
    least ``_MIN_TILE_ROWS`` and at most ``n_pad`` rounded up to a power of two."""
    rows = max(_MIN_TILE_ROWS, _TILE_BYTES // (n_components * n_features * itemsize))
    rows = 1 << (rows.bit_length() - 1)
    return min(rows, 1 << max(0, n_pad - 1).bit_length())


def as_tiles(x, n_rows: int, tile: int):
    """``x`` (n, ...) padded with zero rows to a multiple of ``tile`` rows >= ``n_rows``, as
    (T, tile, ...)."""
    x = tf.convert_to_tensor(x)
    total = -(-n_rows // tile) * tile
    pad = total - x.shape[0]
    x = tf.pad(x, [[0, pad]] + [[0, 0]] * (x.shape.rank - 1)) if pad else x
    return tf.reshape(x, [total // tile, tile, *x.shape[1:]])


class EMState(typing.NamedTuple):
    """The EM loop's state: iterations done, the last lower bound (mean log-likelihood of the
    rows before the last M-step), whether it converged, whether every covariance so far was
    positive definite, the parameters, and the lower bound of each iteration (first
    ``lower_bounds.shape[0]`` iterations)."""

    n_iter: tf.Tensor
    lower_bound: tf.Tensor
    converged: tf.Tensor
    ok: tf.Tensor
    weights: tf.Tensor
    means: tf.Tensor
    covariances: tf.Tensor
    prec_chol: tf.Tensor
    lower_bounds: tf.Tensor


def _initial_parameters(x3, w3, resp3, reg_covar, *, covariance_type):
    """Program: ``(weights, means, covariances, prec_chol, ok)`` from initial
    responsibilities ``resp3`` (T, tile, k) (scikit-learn's ``_initialize``: weights are
    ``nk / n``)."""

    def resp_of_tile(t, xt, wt):
        return resp3[t] * wt[:, tf.newaxis], tf.constant(0.0, xt.dtype)

    _, nk, means, cov = m_step(x3, w3, resp_of_tile, resp3.shape[2], reg_covar, covariance_type)
    prec_chol, ok = precision_cholesky(cov, covariance_type)
    return nk / tf.reduce_sum(w3), means, cov, prec_chol, ok


def initial_parameters_program(covariance_type: str):
    """The compiled :func:`_initial_parameters` for ``covariance_type``."""
    return specialised(_initial_parameters, "init", covariance_type)


def _em(
    x3,
    w3,
    weights,
    means,
    covariances,
    prec_chol,
    lower_bound,
    tol,
    reg_covar,
    max_iter,
    *,
    covariance_type,
    n_bounds,
):
    """Program: EM iterations from the given parameters until the lower bound changes by less
    than ``tol``, ``max_iter`` iterations, or a covariance that is not positive definite.

    Args:
      x3: (T, tile, d) rows, padded; w3: (T, tile) 1 for a row, 0 for padding.
      weights, means, covariances, prec_chol: the initial parameters.
      lower_bound: the lower bound before the first iteration (-inf for a fresh start).
      tol, reg_covar: scalars of x's dtype; max_iter: int32 scalar.
      covariance_type: static; n_bounds: static length of the lower-bounds record.

    Returns:
      The final :class:`EMState` (as scikit-learn's loop: each iteration is an E-step, whose
      mean log-likelihood is the lower bound, then an M-step).
    """
    n = tf.reduce_sum(w3)

    def cond(s):
        return (s.n_iter < max_iter) & tf.logical_not(s.converged) & s.ok

    def body(s):
        def resp_of_tile(t, xt, wt):
            norm, log_resp = log_prob_resp(xt, s.weights, s.means, s.prec_chol, covariance_type)
            bound_t = tf.reduce_sum(tf.where(wt > 0, norm, 0.0) * wt)
            return tf.exp(log_resp) * wt[:, tf.newaxis], bound_t

        k = s.means.shape[0]
        bound, nk, new_means, cov = m_step(x3, w3, resp_of_tile, k, reg_covar, covariance_type)
        bound = bound / n
        new_prec_chol, ok = precision_cholesky(cov, covariance_type)
        converged = tf.abs(bound - s.lower_bound) < tol
        slot = tf.minimum(s.n_iter, n_bounds - 1)
        recorded = tf.tensor_scatter_nd_update(
            s.lower_bounds,
            slot[tf.newaxis, tf.newaxis],
            tf.where(s.n_iter < n_bounds, bound, s.lower_bounds[slot])[tf.newaxis],
        )
        return (
            EMState(
                n_iter=s.n_iter + 1,
                lower_bound=bound,
                converged=converged,
                ok=ok,
                weights=nk / tf.reduce_sum(nk),
                means=new_means,
                covariances=cov,
                prec_chol=new_prec_chol,
                lower_bounds=recorded,
            ),
        )

    state = EMState(
        n_iter=tf.constant(0, tf.int32),
        lower_bound=lower_bound,
        converged=tf.constant(False),
        ok=tf.constant(True),
        weights=weights,
        means=means,
        covariances=covariances,
        prec_chol=prec_chol,
        lower_bounds=tf.fill([n_bounds], tf.constant(-np.inf, x3.dtype)),
    )
    (state,) = tf.while_loop(cond, body, (state,))
    return state._asdict()


def em_program(covariance_type: str, n_bounds: int):
    """The compiled :func:`_em` for ``covariance_type`` and a lower-bounds record of
    ``n_bounds`` iterations."""
    return specialised(_em, "em", covariance_type, n_bounds)


def _log_prob_resp(x3, weights, means, prec_chol, *, covariance_type):
    """Program: :func:`log_prob_resp` of the rows ``x3`` (T, tile, d), tile by tile:
    ``(log_prob_norm, log_resp)`` of shapes (T * tile,) and (T * tile, k)."""
    dtype = x3.dtype
    k = means.shape[0]
    norm, log_resp = tf.map_fn(
        lambda xt: log_prob_resp(xt, weights, means, prec_chol, covariance_type),
        x3,
        fn_output_signature=(
            tf.TensorSpec([x3.shape[1]], dtype),
            tf.TensorSpec([x3.shape[1], k], dtype),
        ),
    )
    return tf.reshape(norm, [-1]), tf.reshape(log_resp, [-1, k])


def log_prob_resp_program(covariance_type: str):
    """Compiled :func:`log_prob_resp` for ``covariance_type``: ``(log_prob_norm, log_resp)``."""
    return specialised(_log_prob_resp, "resp", covariance_type)


def _kmeans_plusplus_rows(x, row_weight, seed, n_valid, *, n_clusters, n_local_trials):
    """Program: the indices (k,) of the rows that greedy k-means++ picks (scikit-learn's
    ``init_params="k-means++"``), each found as the row at distance zero from its centre."""
    from tfclust.kmeans._init import kmeans_plusplus

    centers = kmeans_plusplus(
        x[tf.newaxis], row_weight[tf.newaxis], seed, n_clusters, 1, n_local_trials, n_valid
    )[0]
    sq = (
        tf.reduce_sum(tf.square(x), axis=1, keepdims=True)
        - 2.0 * matmul(x, centers, transpose_b=True)
        + tf.reduce_sum(tf.square(centers), axis=1)[tf.newaxis]
    )
    sq = tf.where(row_weight[:, tf.newaxis] > 0, sq, tf.constant(np.inf, x.dtype))
    return tf.argmin(sq, axis=0, output_type=tf.int32)


def kmeans_plusplus_rows_program(n_clusters: int, n_local_trials: int):
    """The compiled :func:`_kmeans_plusplus_rows`."""
    return specialised(_kmeans_plusplus_rows, "kmeans++", n_clusters, n_local_trials)
