"""TSNE as a drop-in for ``sklearn.manifold.TSNE`` (metrics, precomputed distances, the
barnes_hut alias, verbose output) and openTSNE's extras (callbacks, ``optimize``), against
scikit-learn as the oracle where it has the same behaviour."""

import pickle
import re

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf
from scipy.spatial.distance import cdist, squareform
from sklearn.exceptions import NotFittedError
from sklearn.manifold import _t_sne
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import NearestNeighbors

from tfclust import TSNE
from tfclust._neighbors import nearest_neighbors

RNG = np.random.RandomState(0)
X40 = RNG.randn(40, 4)
# One grid size for the fft method: its programs compile in about a second per shape.
FFT = dict(method="fft", max_num_intervals=50)
QUICK = dict(perplexity=5.0, max_iter=250, init="random", random_state=0)


def _sklearn_p_exact(x, metric, perplexity):
    """scikit-learn's dense P for ``metric`` (its ``_fit``: squared distances for every metric)."""
    if metric == "euclidean":
        d2 = pairwise_distances(x, metric="euclidean", squared=True)
    else:
        d2 = pairwise_distances(x, metric=metric) ** 2
    return squareform(_t_sne._joint_probabilities(d2, perplexity, 0))


def _sklearn_p_nn(x, metric, perplexity):
    k = min(x.shape[0] - 1, int(3.0 * perplexity + 1))
    graph = NearestNeighbors(n_neighbors=k, metric=metric).fit(x).kneighbors_graph(mode="distance")
    graph.data **= 2
    return _t_sne._joint_probabilities_nn(graph, perplexity, 0).toarray()


def _joint_from_fitted(ts):
    """The symmetric P of a fitted ``"fft"`` TSNE, from ``neighbors_`` and ``affinities_``."""
    n, k = ts.neighbors_.shape
    cond = sp.csr_matrix(
        (
            ts.affinities_.ravel().astype(np.float64),
            ts.neighbors_.ravel(),
            np.arange(0, n * k + 1, k),
        ),
        shape=(n, n),
    )
    p = (cond + cond.T).toarray()
    return p / p.sum()


@pytest.mark.parametrize(
    "metric", ["euclidean", "sqeuclidean", "cosine", "manhattan", "l1", "cityblock", "chebyshev"]
)
def test_exact_p_matches_sklearn_for_each_metric(metric):
    ts = TSNE(metric=metric, method="exact", dtype="float64", **QUICK).fit(X40)
    assert ts.neighbors_ is None and ts.affinities_.shape == (40, 40)
    expected = _sklearn_p_exact(X40, metric, 5.0)
    np.testing.assert_allclose(ts.affinities_, expected, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine", "manhattan", "chebyshev"])
def test_fft_knn_p_matches_sklearn_for_each_metric(metric):
    ts = TSNE(metric=metric, dtype="float64", **FFT, **QUICK).fit(X40)
    assert ts.neighbors_.shape == ts.affinities_.shape == (40, 16)
    expected = _sklearn_p_nn(X40, metric, 5.0)
    np.testing.assert_allclose(_joint_from_fitted(ts), expected, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("metric", ["cosine", "manhattan", "chebyshev", "sqeuclidean"])
def test_knn_kernel_distances_match_sklearn(metric):
    # A zero row is at cosine distance 1 from every other row (as scikit-learn).
    x = np.vstack([np.zeros((1, 4)), X40[:19]])
    k = 7
    indices, sq = nearest_neighbors(tf.constant(x), k, metric=metric)
    d = pairwise_distances(x, metric=metric)
    np.fill_diagonal(d, np.inf)
    np.testing.assert_allclose(
        sq.numpy(), np.take_along_axis(d, indices.numpy(), 1) ** 2, rtol=1e-9
    )
    np.testing.assert_allclose(np.sqrt(sq.numpy()), np.sort(d, axis=1)[:, :k], rtol=1e-9)


def test_callable_and_scipy_metrics_match_sklearn():
    def manhattan(u, v):
        return np.abs(u - v).sum()

    x = X40[:20]
    ts = TSNE(metric=manhattan, method="exact", dtype="float64", **QUICK).fit(x)
    np.testing.assert_allclose(ts.affinities_, _sklearn_p_exact(x, "manhattan", 5.0), rtol=1e-6)
    ts = TSNE(metric=manhattan, dtype="float64", **FFT, **QUICK).fit(x)
    np.testing.assert_allclose(
        _joint_from_fitted(ts), _sklearn_p_nn(x, "manhattan", 5.0), rtol=1e-6
    )
    ts = TSNE(
        metric="minkowski", metric_params={"p": 3}, method="exact", dtype="float64", **QUICK
    ).fit(x)
    d2 = cdist(x, x, "minkowski", p=3) ** 2
    expected = squareform(_t_sne._joint_probabilities(d2, 5.0, 0))
    np.testing.assert_allclose(ts.affinities_, expected, rtol=1e-6)
    v = np.cov(x.T)
    ts = TSNE(metric="mahalanobis", metric_params={"V": v}, method="exact", **QUICK).fit(x)
    ref = TSNE(metric="precomputed", method="exact", **QUICK).fit(
        cdist(x, x, "mahalanobis", VI=np.linalg.inv(v))
    )
    np.testing.assert_allclose(ts.affinities_, ref.affinities_, rtol=1e-5)


@pytest.mark.parametrize("method", ["exact", "fft"])
def test_precomputed_distances_give_the_metric_p(method):
    kwargs = dict(method=method, dtype="float64", **QUICK)
    if method == "fft":
        kwargs.update(FFT)
    by_metric = TSNE(metric="manhattan", **kwargs).fit(X40)
    precomputed = TSNE(metric="precomputed", **kwargs).fit(cdist(X40, X40, "cityblock"))
    np.testing.assert_allclose(precomputed.affinities_, by_metric.affinities_, rtol=1e-9)
    if method == "fft":
        np.testing.assert_array_equal(precomputed.neighbors_, by_metric.neighbors_)


@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csr_array, sp.lil_matrix, sp.coo_matrix])
def test_sparse_precomputed_equals_dense(container):
    d = cdist(X40, X40)
    dense = TSNE(metric="precomputed", **FFT, **QUICK).fit(d)
    sparse = TSNE(metric="precomputed", **FFT, **QUICK).fit(container(d))
    np.testing.assert_array_equal(sparse.neighbors_, dense.neighbors_)
    np.testing.assert_array_equal(sparse.embedding_, dense.embedding_)


