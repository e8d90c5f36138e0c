"""The scikit-learn estimator contract, for every tfclust estimator (in the spirit of
``sklearn.utils.estimator_checks.parametrize_with_checks``; the full check suite runs in
``benchmarks/conformance.py``, see docs/sklearn_conformance.md)."""

import pickle

import numpy as np
import pytest
import sklearn.exceptions
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags

from tfclust import (
    DEC,
    TSNE,
    GaussianMixture,
    KMeans,
    ManifoldClustering,
    MiniBatchKMeans,
    NotFittedError,
    ParametricTSNE,
    load_estimator,
)

ESTIMATORS = {
    "KMeans": lambda: KMeans(n_clusters=3, max_iter=20, random_state=0),
    "MiniBatchKMeans": lambda: MiniBatchKMeans(
        n_clusters=3, max_iter=5, batch_size=32, random_state=0
    ),
    "TSNE": lambda: TSNE(perplexity=5, max_iter=250, random_state=0),
    "ParametricTSNE": lambda: ParametricTSNE(
        perplexity=5, n_epochs=5, batch_size=32, random_state=0
    ),
    "GaussianMixture": lambda: GaussianMixture(n_components=3, random_state=0),
    "ManifoldClustering": lambda: ManifoldClustering(
        n_clusters=3, perplexity=10, n_init=1, random_state=0
    ),
    "DEC": lambda: DEC(
        n_clusters=3,
        latent_dim=3,
        hidden_units=(16,),
        pretrain_epochs=5,
        batch_size=32,
        update_interval=10,
        max_iter=30,
        tol=0,
        n_init=2,
        random_state=0,
    ),
}
CLUSTERERS = ["KMeans", "MiniBatchKMeans", "DEC"]
# Clusterers without transform, cluster_centers_ or n_clusters (as scikit-learn's mixtures),
# or with a map of X as transform.
MIXTURES = ["GaussianMixture", "ManifoldClustering"]


@pytest.fixture(scope="module")
def data():
    x, y = make_blobs(n_samples=90, n_features=4, centers=3, cluster_std=0.5, random_state=0)
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def fitted(data):
    """One fitted instance per estimator, shared (never mutated) by the tests."""
    return {name: make().fit(data[0]) for name, make in ESTIMATORS.items()}


def _output(est, x):
    return est.predict(x) if hasattr(est, "predict") else est.embedding_


@pytest.mark.parametrize("name", ESTIMATORS)
def test_params_round_trip_and_clone(name):
    est = ESTIMATORS[name]()
    params = est.get_params()
    assert params == est.get_params(deep=False)
    for key, value in params.items():  # every __init__ argument is stored unchanged
        assert getattr(est, key) is value
    cloned = clone(est)
    assert cloned is not est and type(cloned) is type(est)
    assert cloned.get_params() == params
    assert est.set_params(random_state=7, verbose=0) is est
    assert est.random_state == 7 and clone(est).random_state == 7
    with pytest.raises(ValueError, match=f"Invalid parameter 'bogus' for estimator {name}"):
        est.set_params(bogus=1)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_repr_shows_changed_params_only(name):
    est = ESTIMATORS[name]()
    cls = type(est)
    assert repr(cls()) == f"{name}()"
    assert repr(cls(random_state=3)) == f"{name}(random_state=3)"
    if "init" in est.get_params():
        assert "\n" not in repr(cls(init=np.zeros((3, 2))))


def test_repr_matches_sklearn_style():
    assert repr(KMeans(n_clusters=3)) == "KMeans(n_clusters=3)"
    assert repr(MiniBatchKMeans(batch_size=64, n_clusters=4)) == (
        "MiniBatchKMeans(batch_size=64, n_clusters=4)"
    )


@pytest.mark.parametrize("name", ESTIMATORS)
def test_not_fitted_errors(name, data):
    x = data[0]
    est = ESTIMATORS[name]()
    methods = ["get_feature_names_out", "transform"] if name not in MIXTURES else []
    if name in CLUSTERERS + MIXTURES:
        methods += ["predict", "score"]
    for method in methods:
        args = () if method == "get_feature_names_out" else (x,)
        with pytest.raises(NotFittedError, match="is not fitted yet"):
            getattr(est, method)(*args)
        with pytest.raises(sklearn.exceptions.NotFittedError):
            getattr(est, method)(*args)
    from sklearn.utils.validation import check_is_fitted

    with pytest.raises(sklearn.exceptions.NotFittedError):
        check_is_fitted(est)


