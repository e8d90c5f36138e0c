"""t-SNE affinities (P) against scikit-learn's ``_joint_probabilities(_nn)``."""

import numpy as np
import pytest
import tensorflow as tf
from scipy.optimize import brentq
from scipy.sparse import csr_matrix
from scipy.spatial.distance import squareform
from sklearn.datasets import load_digits
from sklearn.manifold import _t_sne
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import NearestNeighbors

from tfclust.tsne import affinities

# Forces several tiles with a padded last one on 250 points.
SMALL_BUDGET = 64 * 250 * 8 * 4


@pytest.fixture(scope="module")
def digits():
    return load_digits().data[:250].astype(np.float64)


@pytest.mark.parametrize("perplexity", [5.0, 30.0])
@pytest.mark.parametrize("budget", [None, SMALL_BUDGET])
def test_dense_p_matches_sklearn(digits, perplexity, budget):
    kwargs = {} if budget is None else {"memory_budget": budget}
    p = affinities.joint_probabilities(tf.constant(digits), perplexity, **kwargs).numpy()
    expected = _t_sne._joint_probabilities(pairwise_distances(digits, squared=True), perplexity, 0)
    assert p.shape == (250, 250)
    np.testing.assert_array_equal(np.diag(p), 0.0)
    np.testing.assert_allclose(p, p.T, rtol=0, atol=0)
    assert np.max(np.abs(squareform(p, checks=False) - expected)) <= 1e-8


def test_dense_p_float32_close_to_sklearn(digits):
    p = affinities.joint_probabilities(tf.constant(digits, tf.float32), 30.0).numpy()
    assert p.dtype == np.float32
    expected = _t_sne._joint_probabilities(pairwise_distances(digits, squared=True), 30.0, 0)
    assert np.max(np.abs(squareform(p, checks=False) - expected)) <= 1e-7


def test_conditional_rows_have_the_perplexity(digits):
    p = affinities.conditional_probabilities(tf.constant(digits), 20.0).numpy()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    logp = np.log(np.where(p > 0, p, 1.0))
    entropy = -np.sum(p * logp, axis=1)
    np.testing.assert_allclose(np.exp(entropy), 20.0, rtol=1e-4)


def test_binary_search_two_candidates_matches_closed_form():
    # Two candidates: perplexity exp(H(q)) fixes the far one's probability q directly.
    q = brentq(lambda q: -(q * np.log(q) + (1 - q) * np.log(1 - q)) - np.log(1.5), 1e-9, 0.5)
    d2 = tf.constant([[0.0, 1.0], [0.0, 3.0], [2.0, 0.5]], tf.float64)
    p = affinities.binary_search_perplexity(d2, 1.5).numpy()
    np.testing.assert_allclose(np.sort(p, axis=1), [[q, 1 - q]] * 3, atol=1e-4)
    keep = tf.constant([[False, True], [True, True], [True, True]])
    p = affinities.binary_search_perplexity(d2, 1.5, keep=keep).numpy()
    np.testing.assert_array_equal(p[0], [0.0, 1.0])


def test_nearest_neighbors_match_sklearn(digits):
    k = 20
    idx, d2 = affinities.nearest_neighbors(tf.constant(digits), k, memory_budget=SMALL_BUDGET)
    idx, d2 = idx.numpy(), d2.numpy()
    ref_dist, _ = NearestNeighbors(n_neighbors=k).fit(digits).kneighbors()
    np.testing.assert_allclose(d2, ref_dist**2, rtol=1e-10, atol=1e-8)
    # The indices are nearest neighbours (up to ties) and their distances are the returned ones.
    full = pairwise_distances(digits, squared=True)
    np.testing.assert_allclose(np.take_along_axis(full, idx, axis=1), d2, rtol=1e-10, atol=1e-8)
    assert not np.any(idx == np.arange(250)[:, None])
    assert all(len(set(row)) == k for row in idx)


def _neighbour_graph(idx, d2):
    n, k = idx.shape
    return csr_matrix(
        (d2.ravel().copy(), idx.ravel().copy(), np.arange(0, n * k + 1, k)), shape=(n, n)
    )


@pytest.mark.parametrize("perplexity", [5.0, 30.0])
def test_sparse_p_matches_sklearn_on_the_same_graph(digits, perplexity):
    k = affinities.n_neighbors_for_perplexity(250, perplexity)
    assert k == min(249, int(3 * perplexity + 1))
    idx, d2 = affinities.nearest_neighbors(tf.constant(digits), k)
    expected = _t_sne._joint_probabilities_nn(
        _neighbour_graph(idx.numpy(), d2.numpy()), perplexity, 0
    ).toarray()
    p = affinities.joint_probabilities_nn(tf.constant(digits), perplexity)
    assert isinstance(p, tf.SparseTensor)
    dense = tf.sparse.to_dense(p).numpy()
    assert np.max(np.abs(dense - expected)) <= 1e-12
    np.testing.assert_allclose(dense, dense.T, rtol=0, atol=0)
    # Row-major, no repeated pair: usable as gather/segment-sum indices.
    keys = p.indices.numpy() @ np.array([250, 1])
    assert np.all(np.diff(keys) > 0)
    assert p.indices.shape[0] == np.count_nonzero(expected)


def test_sparse_p_with_all_other_points_as_neighbours():
    # k = n - 1 (perplexity close to n): every pair is present, as in sklearn.
    x = np.random.default_rng(0).normal(size=(12, 3))
    p = affinities.joint_probabilities_nn(tf.constant(x), 5.0)
    k = affinities.n_neighbors_for_perplexity(12, 5.0)
    assert k == 11
    idx, d2 = affinities.nearest_neighbors(tf.constant(x), k)
    expected = _t_sne._joint_probabilities_nn(
        _neighbour_graph(idx.numpy(), d2.numpy()), 5.0, 0
    ).toarray()
    # sklearn rounds the distances to float32 first: agreement to ~1e-9, not to round-off.
    np.testing.assert_allclose(tf.sparse.to_dense(p).numpy(), expected, rtol=0, atol=1e-8)


def test_duplicate_points_give_finite_p():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 5))
    x[10:20] = x[0]
    x[30:] = x[29]
    for dtype in (tf.float32, tf.float64):
        dense = affinities.joint_probabilities(tf.constant(x, dtype), 5.0).numpy()
        sparse = affinities.joint_probabilities_nn(tf.constant(x, dtype), 5.0).values.numpy()
        assert np.all(np.isfinite(dense)) and np.all(np.isfinite(sparse))
        np.testing.assert_allclose(dense.sum(), 1.0, rtol=1e-5)
        np.testing.assert_allclose(sparse.sum(), 1.0, rtol=1e-5)


def test_nearest_neighbors_rejects_bad_k():
    x = tf.zeros([5, 2])
    for k in (0, 5):
        with pytest.raises(ValueError, match="k must be"):
            affinities.nearest_neighbors(x, k)
