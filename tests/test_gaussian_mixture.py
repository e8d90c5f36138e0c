"""tfclust.GaussianMixture against scikit-learn's GaussianMixture (the oracle).

From the same initial parameters, EM is the same arithmetic in float64 (scikit-learn's
formulas, in a different order of summation), so the fitted parameters, the lower bound and
the per-row results agree to rounding: relative differences are ~1e-12 on these small,
well-conditioned problems; the tests allow rtol=1e-8 (atol 1e-10 for values near zero), which
still catches any wrong formula (a wrong term changes results at 1e-3 or more). n_iter_ must
match exactly (the lower bound's changes are far from ``tol`` here).
"""

import pickle
import warnings

import numpy as np
import pytest
import sklearn.exceptions
from sklearn.datasets import make_blobs
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from tfclust import ConvergenceWarning, GaussianMixture, NotFittedError, load_estimator
from tfclust.metrics import adjusted_rand_index

RTOL, ATOL = 1e-8, 1e-10
K, D = 3, 3
TYPES = ["full", "tied", "diag", "spherical"]


@pytest.fixture(scope="module")
def blobs():
    x, y = make_blobs(
        n_samples=300, n_features=D, centers=K, cluster_std=[1.0, 1.5, 0.5], random_state=0
    )
    return x, y


def _initial(x, covariance_type):
    rng = np.random.RandomState(1)
    a = rng.normal(size=(K, D, D))
    full = a @ np.swapaxes(a, 1, 2) + D * np.eye(D)
    precisions = {
        "full": full,
        "tied": full[0],
        "diag": np.abs(rng.normal(size=(K, D))) + 0.5,
        "spherical": np.array([0.5, 1.0, 2.0]),
    }[covariance_type]
    return {
        "weights_init": np.array([0.2, 0.3, 0.5]),
        "means_init": x[rng.choice(len(x), K, replace=False)],
        "precisions_init": precisions,
    }


def _fit_both(x, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
        ours = GaussianMixture(**params).fit(x)
        theirs = SkGaussianMixture(**params).fit(x)
    return ours, theirs


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("max_iter", [1, 4, 100])
def test_matches_sklearn_from_same_initial_parameters(blobs, covariance_type, max_iter):
    x = blobs[0]
    params = dict(
        n_components=K,
        covariance_type=covariance_type,
        max_iter=max_iter,
        tol=1e-6,
        **_initial(x, covariance_type),
    )
    ours, theirs = _fit_both(x, **params)
    for name in (
        "weights_",
        "means_",
        "covariances_",
        "precisions_",
        "precisions_cholesky_",
    ):
        assert getattr(ours, name).shape == getattr(theirs, name).shape, name
        assert getattr(ours, name).dtype == np.float64
        _close(getattr(ours, name), getattr(theirs, name))
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.converged_ == theirs.converged_
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=RTOL)
    np.testing.assert_allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=RTOL)
    _close(ours.predict_proba(x), theirs.predict_proba(x))
    _close(ours.score_samples(x), theirs.score_samples(x))
    np.testing.assert_allclose(ours.score(x), theirs.score(x), rtol=RTOL)
    np.testing.assert_allclose(ours.bic(x), theirs.bic(x), rtol=RTOL)
    np.testing.assert_allclose(ours.aic(x), theirs.aic(x), rtol=RTOL)
    np.testing.assert_array_equal(ours.predict(x), theirs.predict(x))


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_many_row_tiles_match_sklearn(blobs, covariance_type, monkeypatch):
    """The E- and M-steps sweep row tiles; with 64-row tiles (5 here, the last one part
    padding) the result is scikit-learn's still."""
    from tfclust.mixture import _kernels

    monkeypatch.setattr(_kernels, "_MIN_TILE_ROWS", 64)
    monkeypatch.setattr(_kernels, "_TILE_BYTES", 64 * K * D * 8)
    x = blobs[0]
    assert _kernels.tile_rows(len(x), K, D, 8) == 64
    params = dict(n_components=K, covariance_type=covariance_type, tol=1e-6)
    ours, theirs = _fit_both(x, **params, **_initial(x, covariance_type))
    assert ours.n_iter_ == theirs.n_iter_
    _close(ours.covariances_, theirs.covariances_)
    _close(ours.predict_proba(x), theirs.predict_proba(x))
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=RTOL)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random_from_data"])
def test_default_inits_find_sklearns_clustering(blobs, init_params):
    x, y = blobs
    ours, theirs = _fit_both(x, n_components=K, init_params=init_params, random_state=0)
    labels = ours.fit_predict(x)
    np.testing.assert_array_equal(labels, ours.predict(x))
    assert labels.dtype == np.int32
    assert adjusted_rand_index(theirs.predict(x), labels) > 0.99
    assert adjusted_rand_index(y, labels) > 0.95
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=1e-4)
    assert ours.converged_


