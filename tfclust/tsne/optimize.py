"""Initial embeddings and the gradient descent of t-SNE (scikit-learn's schedule).

The descent is scikit-learn's ``_gradient_descent``: momentum, per-parameter gains (+0.2 when
the gradient changes sign against the update, x0.8 otherwise, at least 0.01), and a check every
``n_iter_check = 50`` iterations (KL divergence, gradient norm, stopping rules). Here the
iterations between two checks run as one XLA-compiled ``tf.while_loop`` (a *chunk*); the host
sees the KL divergence and gradient norm once per chunk, logs them (logger ``"tfclust.tsne"``,
and printed to stdout as scikit-learn's verbose output, see :func:`report`), applies the
stopping rules and calls the optional callback (chunks then also end at its boundaries).

The objective is a parameter (see :mod:`tfclust.tsne.gradients`): any hashable object with
``gradient``, ``gradient_and_kl``, ``kl_divergence``, ``extent`` and ``at_extent``. One compiled
chunk program is cached per objective (for the FFT method, per grid size, chosen on the host
once per chunk), chunk length and input shapes/dtype; the iterations a chunk runs, momentum,
learning rate and exaggeration are runtime tensors, so they never cause a retrace. A chunk
program has a static trip count and no run-time branch (docs/accelerators.md).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from typing import NamedTuple

import tensorflow as tf

from tfclust._compile import program
from tfclust._precision import matmul
from tfclust._validation import max_abs, power_of_two_scale, stateless_seed

__all__ = [
    "EXPLORATION_ITER",
    "N_ITER_CHECK",
    "DescentResult",
    "continued_descent",
    "gradient_descent",
    "pca_embedding",
    "random_embedding",
    "report",
    "tsne_descent",
]

logger = logging.getLogger("tfclust.tsne")

EXPLORATION_ITER = 250
"""Iterations of early exaggeration (momentum 0.5), as scikit-learn's ``_EXPLORATION_MAX_ITER``."""
N_ITER_CHECK = 50
"""Iterations per chunk: the KL divergence is evaluated and progress checked this often."""
_MIN_GAIN = 0.01
_INIT_STD = 1e-4


def report(verbose: int, min_verbose: int, log_level: int, message: str, *args) -> None:
    """Log ``message % args`` on the ``tfclust.tsne`` logger at ``log_level``, and print it to
    stdout when ``verbose >= min_verbose`` (scikit-learn's verbose TSNE prints its progress)."""
    logger.log(log_level, message, *args)
    if verbose >= min_verbose:
        print(message % args, flush=True)


def random_embedding(n_samples: int, n_components: int, seed: int, dtype=tf.float32):
    """Gaussian initial embedding with standard deviation 1e-4 (stateless, seeded by ``seed``
    in 0 .. 2**32 - 1, see :func:`tfclust._validation.stateless_seed`).

    Returns:
      (n_samples, n_components) tensor of ``dtype``.
    """
    return _INIT_STD * tf.random.stateless_normal(
        [n_samples, n_components], seed=stateless_seed(seed, 0), dtype=dtype
    )


def pca_embedding(x, n_components: int):
    """Principal components of ``x``, scaled so that the first has standard deviation 1e-4.

    As scikit-learn's ``init="pca"``: the projection on the top ``n_components`` principal axes,
    each axis signed so that its largest-magnitude loading is positive (``svd_flip`` with
    ``u_based_decision=False``), then divided by the first column's standard deviation and
    multiplied by 1e-4. Computed from the eigendecomposition of the (D, D) scatter matrix.
    Deliberately not XLA-compiled: it runs once, and LAPACK's/cuSOLVER's ``eigh`` is far faster
    than XLA's Jacobi eigensolver on CPU.

    Args:
      x: (N, D) float tensor, D >= n_components.
      n_components: number of components.

    Returns:
      (N, n_components) tensor of x's dtype. All-zero if x has no variance.
    """
    xc = x - tf.reduce_mean(x, axis=0, keepdims=True)
    # The (D, D) scatter matrix sums N products: scale (exactly, by a power of two) data so
    # large or small that it would overflow or underflow. The result is rescaled anyway.
    scale = power_of_two_scale(max_abs(xc), xc.shape[0], xc.dtype)
    if scale != 1.0:
        xc = xc * scale
    _, vectors = tf.linalg.eigh(matmul(xc, xc, transpose_a=True))  # ascending eigenvalues
    components = tf.reverse(vectors[:, -n_components:], axis=[1])  # (D, k), largest first
    largest = tf.argmax(tf.abs(components), axis=0)
    signs = tf.sign(tf.gather(tf.transpose(components), largest, batch_dims=1))
    embedding = matmul(xc, components * signs[None, :])
    std = tf.math.reduce_std(embedding[:, 0])
    return tf.math.divide_no_nan(embedding, std) * _INIT_STD


