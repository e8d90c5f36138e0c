"""The accelerator profile's deterministic sums: no float scatter-add on the hot paths.

On a GPU, XLA runs a float scatter-add as atomic adds whose order (and so rounding) varies run
to run. Under the gpu/tpu profile K-means (and the approximate k-NN's K-means lists) sums per
centre by one-hot matmuls and the FFT t-SNE sums its grid charges (fit and ``transform``) and
attractive forces in 64-bit fixed point. These tests run that path on this CPU
(``TFCLUST_DEVICE=gpu``): same results as the CPU profile and scikit-learn, and no scatter with
a float addition left in the compiled programs (the CPU profile's programs have them: the
negative control).

A t-SNE descent amplifies rounding: a 1e-12 change of the initial embedding of 300 points moves
the final one by several units, float path or not. So the objective (gradient, KL) is compared
to float rounding at the same embedding, and whole fits by their KL divergence and structure.
"""

import importlib.util
import pathlib
import re

import numpy as np
import pytest
import tensorflow as tf
from sklearn.cluster import KMeans as SKMeans
from sklearn.datasets import make_blobs
from tsne_operands import zero_fft_operands

from tfclust import KMeans, _ann
from tfclust._compile import specialised
from tfclust._device import ENV_VAR, PROFILES
from tfclust.kmeans import _lloyd, _minibatch, _streaming
from tfclust.tsne import TSNE, affinities, fft, gradients, optimize, placement

_spec = importlib.util.spec_from_file_location(
    "_tfclust_bench_hlo", pathlib.Path(__file__).parents[1] / "benchmarks" / "hlo.py"
)
hlo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hlo)

_TO_APPLY = re.compile(r"to_apply=%?([\w.\-]+)")


def program_hlo(program, *args, **kwargs):
    """The HLO of a compiled program as TensorFlow hands it to XLA: the device-independent
    program a GPU's compiler would receive (this CPU's optimized HLO is not what a GPU runs,
    and XLA's passes add no scatter), without compiling it."""
    return program.experimental_get_compiler_ir(*args, **kwargs)(stage="hlo")


def float_add_scatters(text: str) -> list[str]:
    """The scatters of an HLO module whose combiner adds f32 or f64 values."""
    computations = hlo.parse(text)
    found = []
    for computation in computations.values():
        for instruction in computation.instructions:
            if instruction.opcode != "scatter":
                continue
            combiner = hlo.reachable(computations, _TO_APPLY.findall(instruction.text))
            if any(
                op.opcode == "add" and op.shape.startswith(("f32", "f64"))
                for name in combiner
                for op in computations[name].instructions
            ):
                found.append(instruction.name)
    return found


@pytest.fixture(scope="module")
def clusters():
    x, labels = make_blobs(n_samples=400, n_features=6, centers=7, cluster_std=2.0, random_state=3)
    return x, labels


# k = 60 is above the pruned iterations' one-hot threshold: the CPU profile scatters there.
@pytest.mark.parametrize("algorithm, k", [("lloyd", 7), ("elkan", 60)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_kmeans_under_the_gpu_profile_matches_sklearn(monkeypatch, clusters, algorithm, k, dtype):
    x = clusters[0]
    init = x[np.random.default_rng(k).choice(len(x), k, replace=False)]
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(x))
    ref = SKMeans(k, init=init, n_init=1, algorithm="lloyd").fit(x, sample_weight=w)
    monkeypatch.setenv(ENV_VAR, "gpu")
    programs = [_lloyd.fit_in_memory_program(k, sums) for sums in (False, True)]
    traced = [program.experimental_get_tracing_count() for program in programs]
    km = KMeans(k, init=init, n_init=1, algorithm=algorithm, dtype=dtype)
    km.fit(x, sample_weight=w)
    np.testing.assert_array_equal(km.labels_, ref.labels_)
    assert km.n_iter_ == ref.n_iter_
    rtol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(km.inertia_, ref.inertia_, rtol=rtol)
    np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_, rtol=rtol, atol=rtol)
    # The choice is part of the compiled programs' keys (the CPU profile's is not reused).
    now = [program.experimental_get_tracing_count() for program in programs]
    assert now == [traced[0], traced[1] + (algorithm == "elkan")]


def test_kmeans_restarts_match_the_cpu_profile(monkeypatch, clusters):
    fits = {}
    for kind in ("cpu", "gpu"):
        monkeypatch.setenv(ENV_VAR, kind)
        fits[kind] = KMeans(7, n_init=3, random_state=0, algorithm="lloyd").fit(clusters[0])
    np.testing.assert_array_equal(fits["gpu"].labels_, fits["cpu"].labels_)
    assert fits["gpu"].inertia_ == pytest.approx(fits["cpu"].inertia_, rel=1e-6)


