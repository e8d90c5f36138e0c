"""KMeans against scikit-learn (the oracle), plus streaming, bad input and edge cases.

XLA compiles one program per (shape, k, n_init, tile, init kind, dtype); the fixtures (in
conftest.py) keep to a few shapes so the file stays fast.
"""

import logging

import numpy as np
import pytest
import tensorflow as tf
from cluster_helpers import RTOL, assert_same_fit, initial_centers
from sklearn.cluster import KMeans as SKMeans

from tfclust._validation import ConvergenceWarning, NotFittedError
from tfclust.kmeans import KMeans


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
# k=64 takes the pruned algorithm's scatter-add update of the sums (above 48 clusters).
@pytest.mark.parametrize(
    "data,k", [("blobs", 6), ("latents", 10), ("latents", 40), ("latents", 64)]
)
def test_same_init_matches_sklearn(request, data, k, algorithm):
    x = request.getfixturevalue(data)
    init = initial_centers(x, k, seed=1)
    ref = SKMeans(k, init=init, n_init=1).fit(x)
    ours = KMeans(k, init=init, dtype="float64", algorithm=algorithm).fit(x)
    assert_same_fit(ours, ref)
    assert ours.cluster_centers_.dtype == np.float64


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
@pytest.mark.parametrize("data,k", [("blobs", 6), ("latents", 64)])
def test_empty_cluster_is_relocated_like_sklearn(request, data, k, algorithm):
    x = request.getfixturevalue(data)
    init = initial_centers(x, k, seed=2)
    init[[1, 4]] = 1e3  # two centres that win no point on the first iteration
    ref = SKMeans(k, init=init, n_init=1).fit(x)
    ours = KMeans(k, init=init, dtype="float64", algorithm=algorithm).fit(x)
    assert_same_fit(ours, ref)
    assert np.isfinite(ours.cluster_centers_).all()


def test_tiled_fit_equals_untiled(blobs):
    init = initial_centers(blobs, 6, seed=1)
    ref = KMeans(6, init=init, dtype="float64").fit(blobs)
    tiled = KMeans(6, init=init, dtype="float64", memory_budget=4096).fit(blobs)  # ~21 tiles
    assert_same_fit(tiled, ref)


def test_kmeans_plusplus_seeds_equal_in_one_tile_and_many(blobs):
    # One tile takes the chosen candidates' distances from the candidate sweep; several tiles
    # recompute them in a second sweep. Same draws, same centres.
    from tfclust.kmeans._lloyd import seed_centers

    x = tf.constant(blobs)
    seeds = [
        seed_centers(
            x,
            tf.constant([7, 1]),
            n_clusters=6,
            n_restarts=3,
            init="k-means++",
            tile=tile,
            n_local_trials=3,
        ).numpy()
        for tile in (len(blobs), 64)
    ]
    np.testing.assert_allclose(seeds[0], seeds[1], rtol=1e-12)
    # Every centre is a row of the data, and no restart picks a row twice.
    rows = {tuple(row) for row in blobs}
    assert all(tuple(c) in rows for c in seeds[0].reshape(-1, blobs.shape[1]))
    assert all(len({tuple(c) for c in restart}) == 6 for restart in seeds[0])


@pytest.mark.parametrize(
    "data,k,rtol",
    [
        ("blobs", 6, 1e-3),
        ("latents", 10, 1e-3),
        # The best of 10 restarts varies by ~0.2% from seed to seed for sklearn itself at k=40
        # (over 12 seeds tfclust/sklearn averaged 1.0004, single seeds 0.997-1.0035).
        pytest.param("latents", 40, 3e-3, marks=pytest.mark.slow),
    ],
)
def test_kmeans_plusplus_inertia_matches_sklearn(request, data, k, rtol):
    # Single seeds test the random streams (at k=10 one seed in twelve was 0.15% worse and
    # another 0.12% better), so the bound is on the mean over five seeds.
    x = request.getfixturevalue(data).astype(np.float32)
    ref = [SKMeans(k, n_init=10, random_state=seed).fit(x).inertia_ for seed in range(5)]
    fits = [KMeans(k, n_init=10, random_state=seed).fit(x) for seed in range(5)]
    assert np.mean([f.inertia_ for f in fits]) <= np.mean(ref) * (1 + rtol)
    assert fits[0].cluster_centers_.dtype == np.float32
    # labels_ come from the final assignment against cluster_centers_.
    np.testing.assert_array_equal(fits[0].labels_, fits[0].predict(x))