def _shape_key(y, operands):
    """The static sizes and dtype a descent's programs are compiled for."""
    return (y.dtype, tuple(y.shape), *(tuple(op.shape) for op in tf.nest.flatten(operands)))


class _Step(NamedTuple):
    """The optimiser state a descent iteration updates: embedding, update (momentum) and gains,
    each (N, d)."""

    y: tf.Tensor
    update: tf.Tensor
    gains: tf.Tensor


def _advance(state: _Step, grad, momentum, learning_rate) -> tuple[_Step, tf.Tensor]:
    """One momentum step with scikit-learn's gains; also returns the gain-scaled gradient."""
    gains = tf.where(state.update * grad < 0.0, state.gains + 0.2, state.gains * 0.8)
    gains = tf.maximum(gains, _MIN_GAIN)
    grad = grad * gains
    update = momentum * state.update - learning_rate * grad
    return _Step(state.y + update, update, gains), grad


@functools.cache
def _chunk_program(objective, length: int, *shape_key):
    """The compiled chunk runner for one objective, chunk length and ``_shape_key`` (each its own
    ``tf.function``, traced once).

    Every chunk program runs exactly ``length`` iterations, a trip count XLA knows, and no
    run-time branch (docs/accelerators.md): a shorter chunk of ``n_steps`` masks its first
    ``length - n_steps`` iterations, and the last iteration, which also reports the KL divergence
    at its starting point (as scikit-learn's check iterations do, from the same evaluation as
    its gradient), is peeled off the loop.
    """

    def run(y, update, gains, n_steps, momentum, learning_rate, exaggeration, operands):
        skipped = length - n_steps

        def body(i, state):
            grad = objective.gradient(state.y, exaggeration, *operands)
            moved, _ = _advance(state, grad, momentum, learning_rate)
            active = i >= skipped
            kept = (tf.where(active, a, b) for a, b in zip(moved, state, strict=True))
            return i + 1, _Step(*kept)

        _, state = tf.while_loop(
            lambda i, _: i < length - 1, body, (tf.constant(0), _Step(y, update, gains))
        )
        grad, kl = objective.gradient_and_kl(state.y, exaggeration, *operands)
        state, grad = _advance(state, grad, momentum, learning_rate)
        return (*state, kl, tf.norm(grad), objective.extent(state.y, *operands))

    return program(run)  # one program per grid size, none the retracing of another


@functools.cache
def _kl_program(objective, *shape_key):
    return program(objective.kl_divergence)


class DescentResult(NamedTuple):
    """Outcome of a descent: embedding (N, d), last KL divergence (None if no iteration ran),
    the index of the last iteration (scikit-learn's convention for ``n_iter_``) and whether the
    callback stopped it."""

    embedding: tf.Tensor
    kl_divergence: float | None
    last_iter: int
    stopped: bool = False


