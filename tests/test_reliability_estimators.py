"""Bad input to the estimators and metrics (issue 14): every case either fails early with a
ValueError/TypeError naming the parameter, or gives the correct result."""

import warnings

import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import make_blobs
from sklearn.manifold import trustworthiness as sk_trustworthiness

from tfclust import metrics
from tfclust._validation import (
    INT32_MAX,
    SEED_MAX,
    check_array,
    check_random_state,
    stateless_seed,
)
from tfclust.kmeans import KMeans, MiniBatchKMeans
from tfclust.tsne import TSNE
from tfclust.tsne.optimize import pca_embedding, random_embedding

BIG = 2**31  # one past int32's largest value
# One small FFT grid: one compiled grid size instead of the default ladder (~3x faster to
# compile); these tests are not about the forces' accuracy.
FAST_FFT = dict(method="fft", min_num_intervals=8, max_num_intervals=8)


@pytest.fixture(scope="module")
def x():
    data, _ = make_blobs(n_samples=90, n_features=4, centers=3, random_state=0)
    return data.astype(np.float32)


# -- every parameter range-checked, numpy integers accepted ---------------------------------

_SHARED_KMEANS = [
    ("n_clusters", 0, ValueError),
    ("n_clusters", BIG, ValueError),
    ("n_clusters", 2.5, TypeError),
    ("n_clusters", True, TypeError),
    ("max_iter", 0, ValueError),
    ("max_iter", BIG, ValueError),
    ("max_iter", 2**32, ValueError),
    ("max_iter", 10.0, TypeError),
    ("tol", -1.0, ValueError),
    ("tol", np.nan, ValueError),
    ("tol", np.inf, ValueError),
    ("tol", "small", TypeError),
    ("verbose", -1, ValueError),
    ("verbose", 1.5, TypeError),
    ("random_state", -1, ValueError),
    ("random_state", 2**32, ValueError),
    ("random_state", 1.5, TypeError),
    ("memory_budget", 0, ValueError),
    ("memory_budget", 1e9, TypeError),
    ("init_size", 0, ValueError),
    ("init_size", BIG, ValueError),
    ("n_init", 0, ValueError),
    ("n_init", BIG, ValueError),
    ("n_init", "many", ValueError),
    ("n_init", 2.0, TypeError),
    ("dtype", "int32", ValueError),
    ("init", "kmeans", ValueError),
]

BAD_PARAMS = (
    [(KMeans, *case) for case in _SHARED_KMEANS]
    + [(KMeans, "algorithm", "full", ValueError)]
    + [(MiniBatchKMeans, *case) for case in _SHARED_KMEANS]
    + [
        (MiniBatchKMeans, "batch_size", 0, ValueError),
        (MiniBatchKMeans, "batch_size", BIG, ValueError),
        (MiniBatchKMeans, "max_no_improvement", -1, ValueError),
        (MiniBatchKMeans, "max_no_improvement", BIG, ValueError),
        (MiniBatchKMeans, "reassignment_ratio", -0.1, ValueError),
        (MiniBatchKMeans, "reassignment_ratio", np.nan, ValueError),
        (MiniBatchKMeans, "reassignment_ratio", np.inf, ValueError),
        (MiniBatchKMeans, "compute_labels", "yes", TypeError),
        (TSNE, "n_components", 0, ValueError),
        (TSNE, "n_components", 3, ValueError),  # fft: 1 or 2
        (TSNE, "n_components", 2.0, TypeError),
        (TSNE, "perplexity", 0.0, ValueError),
        (TSNE, "perplexity", np.nan, ValueError),
        (TSNE, "perplexity", np.inf, ValueError),
        (TSNE, "perplexity", 90.0, ValueError),  # >= n_samples
        (TSNE, "early_exaggeration", 0.5, ValueError),
        (TSNE, "early_exaggeration", np.nan, ValueError),
        (TSNE, "early_exaggeration", np.inf, ValueError),
        (TSNE, "learning_rate", 0.0, ValueError),
        (TSNE, "learning_rate", -5.0, ValueError),
        (TSNE, "learning_rate", np.nan, ValueError),
        (TSNE, "learning_rate", np.inf, ValueError),
        (TSNE, "learning_rate", "fast", ValueError),
        (TSNE, "max_iter", 249, ValueError),
        (TSNE, "max_iter", BIG, ValueError),
        (TSNE, "max_iter", 300.0, TypeError),
        (TSNE, "n_iter_without_progress", -2, ValueError),
        (TSNE, "n_iter_without_progress", BIG, ValueError),
        (TSNE, "min_grad_norm", -1.0, ValueError),
        (TSNE, "min_grad_norm", np.nan, ValueError),
        (TSNE, "verbose", -1, ValueError),
        (TSNE, "random_state", -1, ValueError),
        (TSNE, "random_state", 2**32, ValueError),
        (TSNE, "method", "bh", ValueError),
        (TSNE, "n_interpolation_points", 0, ValueError),
        (TSNE, "n_interpolation_points", BIG, ValueError),
        (TSNE, "n_interpolation_points", "many", ValueError),
        (TSNE, "min_num_intervals", 0, ValueError),
        (TSNE, "min_num_intervals", BIG, ValueError),
        (TSNE, "max_num_intervals", 1, ValueError),  # < min_num_intervals
        (TSNE, "max_num_intervals", BIG, ValueError),
        (TSNE, "max_num_intervals", 100_000, ValueError),  # grid beyond int32
        (TSNE, "ints_in_interval", 0.0, ValueError),
        (TSNE, "ints_in_interval", np.inf, ValueError),
        (TSNE, "dof", 0.0, ValueError),
        (TSNE, "dof", np.nan, ValueError),
        (TSNE, "dof", np.inf, ValueError),
        (TSNE, "exaggeration", 0.5, ValueError),
        (TSNE, "exaggeration", np.inf, ValueError),
        (TSNE, "memory_budget", 0, ValueError),
        (TSNE, "dtype", "int32", ValueError),
        (TSNE, "init", "spectral", ValueError),
    ]
)


