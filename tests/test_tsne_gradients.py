"""t-SNE KL divergence and gradient against scikit-learn's ``_kl_divergence``."""

import numpy as np
import pytest
import tensorflow as tf
from scipy.spatial.distance import squareform
from sklearn.datasets import load_digits
from sklearn.manifold import _t_sne

from tfclust.tsne import affinities, gradients

N = 200


@pytest.fixture(scope="module")
def digits_p():
    x = load_digits().data[:N].astype(np.float64)
    return x, affinities.joint_probabilities(tf.constant(x), 20.0)


def _compiled(fn):
    return tf.function(fn, jit_compile=True)


@pytest.mark.parametrize("n_components", [2, 3])
@pytest.mark.parametrize("tile", [N, 64])
@pytest.mark.parametrize("exaggeration", [1.0, 12.0])
def test_exact_kl_and_gradient_match_sklearn(digits_p, n_components, tile, exaggeration):
    _, p = digits_p
    y = np.random.default_rng(n_components).normal(size=(N, n_components)) * 3.0
    dof = gradients.degrees_of_freedom(n_components)
    assert dof == max(n_components - 1, 1)
    kl_ref, grad_ref = _t_sne._kl_divergence(
        y.ravel(), exaggeration * squareform(p.numpy(), checks=False), dof, N, n_components
    )
    objective = gradients.ExactObjective(dof=dof, tile=tile)
    operands = objective.operands(p)
    assert operands[0].shape[0] % tile == 0
    args = (tf.constant(y), tf.constant(exaggeration, tf.float64), *operands)
    grad = _compiled(objective.gradient)(*args).numpy()
    kl = float(_compiled(objective.kl_divergence)(*args))
    assert abs(kl - kl_ref) <= 1e-6 * abs(kl_ref)
    scale = np.abs(grad_ref).max()
    np.testing.assert_allclose(grad.ravel(), grad_ref, rtol=1e-6, atol=1e-6 * scale)


def test_exact_gradient_float32_is_accurate(digits_p):
    _, p = digits_p
    y = np.random.default_rng(0).normal(size=(N, 2)) * 20.0
    _, grad_ref = _t_sne._kl_divergence(y.ravel(), squareform(p.numpy(), checks=False), 1, N, 2)
    objective = gradients.ExactObjective.for_problem(N, 2, tf.float32)
    (p32,) = objective.operands(tf.cast(p, tf.float32))
    grad = objective.gradient(tf.constant(y, tf.float32), tf.constant(1.0), p32).numpy()
    np.testing.assert_allclose(grad.ravel(), grad_ref, rtol=0, atol=1e-5 * np.abs(grad_ref).max())


def test_objective_is_hashable_by_value():
    # The optimiser caches one compiled program per objective: equal objectives must share it.
    a = gradients.ExactObjective.for_problem(1000, 2, tf.float32)
    b = gradients.ExactObjective.for_problem(1000, 2, tf.float32)
    assert a == b and hash(a) == hash(b)
    assert gradients.ExactObjective.for_problem(1000, 2, tf.float32, memory_budget=2**20) != a


@pytest.fixture(scope="module")
def sparse_problem(digits_p):
    x, _ = digits_p
    p = affinities.joint_probabilities_nn(tf.constant(x), 10.0)
    y = tf.constant(np.random.default_rng(5).normal(size=(N, 2)) * 4.0)
    return p, y


def test_sparse_attractive_forces_equal_dense(sparse_problem):
    p, y = sparse_problem
    dense = tf.sparse.to_dense(p)
    objective = gradients.ExactObjective(dof=1.0, tile=N)
    attractive, _, _ = objective.forces(y, dense)
    sparse = _compiled(gradients.sparse_attractive_forces)(y, p.indices, p.values, 1.0)
    np.testing.assert_allclose(sparse.numpy(), attractive.numpy(), rtol=1e-12, atol=1e-18)


def test_sparse_kl_equals_exact_kl_on_the_same_p(sparse_problem):
    p, y = sparse_problem
    dense = tf.sparse.to_dense(p)
    objective = gradients.ExactObjective(dof=1.0, tile=N)
    _, _, z = objective.forces(y, dense)
    for exaggeration in (1.0, 12.0):
        sparse_kl = gradients.sparse_kl_divergence(y, p.indices, p.values, z, 1.0, exaggeration)
        exact_kl = objective.kl_divergence(y, tf.constant(exaggeration, tf.float64), dense)
        np.testing.assert_allclose(float(sparse_kl), float(exact_kl), rtol=1e-12)


def test_gradient_from_sparse_attraction_and_exact_repulsion(sparse_problem):
    # What method="fft" will assemble: sparse attraction + (approximate) repulsion and Z.
    p, y = sparse_problem
    dense = tf.sparse.to_dense(p)
    objective = gradients.ExactObjective(dof=1.0, tile=N)
    _, repulsive, z = objective.forces(y, dense)
    attractive = gradients.sparse_attractive_forces(y, p.indices, p.values, 1.0)
    grad = gradients.kl_gradient(attractive, repulsive, z, 1.0, 12.0).numpy()
    _, grad_ref = _t_sne._kl_divergence(
        y.numpy().ravel(), 12.0 * squareform(dense.numpy(), checks=False), 1, N, 2
    )
    np.testing.assert_allclose(grad.ravel(), grad_ref, rtol=1e-6, atol=1e-9)


def test_coincident_points_give_finite_gradient(digits_p):
    _, p = digits_p
    y = np.zeros((N, 2))
    y[N // 2 :] = 1.0
    objective = gradients.ExactObjective(dof=1.0, tile=N)
    args = (tf.constant(y), tf.constant(1.0, tf.float64), p)
    assert np.all(np.isfinite(objective.gradient(*args).numpy()))
    assert np.isfinite(float(objective.kl_divergence(*args)))