def gradient_descent(
    objective,
    operands,
    y,
    *,
    start: int,
    stop: int,
    momentum: float,
    learning_rate: float,
    exaggeration: float,
    n_iter_without_progress: int,
    min_grad_norm: float,
    log_level: int = logging.DEBUG,
    verbose: int = 0,
    callback=None,
    callback_every: int = N_ITER_CHECK,
) -> DescentResult:
    """Iterations ``start .. stop - 1`` of momentum descent with gains, from fresh optimiser state.

    Mirrors scikit-learn's ``_gradient_descent`` with ``n_iter_check = 50``: the KL divergence
    is computed at iterations ``i`` with ``(i + 1) % 50 == 0`` and at the last one; at the former,
    the descent stops when the KL has not improved for more than ``n_iter_without_progress``
    iterations or when the norm of the gain-scaled gradient is at most ``min_grad_norm``.

    Args:
      objective: see the module docstring.
      operands: tuple of tensors passed to the objective.
      y: (N, d) float tensor, the starting embedding.
      start, stop: absolute iteration indices (they place the checks).
      momentum, learning_rate, exaggeration: descent parameters (exaggeration multiplies P).
      n_iter_without_progress, min_grad_norm: stopping rules.
      log_level: logging level of the per-chunk progress lines.
      verbose: the progress lines are also printed when ``verbose >= 2`` (see :func:`report`).
      callback: None, or ``callback(iteration, kl_divergence, y) -> bool`` called after every
        absolute iteration count ``iteration`` that is a multiple of ``callback_every`` (its
        chunks end there too), with the KL divergence at the start of that chunk's last
        iteration and the (N, d) embedding tensor; a true result stops the descent.
      callback_every: iterations between callback calls (>= 1).

    Returns:
      :class:`DescentResult`.

    Raises:
      FloatingPointError: the KL divergence or gradient norm at a check is non-finite.
    """
    shape_key = _shape_key(y, operands)
    length = N_ITER_CHECK if callback is None else min(N_ITER_CHECK, callback_every)
    dtype = y.dtype
    update = tf.zeros_like(y)
    gains = tf.ones_like(y)
    scalars = [tf.constant(v, dtype) for v in (momentum, learning_rate, exaggeration)]
    best_error, best_iter = math.inf, start
    kl, last = None, start
    i = checked = start
    extent, growth = float(objective.extent(y, *operands)), 0.0
    tic = time.perf_counter()
    while i < stop:
        end = min((i // N_ITER_CHECK + 1) * N_ITER_CHECK, stop)
        if callback is not None:
            end = min(end, (i // callback_every + 1) * callback_every)
        # The grid for the extent expected mid-chunk, from the last chunk's growth.
        run = _chunk_program(objective.at_extent(extent + 0.5 * growth), length, *shape_key)
        y, update, gains, kl_t, grad_norm_t, extent_t = run(
            y, update, gains, tf.constant(end - i), *scalars, tuple(operands)
        )
        # The one host sync per chunk.
        kl, grad_norm, new_extent = float(kl_t), float(grad_norm_t), float(extent_t)
        growth, extent = max(new_extent - extent, 0.0), new_extent
        if not (math.isfinite(kl) and math.isfinite(grad_norm)):
            raise FloatingPointError(
                f"the KL divergence or the gradient became non-finite (KL {kl}, gradient norm "
                f"{grad_norm}) by iteration {end} (learning_rate {learning_rate:g}, "
                f"exaggeration {exaggeration:g})"
            )
        i, last = end, end - 1
        if callback is not None and end % callback_every == 0 and callback(end, kl, y):
            return DescentResult(y, kl, last, stopped=True)
        if end % N_ITER_CHECK:  # a callback's boundary or the final partial chunk: no check
            continue
        toc = time.perf_counter()
        report(
            verbose,
            2,
            log_level,
            "[t-SNE] Iteration %d: error = %.7f, gradient norm = %.7f (%d iterations in %.3fs)",
            end,
            kl,
            grad_norm,
            end - checked,
            toc - tic,
        )
        tic, checked = toc, end
        if kl < best_error:
            best_error, best_iter = kl, last
        elif last - best_iter > n_iter_without_progress:
            report(
                verbose,
                2,
                log_level,
                "[t-SNE] Iteration %d: did not make any progress during the last %d episodes. "
                "Finished.",
                end,
                n_iter_without_progress,
            )
            break
        if grad_norm <= min_grad_norm:
            report(
                verbose,
                2,
                log_level,
                "[t-SNE] Iteration %d: gradient norm %f. Finished.",
                end,
                grad_norm,
            )
            break
    return DescentResult(y, kl, last)


def tsne_descent(
    objective,
    operands,
    y0,
    *,
    early_exaggeration: float,
    learning_rate: float,
    max_iter: int,
    n_iter_without_progress: int,
    min_grad_norm: float,
    exaggeration: float = 1.0,
    final_learning_rate: float | None = None,
    log_level: int = logging.DEBUG,
    summary_level: int = logging.DEBUG,
    verbose: int = 0,
    callback=None,
    callback_every: int = N_ITER_CHECK,
) -> DescentResult:
    """scikit-learn's two-stage t-SNE optimisation, with a learning rate per stage.

    Stage 1: iterations 0..249 (or up to ``max_iter``) with P multiplied by
    ``early_exaggeration``, step ``learning_rate`` and momentum 0.5;
    stage 2: the rest up to ``max_iter`` with P multiplied by ``exaggeration`` (1: the plain P,
    as scikit-learn), step ``final_learning_rate`` and momentum 0.8 (optimiser state reset in
    between, as in scikit-learn).
    The returned KL divergence is the last one evaluated, i.e. at the start of the final
    iteration, of the plain P; if stage 2 ran no iteration, or ran with ``exaggeration != 1``,
    it is evaluated (plain P) at the final embedding.

    Args:
      objective, operands: the objective and its tensors (see the module docstring).
      y0: (N, d) initial embedding.
      early_exaggeration, max_iter, n_iter_without_progress, min_grad_norm, exaggeration: as
        :class:`tfclust.tsne.TSNE`.
      learning_rate: the step of stage 1, and of stage 2 when ``final_learning_rate`` is None
        (scikit-learn's single learning rate).
      final_learning_rate: the step of stage 2 (openTSNE's schedule raises it); None
        (default): ``learning_rate``.
      log_level: level of the per-chunk progress lines.
      summary_level: level of the end-of-stage lines.
      verbose: print the end-of-stage lines when >= 1, the per-chunk ones when >= 2.
      callback, callback_every: as :func:`gradient_descent`, over both stages (a true result
        of the callback also skips the rest of the stages).

    Returns:
      :class:`DescentResult` with ``last_iter`` as scikit-learn's ``n_iter_``.

    Raises:
      FloatingPointError: the KL divergence, gradient or embedding became non-finite (the
        descent diverged: learning rate or exaggeration too large).
    """
    final_learning_rate = learning_rate if final_learning_rate is None else final_learning_rate
    common = dict(
        min_grad_norm=min_grad_norm,
        log_level=log_level,
        verbose=verbose,
        callback=callback,
        callback_every=callback_every,
    )
    result = gradient_descent(
        objective,
        operands,
        y0,
        start=0,
        stop=min(EXPLORATION_ITER, max_iter),
        momentum=0.5,
        learning_rate=learning_rate,
        exaggeration=early_exaggeration,
        n_iter_without_progress=EXPLORATION_ITER,
        **common,
    )
    report(
        verbose,
        1,
        summary_level,
        "[t-SNE] KL divergence after %d iterations with early exaggeration: %f",
        result.last_iter + 1,
        result.kl_divergence,
    )
    if not result.stopped:
        result = gradient_descent(
            objective,
            operands,
            result.embedding,
            start=result.last_iter + 1,
            stop=max_iter,
            momentum=0.8,
            learning_rate=final_learning_rate,
            exaggeration=exaggeration,
            n_iter_without_progress=n_iter_without_progress,
            **common,
        )
    # A callback's stop in the early exaggeration stage also leaves an exaggerated KL.
    exaggerated = exaggeration != 1.0 or result.last_iter < EXPLORATION_ITER
    return _finished(
        objective, operands, result, exaggerated, final_learning_rate, verbose, summary_level
    )


def _finished(objective, operands, result, exaggerated, learning_rate, verbose, summary_level):
    """``result`` with the plain P's KL divergence at its final embedding if ``exaggerated`` (or
    if no iteration reported one); raises ``FloatingPointError`` on a non-finite outcome."""
    y, kl, last = result.embedding, result.kl_divergence, result.last_iter
    if kl is None or exaggerated:
        objective = objective.at_extent(float(objective.extent(y, *operands)))
        kl_program = _kl_program(objective, *_shape_key(y, operands))
        kl = float(kl_program(y, tf.constant(1.0, y.dtype), *operands))
    if not (math.isfinite(kl) and bool(tf.reduce_all(tf.math.is_finite(y)))):
        raise FloatingPointError(
            f"the embedding or its KL divergence ({kl}) became non-finite after {last + 1} "
            f"iterations (learning_rate {learning_rate:g})"
        )
    report(verbose, 1, summary_level, "[t-SNE] KL divergence after %d iterations: %f", last + 1, kl)
    return result._replace(kl_divergence=kl)


def continued_descent(
    objective,
    operands,
    y,
    *,
    start: int,
    n_iter: int,
    momentum: float,
    learning_rate: float,
    exaggeration: float,
    n_iter_without_progress: int,
    min_grad_norm: float,
    log_level: int = logging.DEBUG,
    summary_level: int = logging.DEBUG,
    verbose: int = 0,
    callback=None,
    callback_every: int = N_ITER_CHECK,
) -> DescentResult:
    """``n_iter`` more iterations (absolute indices ``start ..``) of one stage from ``y``, with
    fresh optimiser state (openTSNE's ``TSNEEmbedding.optimize``).

    Arguments as :func:`gradient_descent` and :func:`tsne_descent`; the returned KL divergence
    is of the plain P (evaluated at the final embedding when ``exaggeration != 1``).

    Raises:
      FloatingPointError: as :func:`tsne_descent`.
    """
    result = gradient_descent(
        objective,
        operands,
        y,
        start=start,
        stop=start + n_iter,
        momentum=momentum,
        learning_rate=learning_rate,
        exaggeration=exaggeration,
        n_iter_without_progress=n_iter_without_progress,
        min_grad_norm=min_grad_norm,
        log_level=log_level,
        verbose=verbose,
        callback=callback,
        callback_every=callback_every,
    )
    return _finished(
        objective, operands, result, exaggeration != 1.0, learning_rate, verbose, summary_level
    )
