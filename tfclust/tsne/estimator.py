"""The ``TSNE`` estimator: scikit-learn's interface over the XLA kernels of this package."""

from __future__ import annotations

import functools
import logging
import time
import types

import numpy as np
import tensorflow as tf

from tfclust import _ann
from tfclust._base import BaseEstimator, prefixed_feature_names
from tfclust._neighbors import METRICS, nearest_reference_neighbors
from tfclust._tiling import pad_rows, padded_size
from tfclust._validation import (
    INT32_MAX,
    check_array,
    check_float,
    check_int,
    check_is_fitted,
    check_memory_budget,
    check_random_state,
    fit_dtype,
    max_abs,
    power_of_two_scale,
)
from tfclust.tsne.affinities import (
    bucketed_conditionals,
    dense_calibrated_conditionals,
    n_neighbors_for_perplexity,
    nearest_neighbors,
    symmetrised,
)
from tfclust.tsne.distances import (
    check_distances,
    host_distances,
    host_neighbors,
    is_sparse,
    resolve_metric,
    sparse_neighbors,
)
from tfclust.tsne.fft import (
    INTS_IN_INTERVAL,
    MAX_NUM_INTERVALS,
    MIN_NUM_INTERVALS,
    default_nodes,
    grid_intervals,
)
from tfclust.tsne.gradients import ExactObjective, FFTObjective
from tfclust.tsne.optimize import (
    continued_descent,
    pca_embedding,
    random_embedding,
    report,
    tsne_descent,
)
from tfclust.tsne.placement import GRID_PADDING, place_points

__all__ = ["TSNE"]

logger = logging.getLogger("tfclust.tsne")

_METHODS = ("fft", "barnes_hut", "exact")
_NEIGHBORS = ("auto", "exact", "approx")
# neighbors="auto" searches approximately from this many samples on (docs/large_n.md).
APPROX_NEIGHBORS_FROM = 30000
# method="fft" sums the repulsion exactly below this many samples (docs/tsne_grid.md).
EXACT_REPULSION_BELOW = 1500
_FFT_COMPONENTS = (1, 2)
# Metrics whose distances scale with X (all but cosine): their X is rescaled to magnitudes
# in [0.5, 1) (exactly, by a power of two) so that squared manhattan or sqeuclidean distances
# neither overflow nor underflow; P does not depend on the scale of the distances.
_SCALE_FREE_METRICS = ("euclidean", "cosine")


def _distance_scale(distances) -> float:
    """The power of two that brings the largest of (precomputed or host-computed) distances to
    [0.5, 1), so that their squares neither overflow nor underflow (P does not depend on it)."""
    return power_of_two_scale(max_abs(distances), 1, tf.float32, always=True)


def _mean_sigma(beta, sigma_scale: float) -> float:
    """scikit-learn's verbose "Mean sigma": ``sqrt(N / sum(beta))``, in the units of the
    distances before their rescaling by ``sigma_scale``."""
    beta = np.asarray(beta, np.float64)
    return float(np.sqrt(beta.size / beta.sum()) / sigma_scale)


