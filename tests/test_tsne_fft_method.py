"""TSNE(method="fft"): P on k-NN edges, FFT-interpolated repulsion, and whole fits.

The building blocks are checked against the sparse-P functions (which test_tsne_gradients.py
checks against scikit-learn) and against automatic differentiation of the exact KL divergence;
whole fits against the exact method on the same data.
"""

import re

import numpy as np
import pytest
import tensorflow as tf
from run_outputs import retracing_warnings
from sklearn.datasets import load_digits
from tsne_operands import zero_fft_operands

from tfclust.tsne import TSNE, affinities, estimator, gradients, optimize

# One grid size (no ladder of sizes to compile) where the grid's adaptivity is not under test.
SMALL_GRID = dict(min_num_intervals=50, max_num_intervals=50)
# TSNE's n_interpolation_points="auto" and ints_in_interval in 2-D, as FFTObjective settings.
AUTO_2D = dict(n_interpolation_points=2, stencil_size=4, ints_in_interval=0.8)


def mixture(n, dim=10, seed=0):
    """Ten Gaussian clusters of different widths in ``dim`` dimensions, float32."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(10, dim))
    labels = rng.integers(0, 10, n)
    widths = rng.uniform(0.5, 2.0, size=10)
    x = centres[labels] + rng.normal(size=(n, dim)) * widths[labels, None]
    return x.astype(np.float32), labels


@pytest.fixture(scope="module")
def digits_graph():
    x = tf.constant(load_digits().data[:400].astype(np.float64))
    k = affinities.n_neighbors_for_perplexity(400, 10.0)
    neighbors, sq_distances = affinities.nearest_neighbors(x, k)
    p_cond = affinities.binary_search_perplexity(sq_distances, 10.0)
    sparse = affinities.joint_probabilities_from_neighbors(neighbors, sq_distances, 10.0)
    # A small budget so that the mutual-pair search runs in several tiles.
    operands = gradients.FFTObjective.operands(neighbors, p_cond, memory_budget=2**17)
    return sparse, operands


def test_directed_p_is_the_symmetric_knn_p(digits_graph):
    sparse, (p, _) = digits_graph
    neighbors, weights = p.neighbors.numpy(), p.weights.numpy()
    n, k = neighbors.shape
    want = tf.sparse.to_dense(sparse).numpy()
    # Every edge carries its pair's p_ij; the mutual pairs are complete in both rows, and the
    # listed one-way edges are exactly those whose target does not list their source.
    rows = np.repeat(np.arange(n), k)
    np.testing.assert_allclose(weights.ravel(), want[rows, neighbors.ravel()], rtol=1e-12)
    dense = np.zeros((n, n))
    dense[rows, neighbors.ravel()] = weights.ravel()
    listed = dense > 0
    one_way = set(np.flatnonzero(~listed[neighbors.ravel(), rows]).tolist())
    count = len(one_way)
    assert p.one_way.numpy()[:count].tolist() == sorted(one_way)
    assert p.one_way.shape[0] % (n * k // 8) == 0 and p.one_way.shape[0] >= count
    assert (p.one_way_targets.numpy()[:count] == neighbors.ravel()[sorted(one_way)]).all()
    assert (p.one_way_targets.numpy()[count:] == n).all()
    dense[neighbors.ravel()[sorted(one_way)], rows[sorted(one_way)]] = weights.ravel()[
        sorted(one_way)
    ]
    np.testing.assert_allclose(dense, want, rtol=1e-12, atol=1e-18)
    nz = want[want > 0]
    np.testing.assert_allclose(float(p.entropy), np.sum(nz * np.log(nz)), rtol=1e-12)


def test_directed_forces_and_kl_equal_the_sparse_forms(digits_graph):
    sparse, (p, _) = digits_graph
    y = tf.constant(np.random.default_rng(1).normal(size=(400, 2)) * 4.0)
    got = gradients.directed_attractive_forces(y, p)
    want = gradients.sparse_attractive_forces(y, sparse.indices, sparse.values, 1.0)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-16)
    got = gradients.directed_attractive_forces(y, p, deterministic_sums=True)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-16)
    z = tf.constant(3456.7, tf.float64)
    for exaggeration in (1.0, 12.0):
        got = gradients.directed_kl_divergence(y, p, z, 1.0, tf.constant(exaggeration, tf.float64))
        want = gradients.sparse_kl_divergence(
            y, sparse.indices, sparse.values, z, 1.0, exaggeration
        )
        np.testing.assert_allclose(float(got), float(want), rtol=1e-12)


def exact_kl(y, p, dof, exaggeration):
    """All pairs, openTSNE's kernel ``w = (1 + d^2/dof)^-dof``, P summing to 1, ``a`` the
    exaggeration: ``(KL(a P || Q), the objective whose gradient t-SNE follows)``.

    KL(a P || Q) = sum a p log(a p) - a sum p log w + a log Z; t-SNE's exaggerated gradient
    (scikit-learn's, openTSNE's) is ``4 sum_j (a p_ij - q_ij) ...``, the gradient of the same
    expression with ``log Z`` instead of ``a log Z``.
    """
    d2 = tf.reduce_sum(tf.square(y[:, None, :] - y[None, :, :]), axis=2)
    log_w = -dof * tf.math.log1p(d2 / dof)  # differentiable everywhere, diagonal included
    log_z = tf.math.log(tf.reduce_sum(tf.exp(log_w)) - y.shape[0])  # w_ii = 1
    pe = exaggeration * p.numpy()
    common = np.sum(pe[pe > 0] * np.log(pe[pe > 0])) - exaggeration * tf.reduce_sum(p * log_w)
    return common + exaggeration * log_z, common + log_z


@pytest.mark.parametrize("dof", [1.0, 0.5])
@pytest.mark.parametrize("exaggeration", [1.0, 12.0])
def test_gradient_and_kl_match_autodiff_of_the_exact_kl(digits_graph, dof, exaggeration):
    sparse, operands = digits_graph
    p = tf.sparse.to_dense(sparse)
    y = tf.Variable(np.random.default_rng(2).normal(size=(400, 2)) * 6.0)
    with tf.GradientTape() as tape:
        kl_ref, followed = exact_kl(y, p, dof, exaggeration)
    grad_ref = tape.gradient(followed, y).numpy()
    objective = gradients.FFTObjective(n_interpolation_points=5, dof=dof, **SMALL_GRID)
    args = (tf.constant(y.numpy()), tf.constant(exaggeration, tf.float64))
    compiled_objective = objective.at_extent(float(objective.extent(args[0], *operands)))
    assert compiled_objective.n_boxes == 50
    run = tf.function(compiled_objective.gradient_and_kl, jit_compile=True)
    grad, kl = run(*args, *operands)
    err = np.linalg.norm(grad.numpy() - grad_ref) / np.linalg.norm(grad_ref)
    assert err <= 1e-3, err
    assert abs(float(kl) / float(kl_ref) - 1.0) <= 1e-5
    np.testing.assert_allclose(
        objective.gradient(*args, *operands).numpy(),
        grad.numpy(),
        rtol=1e-10,
        atol=1e-12 * np.abs(grad_ref).max(),
    )
    np.testing.assert_allclose(
        float(objective.kl_divergence(*args, *operands)), float(kl), rtol=1e-10
    )


@pytest.fixture(scope="module")
def fits_2000():
    x, _ = mixture(2000)
    params = dict(perplexity=30.0, max_iter=500, random_state=0)
    # The exact method's schedule (its "auto" learning rate, 50 here, for both stages): the
    # fits differ only in their gradients. The FFT method's own "auto" ends lower.
    fft = TSNE(method="fft", learning_rate=50.0, **params).fit(x)
    exact = TSNE(method="exact", **params).fit(x)
    return x, fft, exact


def test_reported_kl_is_the_exact_kl_of_the_knn_p(fits_2000):
    # kl_divergence_ uses the interpolated Z; with the exact Z it must barely move.
    x, fft, _ = fits_2000
    sparse = affinities.joint_probabilities_nn(tf.constant(x, tf.float64), 30.0)
    y = tf.constant(fft.embedding_, tf.float64)
    exact = gradients.ExactObjective(dof=1.0, tile=500)
    _, _, z = exact.forces(y, tf.zeros((2000, 2000), tf.float64))
    kl = gradients.sparse_kl_divergence(y, sparse.indices, sparse.values, z, 1.0)
    # kl_divergence_ is taken at the start of the last iteration, one small step earlier.
    assert abs(fft.kl_divergence_ / float(kl) - 1.0) <= 2e-3, (fft.kl_divergence_, float(kl))


def dense_kl(x, perplexity, embedding):
    """Exact KL divergence of ``embedding`` against the dense P (the exact method's objective)."""
    n, d = embedding.shape
    p = affinities.joint_probabilities(tf.constant(x), perplexity)
    objective = gradients.ExactObjective.for_problem(n, d, tf.float32)
    y = tf.constant(embedding)
    return float(objective.kl_divergence(y, tf.constant(1.0), *objective.operands(p)))


def test_fit_reaches_the_exact_methods_kl(fits_2000):
    # Both embeddings scored the same way: the exact KL divergence against the dense P that
    # the exact method minimises (the FFT method only ever saw the k-NN P and interpolated Z).
    x, fft, exact = fits_2000
    kl_fft, kl_exact = dense_kl(x, 30.0, fft.embedding_), dense_kl(x, 30.0, exact.embedding_)
    assert abs(kl_fft / kl_exact - 1.0) <= 0.03, (kl_fft, kl_exact)


def test_one_dimensional_fit_separates_clusters():
    x, labels = mixture(300, seed=3)
    ts = TSNE(n_components=1, perplexity=20.0, max_iter=500, random_state=0)
    y = ts.fit_transform(x)
    assert y.shape == (300, 1) and np.all(np.isfinite(y))
    # Each point's nearest 1-D neighbour shares its cluster (clusters are well apart in 10-D).
    order = np.argsort(y[:, 0])
    same = labels[order][1:] == labels[order][:-1]
    assert same.mean() >= 0.95
    exact = TSNE(n_components=1, method="exact", perplexity=20.0, max_iter=500, random_state=0)
    kl_fft, kl_exact = dense_kl(x, 20.0, y), dense_kl(x, 20.0, exact.fit_transform(x))
    assert abs(kl_fft / kl_exact - 1.0) <= 0.03, (kl_fft, kl_exact)


def test_same_random_state_same_embedding_and_one_compilation():
    x, _ = mixture(310, seed=4)  # 320 rows, 32 neighbours: a bucket no other test uses
    kwargs = dict(perplexity=10.0, max_iter=300, init="random", **SMALL_GRID)
    est = TSNE(random_state=3, **kwargs)
    objective, operands, n_rows = est._objective(est._check_params(x), tf.constant(x))
    assert objective.exact_repulsion and objective.at_extent(50.0) is objective
    shapes = optimize._shape_key(tf.zeros((n_rows, 2)), operands)
    program = optimize._chunk_program(objective, optimize.N_ITER_CHECK, *shapes)
    assert program.experimental_get_tracing_count() == 0
    a = TSNE(random_state=3, **kwargs).fit_transform(x)
    b = TSNE(random_state=3, **kwargs).fit_transform(x)
    np.testing.assert_array_equal(a, b)
    c = TSNE(random_state=4, **kwargs).fit_transform(x)
    assert not np.allclose(a, c)
    assert program.experimental_get_tracing_count() == 1


def separation(embedding, labels):
    """Smallest distance between cluster centroids over the mean distance to the centroid."""
    centres = np.stack([embedding[labels == k].mean(axis=0) for k in range(10)])
    radius = np.mean(
        [np.linalg.norm(embedding[labels == k] - centres[k], axis=1).mean() for k in range(10)]
    )
    gaps = np.linalg.norm(centres[:, None] - centres[None], axis=2) + np.diag([np.inf] * 10)
    return gaps.min() / radius


def test_heavy_tails_and_late_exaggeration():
    x, labels = mixture(300, seed=5)
    kwargs = dict(perplexity=20.0, max_iter=400, random_state=0, **SMALL_GRID)
    plain = TSNE(**kwargs).fit(x)
    late = TSNE(exaggeration=4.0, **kwargs).fit(x)
    heavy = TSNE(dof=0.5, **kwargs).fit(x)
    for ts in (late, heavy):
        assert np.all(np.isfinite(ts.embedding_)) and np.isfinite(ts.kl_divergence_)
    # Exaggeration pulls neighbours together: a more compact embedding, worse KL of plain P.
    assert np.ptp(late.embedding_) < 0.7 * np.ptp(plain.embedding_)
    assert late.kl_divergence_ > plain.kl_divergence_
    # With late exaggeration kl_divergence_ is of the plain P at the final embedding.
    sparse = affinities.joint_probabilities_nn(tf.constant(x), 20.0)
    y = tf.constant(late.embedding_)
    _, z = gradients.exact_repulsion(y, tf.ones(len(x)))  # 300 points: the fit's Z is exact
    want = gradients.sparse_kl_divergence(y, sparse.indices, sparse.values, z, 1.0)
    assert late.kl_divergence_ == pytest.approx(float(want), rel=1e-4)
    # Heavier tails separate clusters more than standard t-SNE (here ~3x: 39 against 13).
    assert separation(heavy.embedding_, labels) > 2.0 * separation(plain.embedding_, labels)


def test_compiled_descent_memory_is_linear_in_n():
    # Every array in the compiled chunk program (gradient, gains, KL, the grid) has
    # O(N k + grid) elements: nothing N x N, nothing N x k x k.
    k = 91
    objective = gradients.FFTObjective(**AUTO_2D, **SMALL_GRID, n_boxes=50)
    m = objective.n_interpolation_points * objective.n_boxes
    grid = 4 * (m + 1) * 2 * m  # the largest FFT buffer: (d + 2) channels, (m + 1) x 2m
    run = optimize._chunk_program(objective, optimize.N_ITER_CHECK, "memory test")
    largest = {}
    for n in (10000, 40000):
        y = tf.zeros((n, 2))
        operands = zero_fft_operands(n, k)
        scalars = [tf.constant(1.0)] * 3
        hlo = run.experimental_get_compiler_ir(y, y, y, tf.constant(50), *scalars, operands)(
            stage="hlo"
        )
        sizes = [
            int(np.prod([int(d) for d in dims.split(",")]))
            for dims in re.findall(r"(?:f32|c64|s32|s64|pred)\[([\d,]+)\]", hlo)
        ]
        largest[n] = max(sizes)
        assert largest[n] <= max(2 * n * k, grid), (n, largest[n])
    assert largest[40000] == 2 * 40000 * k  # the scatter of the edge forces, (N k, 2)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(n_components=3), "n_components 1 and 2"),
        (dict(method="exact", dof=0.5), "dof"),
        (dict(dof=0.0), "dof"),
        (dict(exaggeration=0.5), "exaggeration"),
        (dict(n_interpolation_points=0), "n_interpolation_points"),
        (dict(min_num_intervals=60, max_num_intervals=50), "max_num_intervals"),
        (dict(ints_in_interval=0.0), "ints_in_interval"),
    ],
)
def test_bad_fft_parameters_raise_value_error(params, match):
    x = np.random.default_rng(0).normal(size=(20, 4))
    with pytest.raises(ValueError, match=match):
        TSNE(perplexity=5.0, **params).fit(x)