@pytest.mark.parametrize(
    "cls, param, value, error",
    BAD_PARAMS,
    ids=[f"{c.__name__}-{p}-{v!r}" for c, p, v, _ in BAD_PARAMS],
)
def test_bad_parameter_is_refused_by_name(x, cls, param, value, error):
    est = cls(3) if cls is not TSNE else TSNE()
    setattr(est, param, value)
    with pytest.raises(error, match=param):
        est.fit(x)


def _int_params(cls):
    """The integer parameters of each estimator with a valid value (and what its validated
    namespace calls it)."""
    kmeans = {
        "n_clusters": 3,
        "max_iter": 20,
        "n_init": 2,
        "verbose": 0,
        "random_state": 3,
        "memory_budget": 2**20,
        "init_size": 60,
    }
    if cls is KMeans:
        return kmeans
    if cls is MiniBatchKMeans:
        return {**kmeans, "batch_size": 32, "max_no_improvement": 5}
    return {
        "n_components": 2,
        "max_iter": 250,
        "n_iter_without_progress": 100,
        "verbose": 0,
        "random_state": 3,
        "memory_budget": 2**20,
        "n_interpolation_points": 3,
        "min_num_intervals": 20,
        "max_num_intervals": 100,
    }


_NUMPY_INT_CASES = [
    (cls, name, np_type)
    for cls in (KMeans, MiniBatchKMeans, TSNE)
    for name in _int_params(cls)
    for np_type in (np.int64, np.uint32)
]


@pytest.mark.parametrize(
    "cls, name, np_type",
    _NUMPY_INT_CASES,
    ids=[f"{c.__name__}-{n}-{t.__name__}" for c, n, t in _NUMPY_INT_CASES],
)
def test_numpy_integer_parameters_become_python_ints(cls, name, np_type):
    params = _int_params(cls)
    est = cls(**{**params, name: np_type(params[name])})
    p = est._check_params(np.zeros((4, 2)))
    validated = {"n_interpolation_points": "nodes", "random_state": "seed"}.get(name, name)
    value = getattr(p, validated)
    if name == "random_state" and cls is not TSNE:  # KMeans: the (2,) int32 stateless seed
        np.testing.assert_array_equal(value, stateless_seed(params[name], 0x5EED))
    else:
        assert type(value) is int and value == params[name]