@pytest.fixture(scope="module")
def graph(clusters):
    x = tf.constant(clusters[0][:300])
    k = affinities.n_neighbors_for_perplexity(300, 10.0)
    neighbors, sq_distances = affinities.nearest_neighbors(x, k)
    p_cond = affinities.binary_search_perplexity(sq_distances, 10.0)
    return gradients.FFTObjective.operands(neighbors, p_cond)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_tsne_objective_matches_the_float_sums(graph, dtype):
    p, charge = graph
    p = p._replace(weights=tf.cast(p.weights, dtype), entropy=tf.cast(p.entropy, dtype))
    operands = (p, tf.cast(charge, dtype))
    y = tf.constant(np.random.default_rng(0).normal(scale=10.0, size=(300, 2)), dtype)
    results = []
    for deterministic_sums in (False, True):
        objective = gradients.FFTObjective(n_boxes=20, deterministic_sums=deterministic_sums)
        results.append(objective.gradient_and_kl(y, tf.constant(12.0, dtype), *operands))
    (grad, kl), (det_grad, det_kl) = results
    tol = 2e-6 if dtype == tf.float32 else 1e-13
    assert np.abs(det_grad - grad).max() <= tol * np.abs(grad).max()
    assert float(det_kl) == pytest.approx(float(kl), rel=tol)


def test_tsne_fit_under_the_gpu_profile(monkeypatch, clusters):
    x, labels = clusters[0][:200], clusters[1][:200]
    fits = {}
    for kind in ("cpu", "gpu"):
        monkeypatch.setenv(ENV_VAR, kind)
        tsne = TSNE(perplexity=10, max_iter=300, random_state=0, min_num_intervals=40)
        fits[kind] = (tsne.fit_transform(x), tsne.kl_divergence_)
    (cpu, cpu_kl), (gpu, gpu_kl) = fits["cpu"], fits["gpu"]
    assert np.isfinite(gpu).all()
    assert gpu_kl == pytest.approx(cpu_kl, rel=0.03)
    for embedding in (cpu, gpu):  # the clusters come apart the same way
        d2 = np.square(embedding[:, None] - embedding[None]).sum(-1) + np.diag([np.inf] * 200)
        assert np.mean(labels[d2.argmin(1)] == labels) >= 0.97


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_fixed_point_spreading_agrees_with_the_float_sums(dtype):
    """60,000 points on a grid of 160 x 160 nodes (16 taps each): the fixed-point grid is
    within float32 rounding of the exact sums, as the float scatter-add is."""
    y = tf.constant(np.random.default_rng(0).normal(scale=15.0, size=(60_000, 2)), dtype)
    _, nodes, w = fft._stencil(y, tf.constant([-80.0, -80.0], dtype), 1.0, 160, 4)
    nodes, w = tf.reshape(nodes, [-1]), tf.reshape(w, [-1])
    exact = tf.math.unsorted_segment_sum(tf.cast(w, tf.float64), nodes, 160 * 160).numpy()
    floats = tf.math.unsorted_segment_sum(w, nodes, 160 * 160).numpy()
    fixed = fft.fixed_point_segment_sum(w, nodes, 160 * 160).numpy()
    scale = np.abs(exact).max()
    float_error = np.abs(floats - exact).max() / scale
    fixed_error = np.abs(fixed - exact).max() / scale
    eps = np.finfo(dtype.as_numpy_dtype).eps
    assert float_error < 64 * eps
    assert fixed_error < (64 * eps if dtype == tf.float32 else 1e-11)


def test_fixed_point_sums_of_extreme_values():
    sums = fft.fixed_point_segment_sum
    # Huge values: no int64 overflow, and sums beyond the float range are inf, as in floats.
    big = tf.constant([1e38, -1e38, 2e38, 3e38, 3e38], tf.float32)
    got = sums(big, tf.constant([0, 0, 0, 1, 1]), 2).numpy()
    assert got[0] == np.float32(2e38) and got[1] == np.inf
    got = sums(tf.constant([1e308, 5e307], tf.float64), tf.constant([0, 0]), 1).numpy()
    np.testing.assert_allclose(got, [1.5e308], rtol=1e-15)
    # Zeros, a single value, and values far below the largest one.
    for dtype in (tf.float32, tf.float64):
        zeros = sums(tf.zeros((4, 2), dtype), tf.constant([0, 1, 1, 0]), 3).numpy()
        np.testing.assert_array_equal(zeros, np.zeros((3, 2)))
        one = sums(tf.constant([-1.5e-30], dtype), tf.constant([1]), 2).numpy()
        np.testing.assert_array_equal(one, np.array([0, -1.5e-30], dtype.as_numpy_dtype))
        mixed = sums(tf.constant([1e6, 1.0, 1e-3], dtype), tf.constant([0, 1, 1]), 2).numpy()
        np.testing.assert_allclose(mixed, [1e6, 1.001], rtol=1e-7)


