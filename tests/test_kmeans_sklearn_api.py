"""What scikit-learn users pass to KMeans and MiniBatchKMeans: dtypes, sparse matrices,
DataFrames, RandomState/Generator seeds, callable init, copy_x, weighted mini-batches, and
scikit-learn's warnings and verbose output."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn.exceptions
import tensorflow as tf
from sklearn.datasets import make_blobs
from sklearn.utils import get_tags

from tfclust import ConvergenceWarning, KMeans, MiniBatchKMeans

X, _ = make_blobs(n_samples=120, centers=3, n_features=4, random_state=0)
CENTERS = np.array([X[0], X[50], X[100]])


def _blob_centers(X):
    """The three blobs' centres, from a fixed initialisation (deterministic fits)."""
    return KMeans(3, init=X[[0, 50, 100]], n_init=1).fit(X).cluster_centers_


@pytest.mark.parametrize("Estimator", [KMeans, MiniBatchKMeans])
@pytest.mark.parametrize(
    "given, expected",
    [(np.float64, np.float64), (np.float32, np.float32), (np.int64, np.float64)],
)
def test_dtype_follows_the_input(Estimator, given, expected):
    km = Estimator(3, n_init=1, random_state=0).fit(X.astype(given))
    assert km.cluster_centers_.dtype == expected
    assert km.transform(X.astype(given)).dtype == expected


@pytest.mark.parametrize("Estimator", [KMeans, MiniBatchKMeans])
def test_dtype_parameter_overrides_the_input(Estimator):
    km = Estimator(3, n_init=1, random_state=0, dtype="float32").fit(X)
    assert km.cluster_centers_.dtype == np.float32
    tensor = tf.constant(X, tf.float32)
    assert Estimator(3, n_init=1, random_state=0).fit(tensor).cluster_centers_.dtype == np.float32


def test_float64_fit_is_float64_accurate():
    """float64 in, float64 arithmetic: the inertia matches scikit-learn's to 1e-10."""
    from sklearn.cluster import KMeans as SKMeans

    ours = KMeans(3, init=X[[0, 50, 100]], n_init=1).fit(X)
    ref = SKMeans(3, init=X[[0, 50, 100]], n_init=1).fit(X)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-10)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-10)


@pytest.mark.parametrize("Estimator", [KMeans, MiniBatchKMeans])
@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csc_matrix, sp.coo_array])
def test_sparse_input_equals_dense(Estimator, container):
    sparse = container(np.where(np.abs(X) > 2, X, 0.0))
    dense = sparse.toarray()
    a = Estimator(3, n_init=1, random_state=0).fit(sparse)
    b = Estimator(3, n_init=1, random_state=0).fit(dense)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.predict(sparse), b.predict(dense))


def test_sparse_with_nan_is_refused():
    bad = sp.csr_matrix(np.where(np.abs(X) > 2, X, 0.0))
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        KMeans(3).fit(bad)


@pytest.mark.parametrize("Estimator", [KMeans, MiniBatchKMeans])
def test_dataframe_feature_names(Estimator):
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    km = Estimator(3, n_init=1, random_state=0).fit(df)
    np.testing.assert_array_equal(km.feature_names_in_, ["a", "b", "c", "d"])
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        np.testing.assert_array_equal(km.predict(df), km.predict(X))
    with pytest.raises(ValueError, match="feature names should match"):
        km.predict(df.rename(columns={"a": "z"}))
    plain = Estimator(3, n_init=1, random_state=0).fit(X)
    assert not hasattr(plain, "feature_names_in_")
    with pytest.warns(UserWarning, match="fitted without feature names"):
        plain.predict(df)
    # Non-string column names are not feature names (scikit-learn's rule).
    assert not hasattr(
        Estimator(3, n_init=1, random_state=0).fit(pd.DataFrame(X)), "feature_names_in_"
    )


@pytest.mark.parametrize("Estimator", [KMeans, MiniBatchKMeans])
def test_random_state_instances(Estimator):
    a = Estimator(3, random_state=np.random.RandomState(7)).fit(X)
    b = Estimator(3, random_state=np.random.RandomState(7)).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    rng = np.random.RandomState(7)
    Estimator(3, random_state=rng).fit(X)
    assert rng.randint(2**30) != np.random.RandomState(7).randint(2**30)  # it advanced
    g = Estimator(3, random_state=np.random.default_rng(7)).fit(X)
    assert g.cluster_centers_.shape == (3, 4)
    for bad in ("seed", 1.5, True, -1):
        with pytest.raises((TypeError, ValueError), match="random_state"):
            Estimator(3, random_state=bad).fit(X)