def test_numpy_integer_parameters_fit_as_python_ints(x):
    """Case 8: numpy integers failed inside compiled code ("Input 'y' of 'Less' Op has type
    int64"); every integer parameter as a numpy integer now fits as its Python int does."""
    kmeans = dict(n_clusters=3, max_iter=300, n_init=1, random_state=0, init_size=60)
    minibatch = dict(n_clusters=3, batch_size=30, random_state=0, max_no_improvement=10)
    for cls, params in ((KMeans, kmeans), (MiniBatchKMeans, minibatch)):
        ref = cls(**params).fit(x)
        got = cls(**{k: np.int64(v) for k, v in params.items()}, verbose=np.int64(0)).fit(x)
        np.testing.assert_array_equal(got.cluster_centers_, ref.cluster_centers_)
        np.testing.assert_array_equal(got.labels_, ref.labels_)
    stream = tf.data.Dataset.from_tensor_slices(x).batch(32)
    ref = KMeans(**kmeans).fit(stream)
    got = KMeans(**{k: np.int32(v) for k, v in kmeans.items()}).fit(stream)
    np.testing.assert_array_equal(got.cluster_centers_, ref.cluster_centers_)
    mb = MiniBatchKMeans(**{k: np.int64(v) for k, v in minibatch.items()})
    mb.partial_fit(x).partial_fit(x)
    assert mb.n_steps_ == 2
    tsne = dict(
        method="exact",
        n_components=2,
        max_iter=260,  # as reported: a last, partial chunk after the 250 exaggerated steps
        n_iter_without_progress=300,
        random_state=0,
        memory_budget=256 * 2**20,
    )
    got = TSNE(**{k: v if k == "method" else np.int64(v) for k, v in tsne.items()}, perplexity=10.0)
    ref = TSNE(**tsne, perplexity=10.0)
    np.testing.assert_array_equal(got.fit(x).embedding_, ref.fit(x).embedding_)
    # The FFT method's own integer parameters (the compiled programs of FAST_FFT).
    fft = {**FAST_FFT, "max_iter": 250, "n_components": 2, "verbose": 0}
    fft = {k: v if k == "method" else np.int64(v) for k, v in fft.items()}
    assert np.all(np.isfinite(TSNE(**fft, perplexity=10.0, random_state=0).fit(x).embedding_))


# -- case 5: max_iter up to int32's maximum, refused beyond -------------------------------


def test_kmeans_huge_max_iter_runs_to_convergence(x):
    ref = KMeans(3, random_state=0).fit(x)
    huge = KMeans(3, max_iter=INT32_MAX, random_state=0).fit(x)
    assert huge.n_iter_ == ref.n_iter_ < 300
    assert huge.inertia_ == ref.inertia_
    np.testing.assert_array_equal(huge.labels_, ref.labels_)
    for bad in (2**31, 2**32):  # 2**32 used to wrap to 0 iterations
        with pytest.raises(ValueError, match=r"max_iter must be <= 2147483647"):
            KMeans(3, max_iter=bad).fit(x)


def test_minibatch_huge_max_iter_runs_until_the_stopping_rules(x):
    ref = MiniBatchKMeans(3, batch_size=30, max_iter=1000, random_state=0).fit(x)
    huge = MiniBatchKMeans(3, batch_size=30, max_iter=INT32_MAX, random_state=0).fit(x)
    assert 0 < huge.n_steps_ == ref.n_steps_ < 1000  # 2**31 steps used to wrap to 0
    np.testing.assert_array_equal(huge.cluster_centers_, ref.cluster_centers_)
    with pytest.raises(ValueError, match="max_iter"):
        MiniBatchKMeans(3, max_iter=2**31).fit(x)


# -- case 6: data whose squared distances overflow the dtype ---------------------------------


@pytest.mark.parametrize("scale", [1e20, 1e-25])
def test_kmeans_on_huge_or_tiny_data_is_the_fit_of_the_data(x, scale):
    ref = KMeans(3, random_state=0).fit(x)
    scaled = (x.astype(np.float64) * scale).astype(np.float32)
    fit = KMeans(3, random_state=0).fit(scaled)
    assert fit.labels_.min() >= 0 and fit.labels_.max() < 3
    np.testing.assert_array_equal(fit.labels_, ref.labels_)
    np.testing.assert_allclose(fit.cluster_centers_ / scale, ref.cluster_centers_, rtol=1e-4)
    assert fit.inertia_ == pytest.approx(ref.inertia_ * scale * scale, rel=1e-4)
    np.testing.assert_array_equal(fit.predict(scaled), ref.labels_)
    assert -fit.score(scaled) == pytest.approx(ref.inertia_ * scale * scale, rel=1e-4)
    np.testing.assert_allclose(fit.transform(scaled) / scale, ref.transform(x), rtol=1e-4)
    stream = KMeans(3, random_state=0).fit(tf.data.Dataset.from_tensor_slices(scaled).batch(32))
    np.testing.assert_array_equal(stream.labels_, ref.labels_)
    assert stream.inertia_ == pytest.approx(ref.inertia_ * scale * scale, rel=1e-4)