def test_not_fitted_error_pickles():
    with pytest.raises(NotFittedError) as info:
        KMeans().predict(np.zeros((2, 2)))
    again = pickle.loads(pickle.dumps(info.value))
    assert isinstance(again, sklearn.exceptions.NotFittedError)
    assert isinstance(again, NotFittedError) and str(again) == str(info.value)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_tags(name, fitted):
    tags = get_tags(ESTIMATORS[name]())
    assert tags.input_tags.sparse is True and tags.input_tags.allow_nan is False
    assert tags.input_tags.pairwise is False and tags.requires_fit
    assert tags.estimator_type == ("clusterer" if name in CLUSTERERS + MIXTURES else None)
    # float32 for the maps, as scikit-learn's TSNE; the clusterers keep float32 and float64
    expected = ["float64", "float32"] if name in CLUSTERERS else ["float32"]
    if name in MIXTURES:
        assert tags.transformer_tags is None
    else:
        assert tags.transformer_tags.preserves_dtype == expected
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(fitted[name])


@pytest.mark.parametrize("name", ESTIMATORS)
def test_fitted_attributes_and_feature_names(name, data, fitted):
    x = data[0]
    est = fitted[name]
    assert est.n_features_in_ == x.shape[1]
    if name in MIXTURES:
        assert est.predict_proba(x[:7]).shape == (7, 3)
        return
    k = 3 if name in CLUSTERERS else 2
    assert list(est.get_feature_names_out()) == [f"{name.lower()}{i}" for i in range(k)]
    with pytest.raises(ValueError, match="input_features"):
        est.get_feature_names_out(["a"])
    assert est.transform(x[:7]).shape == (7, k)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_bad_input(name, data, fitted):
    x = data[0]
    est = ESTIMATORS[name]()
    bad_nan = x.copy()
    bad_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(bad_nan)
    with pytest.raises(ValueError, match="2-D"):
        est.fit(x[:, 0])
    methods = ["transform"] if name not in MIXTURES else []
    methods += ["predict"] if name in CLUSTERERS + MIXTURES else []
    for method in methods:
        with pytest.raises(ValueError, match="features"):
            getattr(fitted[name], method)(x[:, :2])
        with pytest.raises(ValueError, match="NaN"):
            getattr(fitted[name], method)(bad_nan)
        with pytest.raises(ValueError, match="2-D"):
            getattr(fitted[name], method)(x[0])


@pytest.mark.parametrize("name", ESTIMATORS)
def test_dtypes(name, data, fitted):
    """K-means: float32 in, float32 out; float64 in, float64 out. t-SNE: float32 out whatever
    the input (as scikit-learn's). The ``dtype`` parameter, when set, is the computation dtype
    whatever the input."""
    x32 = data[0]
    x64 = x32.astype(np.float64)
    est = fitted[name]
    est64 = ESTIMATORS[name]().fit(x64)
    forced = ESTIMATORS[name]().set_params(dtype="float32").fit(x64)
    if name == "ManifoldClustering":  # a float32 map, as TSNE's, whatever X
        assert est.embedding_.dtype == est64.embedding_.dtype == np.float32
        assert est.clusterer_.means_.dtype == forced.embedding_.dtype == np.float32
        follow = ESTIMATORS[name]().set_params(dtype=None).fit(x64)
        assert follow.embedding_.dtype == follow.clusterer_.means_.dtype == np.float64
    elif name in MIXTURES:
        assert est.means_.dtype == est.predict_proba(x64).dtype == np.float32
        assert est64.means_.dtype == est64.predict_proba(x32).dtype == np.float64
        assert forced.means_.dtype == np.float32
    elif name in CLUSTERERS:
        assert est.cluster_centers_.dtype == np.float32
        assert est.transform(x32).dtype == np.float32
        # A fitted model computes in its own dtype: float64 rows are cast to float32.
        assert est.transform(x64).dtype == np.float32
        assert est.predict(x64).dtype == np.int32
        assert est64.cluster_centers_.dtype == est64.transform(x32).dtype == np.float64
        assert forced.cluster_centers_.dtype == np.float32
    else:
        assert est.embedding_.dtype == est64.embedding_.dtype == np.float32
        assert est.transform(x64[:5]).dtype == est64.transform(x32[:5]).dtype == np.float32
        follow = ESTIMATORS[name]().set_params(dtype=None).fit(x64)
        assert follow.embedding_.dtype == np.float64
        assert forced.embedding_.dtype == np.float32