def test_callable_init_is_called_per_restart():
    calls = []

    def init(data, n_clusters, random_state):
        calls.append((type(data), data.dtype, n_clusters, type(random_state)))
        return data[random_state.choice(len(data), n_clusters, replace=False)]

    km = KMeans(3, init=init, n_init=4, random_state=0).fit(X)
    assert calls == [(np.ndarray, np.float64, 3, np.random.RandomState)] * 4
    assert km.inertia_ == pytest.approx(
        KMeans(3, n_init=4, random_state=0).fit(X).inertia_, rel=1e-6
    )
    assert len(KMeans(3, init=init, random_state=0).fit(X).cluster_centers_) == 3
    assert len(calls) == 4 + 10  # n_init="auto" is 10 for a callable, as for "random"


def test_callable_init_equals_its_array():
    km = KMeans(3, init=lambda data, k, random_state: CENTERS, n_init=1).fit(X)
    ref = KMeans(3, init=CENTERS, n_init=1).fit(X)
    np.testing.assert_array_equal(km.cluster_centers_, ref.cluster_centers_)
    mb = MiniBatchKMeans(3, init=lambda d, k, random_state: CENTERS, random_state=0).fit(X)
    mb_ref = MiniBatchKMeans(3, init=CENTERS, random_state=0).fit(X)
    np.testing.assert_array_equal(mb.cluster_centers_, mb_ref.cluster_centers_)


@pytest.mark.parametrize("Estimator", [KMeans, MiniBatchKMeans])
def test_callable_init_bad_results(Estimator):
    with pytest.raises(ValueError, match="init has shape"):
        Estimator(3, init=lambda d, k, random_state: d[:2]).fit(X)
    with pytest.raises(TypeError, match="init must be numeric"):
        Estimator(3, init=lambda d, k, random_state: np.array([["a"] * 4] * 3)).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        Estimator(3, init=lambda d, k, random_state: np.full((3, 4), np.nan)).fit(X)


def test_callable_init_not_with_a_dataset():
    ds = tf.data.Dataset.from_tensor_slices(X).batch(32)
    with pytest.raises(ValueError, match="callable init"):
        KMeans(3, init=lambda d, k, random_state: CENTERS).fit(ds)


def test_copy_x():
    before = X.copy()
    KMeans(3, copy_x=False, random_state=0).fit(X)
    np.testing.assert_array_equal(X, before)
    with pytest.raises(TypeError, match="copy_x"):
        KMeans(3, copy_x="no").fit(X)


def _separated():
    return make_blobs(
        n_samples=60, centers=[[0, 0], [20, 0], [0, 20]], cluster_std=0.5, random_state=1
    )[0]


def test_minibatch_integer_weights_equal_repeated_rows():
    """One step (partial_fit from fixed centres): weight w on a row is w copies of it."""
    data = _separated()
    w = np.random.RandomState(0).randint(1, 4, size=len(data))
    init = data[[0, 1, 2]]
    weighted = MiniBatchKMeans(3, init=init, n_init=1).partial_fit(data, sample_weight=w)
    repeated = MiniBatchKMeans(3, init=init, n_init=1).partial_fit(np.repeat(data, w, axis=0))
    np.testing.assert_allclose(weighted.cluster_centers_, repeated.cluster_centers_, rtol=1e-12)
    # The second step goes on from the weights won so far.
    weighted.partial_fit(data, sample_weight=w)
    repeated.partial_fit(np.repeat(data, w, axis=0))
    np.testing.assert_allclose(weighted.cluster_centers_, repeated.cluster_centers_, rtol=1e-12)
    assert weighted.inertia_ == pytest.approx(repeated.inertia_, rel=1e-12)