def test_directed_p_validates_neighbors():
    with pytest.raises(ValueError, match="neighbors"):
        gradients.directed_joint_probabilities(tf.zeros((5, 3), tf.int64), tf.zeros((5, 3)))


@pytest.mark.parametrize(
    "params, rates",
    [
        # openTSNE's rule: N / 12 / 4 (at least 50), then N / 4 (scikit-learn's scale).
        (dict(), (50.0, 200.0)),
        (dict(exaggeration=2.0), (50.0, 100.0)),
        (dict(early_exaggeration=2.0), (100.0, 200.0)),
        (dict(learning_rate=30.0), (30.0, 30.0)),
        # scikit-learn's rule: max(N / early_exaggeration / 4, 50) for both stages.
        (dict(method="exact"), (50.0, 50.0)),
        (dict(method="exact", early_exaggeration=2.0), (100.0, 100.0)),
    ],
)
def test_auto_learning_rate_per_stage_reaches_the_descent(monkeypatch, params, rates):
    from tfclust.tsne import estimator

    seen = {}

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return optimize.tsne_descent(*args, **kwargs)

    monkeypatch.setattr(estimator, "tsne_descent", spy)
    x = load_digits().data[:800]
    tsne = TSNE(perplexity=10.0, max_iter=250, random_state=0, **SMALL_GRID, **params).fit(x)
    assert (seen["learning_rate"], seen["final_learning_rate"]) == rates
    # learning_rate_ is the last stage's, which optimize continues with.
    assert tsne.learning_rate_ == rates[1]