def test_sparse_knn_graph_missing_entries_are_not_neighbours():
    k = 16  # 3 * perplexity + 1
    graph = NearestNeighbors(n_neighbors=k).fit(X40).kneighbors_graph(mode="distance")
    ts = TSNE(metric="precomputed", dtype="float64", **FFT, **QUICK).fit(graph)
    np.testing.assert_allclose(
        _joint_from_fitted(ts), _sklearn_p_nn(X40, "euclidean", 5.0), rtol=1e-6
    )
    # A graph with a missing neighbour: not enough for k, as scikit-learn's message counts.
    graph = graph.tolil()
    graph[3, graph.rows[3][0]] = 0
    graph = graph.tocsr()
    graph.eliminate_zeros()
    with pytest.raises(
        ValueError, match="17 neighbors per samples are required, but some samples have only 16"
    ):
        TSNE(metric="precomputed", **FFT, **QUICK).fit(graph)


@pytest.mark.parametrize(
    "params, x, error, match",
    [
        (dict(metric="precomputed"), np.zeros((5, 4)), ValueError, "square distance matrix"),
        (
            dict(metric="precomputed"),
            sp.csr_matrix(np.ones((5, 4))),
            ValueError,
            "square distance matrix",
        ),
        (dict(metric="precomputed"), -np.ones((6, 6)), ValueError, "positive distances"),
        (
            dict(metric="precomputed"),
            sp.csr_matrix(-np.ones((6, 6))),
            ValueError,
            "positive distances",
        ),
        (dict(metric="precomputed"), np.full((6, 6), np.nan), ValueError, "NaN"),
        (
            dict(metric="precomputed", init="pca"),
            np.zeros((6, 6)),
            ValueError,
            re.escape('The parameter init="pca" cannot be used with metric="precomputed".'),
        ),
        (
            dict(metric="precomputed", method="exact"),
            sp.csr_matrix(np.ones((6, 6))),
            TypeError,
            "sparse",
        ),
        (dict(metric="hamming2"), X40, ValueError, "metric must be"),
        (dict(metric=3), X40, ValueError, "metric must be"),
        (dict(metric="euclidean", metric_params={"p": 2}), X40, ValueError, "takes no metric"),
        (dict(metric="manhattan", metric_params=[1]), X40, TypeError, "metric_params"),
        (dict(metric="mahalanobis"), X40, ValueError, "Must provide either V or VI"),
        (dict(metric="seuclidean"), X40, ValueError, "seuclidean"),
        (
            dict(metric=lambda u, v: -1.0, method="exact"),
            X40,
            ValueError,
            "All distances .*metric given",
        ),
        (dict(metric=lambda u, v: -1.0), X40, ValueError, "All distances .*metric given"),
        (dict(metric=lambda u, v: np.nan), X40, ValueError, "NaN or infinity"),
        (dict(angle=1.5), X40, ValueError, "angle"),
        (dict(angle=-0.1), X40, ValueError, "angle"),
        (dict(angle="wide"), X40, TypeError, "angle"),
        (dict(n_jobs=1.5), X40, TypeError, "n_jobs"),
        (
            dict(method="barnes_hut", n_components=4),
            X40,
            ValueError,
            "'n_components' should be inferior to 4",
        ),
        (dict(method="barnes_hut", n_components=3), X40, ValueError, "use method='exact'"),
        (dict(method="Barnes_Hut"), X40, ValueError, "method must be"),
        (dict(callbacks=3), X40, TypeError, "callbacks"),
        (dict(callbacks=[print, 3]), X40, TypeError, "callbacks"),
        (dict(callbacks_every_iters=0), X40, ValueError, "callbacks_every_iters"),
        (dict(callbacks_every_iters=2.0), X40, TypeError, "callbacks_every_iters"),
        (dict(verbose=-1), X40, ValueError, "verbose"),
    ],
)
def test_bad_input(params, x, error, match):
    kwargs = {**QUICK, "perplexity": 2.0, **params}
    with pytest.raises(error, match=match):
        TSNE(**kwargs).fit(x)