def test_random_init_and_n_init_keep_the_best(blobs):
    x = blobs[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        single = [
            GaussianMixture(K, init_params="random", max_iter=5, random_state=s).fit(x)
            for s in (0, 1)
        ]
        again = GaussianMixture(K, init_params="random", max_iter=5, random_state=0).fit(x)
    assert all(g.n_iter_ == 5 for g in single)
    best = GaussianMixture(K, init_params="random", max_iter=5, n_init=4, random_state=0)
    with pytest.warns(ConvergenceWarning):
        best.fit(x)
    # n_init draws its initialisations from one stream: the best of four is at least as good
    # as the first (the same draw as n_init=1), and n_init=1 equals a plain fit.
    assert best.lower_bound_ >= single[0].lower_bound_
    np.testing.assert_array_equal(again.means_, single[0].means_)


def test_convergence_warning_and_max_iter_zero(blobs):
    x = blobs[0]
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        gm = GaussianMixture(K, max_iter=1, random_state=0).fit(x)
    assert not gm.converged_ and gm.n_iter_ == 1
    with pytest.warns(sklearn.exceptions.ConvergenceWarning):
        GaussianMixture(K, max_iter=1, random_state=0).fit(x)
    # max_iter=0 keeps the initial parameters (scikit-learn's own fit fails on that when all
    # three are given: it has no covariances_ to return).
    init = _initial(x, "diag")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning for max_iter=0
        ours = GaussianMixture(K, covariance_type="diag", max_iter=0, **init).fit(x)
    np.testing.assert_array_equal(ours.means_, init["means_init"])
    _close(ours.precisions_, init["precisions_init"])
    _close(ours.covariances_, 1.0 / init["precisions_init"])
    assert ours.n_iter_ == 0 and ours.lower_bound_ == -np.inf


def test_float32_close_to_float64(blobs):
    x = blobs[0]
    params = dict(n_components=K, tol=1e-6, **_initial(x, "full"))
    g64 = GaussianMixture(**params).fit(x)
    g32 = GaussianMixture(**params).fit(x.astype(np.float32))
    assert g32.means_.dtype == g32.covariances_.dtype == np.float32
    assert g32.predict_proba(x).dtype == np.float32
    np.testing.assert_allclose(g32.means_, g64.means_, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(g32.covariances_, g64.covariances_, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(g32.lower_bound_, g64.lower_bound_, rtol=1e-5)
    forced = GaussianMixture(**params, dtype="float32").fit(x)
    assert forced.means_.dtype == np.float32


def test_diag_variances_centred_in_float32(blobs):
    """A nearly constant feature far from zero: scikit-learn's E[x^2] - mu^2 loses all its
    digits in float32 (and can go negative); the M-step's centred sums keep the variance."""
    import tensorflow as tf

    from tfclust.mixture import _kernels

    x, y = blobs
    rng = np.random.RandomState(0)
    x = np.column_stack([x, 1000.0 + 0.05 * rng.normal(size=len(x))]).astype(np.float32)
    expected = np.array([x[y == j].astype(np.float64).var(axis=0) for j in range(K)])
    tile = _kernels.tile_rows(len(x), K, D + 1, 4)
    x3 = _kernels.as_tiles(x, len(x), tile)
    w3 = _kernels.as_tiles(np.ones(len(x), np.float32), len(x), tile)
    resp3 = _kernels.as_tiles(np.eye(K, dtype=np.float32)[y], len(x), tile)
    for kind in ("diag", "spherical"):
        _, _, cov, _, ok = _kernels.initial_parameters_program(kind)(
            x3, w3, resp3, tf.constant(0.0, tf.float32), covariance_type=kind
        )
        assert bool(ok)
        want = expected if kind == "diag" else expected.mean(axis=1)
        np.testing.assert_allclose(cov.numpy(), want, rtol=1e-4)
    naive = np.array(
        [(x[y == j] ** 2).mean(axis=0) - x[y == j].mean(axis=0) ** 2 for j in range(K)]
    )
    assert np.max(np.abs(naive[:, -1] / expected[:, -1] - 1)) > 0.01  # the uncentred formula


def test_mnist_latents_diag_k10_matches_sklearn(latents):
    x = latents
    sk_init = SkGaussianMixture(10, covariance_type="diag", max_iter=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk_init.fit(x)
    params = dict(
        n_components=10,
        covariance_type="diag",
        max_iter=10,
        weights_init=sk_init.weights_,
        means_init=sk_init.means_,
        precisions_init=sk_init.precisions_,
    )
    ours, theirs = _fit_both(x, **params)
    assert ours.n_iter_ == theirs.n_iter_
    # 5,000 x 64 rows, 10 iterations: rounding differences grow a little; still far below
    # what a wrong formula would give.
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=1e-9)
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.covariances_, theirs.covariances_, rtol=1e-6)
    np.testing.assert_array_equal(ours.predict(x), theirs.predict(x))


def test_warm_start_continues(blobs):
    x = blobs[0]
    gm = GaussianMixture(K, max_iter=2, warm_start=True, random_state=0)
    with pytest.warns(ConvergenceWarning):
        gm.fit(x)
    first = gm.lower_bound_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(x)
    assert gm.lower_bound_ >= first - 1e-9


def test_sample_matches_sklearn(blobs):
    x = blobs[0]
    ours, theirs = _fit_both(x, n_components=K, covariance_type="diag", **_initial(x, "diag"))
    ours.set_params(random_state=3)
    theirs.set_params(random_state=3)
    xs, ys = ours.sample(50)
    xt, yt = theirs.sample(50)
    np.testing.assert_array_equal(ys, yt)
    np.testing.assert_allclose(xs, xt, rtol=1e-7)


def test_pickle_and_save_load(blobs, tmp_path):
    x = blobs[0]
    gm = GaussianMixture(K, covariance_type="tied", random_state=0).fit(x)
    for again in (pickle.loads(pickle.dumps(gm)), load_estimator(gm.save(tmp_path / "gm"))):
        assert repr(again) == repr(gm)
        np.testing.assert_array_equal(again.predict_proba(x), gm.predict_proba(x))
        assert again.score(x) == gm.score(x)


def test_dataframe_feature_names(blobs):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(blobs[0], columns=["a", "b", "c"])
    gm = GaussianMixture(K, random_state=0).fit(frame)
    assert list(gm.feature_names_in_) == ["a", "b", "c"] and gm.n_features_in_ == 3
    with pytest.warns(UserWarning, match="feature names"):
        gm.predict(blobs[0])


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"covariance_type": "banded"}, ValueError, "covariance_type must be one of"),
        ({"init_params": "pca"}, ValueError, "init_params must be one of"),
        ({"n_components": 0}, ValueError, "n_components must be >= 1"),
        ({"n_components": 2.5}, TypeError, "n_components must be an integer"),
        ({"tol": -1.0}, ValueError, "tol must be >= 0"),
        ({"reg_covar": -1e-6}, ValueError, "reg_covar must be >= 0"),
        ({"max_iter": -1}, ValueError, "max_iter must be >= 0"),
        ({"n_init": 0}, ValueError, "n_init must be >= 1"),
        ({"verbose_interval": 0}, ValueError, "verbose_interval must be >= 1"),
        ({"dtype": "int8"}, ValueError, "dtype"),
        ({"weights_init": [0.5, 0.5, 0.5]}, ValueError, "should be normalized"),
        ({"weights_init": [-0.5, 1.0, 0.5]}, ValueError, r"range \[0, 1\]"),
        ({"weights_init": [0.5, 0.5]}, ValueError, "'weights' should have the shape"),
        ({"means_init": np.zeros((3, 2))}, ValueError, "'means' should have the shape"),
        ({"means_init": np.full((3, 3), np.nan)}, ValueError, "NaN"),
        ({"precisions_init": np.ones((3, 3))}, ValueError, "'full precision' should have"),
        ({"precisions_init": -np.stack([np.eye(3)] * 3)}, ValueError, "positive-definite"),
        (
            {"precisions_init": np.stack([[[1, 2, 0], [0, 1, 0], [0, 0, 1]]] * 3)},
            ValueError,
            "symmetric",
        ),
        (
            {"covariance_type": "diag", "precisions_init": np.zeros((3, 3))},
            ValueError,
            "'diag precision' should be positive",
        ),
    ],
)
def test_bad_parameters(blobs, params, error, match):
    with pytest.raises(error, match=match):
        GaussianMixture(**{"n_components": K, **params}).fit(blobs[0])