def test_descent_takes_a_learning_rate_per_stage(digits_graph):
    _, operands = digits_graph
    objective = gradients.FFTObjective(**AUTO_2D, **SMALL_GRID)
    y0 = optimize.random_embedding(400, 2, seed=0, dtype=tf.float64)
    settings = dict(
        early_exaggeration=12.0,
        max_iter=300,
        n_iter_without_progress=300,
        min_grad_norm=0.0,
    )
    one = optimize.tsne_descent(objective, operands, y0, learning_rate=50.0, **settings)
    same = optimize.tsne_descent(
        objective, operands, y0, learning_rate=50.0, final_learning_rate=50.0, **settings
    )
    np.testing.assert_array_equal(one.embedding, same.embedding)
    # Stage 1 (250 iterations) is the same; stage 2's larger steps spread the map more.
    faster = optimize.tsne_descent(
        objective, operands, y0, learning_rate=50.0, final_learning_rate=400.0, **settings
    )
    assert np.ptp(faster.embedding.numpy()) > np.ptp(one.embedding.numpy())


def test_a_fit_over_many_grid_sizes_does_not_warn_of_retracing(monkeypatch):
    """Each grid size is its own compiled program, not a retracing of one function (which made
    TensorFlow warn in every small run: a few dozen points cross five grid sizes)."""
    sizes = set()
    at_extent = gradients.FFTObjective.at_extent

    def recording(self, extent):
        objective = at_extent(self, extent)
        sizes.add(objective.n_boxes)
        return objective

    monkeypatch.setattr(gradients.FFTObjective, "at_extent", recording)
    monkeypatch.setattr(estimator, "EXACT_REPULSION_BELOW", 0)  # the grid at any N
    x = np.random.default_rng(0).normal(size=(40, 64)).astype(np.float32)
    with retracing_warnings() as retraced:
        TSNE(perplexity=5.0, max_iter=250, random_state=0).fit(x)
    assert len(sizes) >= 4
    assert retraced == []