def test_random_init_is_reproducible_and_competitive(blobs):
    a = KMeans(6, init="random", n_init=10, random_state=3).fit(blobs)
    b = KMeans(6, init="random", n_init=10, random_state=3).fit(blobs)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    ref = SKMeans(6, init="random", n_init=10, random_state=3).fit(blobs)
    assert a.inertia_ <= ref.inertia_ * 1.001


def test_different_seeds_draw_different_centres(blobs):
    fits = [
        KMeans(6, init="random", n_init=1, max_iter=1, random_state=s).fit(blobs) for s in (0, 1)
    ]
    assert not np.allclose(fits[0].cluster_centers_, fits[1].cluster_centers_)


def test_predict_transform_score_agree_with_sklearn(latents):
    ours = KMeans(10, n_init=1, random_state=0, dtype="float64").fit(latents)
    ref = SKMeans(10, init=ours.cluster_centers_, n_init=1, max_iter=1).fit(latents)
    ref.cluster_centers_ = ours.cluster_centers_.copy()
    x_new = latents[::7] + 0.1
    np.testing.assert_array_equal(ours.predict(x_new), ref.predict(x_new))
    np.testing.assert_allclose(ours.transform(x_new), ref.transform(x_new), rtol=RTOL, atol=1e-9)
    np.testing.assert_allclose(ours.score(x_new), ref.score(x_new), rtol=RTOL)
    np.testing.assert_allclose(ours.score(latents), -ours.inertia_, rtol=RTOL)
    np.testing.assert_array_equal(ours.fit_predict(latents), ours.labels_)


def test_streaming_fit_equals_in_memory(blobs):
    init = initial_centers(blobs, 6, seed=2)
    init[4] = 1e3  # exercises the relocation pass too
    ref = KMeans(6, init=init, dtype="float64").fit(blobs)
    labels = np.zeros(len(blobs), np.int64)
    ds = tf.data.Dataset.from_tensor_slices((blobs, labels)).batch(128)  # uneven last batch
    ours = KMeans(6, init=init, dtype="float64").fit(ds)
    assert_same_fit(ours, ref)


def test_streaming_kmeans_plusplus(blobs):
    ds = tf.data.Dataset.from_tensor_slices(blobs.astype(np.float32)).batch(128)
    ours = KMeans(6, n_init=3, random_state=0, init_size=300).fit(ds)
    ref = SKMeans(6, n_init=3, random_state=0).fit(blobs)
    assert ours.inertia_ <= ref.inertia_ * 1.001
    assert ours.labels_.shape == (len(blobs),)


def test_integer_input_is_cast():
    x = np.repeat(np.arange(4), 5)[:, None] * np.array([[10, 3]])  # int64, 4 groups of 5
    km = KMeans(4, n_init=1, random_state=0).fit(x)
    assert km.cluster_centers_.dtype == np.float64  # as scikit-learn: integers become float64
    assert km.inertia_ == pytest.approx(0.0, abs=1e-4)
    assert len(np.unique(km.labels_)) == 4


def test_duplicates_and_too_few_distinct_points():
    x = np.repeat(np.eye(3), 4, axis=0)  # 12 rows, 3 distinct points
    with pytest.warns(ConvergenceWarning, match="distinct clusters"):
        km = KMeans(5, n_init=2, random_state=0).fit(x)
    assert np.isfinite(km.cluster_centers_).all()
    assert km.inertia_ == pytest.approx(0.0, abs=1e-5)
    x_same = np.ones((6, 2))
    with pytest.warns(ConvergenceWarning):
        km = KMeans(3, init="random", n_init=1, random_state=0).fit(x_same)
    np.testing.assert_allclose(km.cluster_centers_, 1.0)