def test_bad_input(blobs):
    x = blobs[0]
    gm = GaussianMixture(K)
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(5).fit(x[:4])
    with pytest.raises(ValueError, match="at least 2"):
        gm.fit(x[:1])
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        gm.fit(bad)
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        gm.fit(bad)
    with pytest.raises(ValueError, match="2-D"):
        gm.fit(x[:, 0])
    for method in ("predict", "predict_proba", "score_samples", "score", "bic", "aic"):
        with pytest.raises(NotFittedError, match="not fitted"):
            getattr(gm, method)(x)
    with pytest.raises(NotFittedError):
        gm.sample(3)
    gm.fit(x)
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3"):
        gm.predict(x[:, :2])
    with pytest.raises(ValueError, match="2-D"):
        gm.predict(x[0])


def test_singular_covariance_raises():
    # Two components on collapsed data with no regularisation: after one EM step each
    # component's covariance is zero, which is not positive definite.
    x = np.repeat([[0.0, 0.0], [1.0, 1.0]], 10, axis=0)
    init = dict(
        weights_init=[0.5, 0.5],
        means_init=[[0.0, 0.0], [1.0, 1.0]],
        precisions_init=[1.0, 1.0],
        covariance_type="spherical",
    )
    with pytest.raises(ValueError, match="increase reg_covar"):
        GaussianMixture(2, reg_covar=0.0, **init).fit(x)
    with pytest.raises(ValueError, match="passing float64"):
        GaussianMixture(2, reg_covar=0.0, dtype="float32", **init).fit(x)
    # ... and regularised it fits.
    gm = GaussianMixture(2, **init).fit(x)
    assert sorted(gm.means_[:, 0].round(6).tolist()) == [0.0, 1.0]


def test_verbose_prints(blobs, capsys):
    GaussianMixture(K, verbose=1, verbose_interval=1, random_state=0).fit(blobs[0])
    out = capsys.readouterr().out
    assert "Initialization 0" in out and "  Iteration 1" in out and "converged" in out
