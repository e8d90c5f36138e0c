"""KMeans ``sample_weight`` against scikit-learn, and the size buckets: every N of a bucket
shares one compiled program, and the padding rows change nothing."""

import numpy as np
import pytest
from cluster_helpers import RTOL, assert_same_fit, initial_centers
from sklearn.cluster import KMeans as SKMeans

from tfclust._tiling import padded_size
from tfclust.kmeans import KMeans, _lloyd


def _weights(n, seed=0):
    return np.random.default_rng(seed).uniform(0.0, 3.0, size=n)


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
@pytest.mark.parametrize("k", [6, 64])
def test_weighted_fit_matches_sklearn(blobs, algorithm, k):
    init = initial_centers(blobs, k, seed=1)
    w = _weights(len(blobs))
    ref = SKMeans(k, init=init, n_init=1).fit(blobs, sample_weight=w)
    ours = KMeans(k, init=init, dtype="float64", algorithm=algorithm).fit(blobs, sample_weight=w)
    assert_same_fit(ours, ref)
    np.testing.assert_allclose(-ours.score(blobs, sample_weight=w), ref.inertia_, rtol=RTOL)


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
def test_empty_cluster_relocation_carries_the_weight(blobs, algorithm):
    init = initial_centers(blobs, 6, seed=2)
    init[[1, 4]] = 1e3  # two centres that win no point on the first iteration
    w = _weights(len(blobs), seed=3)
    ref = SKMeans(6, init=init, n_init=1).fit(blobs, sample_weight=w)
    ours = KMeans(6, init=init, dtype="float64", algorithm=algorithm).fit(blobs, sample_weight=w)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=RTOL)


def test_integer_weights_equal_repeated_rows(blobs):
    reps = np.random.default_rng(4).integers(1, 4, size=len(blobs))
    init = initial_centers(blobs, 6, seed=1)
    weighted = KMeans(6, init=init, dtype="float64").fit(blobs, sample_weight=reps)
    repeated = KMeans(6, init=init, dtype="float64").fit(np.repeat(blobs, reps, axis=0))
    np.testing.assert_allclose(weighted.cluster_centers_, repeated.cluster_centers_, rtol=1e-9)
    np.testing.assert_allclose(weighted.inertia_, repeated.inertia_, rtol=1e-9)


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_seeding_never_picks_zero_weight_rows(blobs, init):
    import tensorflow as tf

    w = np.ones(len(blobs))
    w[::2] = 0.0  # every other row weighs nothing
    xb = tf.constant(blobs[np.newaxis])
    wb = tf.constant(w[np.newaxis])
    centers = _lloyd._seed(xb, wb, tf.constant([3, 1]), len(blobs), 6, 4, init, 3).numpy()
    heavy = {tuple(row) for row in blobs[1::2]}
    assert all(tuple(c) in heavy for c in centers.reshape(-1, blobs.shape[1]))


def test_zero_weight_rows_are_ignored(blobs):
    init = initial_centers(blobs, 6, seed=1)
    w = np.ones(len(blobs))
    w[:100] = 0.0
    ours = KMeans(6, init=init, dtype="float64").fit(blobs, sample_weight=w)
    rest = KMeans(6, init=init, dtype="float64").fit(blobs[100:])
    np.testing.assert_allclose(ours.cluster_centers_, rest.cluster_centers_, rtol=1e-9)
    np.testing.assert_allclose(ours.inertia_, rest.inertia_, rtol=1e-9)
    assert ours.labels_.shape == (len(blobs),)  # zero-weight rows still get a label


@pytest.mark.parametrize(
    "weight,error,match",
    [
        (-1.0, ValueError, "Negative"),
        (np.nan, ValueError, "NaN"),
        (np.inf, ValueError, "NaN or infinity"),
        (0.0, ValueError, "at least one positive"),
        ("a", TypeError, "numeric"),
    ],
)
def test_bad_sample_weight(blobs, weight, error, match):
    w = np.full(len(blobs), weight, dtype=object if isinstance(weight, str) else float)
    with pytest.raises(error, match=match):
        KMeans(3, n_init=1).fit(blobs, sample_weight=w)


def test_sample_weight_of_the_wrong_shape(blobs):
    with pytest.raises(ValueError, match="sample_weight.shape"):
        KMeans(3, n_init=1).fit(blobs, sample_weight=np.ones(len(blobs) - 1))
    with pytest.raises(ValueError, match="sample_weight.shape"):
        KMeans(3, n_init=1).fit(blobs, sample_weight=np.ones((len(blobs), 1)))


def test_sample_weight_with_a_dataset_is_refused(blobs):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(blobs).batch(100)
    with pytest.raises(ValueError, match="not supported"):
        KMeans(3, n_init=1).fit(ds, sample_weight=np.ones(len(blobs)))


def test_padded_size_ladder():
    sizes = [padded_size(n) for n in range(1, 5000)]
    assert all(s >= n for n, s in zip(range(1, 5000), sizes, strict=True))
    assert max(s / n for n, s in zip(range(9, 5000), sizes[8:], strict=True)) <= 1.25
    assert len(set(sizes)) < 40  # few buckets: 4 per doubling
    assert padded_size(5000) == padded_size(4500) == 5120


def test_one_program_per_size_bucket(blobs):
    """Fits of 600 and 580 rows (bucket 640) and predictions on 530-640 rows compile once."""
    init = initial_centers(blobs, 5, seed=1)
    KMeans(5, init=init, dtype="float64").fit(blobs)
    program = _lloyd.fit_in_memory_program(5)
    before = program.experimental_get_tracing_count()
    small = KMeans(5, init=init, dtype="float64").fit(blobs[:580])
    assert program.experimental_get_tracing_count() == before
    ref = SKMeans(5, init=init, n_init=1).fit(blobs[:580])
    np.testing.assert_array_equal(small.labels_, ref.labels_)
    np.testing.assert_allclose(small.inertia_, ref.inertia_, rtol=RTOL)
    small.predict(blobs[:530])
    traced = _lloyd.assign_rows.experimental_get_tracing_count()
    np.testing.assert_array_equal(small.predict(blobs[:600]), ref.predict(blobs[:600]))
    assert _lloyd.assign_rows.experimental_get_tracing_count() == traced
    np.testing.assert_allclose(small.transform(blobs[:7]), ref.transform(blobs[:7]), rtol=1e-9)
