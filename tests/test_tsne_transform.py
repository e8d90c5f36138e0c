"""TSNE.transform: new points placed on a fixed map (tfclust.tsne.placement)."""

import pickle

import numpy as np
import pytest
import tensorflow as tf
from scipy.spatial.distance import cdist
from sklearn.datasets import make_blobs

from tfclust import TSNE, NotFittedError
from tfclust._neighbors import nearest_reference_neighbors
from tfclust.tsne.affinities import calibrated_conditionals
from tfclust.tsne.fft import reference_grid
from tfclust.tsne.placement import placement_gradient


@pytest.fixture(scope="module")
def blobs():
    x, y = make_blobs(n_samples=460, n_features=6, centers=4, cluster_std=1.0, random_state=3)
    return x[:400].astype(np.float32), y[:400], x[400:].astype(np.float32), y[400:]


@pytest.fixture(scope="module")
def fitted(blobs):
    return TSNE(perplexity=20, max_iter=400, random_state=0).fit(blobs[0])


def _numpy_gradient(y, ref, nbr, p, dof, exaggeration):
    """The placement gradient (tfclust.tsne.placement) by all pairs, in float64."""
    diff = y[:, None, :] - ref[None, :, :]
    base = 1.0 + (diff**2).sum(-1) / dof
    z = (base**-dof).sum(1)
    repulsive = ((base ** -(dof + 1))[..., None] * diff).sum(1)
    ndiff = y[:, None, :] - ref[nbr]
    attractive = ((p / (1.0 + (ndiff**2).sum(-1) / dof))[..., None] * ndiff).sum(1)
    return exaggeration * attractive - repulsive / z[:, None]


@pytest.mark.parametrize(
    "dim, dof, nodes, stencil", [(2, 1.0, 2, 4), (2, 0.6, 2, 4), (1, 1.0, 5, 5)]
)
def test_gradient_matches_all_pairs_numpy(dim, dof, nodes, stencil):
    rng = np.random.default_rng(0)
    ref = np.concatenate([rng.normal(c, 2.0, (150, dim)) for c in (-15.0, 0.0, 12.0)])
    new = rng.uniform(ref.min(0), ref.max(0), (40, dim))
    nbr = np.argsort(cdist(new, ref), axis=1)[:, :10]
    p = rng.uniform(0.1, 1.0, (40, 10))
    p /= p.sum(1, keepdims=True)
    grid = reference_grid(
        tf.constant(ref),
        tf.ones([len(ref)], tf.float64),
        n_boxes=250,
        n_interpolation_points=nodes,
        stencil_size=stencil,
        padding=0.25,
        dof=dof,
    )
    got = placement_gradient(
        tf.constant(new), tf.constant(ref[nbr]), tf.constant(p), grid, stencil, dof, 1.5
    ).numpy()
    want = _numpy_gradient(new, ref, nbr, p, dof, 1.5)
    assert np.linalg.norm(got - want) / np.linalg.norm(want) < 2e-3


def _per_point_kl(y, ref, nbr, p):
    """Each new point's KL(P_i || Q_i), all pairs, dof 1."""
    w = 1.0 / (1.0 + cdist(y, ref, "sqeuclidean"))
    q = np.take_along_axis(w, nbr, 1) / w.sum(1, keepdims=True)
    return (p * np.log(np.maximum(p, 1e-300) / q)).sum(1)


def test_start_is_affinity_weighted_mean_and_descent_lowers_kl(blobs, fitted):
    new = blobs[2]
    reference, embedding = blobs[0], fitted.embedding_.astype(np.float64)
    nbr, d2 = nearest_reference_neighbors(tf.constant(new), tf.constant(reference), 16)
    p = calibrated_conditionals(tf.cast(d2, tf.float64), tf.constant(5.0, tf.float64))[0]
    nbr, p = nbr.numpy(), p.numpy()
    start = fitted.transform(new, n_iter=0)
    np.testing.assert_allclose(start, (p[..., None] * embedding[nbr]).sum(1), atol=1e-3)
    placed = fitted.transform(new)
    before = _per_point_kl(start, embedding, nbr, p)
    after = _per_point_kl(placed.astype(np.float64), embedding, nbr, p)
    assert after.mean() < 0.9 * before.mean()
    assert np.mean(after <= before + 1e-3) > 0.9