@pytest.mark.parametrize("name", ESTIMATORS)
def test_pickle_before_and_after_fit(name, data, fitted):
    x = data[0]
    unfitted = pickle.loads(pickle.dumps(ESTIMATORS[name]()))
    assert unfitted.get_params() == ESTIMATORS[name]().get_params()
    est = fitted[name]
    again = pickle.loads(pickle.dumps(est))
    assert repr(again) == repr(est)
    np.testing.assert_array_equal(_output(again, x), _output(est, x))
    if name not in MIXTURES:
        np.testing.assert_array_equal(again.transform(x), est.transform(x))
    if name in CLUSTERERS + MIXTURES:
        assert again.score(x) == est.score(x)
    # An unpickled unfitted estimator fits like a fresh one.
    if name == "KMeans":
        np.testing.assert_array_equal(unfitted.fit(x).predict(x), est.predict(x))


@pytest.mark.parametrize("name", ESTIMATORS)
def test_save_and_load_before_and_after_fit(name, data, fitted, tmp_path):
    x = data[0]
    unfitted = load_estimator(ESTIMATORS[name]().save(tmp_path / "unfitted"))
    assert unfitted.get_params() == ESTIMATORS[name]().get_params()
    est = fitted[name]
    again = load_estimator(est.save(tmp_path / "fitted.npz"))
    assert type(again) is type(est) and repr(again) == repr(est)
    assert again.get_params() == est.get_params()
    np.testing.assert_array_equal(_output(again, x), _output(est, x))
    if name not in MIXTURES:
        np.testing.assert_array_equal(again.transform(x), est.transform(x))


def test_minibatch_partial_fit_after_pickle(data):
    x = data[0]
    est = MiniBatchKMeans(n_clusters=3, random_state=0).partial_fit(x[:40])
    again = pickle.loads(pickle.dumps(est))
    est.partial_fit(x[40:])
    again.partial_fit(x[40:])
    np.testing.assert_array_equal(again.cluster_centers_, est.cluster_centers_)


@pytest.mark.parametrize("name", CLUSTERERS)
def test_in_pipeline(name, data):
    x, _ = data
    pipe = make_pipeline(StandardScaler(), ESTIMATORS[name]())
    labels = pipe.fit(x).predict(x)
    assert labels.shape == (len(x),)
    assert pipe.transform(x).shape == (len(x), 3)  # DEC's transform: its latent_dim of 3
    assert np.isfinite(pipe.score(x))
    np.testing.assert_array_equal(pipe.fit_predict(x), pipe.predict(x))
    step = name.lower()
    pipe.set_params(**{f"{step}__n_clusters": 2})
    assert pipe.get_params()[f"{step}__n_clusters"] == 2
    width = 3 if name == "DEC" else 2
    assert pipe.fit(x).transform(x).shape == (len(x), width)
    names = pipe.get_feature_names_out()
    assert list(names) == [f"{step}{i}" for i in range(width)]


def test_tsne_in_pipeline(data):
    x = data[0]
    pipe = make_pipeline(StandardScaler(), ESTIMATORS["TSNE"]())
    assert pipe.fit_transform(x).shape == (len(x), 2)


def test_grid_search_and_cross_val_score(data):
    x, _ = data
    scores = cross_val_score(KMeans(n_clusters=3, random_state=0), x, cv=3)
    assert scores.shape == (3,) and np.all(scores <= 0)
    search = GridSearchCV(KMeans(random_state=0, max_iter=20), {"n_clusters": [1, 3]}, cv=3)
    search.fit(x)
    assert search.best_params_ == {"n_clusters": 3}  # -inertia: more clusters score higher
    assert isinstance(search.best_estimator_, KMeans)
    assert search.best_estimator_.n_clusters == 3
    assert search.predict(x).shape == (len(x),)


def test_minibatch_uniform_sample_weight_is_no_weight(data):
    x = data[0]
    make = ESTIMATORS["MiniBatchKMeans"]
    plain = make().fit(x)
    weighted = make().fit(x, sample_weight=np.full(len(x), 2.0))
    np.testing.assert_allclose(weighted.cluster_centers_, plain.cluster_centers_, rtol=1e-5)
    np.testing.assert_array_equal(make().fit_predict(x, sample_weight=[1] * len(x)), plain.labels_)
    with pytest.raises(ValueError, match="zero"):
        make().fit(x, sample_weight=np.zeros(len(x)))