def test_fft_repulsion_of_degenerate_embeddings():
    settings = dict(n_boxes=10, deterministic_sums=True)
    rep, z = fft.fft_repulsion(tf.constant([[3.0, -1.0]]), **settings)  # a single point
    np.testing.assert_allclose(rep.numpy(), 0.0, atol=1e-6)
    assert abs(float(z)) < 1e-5
    rep, z = fft.fft_repulsion(tf.zeros((8, 2)), **settings)  # all points coincide
    assert np.isfinite(rep.numpy()).all()
    assert float(z) == pytest.approx(8 * 7, rel=1e-3)
    far = tf.constant([[0.0, 0.0], [1e6, -1e6], [-1e6, 2e6]] + [[0.0, 0.0]] * 5, tf.float32)
    charge = tf.constant([1.0] * 3 + [0.0] * 5)
    rep, z = fft.fft_repulsion(far, charge, **settings)  # huge extent, padding rows
    assert np.isfinite(rep.numpy()).all() and np.isfinite(float(z))
    np.testing.assert_array_equal(rep.numpy()[3:], 0.0)


def _kmeans_programs(deterministic_sums: bool, k: int = 50):
    """HLO of the pruned fit, the plain Lloyd chunk and its relocating step, a mini-batch chunk
    and a streaming batch's sums (k = 50: above the pruned iterations' one-hot threshold)."""
    n, d, r, tile = 320, 4, 2, 64
    x = tf.constant(np.random.default_rng(0).normal(size=(n, d)), tf.float32)
    args = (x, tf.ones((n,)), tf.constant(n), None, tf.constant([0, 1]), tf.constant(1e-4))
    settings = dict(n_clusters=k, n_restarts=r, init="k-means++", tile=tile, init_tile=tile)
    pruned = program_hlo(
        _lloyd.fit_in_memory_program(k, deterministic_sums),
        *args,
        tf.constant(20),
        **settings,
        n_local_trials=2,
        chunk=tile,
        deterministic_sums=deterministic_sums,
    )
    xb = tf.reshape(x, [n // tile, tile, d])
    valid = tf.ones(xb.shape[:2], tf.bool)
    state = _lloyd.LloydState.start(tf.zeros((r, k, d)), valid)
    tiles = (xb, valid, tf.ones(xb.shape[:2]), tf.ones(xb.shape[:2]), state, 0.1, 20)
    if deterministic_sums:
        chunk, step = _lloyd.lloyd_chunk_deterministic, _lloyd.lloyd_relocating_step_deterministic
    else:
        chunk, step = _lloyd.lloyd_chunk, _lloyd.lloyd_relocating_step
    state = _minibatch.FitState.start(x[:k])
    scalars = (tf.constant(100), tf.constant(1e-4), tf.constant(10), tf.constant(0.01))
    minibatch = program_hlo(
        _minibatch.fit_chunk,
        *(x, tf.ones((n,)), tf.constant(n), tf.constant([0, 1]), state, *scalars),
        batch_size=tile,
        length=2,
        deterministic_sums=deterministic_sums,
    )
    centers = tf.zeros((r, k, d))
    streaming = program_hlo(
        _streaming._step_sums, x, tf.zeros((d,)), centers, centers, deterministic_sums
    )
    return {
        "pruned": pruned,
        "chunk": program_hlo(chunk, *tiles, length=2),
        "relocating step": program_hlo(step, *tiles),
        "minibatch chunk": minibatch,
        "streaming batch": streaming,
    }


def _tsne_chunk(deterministic_sums: bool):
    n, k = 256, 16
    objective = gradients.FFTObjective(
        n_interpolation_points=2, stencil_size=4, n_boxes=24, deterministic_sums=deterministic_sums
    )
    operands = zero_fft_operands(n, k)
    run = optimize._chunk_program(objective, 3, "deterministic sums test")
    y = tf.zeros((n, 2))
    scalars = [tf.constant(v) for v in (0.8, 200.0, 1.0)]
    return program_hlo(run, y, y, tf.ones_like(y), tf.constant(3), *scalars, operands)


def _ann_lists(deterministic_sums: bool):
    """The approximate search's K-means lists (``_ann._kmeans``): 8 lists, 64 sample rows."""
    x = tf.constant(np.random.default_rng(0).normal(size=(200, 4)), tf.float32)
    program = specialised(_ann._kmeans, "deterministic sums test")
    return program_hlo(program, x, x[:64], (8, 64, 200), deterministic_sums)


def _placement(deterministic_sums: bool):
    """``TSNE.transform``'s descent, with its reference grid (``placement._place``)."""
    n, m, k = 32, 64, 5
    y0, reference = tf.zeros((n, 2)), tf.zeros((m, 2))
    operands = (y0, tf.zeros((n, k, 2)), tf.fill((n, k), 1.0 / k), reference, tf.ones((m,)))
    scalars = [tf.constant(v) for v in (0.1, 1.5, 0.8, 0.25)]
    static = dict(n_boxes=10, n_interpolation_points=3, stencil_size=3, dof=1.0)
    program = specialised(placement._place, "deterministic sums test")
    return program_hlo(
        program, *operands, *scalars, n_iter=2, deterministic_sums=deterministic_sums, **static
    )


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_hot_programs_have_no_float_scatter_add_on_accelerators(kind):
    deterministic_sums = PROFILES[kind].deterministic_sums
    programs = _kmeans_programs(deterministic_sums)
    programs["tsne fft chunk"] = _tsne_chunk(deterministic_sums)
    programs["ann lists"] = _ann_lists(deterministic_sums)
    programs["tsne transform"] = _placement(deterministic_sums)
    found = {name: float_add_scatters(text) for name, text in programs.items()}
    if deterministic_sums:
        assert found == {name: [] for name in programs}
        # The t-SNE sums are still scatters, of int64 fixed-point values.
        assert re.search(r"s64\[[\d,]*\]\{?[\d,]*\}? scatter\(", programs["tsne fft chunk"])
    else:  # negative control: the CPU profile keeps its (faster there) float scatter-adds
        assert all(found.values()), found
    assert PROFILES["tpu"].deterministic_sums == PROFILES["gpu"].deterministic_sums


def test_streaming_fit_under_the_gpu_profile(monkeypatch, clusters):
    x = clusters[0]
    init = x[np.random.default_rng(2).choice(len(x), 7, replace=False)]
    ref = KMeans(7, init=init, dtype="float64").fit(x)
    monkeypatch.setenv(ENV_VAR, "gpu")
    ours = KMeans(7, init=init, dtype="float64").fit(
        tf.data.Dataset.from_tensor_slices(x).batch(96)
    )
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-10)
    assert ours.n_iter_ == ref.n_iter_


def test_reference_grid_in_fixed_point_does_not_depend_on_the_order():
    """transform's reference grid: in fixed point the same bits whatever the order of the
    reference rows, within float32 rounding of the float sums, which depend on the order."""
    rng = np.random.default_rng(0)
    y = rng.normal(scale=20.0, size=(5_000, 2)).astype(np.float32)
    order = rng.permutation(len(y))
    settings = dict(n_boxes=30, n_interpolation_points=3, stencil_size=3, padding=0.1)

    def fields(rows, deterministic_sums):
        grid = fft.reference_grid(
            tf.constant(rows), tf.ones(len(rows)), deterministic_sums=deterministic_sums, **settings
        )
        return grid.fields.numpy()

    fixed, floats = fields(y, True), fields(y, False)
    np.testing.assert_array_equal(fields(y[order], True), fixed)
    assert not np.array_equal(fields(y[order], False), floats)  # the control
    scale = np.abs(floats).max(axis=0)
    assert (np.abs(fixed - floats).max(axis=0) <= 1e-5 * scale).all()


def test_approximate_neighbours_under_the_gpu_profile(monkeypatch, clusters):
    x = clusters[0].astype(np.float32)
    found = {}
    for kind in ("cpu", "gpu"):
        monkeypatch.setenv(ENV_VAR, kind)
        found[kind] = _ann.approximate_nearest_neighbors(x, 10, n_lists=7, n_probe=2)
    np.testing.assert_array_equal(found["gpu"][0], found["cpu"][0])
    np.testing.assert_allclose(found["gpu"][1], found["cpu"][1], rtol=1e-6)
