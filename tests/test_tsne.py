"""The TSNE estimator and its descent loop, against scikit-learn (float64 where numerics count)."""

import logging

import numpy as np
import pytest
import tensorflow as tf
from scipy.spatial.distance import squareform
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE as SkTSNE
from sklearn.manifold import _t_sne, trustworthiness

from tfclust.tsne import TSNE, affinities, gradients, optimize


@pytest.fixture(scope="module")
def digits():
    return load_digits().data.astype(np.float64)


@pytest.mark.parametrize(
    "learning_rate, exaggeration, momentum, stop",
    # Early exaggeration at lr 50 is chaotic (differences in the last bit grow ~2.5x per
    # iteration), so that case is compared over 20 iterations; the other one spans two checks.
    [(10.0, 1.0, 0.8, 120), (50.0, 12.0, 0.5, 20)],
)
def test_descent_matches_sklearn_gradient_descent(
    digits, learning_rate, exaggeration, momentum, stop
):
    # Same P, same start, same momentum/gains rules: the same trajectory, step for step.
    x = digits[:200]
    p = affinities.joint_probabilities(tf.constant(x), 20.0)
    y0 = optimize.random_embedding(200, 2, seed=1, dtype=tf.float64)
    settings = dict(
        momentum=momentum,
        learning_rate=learning_rate,
        min_grad_norm=1e-7,
        n_iter_without_progress=300,
    )
    expected, kl_ref, last_ref = _t_sne._gradient_descent(
        _t_sne._kl_divergence,
        y0.numpy().ravel().copy(),
        it=0,
        max_iter=stop,
        n_iter_check=50,
        args=[exaggeration * squareform(p.numpy(), checks=False), 1, 200, 2],
        kwargs={},
        **settings,
    )
    objective = gradients.ExactObjective.for_problem(200, 2, tf.float64, memory_budget=2**18)
    assert objective.tile < 200
    result = optimize.gradient_descent(
        objective,
        objective.operands(p),
        y0,
        start=0,
        stop=stop,
        exaggeration=exaggeration,
        **settings,
    )
    assert result.last_iter == last_ref == stop - 1
    np.testing.assert_allclose(result.kl_divergence, kl_ref, rtol=1e-9)
    np.testing.assert_allclose(
        result.embedding.numpy().ravel(), expected, rtol=0, atol=1e-8 * np.abs(expected).max()
    )


def test_pca_init_matches_sklearn(digits):
    x = digits[:300]
    got = optimize.pca_embedding(tf.constant(x), 2).numpy()
    ref = PCA(n_components=2, svd_solver="full").fit_transform(x)
    ref = ref / np.std(ref[:, 0]) * 1e-4
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10 * np.abs(ref).max())


def test_random_init_is_seeded():
    a = optimize.random_embedding(50, 2, seed=7).numpy()
    np.testing.assert_array_equal(a, optimize.random_embedding(50, 2, seed=7).numpy())
    assert not np.allclose(a, optimize.random_embedding(50, 2, seed=8).numpy())
    assert a.dtype == np.float32 and 0.5e-4 < a.std() < 2e-4


@pytest.fixture(scope="module")
def full_fits(digits):
    x = digits[:1000]
    params = dict(perplexity=30.0, max_iter=500, random_state=0)
    ours = TSNE(method="exact", dtype="float64", **params).fit(x)
    ref = SkTSNE(method="exact", **params).fit(x)
    return x, ours, ref


def test_full_fit_reaches_sklearn_quality(full_fits):
    x, ours, ref = full_fits
    assert ours.kl_divergence_ <= 1.02 * ref.kl_divergence_
    t_ours = trustworthiness(x, ours.embedding_, n_neighbors=10)
    t_ref = trustworthiness(x, ref.embedding_, n_neighbors=10)
    assert t_ours >= t_ref - 0.01
    assert ours.n_iter_ == ref.n_iter_ == 499
    assert ours.learning_rate_ == ref.learning_rate_ == 50.0


def test_fitted_attributes(full_fits):
    x, ours, _ = full_fits
    assert ours.embedding_.shape == (1000, 2) and ours.embedding_.dtype == np.float64
    assert ours.n_features_in_ == 64
    # kl_divergence_ is the KL at the start of the last iteration, as sklearn's.
    assert np.isfinite(ours.kl_divergence_) and ours.kl_divergence_ > 0


def test_same_random_state_same_embedding(digits):
    x = digits[:150]
    kwargs = dict(perplexity=10.0, max_iter=300, init="random", method="exact")
    a = TSNE(random_state=3, **kwargs).fit_transform(x)
    b = TSNE(random_state=3, **kwargs).fit_transform(x)
    assert a.dtype == np.float32  # as scikit-learn's TSNE, whatever the input dtype
    np.testing.assert_array_equal(a, b)
    c = TSNE(random_state=4, **kwargs).fit_transform(x)
    assert not np.allclose(a, c)