@pytest.mark.parametrize("dof", [1.0, 0.6])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exact_repulsion_is_the_all_pairs_sum(dof, dtype):
    """:func:`gradients.exact_repulsion` against the all-pairs sums in float64 numpy, with
    padding rows (charge 0) that neither push nor feel a force, in several row tiles."""
    rng = np.random.default_rng(1)
    y = rng.normal(scale=5.0, size=(70, 2))
    charge = np.r_[np.ones(61), np.zeros(9)]
    diff = y[:, None, :] - y[None, :, :]
    base = 1.0 + (diff**2).sum(-1) / dof
    pair = charge[:, None] * charge[None, :] * (1.0 - np.eye(70))
    want_force = ((pair * base ** -(dof + 1))[:, :, None] * diff).sum(1)
    want_z = (pair * base**-dof).sum()
    budget = 20 * 70 * 6 * np.dtype(dtype).itemsize  # 20-row tiles: 4 tiles, the last padded
    force, z = gradients.exact_repulsion(
        tf.constant(y, dtype), tf.constant(charge, dtype), dof, memory_budget=budget
    )
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(
        force.numpy(), want_force, rtol=rtol, atol=rtol * abs(want_force).max()
    )
    np.testing.assert_allclose(float(z), want_z, rtol=rtol)
    assert not force.numpy()[61:].any()


def test_small_fits_sum_the_repulsion_exactly_in_one_program(monkeypatch):
    """Below ``EXACT_REPULSION_BELOW`` a fit compiles one chunk program (no grid sizes to
    cross) and lands at least as low as the grid's fit; from it on, the grid is used."""
    chunk_objectives = set()
    at_extent = gradients.FFTObjective.at_extent

    def recording(self, extent):
        objective = at_extent(self, extent)
        chunk_objectives.add(objective)
        return objective

    monkeypatch.setattr(gradients.FFTObjective, "at_extent", recording)
    x = mixture(300)[0]
    exact = TSNE(perplexity=10.0, max_iter=500, random_state=0).fit(x)
    assert len(chunk_objectives) == 1
    assert next(iter(chunk_objectives)).exact_repulsion
    chunk_objectives.clear()
    monkeypatch.setattr(estimator, "EXACT_REPULSION_BELOW", 300)
    grid = TSNE(perplexity=10.0, max_iter=500, random_state=0).fit(x)
    assert len(chunk_objectives) > 1
    assert not any(o.exact_repulsion for o in chunk_objectives)
    assert exact.kl_divergence_ <= grid.kl_divergence_ + 0.01