def test_new_points_land_among_their_class(blobs, fitted):
    x, y, new, new_y = blobs
    placed = fitted.transform(new)
    nearest = np.argsort(cdist(placed, fitted.embedding_), axis=1)[:, :10]
    votes = np.array([np.bincount(y[row], minlength=4).argmax() for row in nearest])
    assert np.mean(votes == new_y) >= 0.95
    # Every new point stays within the map's padded bounding box.
    lo, hi = fitted.embedding_.min(0), fitted.embedding_.max(0)
    assert np.all(placed >= lo - 0.25 * (hi - lo)) and np.all(placed <= hi + 0.25 * (hi - lo))


def test_batches_place_points_independently(blobs, fitted):
    new = blobs[2]
    whole = fitted.transform(new)
    parts = np.concatenate([fitted.transform(new[:1]), fitted.transform(new[1:])])
    np.testing.assert_allclose(parts, whole, atol=1e-3)


def test_reference_points_stay_near_their_positions(blobs, fitted):
    again = fitted.transform(blobs[0][:50])
    moved = np.linalg.norm(again - fitted.embedding_[:50], axis=1)
    span = np.ptp(fitted.embedding_, axis=0).max()
    assert np.median(moved) < 0.05 * span


def test_precomputed_distances_match_the_metric(blobs, fitted):
    x, _, new, _ = blobs
    pre = TSNE(metric="precomputed", perplexity=20, max_iter=250, init="random", random_state=0)
    pre.fit(cdist(x, x).astype(np.float32))
    pre.embedding_ = fitted.embedding_  # the same map, searched by distances instead of X
    np.testing.assert_allclose(
        pre.transform(cdist(new, x).astype(np.float32)), fitted.transform(new), atol=1e-3
    )
    with pytest.raises(ValueError, match=r"Negative values in data passed to TSNE.transform"):
        pre.transform(-cdist(new, x))


def test_one_dimensional_and_exact_maps(blobs):
    x, _, new, new_y = blobs
    one = TSNE(n_components=1, perplexity=20, max_iter=250, random_state=0).fit(x)
    assert one.transform(new).shape == (len(new), 1)
    exact = TSNE(method="exact", perplexity=20, max_iter=250, random_state=0).fit(x[:100])
    assert exact.transform(new).shape == (len(new), 2)
    three = TSNE(n_components=3, method="exact", perplexity=10, max_iter=250, random_state=0)
    with pytest.raises(ValueError, match="n_components 1 and 2"):
        three.fit(x[:60]).transform(new)


def test_pickled_map_transforms_alike(blobs, fitted):
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.transform(blobs[2]), fitted.transform(blobs[2]))


def test_bad_calls(blobs, fitted):
    x, _, new, _ = blobs
    with pytest.raises(NotFittedError):
        TSNE().transform(new)
    with pytest.raises(ValueError, match="expecting 6 features"):
        fitted.transform(new[:, :5])
    bad = new.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        fitted.transform(bad)
    with pytest.raises(ValueError, match="0 sample"):
        fitted.transform(new[:0])
    with pytest.raises(ValueError, match="perplexity"):
        fitted.transform(new, perplexity=400)
    for name, value in [
        ("perplexity", 0),
        ("n_iter", -1),
        ("learning_rate", 0),
        ("exaggeration", 0.5),
        ("momentum", 1.5),
        ("max_grad_norm", 0),
    ]:
        with pytest.raises(ValueError, match=name):
            fitted.transform(new, **{name: value})
    scipy_metric = TSNE(metric="canberra", perplexity=5, max_iter=250, random_state=0)
    with pytest.raises(ValueError, match="fitted X"):
        scipy_metric.fit(x[:30]).transform(new)