def test_single_cluster(blobs):
    km = KMeans(1, n_init=1, random_state=0, dtype="float64").fit(blobs)
    np.testing.assert_allclose(km.cluster_centers_[0], blobs.mean(axis=0), rtol=1e-10)
    assert (km.labels_ == 0).all()


def test_array_init_with_n_init_warns(blobs):
    with pytest.warns(RuntimeWarning, match="only one init"):
        KMeans(6, init=initial_centers(blobs, 6, 1), n_init=3, dtype="float64").fit(blobs)


def test_logging(blobs, caplog, capsys):
    init = initial_centers(blobs, 6, seed=1)
    with caplog.at_level(logging.INFO, logger="tfclust.kmeans"):
        KMeans(6, init=init, dtype="float64", verbose=1).fit(blobs)
    messages = [r.getMessage() for r in caplog.records if r.name == "tfclust.kmeans"]
    assert any("fit start" in m for m in messages)
    assert any("fit end" in m for m in messages)
    assert "Initialization complete" in capsys.readouterr().out  # verbose prints, as sklearn


@pytest.mark.parametrize(
    "x,match",
    [
        (np.array([[0.0, np.nan], [1.0, 1.0]]), "NaN or infinity"),
        (np.array([[0.0, np.inf], [1.0, 1.0]]), "NaN or infinity"),
        (np.zeros((0, 2)), "sample"),
        (np.arange(5.0), "2-D"),
    ],
)
def test_bad_x(x, match):
    with pytest.raises(ValueError, match=match):
        KMeans(1).fit(x)


@pytest.mark.parametrize(
    "params,match",
    [
        ({"n_clusters": 0}, "n_clusters"),
        ({"n_clusters": 7}, "n_samples=6 should be >= n_clusters=7"),
        ({"n_clusters": 2, "max_iter": 0}, "max_iter"),
        ({"n_clusters": 2, "init": "kmeans"}, "init"),
        ({"n_clusters": 2, "init": np.zeros((3, 2))}, r"init has shape \(3, 2\)"),
        ({"n_clusters": 2, "init": np.zeros((2, 5))}, r"init has shape \(2, 5\)"),
        ({"n_clusters": 2, "tol": -1.0}, "tol"),
        ({"n_clusters": 2, "n_init": 0}, "n_init"),
        ({"n_clusters": 2, "dtype": "int32"}, "dtype"),
        ({"n_clusters": 2, "algorithm": "full"}, "algorithm"),
    ],
)
def test_bad_params(params, match):
    with pytest.raises(ValueError, match=match):
        KMeans(**params).fit(np.arange(12.0).reshape(6, 2))


def test_predict_before_fit_and_wrong_features(blobs):
    with pytest.raises(NotFittedError):
        KMeans(2).predict(blobs)
    km = KMeans(6, init=initial_centers(blobs, 6, 1), dtype="float64").fit(blobs)
    with pytest.raises(ValueError, match="X has 3 features, but KMeans is expecting 8"):
        km.predict(blobs[:, :3])
    with pytest.raises(ValueError, match="X has 3 features"):
        km.transform(blobs[:, :3])


def test_bad_datasets():
    unbatched = tf.data.Dataset.from_tensor_slices(np.ones((6, 2)))
    with pytest.raises(ValueError, match="batches of shape"):
        KMeans(2).fit(unbatched)
    x = np.arange(12.0).reshape(6, 2)
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        KMeans(2).fit(tf.data.Dataset.from_tensor_slices(x).batch(4))
    with pytest.raises(ValueError, match="n_clusters"):
        KMeans(7).fit(tf.data.Dataset.from_tensor_slices(np.ones((6, 2))).batch(4))


@pytest.mark.parametrize("n", [1, 63, 64, 65, 6001])
def test_running_count_is_a_cumsum(n):
    from tfclust.kmeans._bounded import _running_count

    mask = np.random.default_rng(n).random(n) < 0.3
    np.testing.assert_array_equal(_running_count(tf.constant(mask)).numpy(), np.cumsum(mask))