def test_barnes_hut_is_the_fft_method_and_angle_n_jobs_change_nothing():
    ref = TSNE(**FFT, **QUICK).fit(X40)
    kwargs = {**FFT, "method": "barnes_hut"}
    alias = TSNE(**kwargs, angle=0.0, n_jobs=2, **QUICK).fit(X40)
    np.testing.assert_array_equal(alias.embedding_, ref.embedding_)
    assert alias.kl_divergence_ == ref.kl_divergence_
    assert TSNE().get_params()["angle"] == 0.5 and TSNE().get_params()["n_jobs"] is None


def test_verbose_prints_sklearns_lines(capsys):
    TSNE(verbose=1, **FFT, **QUICK).fit(X40)
    out = capsys.readouterr().out
    for line in [
        "[t-SNE] Computing 16 nearest neighbors...",
        "[t-SNE] Indexed 40 samples in",
        "[t-SNE] Computed neighbors for 40 samples in",
        "[t-SNE] Computed conditional probabilities for sample 40 / 40",
        "[t-SNE] Mean sigma: ",
        "[t-SNE] KL divergence after 250 iterations with early exaggeration: ",
        "[t-SNE] KL divergence after 251 iterations: ",
    ]:
        assert line in out, line
    assert "error =" not in out  # per-chunk lines need verbose >= 2
    TSNE(verbose=2, method="exact", **QUICK).fit(X40)
    out = capsys.readouterr().out
    assert "[t-SNE] Computing pairwise distances..." in out
    assert re.search(
        r"\[t-SNE\] Iteration 50: error = [\d.]+, gradient norm = [\d.]+ \(50 iterations in", out
    )
    TSNE(verbose=True, **FFT, **QUICK).fit(X40)
    assert "[t-SNE] Mean sigma: " in capsys.readouterr().out
    TSNE(**FFT, **QUICK).fit(X40)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
def test_verbose_mean_sigma_matches_sklearn(capsys, metric):
    # Scaled data: the printed sigma is in the units of X (the kernels' rescaling undone).
    x = 1e3 * X40
    TSNE(verbose=1, method="exact", metric=metric, dtype="float64", **QUICK).fit(x)
    ours = float(re.search(r"Mean sigma: ([\d.]+)", capsys.readouterr().out).group(1))
    d2 = pairwise_distances(x, metric=metric) ** 2
    _t_sne._joint_probabilities(d2, 5.0, 1)
    expected = float(re.search(r"Mean sigma: ([\d.]+)", capsys.readouterr().out).group(1))
    np.testing.assert_allclose(ours, expected, rtol=1e-4)