class TSNE(BaseEstimator):
    """t-distributed Stochastic Neighbor Embedding, compiled with XLA.

    Parameters and defaults follow ``sklearn.manifold.TSNE``, with FIt-SNE's interpolation
    method in place of Barnes-Hut (and openTSNE's names for its settings):

    Args:
      n_components: dimension of the embedding (>= 1; 1 or 2 for ``method="fft"`` and
        ``"barnes_hut"``).
      perplexity: perplexity of the input-space Gaussians, 0 < perplexity < n_samples.
      early_exaggeration: factor (>= 1) on P during the first 250 iterations.
      learning_rate: step size (> 0) of both stages, or ``"auto"`` (default). For ``"fft"``,
        openTSNE's rule, per stage: ``max(n_samples / early_exaggeration / 4, 50)`` during
        early exaggeration, then ``max(n_samples / exaggeration / 4, 50)`` (``n_samples / 4``
        without late exaggeration); the momentum stays scikit-learn's (0.5, then 0.8) and steps
        are not clipped (measurements: ``docs/tsne_schedule.md``). For ``"exact"``,
        scikit-learn's: ``max(n_samples / early_exaggeration / 4, 50)`` for both stages.
        scikit-learn's scale: 4x openTSNE's/FIt-SNE's (whose gradients omit the factor 4), so
        openTSNE's ``learning_rate=N/12`` is this ``N/48``.
      max_iter: total iterations (250 .. 2**31 - 1), early exaggeration included.
      n_iter_without_progress: stop when the KL divergence has not improved for more than this
        many iterations (checked every 50, after the exaggeration stage).
      min_grad_norm: stop when the gain-scaled gradient norm falls to this (checked every 50).
      metric: distance between samples (default ``"euclidean"``), scikit-learn's semantics: the
        Gaussians of P are on squared distances ``d(x_i, x_j) ** 2`` (so ``"sqeuclidean"``
        enters squared again, as in scikit-learn). Computed by the XLA kernels in row tiles
        (k-NN search for ``"fft"``, all pairs for ``"exact"``, never N x N memory for
        ``"fft"``): ``"euclidean"`` (``"l2"``), ``"sqeuclidean"``, ``"cosine"`` (euclidean on
        the L2-normalised rows; a zero row is at distance 1 from all others),
        ``"manhattan"`` (``"l1"``, ``"cityblock"``; broadcast differences, tiles of
        ``memory_budget``), ``"chebyshev"``; ``"precomputed"``: X is the (n_samples,
        n_samples) distance matrix, square and non-negative (``init="pca"`` is then refused),
        or, for ``"fft"``/``"barnes_hut"``, a scipy sparse k-NN graph whose missing entries
        are non-neighbours (every row needs ``min(n_samples - 1, 3 * perplexity + 1)``
        entries besides its own). Computed by scipy on the host, in row tiles:
        ``"braycurtis"``, ``"canberra"``, ``"correlation"``, ``"mahalanobis"`` (needs
        ``metric_params`` ``V`` or ``VI``), ``"minkowski"``, ``"seuclidean"`` (needs ``V``),
        and a callable ``metric(u, v) -> float`` of two rows (called once per pair, in Python:
        small N only). Computed distances that are negative or not finite raise ValueError.
      metric_params: dict of keyword arguments of the scipy-computed metrics (e.g.
        ``{"p": 3}`` for minkowski), or None (default); the kernels' metrics take none.
      init: ``"pca"`` (principal components scaled to standard deviation 1e-4, signs as
        scikit-learn's PCA), ``"random"`` (Gaussian, std 1e-4) or an array of shape
        (n_samples, n_components).
      verbose: 0 (default) prints nothing; as scikit-learn's, ``verbose >= 1`` prints the
        neighbour search, the conditional probabilities, the mean sigma and the KL divergence
        after each stage to stdout, and ``verbose >= 2`` the per-chunk progress lines
        (iteration, KL divergence, gradient norm, seconds; one per 50 iterations). Whatever
        ``verbose``, the same lines, fit start/end and stage timings are logged at INFO level
        on the ``tfclust.tsne`` logger (configure ``logging`` to see them).
      random_state: None (fresh entropy), an int seed in 0 .. 2**32 - 1, or a numpy
        ``RandomState``/``Generator`` (one seed drawn per fit), used by ``init="random"``; the
        same seed gives the same embedding on the same device.
      method: ``"fft"`` (default; n_components 1 or 2): P over each point's
        ``3 * perplexity + 1`` exact nearest neighbours (tiled matmul + top-k) and the repulsion
        by FFT interpolation on a grid (:mod:`tfclust.tsne.fft`); O(N) time per iteration
        (plus the grid's G log G) and O(N k + G) memory. Below 1,500 samples the repulsion is
        summed exactly over all pairs instead (``EXACT_REPULSION_BELOW``): faster there, and one
        compiled program rather than one per grid size the growing embedding crosses.
        ``"exact"``: all pairs, any n_components, O(N^2) time per iteration and a dense (N, N)
        P in memory (scikit-learn's exact method, for small N). ``"barnes_hut"``: alias of
        ``"fft"``, the approximate gradient, kept for scikit-learn users (n_components 1 or 2;
        scikit-learn's 3 needs ``"exact"`` here).
      angle: scikit-learn's Barnes-Hut accuracy knob, in [0, 1] (default 0.5); validated as
        scikit-learn does but changes nothing: the FFT method's accuracy is set by
        ``n_interpolation_points`` and ``ints_in_interval``.
      n_jobs: None (default) or an int, validated as scikit-learn does but changes nothing:
        TensorFlow's thread pools are process-wide (``tf.config.threading``).
      neighbors: the k-NN search of ``"fft"``'s P (openTSNE's name): ``"exact"`` (tiled
        matmul + top-k over all points, O(N^2) time), ``"approx"`` (an inverted file over
        K-means lists, :mod:`tfclust._ann`: each point's neighbours are sought among the
        points of the lists nearest its own; about 98.5% of the exact neighbours, in a fraction
        of the exact search's time, docs/large_n.md; metrics
        ``"euclidean"``, ``"sqeuclidean"`` and ``"cosine"`` only; the K-means is seeded by
        ``random_state``) or ``"auto"`` (default): ``"approx"`` from 30,000 samples on for
        those metrics (where it measured faster than ``"exact"``, compilation included,
        docs/large_n.md), else ``"exact"``.
        Ignored by ``method="exact"``, which uses all pairs.
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
      callbacks: openTSNE's callbacks: None (default), a callable or a list of callables
        ``callback(iteration, kl_divergence, embedding)`` called every
        ``callbacks_every_iters`` iterations (``iteration``: iterations run so far, early
        exaggeration included; ``kl_divergence``: float, at the start of the last of them, of
        the exaggerated P during early exaggeration; ``embedding``: (n_samples, n_components)
        numpy array). A callback returning True stops the optimisation (fit or
        :meth:`optimize`) there. Without callbacks the descent makes no extra host round trip.
      callbacks_every_iters: iterations between callback calls (int >= 1, default 50).
      dtype: ``"float32"`` (default): X is cast to float32 and the embedding is float32
        whatever the input, as scikit-learn's TSNE (its test_64bit); ``"float64"``; or None:
        X's own dtype when it is float32 or float64, else float32. X so large (or small) that
        its squared distances would overflow (or underflow) the dtype is scaled by a power of
        two first: P does not depend on the scale of X.
      memory_budget: bytes one tile of pairwise work (distances, k-NN search) may take; None
        (default): the device profile's (256 MiB on a CPU, 2 GiB on a GPU or TPU).

    A descent that diverges (a non-finite embedding or KL divergence, e.g. from a huge
    ``learning_rate`` or ``early_exaggeration``) raises ``FloatingPointError`` naming the
    parameters to lower; a NaN embedding is never returned.

    Compilation (``method="fft"``): the programs are compiled per size bucket of n_samples and
    of the neighbour count (4 per doubling, padding rows and edges carry no probability or
    charge) and per eighth of the k-NN edges that are one-way (43% of them on the 250,000
    Fashion-MNIST latents at perplexity 30, docs/large_n.md), so a new N or perplexity within
    a bucket mostly costs no compilation, and they persist on disk across processes (see
    ``docs/compilation_cache.md``).

    Fitted attributes: ``embedding_`` ((n_samples, n_components) numpy array of ``dtype``),
    ``kl_divergence_`` (float, nats: KL(P || Q) at the start of the last iteration, or at the
    final embedding with late exaggeration; for ``"fft"`` it is exact given the interpolated
    normaliser Z, see :func:`tfclust.tsne.gradients.directed_kl_divergence`),
    ``n_iter_`` (int, index of the last iteration run, as scikit-learn: 999 for max_iter=1000),
    ``learning_rate_`` (float: the learning rate of the last stage, the one :meth:`optimize`
    continues with; for ``"fft"`` with ``learning_rate="auto"`` the early-exaggeration stage
    used ``max(n_samples / early_exaggeration / 4, 50)``), ``n_features_in_`` (int), and the
    affinities that :meth:`optimize` continues from (numpy arrays, so the estimator
    pickles): ``neighbors_`` ((n_samples, k) int32 array, each point's k nearest neighbours,
    nearest first, for ``"fft"``; None for ``"exact"``) and ``affinities_`` (``"fft"``:
    (n_samples, k) array of the conditional probabilities ``p_{j|i}`` over ``neighbors_``;
    ``"exact"``: the (n_samples, n_samples) joint probabilities P). For :meth:`transform` the
    fit also keeps X as the kernels searched it (its metrics only; for ``"precomputed"`` just
    n_samples), so a fitted TSNE pickles and saves (:mod:`tfclust.persistence`) with what it
    needs.

    Examples:
      >>> import numpy as np
      >>> from tfclust import TSNE
      >>> X = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
      >>> tsne = TSNE(n_components=2, perplexity=3, random_state=0)
      >>> Y = tsne.fit_transform(X)
      >>> Y.shape, Y.dtype  # float32, as scikit-learn's TSNE
      ((4, 2), dtype('float32'))
      >>> fitted = tsne.n_iter_  # 999, or fewer if the gradient vanished (min_grad_norm)
      >>> tsne = tsne.optimize(50)  # 50 more iterations from the fitted map
      >>> tsne.n_iter_ - fitted
      50
      >>> tsne.transform([[0, 0, 0.1], [1, 1, 0.9]], perplexity=2).shape  # on the fixed map
      (2, 2)
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
        metric="euclidean",
        metric_params=None,
        init="pca",
        verbose=0,
        random_state=None,
        method="fft",
        angle=0.5,
        n_jobs=None,
        neighbors="auto",
        n_interpolation_points="auto",
        min_num_intervals=MIN_NUM_INTERVALS,
        ints_in_interval=INTS_IN_INTERVAL,
        max_num_intervals=MAX_NUM_INTERVALS,
        dof=1.0,
        exaggeration=None,
        callbacks=None,
        callbacks_every_iters=50,
        dtype="float32",
        memory_budget=None,
    ):
        self.n_components = n_components
        self.perplexity = perplexity
        self.early_exaggeration = early_exaggeration
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.n_iter_without_progress = n_iter_without_progress
        self.min_grad_norm = min_grad_norm
        self.metric = metric
        self.metric_params = metric_params
        self.init = init
        self.verbose = verbose
        self.random_state = random_state
        self.method = method
        self.angle = angle
        self.n_jobs = n_jobs
        self.neighbors = neighbors
        self.n_interpolation_points = n_interpolation_points
        self.min_num_intervals = min_num_intervals
        self.ints_in_interval = ints_in_interval
        self.max_num_intervals = max_num_intervals
        self.dof = dof
        self.exaggeration = exaggeration
        self.callbacks = callbacks
        self.callbacks_every_iters = callbacks_every_iters
        self.dtype = dtype
        self.memory_budget = memory_budget

    def _check_params(self, X):
        """Validate the constructor arguments; return them as a namespace of plain Python values
        (``int(...)`` of numpy integers: the kernels never see the raw attributes), with
        ``dtype`` (a ``tf.DType``: X's when the ``dtype`` parameter is None) and ``seed`` (from
        ``random_state``)."""
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
            verbose=check_int(  # a bool counts as 0/1, as scikit-learn's
                int(self.verbose) if isinstance(self.verbose, bool) else self.verbose,
                name="verbose",
                low=0,
            ),
            memory_budget=check_memory_budget(self.memory_budget),
            dof=check_float(self.dof, name="dof", low=0.0, low_inclusive=False),
            exaggeration=1.0
            if self.exaggeration is None
            else check_float(self.exaggeration, name="exaggeration", low=1.0),
            angle=check_float(self.angle, name="angle", low=0.0, high=1.0),
            callbacks_every_iters=check_int(
                self.callbacks_every_iters, name="callbacks_every_iters", low=1, high=INT32_MAX
            ),
            sigma_scale=1.0,  # the factor of the distances, once fit has rescaled them
        )
        if self.n_jobs is not None:
            check_int(self.n_jobs, name="n_jobs")
        p.metric, p.metric_params = resolve_metric(self.metric, self.metric_params)
        callbacks = self.callbacks
        if callbacks is None:
            callbacks = []
        elif callable(callbacks):
            callbacks = [callbacks]
        p.callbacks = list(callbacks) if isinstance(callbacks, list | tuple) else None
        if p.callbacks is None or not all(callable(c) for c in p.callbacks):
            raise TypeError(
                f"callbacks must be None, a callable or a list of callables, got {callbacks!r}"
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
        p.method = "fft" if self.method == "barnes_hut" else self.method
        if not isinstance(self.neighbors, str) or self.neighbors not in _NEIGHBORS:
            raise ValueError(f"neighbors must be one of {_NEIGHBORS}, got {self.neighbors!r}")
        p.neighbors = self.neighbors
        if p.neighbors == "approx" and p.method == "fft" and p.metric not in _ann.METRICS:
            raise ValueError(
                f"neighbors='approx' supports the metrics {_ann.METRICS}, got metric="
                f"{p.metric!r}; use neighbors='exact'"
            )
        if self.method == "barnes_hut" and p.n_components > 3:
            raise ValueError(
                "'n_components' should be inferior to 4 for the barnes_hut algorithm as it "
                "relies on quad-tree or oct-tree."
            )
        if p.method == "fft":
            if self.method == "barnes_hut" and p.n_components not in _FFT_COMPONENTS:
                raise ValueError(
                    "method='barnes_hut' runs the FFT-interpolated method (an alias of 'fft'), "
                    f"which supports n_components 1 and 2, got n_components={p.n_components}; "
                    "use method='exact'"
                )
            if p.n_components not in _FFT_COMPONENTS:
                raise ValueError(
                    f"method='fft' supports n_components 1 and 2, got n_components="
                    f"{p.n_components}; use method='exact'"
                )
            self._check_grid_params(p)
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
        p.dtype = fit_dtype(X, self.dtype, tf.float32)
        p.seed = check_random_state(self.random_state)
        return p

    def _check_grid_params(self, p):
        """Set ``p.nodes``, ``p.stencil`` and the interval settings of the FFT grid from the
        constructor arguments (used by ``method="fft"`` and by :meth:`transform`)."""
        if isinstance(self.n_interpolation_points, str):
            if self.n_interpolation_points != "auto":
                raise ValueError(
                    "n_interpolation_points must be 'auto' or a positive integer, got "
                    f"{self.n_interpolation_points!r}"
                )
            p.nodes, p.stencil = default_nodes(p.n_components)
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

    def _initial_embedding(self, p, x, n):
        if isinstance(self.init, str) and self.init == "pca":
            n_features = x.shape[1]
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

    def _affinities(self, p, x, graph, n):
        """The fitted affinities: ``(neighbors, affinities)`` as the attributes ``neighbors_``
        and ``affinities_`` (numpy), from X (``x``, rescaled as in :meth:`fit`; for
        ``metric="precomputed"``, the distances) or a precomputed sparse ``graph``."""
        dtype, say = p.dtype, functools.partial(report, p.verbose, 1, logging.INFO)
        # Metrics the kernels do not compute are computed by scipy, in float64.
        host_x = None if graph is not None or p.metric in METRICS else x.numpy().astype(float)
        if p.method == "exact":
            say("[t-SNE] Computing pairwise distances...")
            metric = p.metric
            if metric not in METRICS:
                d = host_distances(host_x, metric, p.metric_params, p.memory_budget)
                p.sigma_scale = _distance_scale(d)
                x, metric = tf.constant(d * p.sigma_scale, dtype), "precomputed"
            p_cond, beta = dense_calibrated_conditionals(x, p.perplexity, p.memory_budget, metric)
            say("[t-SNE] Computed conditional probabilities for sample %d / %d", n, n)
            say("[t-SNE] Mean sigma: %f", _mean_sigma(beta, p.sigma_scale))
            return None, symmetrised(p_cond).numpy()
        k = n_neighbors_for_perplexity(n, p.perplexity)
        approx = self._approximate(p, n)
        say("[t-SNE] Computing %d nearest neighbors...", k)
        # The approximate search's index (its K-means) is timed with the search, below.
        say("[t-SNE] Indexed %d samples in %.3fs...", n, 0.0)
        tic = time.perf_counter()
        if graph is not None or host_x is not None:
            if graph is not None:
                neighbors, d = sparse_neighbors(graph, k)
            else:
                neighbors, d = host_neighbors(host_x, k, p.metric, p.metric_params, p.memory_budget)
                p.sigma_scale = _distance_scale(d)
            # Squared in dtype, as the kernels square a precomputed dense matrix.
            sq_distances = tf.square(tf.constant(d * p.sigma_scale, dtype))
        elif approx:
            neighbors, sq_distances = _ann.approximate_nearest_neighbors(
                x, k, metric=p.metric, seed=p.seed, memory_budget=p.memory_budget
            )
            neighbors = neighbors.numpy()
        else:
            neighbors, sq_distances = nearest_neighbors(x, k, p.memory_budget, p.metric)
            neighbors = neighbors.numpy()
        say("[t-SNE] Computed neighbors for %d samples in %.3fs...", n, time.perf_counter() - tic)
        p_cond, beta = bucketed_conditionals(sq_distances, p.perplexity)
        say("[t-SNE] Computed conditional probabilities for sample %d / %d", n, n)
        say("[t-SNE] Mean sigma: %f", _mean_sigma(beta, p.sigma_scale))
        return neighbors, p_cond.numpy()

    @staticmethod
    def _approximate(p, n: int) -> bool:
        """Whether the k-NN search of ``n`` samples is approximate (``neighbors``)."""
        if p.neighbors == "auto":
            return n >= APPROX_NEIGHBORS_FROM and p.metric in _ann.METRICS
        return p.neighbors == "approx"

    def _objective(self, p, x, graph=None):
        """The method's objective, its operands and the rows the descent runs on (see
        :meth:`_descent_problem`), from X (``x``, or a precomputed sparse ``graph``); the
        affinities are left in ``p.neighbors`` and ``p.affinities`` (see :meth:`_affinities`)."""
        n = graph.shape[0] if x is None else x.shape[0]
        p.neighbors, p.affinities = self._affinities(p, x, graph, n)
        return self._descent_problem(p, p.neighbors, p.affinities)

    def _descent_problem(self, p, neighbors, affinities):
        """The method's objective, its operands (P in the form the method needs) and the rows
        the descent runs on, from the fitted affinities: N for ``"exact"``, N's size bucket for
        ``"fft"`` (padding rows carry no P and no charge, so every N of a bucket shares one
        compiled program)."""
        n = affinities.shape[0]
        if neighbors is None:
            objective = ExactObjective.for_problem(
                n, p.n_components, affinities.dtype, p.memory_budget
            )
            return objective, objective.operands(tf.constant(affinities)), n
        # Rows and neighbours padded to their size buckets: the padding rows and columns are
        # edges from a point to itself without probability, which change no force or sum.
        k = neighbors.shape[1]
        n_pad, k_pad = padded_size(n), padded_size(k)
        rows = tf.range(n_pad)
        real = rows < n
        p_cond = tf.pad(tf.constant(affinities), [[0, n_pad - n], [0, k_pad - k]])
        neighbors = tf.pad(tf.constant(neighbors, tf.int32), [[0, n_pad - n], [0, k_pad - k]])
        neighbors = tf.where(real[:, None] & (tf.range(k_pad) < k), neighbors, rows[:, None])
        objective = FFTObjective(
            n_interpolation_points=p.nodes,
            stencil_size=p.stencil,
            min_num_intervals=p.min_num_intervals,
            ints_in_interval=p.ints_in_interval,
            max_num_intervals=p.max_num_intervals,
            dof=p.dof,
            exact_repulsion=n < EXACT_REPULSION_BELOW,
        )
        charge = tf.cast(real, p_cond.dtype)
        return objective, objective.operands(neighbors, p_cond, p.memory_budget, charge), n_pad

    def _callback(self, p, n):
        """The descent's callback calling ``callbacks`` (None without any)."""
        if not p.callbacks:
            return None

        def call(iteration, kl_divergence, y):
            embedding = y.numpy()[:n]
            return any(bool(c(iteration, kl_divergence, embedding)) for c in p.callbacks)

        return call

    def _input(self, p, X):
        """``(x, graph)``: X validated as a tensor of ``p.dtype`` (None for a sparse
        precomputed graph, then ``graph``, a scipy sparse matrix, else None), rescaled (see
        :meth:`fit`); sets ``p.sigma_scale``, the factor of the distances, and n_features_in_."""
        dtype = p.dtype
        precomputed = p.metric == "precomputed"
        if precomputed and isinstance(self.init, str) and self.init == "pca":
            raise ValueError('The parameter init="pca" cannot be used with metric="precomputed".')
        if precomputed and is_sparse(X):
            if X.ndim != 2 or X.shape[0] != X.shape[1]:
                raise ValueError("X should be a square distance matrix")
            if p.method == "exact":
                raise TypeError(
                    'TSNE with method="exact" does not accept sparse precomputed distance '
                    'matrix. Use method="barnes_hut" or provide the dense distance matrix.'
                )
            graph = X.tocsr()
            check_distances(graph.data, precomputed=True)
            self._check_n_samples(p, X.shape[0])
            p.sigma_scale = _distance_scale(graph.data)
            self.n_features_in_ = int(X.shape[1])
            return None, graph
        x = check_array(X, name="X", dtype=dtype, min_samples=2)
        n, n_features = x.shape
        if precomputed:
            if n != n_features:
                raise ValueError("X should be a square distance matrix")
            check_distances(x.numpy(), precomputed=True)
        self._check_n_samples(p, n)
        self.n_features_in_ = int(n_features)
        if p.metric not in METRICS:  # distances computed by scipy, then scaled
            p.sigma_scale = p.x_scale = 1.0
            return x, None
        # P is invariant to the scale of X: rescale (exactly) data whose squared distances
        # would overflow or underflow; float32's range even for float64, as the k-NN search
        # ranks float32 keys.
        scale = power_of_two_scale(
            max_abs(x),
            n_features,
            tf.float32,
            always=p.metric not in _SCALE_FREE_METRICS,
        )
        if scale != 1.0:
            x = x * scale
        p.x_scale = scale
        p.sigma_scale = {"cosine": 1.0, "sqeuclidean": scale * scale}.get(p.metric, scale)
        return x, None

    def _check_n_samples(self, p, n):
        if n < 2:
            raise ValueError(f"X has {n} sample(s) but at least 2 are required")
        if p.perplexity >= n:  # the value as given, as scikit-learn's message
            raise ValueError(f"perplexity ({self.perplexity}) must be less than n_samples ({n})")

    @staticmethod
    def _learning_rates(p, n):
        """The learning rates of the two stages of a fit of ``n`` samples (see the class
        docstring): ``(early exaggeration's, the rest's)``."""
        if p.learning_rate != "auto":
            return p.learning_rate, p.learning_rate
        early = max(n / p.early_exaggeration / 4.0, 50.0)
        if p.method == "exact":  # scikit-learn's: one rate for both stages
            return early, early
        return early, max(n / p.exaggeration / 4.0, 50.0)  # openTSNE's N / exaggeration

    def _diverged(self, err, learning_rates, p, exaggeration):
        shown = " then ".join(f"{rate:g}" for rate in dict.fromkeys(learning_rates))
        return FloatingPointError(
            f"TSNE diverged: {err}. Lower learning_rate (here {shown}) or "
            f"early_exaggeration (here {p.early_exaggeration:g})"
            + ("" if exaggeration == 1.0 else f" or exaggeration (here {exaggeration:g})")
            + (f", or raise dof (here {p.dof:g})" if p.dof != 1.0 else "")
        )

    def fit(self, X, y=None):
        """Embed ``X``.

        Args:
          X: (n_samples, n_features) array-like, tensor or scipy sparse matrix (densified),
            n_samples >= 2, finite; for ``metric="precomputed"``, the (n_samples, n_samples)
            distance matrix, dense or (``method="fft"``/``"barnes_hut"`` only) a scipy sparse
            k-NN graph.
          y: ignored.

        Returns:
          self.

        Raises:
          ValueError: bad parameters or X (see the class docstring), or computed distances
            that are negative or not finite.
          TypeError: a sparse precomputed X with ``method="exact"``.
          FloatingPointError: the optimisation diverged (non-finite embedding or KL divergence);
            lower ``learning_rate`` or ``early_exaggeration`` (or ``exaggeration``).
        """
        p = self._check_params(X)
        dtype = p.dtype
        x, graph = self._input(p, X)
        self._check_feature_names(X, reset=True)
        n = graph.shape[0] if x is None else x.shape[0]
        y0 = self._initial_embedding(p, x, n)
        learning_rate, final_learning_rate = self._learning_rates(p, n)

        t0 = time.perf_counter()
        logger.info(
            "TSNE fit start: %d x %d, perplexity=%g, method=%s, metric=%s, dtype=%s",
            n,
            self.n_features_in_,
            p.perplexity,
            p.method,
            p.metric if isinstance(p.metric, str) else "callable",
            dtype.name,
        )
        objective, operands, n_rows = self._objective(p, x, graph)
        logger.info("[t-SNE] Computed joint probabilities in %.3fs", time.perf_counter() - t0)
        self._descend(
            p,
            tsne_descent,
            objective,
            operands,
            pad_rows(y0, n_rows),
            n,
            learning_rate,
            p.exaggeration,
            early_exaggeration=p.early_exaggeration,
            max_iter=p.max_iter,
            final_learning_rate=final_learning_rate,
        )
        self.learning_rate_ = float(final_learning_rate)
        self.neighbors_, self.affinities_ = p.neighbors, p.affinities
        # What transform searches: X as the kernels saw it (rescaled), for the kernels' metrics.
        kept = x is not None and p.metric in METRICS
        if kept and p.metric == "precomputed":  # new points come as their distances: keep N
            self._fit_X = np.zeros((n, 0), x.dtype.as_numpy_dtype)
        else:
            self._fit_X = x.numpy() if kept else None
        self._fit_X_scale = p.x_scale if kept else None
        logger.info(
            "TSNE fit end: KL divergence %.6f after %d iterations, %.3f s",
            self.kl_divergence_,
            self.n_iter_ + 1,
            time.perf_counter() - t0,
        )
        return self

    def optimize(
        self,
        n_iter,
        *,
        learning_rate=None,
        exaggeration=None,
        momentum=0.8,
        n_iter_without_progress=None,
        min_grad_norm=None,
    ):
        """Run ``n_iter`` more iterations from the fitted ``embedding_`` (openTSNE's
        ``TSNEEmbedding.optimize``), with the fitted affinities and fresh optimiser state
        (gains and momentum restart; no early exaggeration).

        Updates ``embedding_``, ``kl_divergence_`` (of the plain P, after the last iteration's
        start, or at the final embedding with ``exaggeration``) and ``n_iter_`` (continuing
        the count); the estimator's ``verbose`` and ``callbacks`` apply.

        Args:
          n_iter: iterations to run (int, 1 .. 2**31 - 1).
          learning_rate: step size (> 0); None (default): the fit's ``learning_rate_``.
          exaggeration: factor (>= 1) on P; None (default): 1, none.
          momentum: momentum of the descent, in [0, 1] (default 0.8, as the fit's second stage).
          n_iter_without_progress: as the constructor's; None (default): its value.
          min_grad_norm: as the constructor's; None (default): its value.

        Returns:
          self.

        Raises:
          NotFittedError: before ``fit``.
          FloatingPointError: the optimisation diverged.
        """
        check_is_fitted(self, "affinities_")
        p = self._check_params(self.embedding_)
        n_iter = check_int(n_iter, name="n_iter", low=1, high=INT32_MAX)
        learning_rate = (
            self.learning_rate_
            if learning_rate is None
            else check_float(learning_rate, name="learning_rate", low=0.0, low_inclusive=False)
        )
        exaggeration = (
            1.0 if exaggeration is None else check_float(exaggeration, name="exaggeration", low=1.0)
        )
        momentum = check_float(momentum, name="momentum", low=0.0, high=1.0)
        if n_iter_without_progress is not None:
            p.n_iter_without_progress = check_int(
                n_iter_without_progress, name="n_iter_without_progress", low=-1, high=INT32_MAX
            )
        if min_grad_norm is not None:
            p.min_grad_norm = check_float(min_grad_norm, name="min_grad_norm", low=0.0)
        objective, operands, n_rows = self._descent_problem(p, self.neighbors_, self.affinities_)
        n = self.embedding_.shape[0]
        y = tf.constant(self.embedding_, operands[-1].dtype)
        self._descend(
            p,
            continued_descent,
            objective,
            operands,
            pad_rows(y, n_rows),
            n,
            learning_rate,
            exaggeration,
            start=self.n_iter_ + 1,
            n_iter=n_iter,
            momentum=momentum,
        )
        return self

    def _descend(self, p, run, objective, operands, y, n, learning_rate, exaggeration, **stage):
        """Run ``run`` (:func:`tsne_descent` or :func:`continued_descent`) from the padded
        embedding ``y`` with the estimator's logging, ``verbose`` and callbacks, and set
        ``embedding_`` (its first ``n`` rows: the rest is padding), ``kl_divergence_`` and
        ``n_iter_``; ``stage`` are ``run``'s own arguments."""
        try:
            result = run(
                objective,
                operands,
                y,
                learning_rate=learning_rate,
                exaggeration=exaggeration,
                n_iter_without_progress=p.n_iter_without_progress,
                min_grad_norm=p.min_grad_norm,
                log_level=logging.INFO,
                summary_level=logging.INFO,
                verbose=p.verbose,
                callback=self._callback(p, n),
                callback_every=p.callbacks_every_iters,
                **stage,
            )
        except FloatingPointError as err:
            rates = (learning_rate, stage.get("final_learning_rate") or learning_rate)
            raise self._diverged(err, rates, p, exaggeration) from err
        self.embedding_ = result.embedding.numpy()[:n]
        self.kl_divergence_ = float(result.kl_divergence)
        self.n_iter_ = int(result.last_iter)

    def transform(
        self,
        X,
        *,
        perplexity=5.0,
        n_iter=250,
        learning_rate=0.1,
        exaggeration=1.5,
        momentum=0.8,
        max_grad_norm=0.25,
    ):
        """Place new points on the fitted map, which stays fixed (openTSNE's
        ``TSNEEmbedding.transform``; Poličar et al. 2019).

        Each new point is placed on its own: its affinities ``p_{j|i}`` to its
        ``3 * perplexity + 1`` nearest fitted points (exact k-NN on the fitted X, in the fit's
        metric), a start at the affinity-weighted mean of those neighbours' positions, then
        ``n_iter`` iterations of gradient descent of its KL divergence against the whole fitted
        map (attraction to its neighbours, FFT-interpolated repulsion from every fitted point
        on a grid computed once per call, see :mod:`tfclust.tsne.placement`). The defaults are
        openTSNE's (its gradient has no factor 4, hence the small ``learning_rate``). New
        points do not move each other: placing them in one call or in batches gives the same
        positions. One compiled program per size bucket of the batch and of the map.

        Args:
          X: (n_new, n_features) array-like, finite; for ``metric="precomputed"``, the
            (n_new, n_samples_fit) distances from each new point to the fitted points.
          perplexity: perplexity of the new points' affinities (> 0, below the number of fitted
            points; default 5, openTSNE's: a new point follows its nearest neighbours).
          n_iter: iterations (int >= 0, default 250).
          learning_rate: step size (> 0, default 0.1).
          exaggeration: factor on the affinities (>= 1, default 1.5).
          momentum: momentum of the descent, in [0, 1] (default 0.8).
          max_grad_norm: each point's gradient is scaled down to at most this norm (> 0,
            default 0.25), so that points starting on top of others do not shoot off.

        Returns:
          (n_new, n_components) numpy array of the embedding's dtype.

        Raises:
          NotFittedError: before ``fit``.
          ValueError: X of another number of features than the fit's, bad values, a fit with
            ``n_components`` > 2, or a metric computed by scipy (give
            ``metric="precomputed"`` distances instead).
        """
        check_is_fitted(self, "embedding_")
        p = self._check_params(self.embedding_)
        if getattr(self, "_fit_X", None) is None:
            raise ValueError(
                f"transform needs the fitted X, which is not kept for metric={self.metric!r} "
                "(computed by scipy) or a sparse precomputed graph: fit with "
                f"metric='precomputed' on dense distances, or one of {METRICS}"
            )
        if p.n_components not in _FFT_COMPONENTS:
            raise ValueError(
                f"transform supports n_components 1 and 2, got n_components={p.n_components}"
            )
        if p.method == "exact":  # "fft" checked them with the other parameters
            self._check_grid_params(p)
        reference = tf.constant(self._fit_X)
        n_ref = reference.shape[0]
        perplexity = check_float(perplexity, name="perplexity", low=0.0, low_inclusive=False)
        if perplexity >= n_ref:
            raise ValueError(
                f"perplexity ({perplexity:g}) must be less than the number of fitted points "
                f"({n_ref})"
            )
        schedule = dict(
            n_iter=check_int(n_iter, name="n_iter", low=0, high=INT32_MAX),
            learning_rate=check_float(
                learning_rate, name="learning_rate", low=0.0, low_inclusive=False
            ),
            exaggeration=check_float(exaggeration, name="exaggeration", low=1.0),
            momentum=check_float(momentum, name="momentum", low=0.0, high=1.0),
            max_grad_norm=check_float(
                max_grad_norm, name="max_grad_norm", low=0.0, low_inclusive=False
            ),
        )
        x = check_array(X, name="X", dtype=reference.dtype)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {x.shape[1]} features, but TSNE is expecting {self.n_features_in_} "
                "features as input"
            )
        if p.metric == "precomputed":
            check_distances(x.numpy(), precomputed=True, method="transform")
        self._check_feature_names(X, reset=False)
        if self._fit_X_scale != 1.0:
            x = x * self._fit_X_scale
        n = x.shape[0]
        k = n_neighbors_for_perplexity(n_ref + 1, perplexity)
        tic = time.perf_counter()
        neighbors, sq_distances = nearest_reference_neighbors(
            x, reference, k, p.memory_budget, p.metric
        )
        n_pad = padded_size(n)  # the placement's program is per bucket: padding rows have no P
        p_cond = pad_rows(bucketed_conditionals(sq_distances, perplexity)[0], n_pad)
        embedding = tf.constant(self.embedding_)
        positions = tf.gather(embedding, pad_rows(neighbors, n_pad))  # (n_pad, k, d)
        y0 = tf.reduce_sum(p_cond[:, :, None] * positions, axis=1)
        n_fit = embedding.shape[0]
        n_boxes = grid_intervals(
            float(np.max(np.ptp(self.embedding_, axis=0))) * (1.0 + GRID_PADDING),
            min_num_intervals=p.min_num_intervals,
            ints_in_interval=p.ints_in_interval,
            max_num_intervals=p.max_num_intervals,
        )
        m_pad = padded_size(n_fit)
        y = place_points(
            y0,
            positions,
            p_cond,
            pad_rows(embedding, m_pad),
            tf.cast(tf.range(m_pad) < n_fit, embedding.dtype),
            n_boxes=n_boxes,
            n_interpolation_points=p.nodes,
            stencil_size=p.nodes if p.stencil is None else p.stencil,
            dof=p.dof,
            **schedule,
        )
        logger.info(
            "TSNE transform: %d points onto %d in %.3f s", n, n_fit, time.perf_counter() - tic
        )
        return y.numpy()[:n]

    _fitted_attribute = "embedding_"

    def fit_transform(self, X, y=None):
        """Embed ``X`` and return ``embedding_`` ((n_samples, n_components) numpy array)."""
        return self.fit(X).embedding_

    def get_feature_names_out(self, input_features=None):
        """Names of the embedding's columns: ``["tsne0", "tsne1", ...]``, as scikit-learn."""
        return prefixed_feature_names(self, "embedding_", input_features)