def test_streaming_float64_data_beyond_1e154(x):
    """float64 rows near 1e155 overflow even the float64 moments of the first pass (which are
    then taken again on the scaled rows); the true inertia exceeds float64 and is inf."""
    data = x.astype(np.float64)

    def fit(rows):
        return KMeans(3, random_state=0, dtype="float64").fit(
            tf.data.Dataset.from_tensor_slices(rows).batch(32)
        )

    ref, big = fit(data), fit(data * 1e155)
    np.testing.assert_array_equal(big.labels_, ref.labels_)
    np.testing.assert_allclose(big.cluster_centers_ / 1e155, ref.cluster_centers_, rtol=1e-9)
    assert ref.inertia_ * 1e155 * 1e155 == big.inertia_ == np.inf
    np.testing.assert_array_equal(big.predict(data * 1e155), ref.labels_)


def test_minibatch_and_predict_on_huge_data(x):
    ref = MiniBatchKMeans(3, batch_size=30, random_state=0).fit(x)
    big = MiniBatchKMeans(3, batch_size=30, random_state=0).fit(x * np.float32(1e20))
    np.testing.assert_array_equal(big.labels_, ref.labels_)
    assert big.inertia_ == pytest.approx(ref.inertia_ * 1e40, rel=1e-4)
    part = MiniBatchKMeans(3, batch_size=30, random_state=0)
    part.partial_fit(x * np.float32(1e20))
    assert np.all(np.isfinite(part.cluster_centers_)) and 0 <= part.labels_.min()
    # Centres fitted on ordinary data, rows at 1e20: labels in range, inertia finite.
    labels = KMeans(3, random_state=0).fit(x).predict(x * np.float32(1e20))
    assert labels.min() >= 0 and labels.max() < 3
    assert np.isfinite(KMeans(3, random_state=0).fit(x).score(x * np.float32(1e20)))


def test_values_beyond_the_dtype_are_refused_clearly():
    with pytest.raises(ValueError, match="beyond the float32 range.*dtype='float64'"):
        KMeans(2, dtype="float32").fit(np.array([[1e200, 0.0], [0.0, 1.0], [2.0, 2.0]]))
    with pytest.raises(ValueError, match="beyond the float32 range"):
        check_array(tf.constant([[1e200, 0.0]], tf.float64), dtype="float32")
    with pytest.raises(ValueError, match="NaN or infinity"):
        check_array(np.array([[np.inf, 0.0]]), dtype="float32")


# -- case 7: tf.data datasets ---------------------------------------------------------------


def test_labels_of_a_dataset_follow_its_order(x):
    plain = tf.data.Dataset.from_tensor_slices(x).batch(32)
    km = KMeans(3, random_state=0).fit(plain)
    np.testing.assert_array_equal(km.labels_, km.predict(x))
    # Shuffled once (the same order on every pass): labels_ in that order.
    fixed = tf.data.Dataset.from_tensor_slices(x).shuffle(
        90, seed=1, reshuffle_each_iteration=False
    )
    fixed = fixed.batch(32)
    rows = np.concatenate(list(fixed.as_numpy_iterator()))
    assert not np.array_equal(rows, x)
    km = KMeans(3, random_state=0).fit(fixed)
    np.testing.assert_array_equal(km.labels_, km.predict(rows))
    # Unknown cardinality is fine.
    unknown = plain.filter(lambda b: True)
    assert int(unknown.cardinality()) == int(tf.data.UNKNOWN_CARDINALITY)
    km = KMeans(3, random_state=0).fit(unknown)
    np.testing.assert_array_equal(km.labels_, km.predict(x))


def test_reshuffling_dataset_sets_no_labels(x):
    reshuffled = tf.data.Dataset.from_tensor_slices(x).shuffle(90, seed=1).batch(32)
    ref = KMeans(3, random_state=0).fit(x)
    with pytest.warns(RuntimeWarning, match="different order.*labels_ is None.*predict"):
        km = KMeans(3, random_state=0).fit(reshuffled)
    assert km.labels_ is None

    def by_rows(centers):
        return centers[np.lexsort(centers.T[::-1])]

    np.testing.assert_allclose(
        by_rows(km.cluster_centers_), by_rows(ref.cluster_centers_), rtol=1e-4, atol=1e-4
    )
    assert km.inertia_ == pytest.approx(ref.inertia_, rel=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match="predict"):
            KMeans(3, random_state=0).fit_predict(reshuffled)


def test_infinite_dataset_is_refused_before_any_work(x):
    pulled = []

    def spy(batch):
        pulled.append(1)
        return batch

    ds = tf.data.Dataset.from_tensor_slices(x).batch(32).repeat()
    ds = ds.map(lambda b: tf.py_function(spy, [b], tf.float32))
    assert int(ds.cardinality()) == int(tf.data.INFINITE_CARDINALITY)
    with pytest.raises(ValueError, match="infinite tf.data.Dataset"):
        KMeans(3).fit(ds)
    assert pulled == []