def test_init_array_is_used_and_compiled_program_reused(digits):
    x = digits[:123]
    kwargs = dict(perplexity=10.0, max_iter=250, method="exact")
    from_pca = TSNE(init="pca", **kwargs).fit(x)
    y0 = optimize.pca_embedding(tf.constant(x, tf.float32), 2).numpy()
    from_array = TSNE(init=y0, **kwargs).fit(x)
    np.testing.assert_array_equal(from_pca.embedding_, from_array.embedding_)
    objective = gradients.ExactObjective.for_problem(123, 2, tf.float32)
    shapes = optimize._shape_key(tf.zeros((123, 2)), (tf.zeros((123, 123)),))
    program = optimize._chunk_program(objective, optimize.N_ITER_CHECK, *shapes)
    assert program.experimental_get_tracing_count() == 1


def test_max_iter_250_reports_the_final_kl(digits):
    x = digits[:100]
    ts = TSNE(perplexity=10.0, max_iter=250, method="exact", dtype="float64").fit(x)
    assert ts.n_iter_ == 250  # sklearn's convention when the second stage runs no iteration
    p = affinities.joint_probabilities(tf.constant(x), 10.0).numpy()
    kl, _ = _t_sne._kl_divergence(ts.embedding_.ravel(), squareform(p, checks=False), 1, 100, 2)
    np.testing.assert_allclose(ts.kl_divergence_, kl, rtol=1e-9)


def test_min_grad_norm_stops_like_sklearn(digits):
    x = digits[:100]
    params = dict(perplexity=10.0, min_grad_norm=10.0, random_state=0)
    ours = TSNE(method="exact", dtype="float64", **params).fit(x)
    ref = SkTSNE(method="exact", **params).fit(x)
    assert ours.n_iter_ == ref.n_iter_ == 99


def test_progress_is_logged_one_line_per_chunk_and_not_printed(digits, caplog, capsys):
    with caplog.at_level(logging.INFO, logger="tfclust.tsne"):
        TSNE(perplexity=10.0, max_iter=300, method="exact").fit(digits[:100])
    assert capsys.readouterr().out == ""  # verbose=0: logged, not printed
    lines = [r.getMessage() for r in caplog.records if "error =" in r.getMessage()]
    assert [line.split(":")[0] for line in lines] == [
        f"[t-SNE] Iteration {i}" for i in range(50, 301, 50)
    ]
    assert all("gradient norm" in line and "iterations in" in line for line in lines)


@pytest.mark.parametrize("method", ["fft", "exact"])
def test_duplicate_points_do_not_give_nan(digits, method):
    kwargs = dict(method=method, max_iter=250)
    if method == "fft":
        kwargs["max_num_intervals"] = 50  # one grid size: compiles in ~1 s per shape
    x = np.repeat(digits[:40], 3, axis=0)
    for init in ("pca", "random"):
        ts = TSNE(perplexity=5.0, init=init, random_state=0, **kwargs).fit(x)
        assert np.all(np.isfinite(ts.embedding_)) and np.isfinite(ts.kl_divergence_)
    constant = np.ones((10, 3))
    ts = TSNE(perplexity=3.0, **kwargs).fit(constant)
    assert np.all(np.isfinite(ts.embedding_))


X20 = np.random.default_rng(0).normal(size=(20, 4))


@pytest.mark.parametrize(
    "params, x, match",
    [
        (dict(perplexity=20.0), X20, "perplexity"),
        (dict(perplexity=25), X20, "perplexity"),
        (dict(perplexity=0.0), X20, "perplexity"),
        (dict(perplexity=-5.0), X20, "perplexity"),
        ({}, np.where(np.eye(20, 4) > 0, np.nan, X20), "NaN"),
        ({}, np.where(np.eye(20, 4) > 0, np.inf, X20), "NaN or infinity"),
        (dict(perplexity=0.5), X20[:1], "at least 2"),
        ({}, X20[:, 0], "2-D"),
        (dict(n_components=0), X20, "n_components"),
        (dict(method="bh"), X20, "method"),
        (dict(init="spectral"), X20, "init"),
        (dict(init=np.zeros((20, 3))), X20, r"init must have shape"),
        (dict(init=np.zeros((19, 2))), X20, r"init must have shape"),
        (dict(n_components=5), X20, "n_components"),
        (dict(learning_rate="fast"), X20, "learning_rate"),
        (dict(learning_rate=0.0), X20, "learning_rate"),
        (dict(max_iter=100), X20, "max_iter"),
        (dict(early_exaggeration=0.5), X20, "early_exaggeration"),
        (dict(dtype="int32"), X20, "dtype"),
    ],
)
def test_bad_input_raises_value_error(params, x, match):
    kwargs = {"perplexity": 5.0, **params}
    with pytest.raises(ValueError, match=match):
        TSNE(**kwargs).fit(x)


def test_bad_types_raise_type_error():
    with pytest.raises(TypeError, match="perplexity"):
        TSNE(perplexity="high").fit(X20)
    with pytest.raises(TypeError, match="X"):
        TSNE(perplexity=5.0).fit(np.array([["a", "b"]] * 20))