def test_minibatch_zero_weight_rows_do_not_move_centres():
    data = _separated()
    outliers = np.vstack([data, [[1000.0, 1000.0]] * 5])
    w = np.r_[np.ones(len(data)), np.zeros(5)]
    mb = MiniBatchKMeans(3, batch_size=20, random_state=0).fit(outliers, sample_weight=w)
    assert np.abs(mb.cluster_centers_).max() < 30  # no centre pulled to the outliers
    unweighted = MiniBatchKMeans(3, batch_size=20, random_state=0).fit(outliers)
    assert np.abs(unweighted.cluster_centers_).max() > 100  # without weights one is


def test_minibatch_weighted_fit_follows_the_weights():
    """One cluster: heavy rows pull the centre towards them (the weighted mean is 0.954, the
    unweighted one 0.5); the inertia is the weighted one of the fitted centre."""
    data = np.r_[np.zeros((50, 1)), np.ones((50, 1))]
    w = np.ones(100)
    w[50:60] = 100.0
    mb = MiniBatchKMeans(1, batch_size=100, random_state=0, max_iter=50).fit(data, sample_weight=w)
    centre = mb.cluster_centers_[0, 0]
    assert 0.9 < centre < 1.0
    assert mb.inertia_ == pytest.approx(np.sum(w * (data[:, 0] - centre) ** 2), rel=1e-9)
    plain = MiniBatchKMeans(1, batch_size=100, random_state=0, max_iter=50).fit(data)
    assert 0.4 < plain.cluster_centers_[0, 0] < 0.6


def test_minibatch_bad_weights():
    with pytest.raises(ValueError, match="sample_weight.shape"):
        MiniBatchKMeans(3).fit(X, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match="Negative"):
        MiniBatchKMeans(3).fit(X, sample_weight=-np.ones(len(X)))


def test_convergence_warning_is_sklearns():
    data = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    with pytest.warns(sklearn.exceptions.ConvergenceWarning, match=r"distinct clusters \(3\)"):
        KMeans(4, random_state=0).fit(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        KMeans(4, random_state=0).fit(data)
    assert issubclass(caught[0].category, ConvergenceWarning)


def test_elkan_with_one_cluster_warns_and_runs_lloyd():
    with pytest.warns(RuntimeWarning, match="algorithm='elkan' doesn't make sense"):
        km = KMeans(1, algorithm="elkan").fit(X)
    np.testing.assert_allclose(km.cluster_centers_[0], X.mean(axis=0), rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KMeans(1).fit(X)  # "auto" picks lloyd without a word


def test_minibatch_init_size_below_n_clusters_warns():
    with pytest.warns(RuntimeWarning, match=r"init_size=2 should be larger than n_clusters=3"):
        MiniBatchKMeans(3, init_size=2, random_state=0).fit(X)


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
def test_kmeans_verbose_prints_like_sklearn(algorithm, capsys):
    KMeans(3, init="random", n_init=2, random_state=0, tol=0, verbose=1, algorithm=algorithm).fit(X)
    out = capsys.readouterr().out
    assert out.count("Initialization complete") == 2
    assert re.search(r"Iteration [0-9]+, inertia [0-9.e+]+\.", out)
    assert "strict convergence" in out
    KMeans(3, n_init=1, random_state=0, tol=10.0, verbose=True, algorithm=algorithm).fit(X)
    assert re.search(r"center shift \S+ within tolerance \S+", capsys.readouterr().out)
    KMeans(3, n_init=1, random_state=0).fit(X)
    assert capsys.readouterr().out == ""


def test_minibatch_verbose_says_why_it_stopped(capsys):
    MiniBatchKMeans(
        3, init=CENTERS, batch_size=20, tol=1e-4, max_no_improvement=None, random_state=0, verbose=1
    ).fit(X)
    assert "Converged (small centers change)" in capsys.readouterr().out
    MiniBatchKMeans(
        3, init=CENTERS, batch_size=20, tol=0, max_no_improvement=3, random_state=0, verbose=1
    ).fit(X)
    assert "Converged (lack of improvement in inertia)" in capsys.readouterr().out


@pytest.mark.parametrize("Estimator", [KMeans, MiniBatchKMeans])
def test_tags(Estimator):
    tags = get_tags(Estimator())
    assert tags.input_tags.sparse
    assert tags.transformer_tags.preserves_dtype == ["float64", "float32"]
    assert get_tags(Estimator(dtype="float32")).transformer_tags.preserves_dtype == ["float32"]