# -- case 10: a diverging t-SNE raises; huge latents embed ------------------------------------


@pytest.mark.parametrize(
    "params, name",
    [
        ({"learning_rate": 1e30, **FAST_FFT}, "learning_rate"),
        ({"early_exaggeration": 1e30, **FAST_FFT}, "early_exaggeration"),
        ({"learning_rate": 1e30, "method": "exact"}, "learning_rate"),
        ({"early_exaggeration": 1e30, "method": "exact"}, "early_exaggeration"),
    ],
)
def test_diverging_tsne_raises_naming_the_parameter(x, params, name):
    tsne = TSNE(perplexity=10.0, max_iter=250, random_state=0, **params)
    with pytest.raises(FloatingPointError, match=f"{name} \\(here 1e\\+30\\)"):
        tsne.fit(x)
    assert not hasattr(tsne, "embedding_")


@pytest.mark.parametrize("method", [FAST_FFT, {"method": "exact"}], ids=["fft", "exact"])
def test_tsne_on_huge_latents(x, method):
    ref = TSNE(perplexity=10.0, max_iter=250, random_state=0, **method).fit(x)
    # Scaled by a power of two, the data embed exactly as the data: P is scale-invariant.
    big = TSNE(perplexity=10.0, max_iter=250, random_state=0, **method)
    np.testing.assert_allclose(big.fit_transform(x * np.float32(2.0**70)), ref.embedding_)
    assert big.kl_divergence_ == ref.kl_divergence_
    # Near 1e20 (used to fail in the PCA init's eigendecomposition): an embedding as good.
    big.fit(x * np.float32(1e20))
    assert np.all(np.isfinite(big.embedding_))
    assert metrics.trustworthiness(x, big.embedding_, 5) > 0.8


def test_pca_init_of_huge_data(x):
    ref = pca_embedding(tf.constant(x, tf.float32), 2).numpy()
    got = pca_embedding(tf.constant(x * np.float32(2.0**100)), 2).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-8)


# -- case 11: embedding metrics do not depend on the scale of the coordinates ------------------


@pytest.mark.parametrize("scale", [1.0, 1e20, 1e200, 1e-200])
def test_metrics_are_scale_invariant(scale):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(120, 6))
    emb = data[:, :2] + 0.5 * rng.normal(size=(120, 2))
    labels = (data[:, 0] > 0).astype(int)
    # scikit-learn is the oracle at scale 1 (at 1e200 its own distances overflow).
    expected = sk_trustworthiness(data, emb, n_neighbors=5)
    assert metrics.trustworthiness(data * scale, emb * scale, 5) == pytest.approx(expected)
    assert metrics.trustworthiness(data * scale, emb, 5) == pytest.approx(expected)
    assert metrics.knn_accuracy(emb * scale, labels, 5) == metrics.knn_accuracy(emb, labels, 5)


# -- case 14: random_state ------------------------------------------------------------------


def test_distinct_seeds_give_distinct_streams(x):
    seeds = [0, 1, 2**31 - 1, 2**31, SEED_MAX]
    keys = {tuple(stateless_seed(s).numpy()) for s in seeds}
    assert len(keys) == len(seeds)
    # Seeds below 2**31 keep their stream (results of existing seeds are unchanged).
    np.testing.assert_array_equal(stateless_seed(12345, 7), [12345, 7])
    inits = [  # one Lloyd step from the k-means++ seeding
        KMeans(3, max_iter=1, random_state=s).fit(x).cluster_centers_
        for s in (0, 2**31 - 1, SEED_MAX)
    ]
    assert not np.array_equal(inits[0], inits[1])
    assert not np.array_equal(inits[1], inits[2])
    embeddings = [random_embedding(20, 2, s).numpy() for s in (0, 2**31 - 1, SEED_MAX)]
    assert not np.array_equal(embeddings[0], embeddings[1])
    assert not np.array_equal(embeddings[1], embeddings[2])


def test_check_random_state_accepts_numpy_integers():
    assert check_random_state(np.int64(5)) == 5
    assert check_random_state(np.uint32(SEED_MAX)) == SEED_MAX
    assert type(check_random_state(np.int32(7))) is int
    assert 0 <= check_random_state(None) <= SEED_MAX
    for bad, error in ((-1, ValueError), (2**32, ValueError), (1.0, TypeError), (True, TypeError)):
        with pytest.raises(error, match="random_state"):
            check_random_state(bad)
