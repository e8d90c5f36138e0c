"""float32 fits against scikit-learn's on the same float32 data: labels and neighbours decided
by float32 matmuls. tests/test_precision.py runs this file again with TF32-rounded matmuls."""

import numpy as np
import pytest
import tensorflow as tf
from cluster_helpers import initial_centers
from sklearn.cluster import KMeans as SKMeans
from sklearn.neighbors import NearestNeighbors

from tfclust import KMeans
from tfclust._neighbors import nearest_neighbors, nearest_reference_neighbors


@pytest.fixture(scope="module")
def latents32(latents):
    # Shifted off the origin: the matmul form's cancellation, TF32's error, scale with |x|^2.
    return (latents + 2.0).astype(np.float32)


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
def test_kmeans_float32_same_fit_as_sklearn(latents32, algorithm):
    init = initial_centers(latents32, 10, seed=0)
    ref = SKMeans(10, init=init, n_init=1, algorithm="lloyd").fit(latents32)
    ours = KMeans(10, init=init, n_init=1, algorithm=algorithm).fit(latents32)
    assert ours.cluster_centers_.dtype == np.float32
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-5)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, atol=1e-5)


def test_kmeans_float32_predict_is_the_nearest_centre(latents32):
    km = KMeans(10, n_init=1, random_state=0).fit(latents32)
    d2 = ((latents32[:, None, :].astype(np.float64) - km.cluster_centers_[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(km.predict(latents32), d2.argmin(axis=1))


def _same_neighbours(ours_idx, ref_dist, ref_idx, x, queries):
    """Every row's neighbour set equals the reference's, up to exact ties at the k-th."""
    got = np.sort(((queries[:, None, :] - x[ours_idx]) ** 2).sum(-1), axis=1)
    np.testing.assert_allclose(np.sqrt(got), ref_dist, rtol=1e-6, atol=1e-6)
    assert (
        np.mean([len(set(a) & set(b)) for a, b in zip(ours_idx, ref_idx, strict=True)])
        == (ref_idx.shape[1])
    )


def test_knn_float32_matches_sklearn(latents32):
    x = latents32[:2000].astype(np.float64)
    ref_dist, ref_idx = NearestNeighbors(n_neighbors=31).fit(x).kneighbors(x)
    idx, _ = nearest_neighbors(tf.constant(latents32[:2000]), 30)
    _same_neighbours(idx.numpy(), ref_dist[:, 1:], ref_idx[:, 1:], x, x)


def test_reference_knn_float32_matches_sklearn(latents32):
    x, q = latents32[:3000].astype(np.float64), latents32[3000:3500].astype(np.float64)
    ref_dist, ref_idx = NearestNeighbors(n_neighbors=15).fit(x).kneighbors(q)
    idx, _ = nearest_reference_neighbors(
        tf.constant(latents32[3000:3500]), tf.constant(latents32[:3000]), 15
    )
    _same_neighbours(idx.numpy(), ref_dist, ref_idx, x, q)
