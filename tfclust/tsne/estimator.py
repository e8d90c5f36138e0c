"""The ``TSNE`` estimator: scikit-learn's interface over the XLA kernels of this package."""

from __future__ import annotations

import logging
import time
import types

import numpy as np
import tensorflow as tf

from tfclust._base import BaseEstimator, prefixed_feature_names
from tfclust._compile import specialised
from tfclust._tiling import DEFAULT_MEMORY_BUDGET, pad_rows, padded_size
from tfclust._validation import (
    INT32_MAX,
    check_array,
    check_float,
    check_int,
    check_random_state,
    max_abs,
    power_of_two_scale,
    resolve_dtype,
)
from tfclust.tsne.affinities import (
    binary_search_perplexity,
    joint_probabilities,
    n_neighbors_for_perplexity,
    nearest_neighbors,
)
from tfclust.tsne.gradients import ExactObjective, FFTObjective
from tfclust.tsne.optimize import pca_embedding, random_embedding, tsne_descent

__all__ = ["TSNE"]

logger = logging.getLogger("tfclust.tsne")

_METHODS = ("fft", "exact")
_FFT_COMPONENTS = (1, 2)


class TSNE(BaseEstimator):
    """t-distributed Stochastic Neighbor Embedding, compiled with XLA.

    Parameters and defaults follow ``sklearn.manifold.TSNE``, with FIt-SNE's interpolation
    method in place of Barnes-Hut (and openTSNE's names for its settings):

    Args:
      n_components: dimension of the embedding (>= 1; 1 or 2 for ``method="fft"``).
      perplexity: perplexity of the input-space Gaussians, 0 < perplexity < n_samples.
      early_exaggeration: factor (>= 1) on P during the first 250 iterations.
      learning_rate: step size (> 0), or ``"auto"``: ``max(n_samples / early_exaggeration / 4,
        50)``. scikit-learn's scale: 4x openTSNE's/FIt-SNE's (whose gradients omit the factor 4),
        so openTSNE's ``learning_rate=N/12`` is this ``N/48``, the "auto" value.
      max_iter: total iterations (250 .. 2**31 - 1), early exaggeration included.
      n_iter_without_progress: stop when the KL divergence has not improved for more than this
        many iterations (checked every 50, after the exaggeration stage).
      min_grad_norm: stop when the gain-scaled gradient norm falls to this (checked every 50).
      init: ``"pca"`` (principal components scaled to standard deviation 1e-4, signs as
        scikit-learn's PCA), ``"random"`` (Gaussian, std 1e-4) or an array of shape
        (n_samples, n_components).
      verbose: 0 logs per-chunk progress (iteration, KL divergence, gradient norm, seconds; one
        line per 50 iterations) at DEBUG level on the ``tfclust.tsne`` logger; >= 1 at INFO.
        Fit start/end and stage timings are INFO. Configure ``logging`` to see them.
      random_state: None (fresh entropy) or an int seed in 0 .. 2**32 - 1, used by
        ``init="random"``; the same seed gives the same embedding on the same device.
      method: ``"fft"`` (default; n_components 1 or 2): P over each point's
        ``3 * perplexity + 1`` exact nearest neighbours (tiled matmul + top-k) and the repulsion
        by FFT interpolation on a grid (:mod:`tfclust.tsne.fft`); O(N) time per iteration
        (plus the grid's G log G) and O(N k + G) memory. ``"exact"``: all pairs, any
        n_components, O(N^2) time per iteration and a dense (N, N) P in memory (scikit-learn's
        exact method, for small N).
      n_interpolation_points: ``"fft"``: an int n is openTSNE's scheme, n grid nodes per
        interval and axis, each point interpolated from the n nodes nearest to it per axis.
        ``"auto"`` (default): in 2-D, 2 nodes per interval and 4-node stencils, nodes 0.4 units
        apart at the default ``ints_in_interval``. On Fashion-MNIST latents at n = 5,000 (the
        tutorial's settings) this ends at KL divergence 1.3750 in 2.1 s; 4-node stencils 0.33
        units apart end at 1.3697 in 2.7 s, 0.5 apart at 1.388 in 1.6 s, and odd stencils are
        biased (5 nodes 0.5 apart: 1.431). In 1-D, 5 nodes (3 nodes cost ~5% of KL divergence
        there, and 1-D grids are cheap).
      min_num_intervals: ``"fft"``: fewest grid intervals per axis (32; openTSNE's is 50). Only
        small embeddings (early exaggeration) use it, whose nodes are then closer than the
        ``ints_in_interval`` spacing asks. At n = 5,000, 32 instead of 50 saved ~3% of the warm
        time at the same final KL divergence (to 1e-3), for two more compiled grid sizes
        (+0.6 s of compilation; 20 saved no more and cost 1.8 s).
      ints_in_interval: ``"fft"``: interval side in embedding units (0.8; smaller is finer;
        openTSNE's default is 1 with 3 nodes per interval, nodes 0.33 units apart).
      max_num_intervals: ``"fft"``: most intervals per axis, the static grid size XLA compiles
        for (250). Embeddings wider than ``max_num_intervals * ints_in_interval`` units (200 at
        the defaults; t-SNE of 5,000 or 60,000 latents spans ~165) get wider intervals (less
        accurate forces) instead of a larger grid.
      dof: ``"fft"``: degrees of freedom ``a`` of the heavy-tailed kernel
        ``(1 + d^2 / a)^-a`` (openTSNE's ``dof``; Kobak et al. 2019): 1 is standard t-SNE, lower
        values separate finer clusters. ``"exact"`` uses scikit-learn's kernel and needs 1.
      exaggeration: factor (>= 1) on P after the early-exaggeration stage (openTSNE's "late
        exaggeration"); None or 1 for none.
      dtype: ``"float32"`` (default) or ``"float64"`` (for comparisons with scikit-learn). X
        so large (or small) that its squared distances would overflow (or underflow) the dtype
        is scaled by a power of two first: P does not depend on the scale of X.
      memory_budget: bytes one tile of pairwise work (distances, k-NN search) may take.

    A descent that diverges (a non-finite embedding or KL divergence, e.g. from a huge
    ``learning_rate`` or ``early_exaggeration``) raises ``FloatingPointError`` naming the
    parameters to lower; a NaN embedding is never returned.

    Compilation (``method="fft"``): the programs are compiled per size bucket of n_samples and
    of the neighbour count (4 per doubling, padding rows and edges carry no probability or
    charge), so a new N or perplexity within a bucket costs no compilation, and they persist on
    disk across processes (see ``docs/compilation_cache.md``).

    Fitted attributes: ``embedding_`` ((n_samples, n_components) numpy array of ``dtype``),
    ``kl_divergence_`` (float, nats: KL(P || Q) at the start of the last iteration, or at the
    final embedding with late exaggeration; for ``"fft"`` it is exact given the interpolated
    normaliser Z, see :func:`tfclust.tsne.gradients.directed_kl_divergence`),
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
        method="fft",
        n_interpolation_points="auto",
        min_num_intervals=32,
        ints_in_interval=0.8,
        max_num_intervals=250,
        dof=1.0,
        exaggeration=None,
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
        self.n_interpolation_points = n_interpolation_points
        self.min_num_intervals = min_num_intervals
        self.ints_in_interval = ints_in_interval
        self.max_num_intervals = max_num_intervals
        self.dof = dof
        self.exaggeration = exaggeration
        self.dtype = dtype
        self.memory_budget = memory_budget

    def _check_params(self):
        """Validate the constructor arguments; return them as a namespace of plain Python values
        (``int(...)`` of numpy integers: the kernels never see the raw attributes), with
        ``dtype`` (a ``tf.DType``) and ``seed`` (from ``random_state``)."""
        p = types.SimpleNamespace(
            n_components=check_int(self.n_components, name="n_components", low=1, high=INT32_MAX),
            perplexity=check_float(
                self.perplexity, name="perplexity", low=0.0, low_inclusive=False
            ),
            early_exaggeration=check_float(
                self.early_exaggeration, name="early_exaggeration", low=1.0
            ),
            max_iter=check_int(self.max_iter, name="max_iter", low=250, high=INT32_MAX),
            n_iter_without_progress=check_int(
                self.n_iter_without_progress, name="n_iter_without_progress", low=-1, high=INT32_MAX
            ),
            min_grad_norm=check_float(self.min_grad_norm, name="min_grad_norm", low=0.0),
            verbose=check_int(self.verbose, name="verbose", low=0),
            memory_budget=check_int(self.memory_budget, name="memory_budget", low=1),
            dof=check_float(self.dof, name="dof", low=0.0, low_inclusive=False),
            exaggeration=1.0
            if self.exaggeration is None
            else check_float(self.exaggeration, name="exaggeration", low=1.0),
        )
        if isinstance(self.learning_rate, str):
            if self.learning_rate != "auto":
                raise ValueError(
                    f"learning_rate must be 'auto' or a positive number, got {self.learning_rate!r}"
                )
            p.learning_rate = "auto"
        else:
            p.learning_rate = check_float(
                self.learning_rate, name="learning_rate", low=0.0, low_inclusive=False
            )
        if not isinstance(self.method, str) or self.method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {self.method!r}")
        p.method = self.method
        if p.method == "fft":
            if p.n_components not in _FFT_COMPONENTS:
                raise ValueError(
                    f"method='fft' supports n_components 1 and 2, got n_components="
                    f"{p.n_components}; use method='exact'"
                )
            if isinstance(self.n_interpolation_points, str):
                if self.n_interpolation_points != "auto":
                    raise ValueError(
                        "n_interpolation_points must be 'auto' or a positive integer, got "
                        f"{self.n_interpolation_points!r}"
                    )
                p.nodes, p.stencil = (2, 4) if p.n_components == 2 else (5, None)
            else:
                p.nodes = check_int(
                    self.n_interpolation_points,
                    name="n_interpolation_points",
                    low=1,
                    high=INT32_MAX,
                )
                p.stencil = None
            p.min_num_intervals = check_int(
                self.min_num_intervals, name="min_num_intervals", low=1, high=INT32_MAX
            )
            p.max_num_intervals = check_int(
                self.max_num_intervals,
                name="max_num_intervals",
                low=p.min_num_intervals,
                high=INT32_MAX,
            )
            # The largest grid's FFT has (2 * nodes per axis) ** n_components entries.
            if (2 * p.nodes * p.max_num_intervals) ** p.n_components > INT32_MAX:
                raise ValueError(
                    f"max_num_intervals={p.max_num_intervals} with n_interpolation_points="
                    f"{p.nodes} makes a grid of more than 2**31 - 1 nodes; lower them"
                )
            p.ints_in_interval = check_float(
                self.ints_in_interval, name="ints_in_interval", low=0.0, low_inclusive=False
            )
        elif p.dof != 1.0:
            raise ValueError(f"dof={p.dof} needs method='fft' (method='exact' uses dof 1)")
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
        p.dtype = resolve_dtype(self.dtype)
        p.seed = check_random_state(self.random_state)
        return p

    def _initial_embedding(self, p, x):
        n, n_features = x.shape
        if isinstance(self.init, str) and self.init == "pca":
            if p.n_components > n_features:
                raise ValueError(
                    f"init='pca' needs n_components ({p.n_components}) <= n_features ({n_features})"
                )
            return pca_embedding(x, p.n_components)
        if isinstance(self.init, str):
            return random_embedding(n, p.n_components, p.seed, p.dtype)
        y0 = check_array(self.init, name="init", dtype=p.dtype)
        if tuple(y0.shape) != (n, p.n_components):
            raise ValueError(
                f"init must have shape (n_samples, n_components) = ({n}, {p.n_components}), "
                f"got {tuple(y0.shape)}"
            )
        return y0

    def _objective(self, p, x):
        """The method's objective, its operands (P in the form the method needs) and the rows
        the descent runs on: N for ``"exact"``, N's size bucket for ``"fft"`` (padding rows
        carry no P and no charge, so every N of a bucket shares one compiled program)."""
        perplexity = p.perplexity
        n = x.shape[0]
        if p.method == "exact":
            p_joint = joint_probabilities(x, perplexity, p.memory_budget)
            objective = ExactObjective.for_problem(n, p.n_components, x.dtype, p.memory_budget)
            return objective, objective.operands(p_joint), n
        tic = time.perf_counter()
        k = n_neighbors_for_perplexity(n, perplexity)
        neighbors, sq_distances = nearest_neighbors(x, k, p.memory_budget)
        logger.info("[t-SNE] Computed %d nearest neighbors in %.3fs", k, time.perf_counter() - tic)
        # Rows and neighbours padded to their size buckets: the padding rows and columns are
        # edges from a point to itself without probability, which change no force or sum.
        n_pad, k_pad = padded_size(n), padded_size(k)
        rows = tf.range(n_pad)
        real = rows < n
        # The padding rows search at the last row's distances, so that they converge with it.
        sq_distances = tf.gather(sq_distances, tf.minimum(rows, n - 1))
        # All rows are searched at once: (N, k) temporaries are O(N k) like the rest.
        search = specialised(binary_search_perplexity, n_pad, k, x.dtype)
        p_cond = search(sq_distances, tf.constant(perplexity, x.dtype))
        p_cond = tf.pad(tf.where(real[:, None], p_cond, 0.0), [[0, 0], [0, k_pad - k]])
        neighbors = tf.pad(pad_rows(neighbors, n_pad), [[0, 0], [0, k_pad - k]])
        neighbors = tf.where(real[:, None] & (tf.range(k_pad) < k), neighbors, rows[:, None])
        objective = FFTObjective(
            n_interpolation_points=p.nodes,
            stencil_size=p.stencil,
            min_num_intervals=p.min_num_intervals,
            ints_in_interval=p.ints_in_interval,
            max_num_intervals=p.max_num_intervals,
            dof=p.dof,
        )
        charge = tf.cast(real, x.dtype)
        return objective, objective.operands(neighbors, p_cond, p.memory_budget, charge), n_pad

    def fit(self, X, y=None):
        """Embed ``X``.

        Args:
          X: (n_samples, n_features) array-like or tensor, n_samples >= 2, finite.
          y: ignored.

        Returns:
          self.

        Raises:
          FloatingPointError: the optimisation diverged (non-finite embedding or KL divergence);
            lower ``learning_rate`` or ``early_exaggeration`` (or ``exaggeration``).
        """
        p = self._check_params()
        dtype = p.dtype
        x = check_array(X, name="X", dtype=dtype, min_samples=2)
        n, n_features = x.shape
        if p.perplexity >= n:
            raise ValueError(f"perplexity ({p.perplexity}) must be less than n_samples ({n})")
        # P is invariant to the scale of X: rescale (exactly) data whose squared distances
        # would overflow or underflow; float32's range even for float64, as the k-NN search
        # ranks float32 keys.
        scale = power_of_two_scale(max_abs(x), n_features, tf.float32)
        if scale != 1.0:
            x = x * scale
        y0 = self._initial_embedding(p, x)
        if p.learning_rate == "auto":
            learning_rate = max(n / p.early_exaggeration / 4.0, 50.0)
        else:
            learning_rate = p.learning_rate

        t0 = time.perf_counter()
        logger.info(
            "TSNE fit start: %d x %d, perplexity=%g, method=%s, dtype=%s",
            n,
            n_features,
            p.perplexity,
            p.method,
            dtype.name,
        )
        objective, operands, n_rows = self._objective(p, x)
        logger.info("[t-SNE] Computed joint probabilities in %.3fs", time.perf_counter() - t0)
        level = logging.INFO if p.verbose else logging.DEBUG
        try:
            result = tsne_descent(
                objective,
                operands,
                pad_rows(y0, n_rows),
                early_exaggeration=p.early_exaggeration,
                exaggeration=p.exaggeration,
                learning_rate=learning_rate,
                max_iter=p.max_iter,
                n_iter_without_progress=p.n_iter_without_progress,
                min_grad_norm=p.min_grad_norm,
                log_level=level,
                summary_level=level,
            )
        except FloatingPointError as err:
            raise FloatingPointError(
                f"TSNE diverged: {err}. Lower learning_rate (here {learning_rate:g}) or "
                f"early_exaggeration (here {p.early_exaggeration:g})"
                + ("" if p.exaggeration == 1.0 else f" or exaggeration (here {p.exaggeration:g})")
                + (f", or raise dof (here {p.dof:g})" if p.dof != 1.0 else "")
            ) from err
        self.embedding_ = result.embedding.numpy()[:n]
        self.kl_divergence_ = float(result.kl_divergence)
        self.n_iter_ = int(result.last_iter)
        self.learning_rate_ = float(learning_rate)
        self.n_features_in_ = int(n_features)
        logger.info(
            "TSNE fit end: KL divergence %.6f after %d iterations, %.3f s",
            self.kl_divergence_,
            self.n_iter_ + 1,
            time.perf_counter() - t0,
        )
        return self

    _fitted_attribute = "embedding_"

    def fit_transform(self, X, y=None):
        """Embed ``X`` and return ``embedding_`` ((n_samples, n_components) numpy array)."""
        return self.fit(X).embedding_

    def get_feature_names_out(self, input_features=None):
        """Names of the embedding's columns: ``["tsne0", "tsne1", ...]``, as scikit-learn."""
        return prefixed_feature_names(self, "embedding_", input_features)