def test_callbacks_are_called_at_their_interval_and_can_stop():
    calls = []

    def record(iteration, error, embedding):
        calls.append((iteration, error, embedding.copy()))

    kwargs = dict(**FFT, **{**QUICK, "max_iter": 300})
    plain = TSNE(**kwargs).fit(X40)
    ts = TSNE(callbacks=record, **kwargs).fit(X40)
    assert [c[0] for c in calls] == list(range(50, 301, 50))
    assert all(isinstance(c[1], float) and c[2].shape == (40, 2) for c in calls)
    assert isinstance(calls[0][2], np.ndarray)
    np.testing.assert_array_equal(calls[-1][2].shape, ts.embedding_.shape)
    # Callbacks at chunk boundaries change nothing.
    np.testing.assert_array_equal(ts.embedding_, plain.embedding_)

    calls.clear()
    TSNE(callbacks=[record], callbacks_every_iters=40, **kwargs).fit(X40)
    assert [c[0] for c in calls] == [40, 80, 120, 160, 200, 240, 280]

    def stop_at_100(iteration, error, embedding):
        return iteration >= 100

    calls.clear()
    ts = TSNE(callbacks=(record, stop_at_100), **kwargs).fit(X40)
    assert [c[0] for c in calls] == [50, 100]
    assert ts.n_iter_ == 99
    np.testing.assert_array_equal(ts.embedding_, calls[-1][2])
    assert np.isfinite(ts.kl_divergence_)


@pytest.mark.parametrize("method", ["exact", "fft"])
def test_optimize_continues_the_fit(method):
    # No early stop: the 40 points settle (KL flat, gradient tiny) before iteration 700.
    kwargs = dict(perplexity=5.0, init="random", random_state=0, method=method)
    kwargs.update(min_grad_norm=0.0, n_iter_without_progress=1000)
    if method == "fft":
        kwargs.update(FFT)
    # 750, not 1000 iterations: 40 points spread beyond the small test grid by then.
    long = TSNE(max_iter=750, **kwargs).fit(X40)
    ts = TSNE(max_iter=500, **kwargs).fit(X40)
    first, kl_first = ts.embedding_, ts.kl_divergence_
    assert ts.optimize(250) is ts
    assert ts.n_iter_ == long.n_iter_ == 749
    assert not np.array_equal(ts.embedding_, first)
    if method == "exact":  # the FFT's small test grid lets 40 points drift, KL up a little
        assert ts.kl_divergence_ < kl_first
    # Not equal: the optimiser's gains and momentum restart (as openTSNE's optimize).
    np.testing.assert_allclose(ts.kl_divergence_, long.kl_divergence_, rtol=0.2)


def test_optimize_with_exaggeration_reports_the_plain_kl():
    ts = TSNE(method="exact", **QUICK).fit(X40)
    exaggerated = pickle.loads(pickle.dumps(ts)).optimize(50, exaggeration=4.0, momentum=0.5)
    later = pickle.loads(pickle.dumps(exaggerated)).optimize(1, learning_rate=1e-30)
    # One step of negligible size: the KL at its start is the plain KL of ``exaggerated``.
    np.testing.assert_allclose(exaggerated.kl_divergence_, later.kl_divergence_, rtol=1e-5)


def test_optimize_errors_and_pickle():
    with pytest.raises(NotFittedError):
        TSNE().optimize(10)
    ts = TSNE(**FFT, **{**QUICK, "max_iter": 300}).fit(X40)
    for bad, error in [(0, ValueError), (1.5, TypeError)]:
        with pytest.raises(error, match="n_iter"):
            ts.optimize(bad)
    with pytest.raises(ValueError, match="momentum"):
        ts.optimize(10, momentum=1.5)
    with pytest.raises(ValueError, match="learning_rate"):
        ts.optimize(10, learning_rate=-1.0)
    with pytest.raises(ValueError, match="exaggeration"):
        ts.optimize(10, exaggeration=0.5)
    clone = pickle.loads(pickle.dumps(ts))
    assert isinstance(clone.affinities_, np.ndarray) and isinstance(clone.neighbors_, np.ndarray)
    clone.optimize(100)
    ts.optimize(100)
    assert clone.n_iter_ == ts.n_iter_ == 399
    np.testing.assert_array_equal(clone.embedding_, ts.embedding_)


@pytest.mark.parametrize("make", [np.random.RandomState, np.random.default_rng])
def test_numpy_random_state_is_reproducible(make):
    kwargs = {**QUICK, **FFT}
    del kwargs["random_state"]
    a = TSNE(random_state=make(5), **kwargs).fit_transform(X40)
    b = TSNE(random_state=make(5), **kwargs).fit_transform(X40)
    c = TSNE(random_state=make(6), **kwargs).fit_transform(X40)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("method", ["exact", "fft"])
def test_sparse_x_equals_dense(method):
    x = np.where(RNG.rand(40, 6) < 0.5, 0.0, RNG.rand(40, 6))
    kwargs = dict(method=method, **QUICK)
    if method == "fft":
        kwargs.update(FFT)
    dense = TSNE(**kwargs).fit_transform(x)
    sparse = TSNE(**kwargs).fit_transform(sp.csr_matrix(x))
    np.testing.assert_array_equal(sparse, dense)
