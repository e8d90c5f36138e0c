"""Approximate nearest neighbours (tfclust._ann), t-SNE's ``neighbors`` parameter, and the static
trip counts of the search and of the perplexity bisection."""

import importlib.util
import pathlib
import types

import numpy as np
import pytest
import tensorflow as tf

from tfclust import TSNE, _ann
from tfclust._compile import specialised
from tfclust._neighbors import nearest_neighbors
from tfclust.tsne import affinities, estimator

_spec = importlib.util.spec_from_file_location(
    "_tfclust_bench_hlo", pathlib.Path(__file__).parents[1] / "benchmarks" / "hlo.py"
)
hlo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hlo)


def blobs(n=3000, d=16, centres=20, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, d)) * 4.0
    return (c[rng.integers(0, centres, n)] + rng.normal(size=(n, d))).astype(dtype)


def recall(found, exact):
    k = exact.shape[1]
    return np.mean([len(np.intersect1d(a, b)) for a, b in zip(found, exact, strict=True)]) / k


def assert_exact_up_to_rounding(x, found, exact, rtol=1e-5):
    """``found`` holds the same neighbours as ``exact`` but where float32 keys round a near-tie
    at the k-th distance differently: there the neighbours only one side has lie at the k-th
    distance (in float64) to ``rtol``."""
    x = np.asarray(x, np.float64)
    for row in np.flatnonzero((np.sort(found, 1) != np.sort(exact, 1)).any(1)):
        d2 = np.square(x[row] - x).sum(1)
        only_one_side = np.setxor1d(found[row], exact[row])
        np.testing.assert_allclose(d2[only_one_side], d2[exact[row]].max(), rtol=rtol)


@pytest.fixture(scope="module")
def data():
    x = tf.constant(blobs())
    idx, d2 = nearest_neighbors(x, 30)
    return x, idx.numpy(), d2.numpy()


def test_recall_with_the_defaults(data):
    x, exact, _ = data
    idx, d2 = _ann.approximate_nearest_neighbors(x, 30)
    assert idx.shape == (3000, 30) and idx.dtype == tf.int32 and d2.dtype == tf.float32
    assert recall(idx.numpy(), exact) >= 0.98
    assert np.all(np.diff(d2.numpy(), axis=1) >= -1e-2)  # nearest first (float32 keys)


def test_probing_every_list_is_the_exact_search(data):
    x, exact, exact_d2 = data
    n_lists = _ann.default_n_lists(3000, 30)
    idx, d2 = _ann.approximate_nearest_neighbors(x, 30, n_probe=n_lists)
    assert recall(idx.numpy(), exact) >= 0.9999
    assert_exact_up_to_rounding(x, idx.numpy(), exact)
    np.testing.assert_allclose(d2.numpy(), exact_d2, rtol=1e-5, atol=1e-5)


def test_one_probe_misses_neighbours(data):
    """The knob works: probing one list's worth of rows loses neighbours on the list edges."""
    x, exact, _ = data
    idx, _ = _ann.approximate_nearest_neighbors(x, 30, n_lists=40, n_probe=1)
    assert recall(idx.numpy(), exact) < 0.95


def test_lists_larger_than_a_job_are_split():
    """A budget that fits a few query rows per job splits every list; the result is unchanged."""
    x = blobs(n=500, d=4, centres=3, dtype=np.float64)
    exact, exact_d2 = nearest_neighbors(tf.constant(x), 7)
    small_budget = 8 * 3 * 500 * 16  # 16 query rows of 500 float64 candidates
    idx, d2 = _ann.approximate_nearest_neighbors(
        x, 7, n_lists=5, n_probe=5, memory_budget=small_budget
    )
    assert d2.dtype == tf.float64
    np.testing.assert_array_equal(idx.numpy(), exact.numpy())
    np.testing.assert_allclose(d2.numpy(), exact_d2.numpy(), rtol=1e-12)


def test_jobs_cover_every_row_once():
    counts = np.array([5, 0, 17, 3])
    offsets = np.cumsum(counts) - counts
    jobs = _ann._jobs(counts, offsets, 6)
    assert jobs[:, 1].max() <= 6 and jobs[:, 1].min() >= 1
    rows = np.concatenate([np.arange(s, s + n) for s, n, _ in jobs])
    np.testing.assert_array_equal(rows, np.arange(counts.sum()))
    for start, length, listed in jobs:
        assert offsets[listed] <= start and start + length <= offsets[listed] + counts[listed]
    assert _ann._query_capacity(np.array([100, 100, 100]), 512) == 128  # not 512: less padding


def test_probes_hold_enough_rows():
    centres = np.arange(6, dtype=float)[:, None]
    counts = np.array([1, 1, 1, 30, 1, 1])
    probes = _ann._probes(centres, counts, 1, 4)
    held = np.append(counts, 0)[probes].sum(axis=1)
    assert np.all(held >= 5)
    np.testing.assert_array_equal(probes[:, 0], np.arange(6))  # each list probes itself first
    assert probes[3].tolist() == [3] + [6] * (probes.shape[1] - 1)  # 30 rows: itself only


def test_cosine_against_the_exact_search():
    x = tf.constant(blobs(n=400, d=8, centres=4))
    exact, exact_d2 = nearest_neighbors(x, 10, metric="cosine")
    idx, d2 = _ann.approximate_nearest_neighbors(x, 10, n_lists=8, n_probe=8, metric="cosine")
    assert recall(idx.numpy(), exact.numpy()) == 1.0
    np.testing.assert_allclose(d2.numpy(), exact_d2.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(k=0), "k must be in"),
        (dict(k=100), "k must be in"),
        (dict(k=5, metric="manhattan"), "metrics"),
        (dict(k=5, n_lists=0), "n_lists"),
        (dict(k=5, n_probe=0), "n_probe"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _ann.approximate_nearest_neighbors(np.zeros((100, 3), np.float32), **kwargs)


def test_search_has_a_static_trip_count():
    x = tf.constant(blobs(n=300, d=4, centres=3))
    program, args = _ann.search_program(x, 5, 6, 3, "euclidean", 0, 2**20)
    text = program.experimental_get_compiler_ir(*args)(stage="optimized_hlo")
    assert hlo.dynamic_control_flow(text) == []
    trips = [hlo.trip_count(w) for _, w in hlo.loops(hlo.parse(text))]
    assert len(args[6]) in trips  # one trip per job


def test_list_kmeans_has_a_static_trip_count():
    x = tf.constant(blobs(n=300, d=4, centres=3))
    tiles = (6, 64, 128)
    program = specialised(_ann._kmeans, "hlo test")
    text = program.experimental_get_compiler_ir(x, x[:100], tiles, False)(stage="optimized_hlo")
    assert hlo.dynamic_control_flow(text) == []
    assert _ann._KMEANS_ITERATIONS in [hlo.trip_count(w) for _, w in hlo.loops(hlo.parse(text))]


def test_perplexity_bisection_has_a_static_trip_count():
    program = specialised(affinities.calibrated_conditionals, "hlo test", 64, 12)
    d2 = tf.random.stateless_uniform((64, 12), (0, 1))
    text = program.experimental_get_compiler_ir(d2, tf.constant(5.0), None)(stage="optimized_hlo")
    assert hlo.dynamic_control_flow(text) == []
    assert affinities._N_STEPS in [hlo.trip_count(w) for _, w in hlo.loops(hlo.parse(text))]


def test_tsne_neighbors_approx_runs_end_to_end():
    x = blobs(n=800, d=10, centres=5)
    params = dict(perplexity=10.0, max_iter=300, random_state=0)
    exact = TSNE(neighbors="exact", **params).fit(x)
    approx = TSNE(neighbors="approx", **params).fit(x)
    assert approx.embedding_.shape == (800, 2)
    assert recall(approx.neighbors_, exact.neighbors_) >= 0.98
    assert abs(approx.kl_divergence_ - exact.kl_divergence_) <= 0.05 * exact.kl_divergence_


def test_tsne_auto_is_approximate_from_the_threshold():
    def choice(n, neighbors="auto", metric="euclidean"):
        return estimator.TSNE._approximate(
            types.SimpleNamespace(neighbors=neighbors, metric=metric), n
        )

    start = estimator.APPROX_NEIGHBORS_FROM
    assert not choice(start - 1) and choice(start)
    assert not choice(start, metric="manhattan")
    assert choice(10, "approx") and not choice(10**6, "exact")


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(neighbors="annoy"), "neighbors must be one of"),
        (dict(neighbors=None), "neighbors must be one of"),
        (dict(neighbors="approx", metric="manhattan"), "neighbors='approx' supports"),
    ],
)
def test_tsne_bad_neighbors(params, message):
    with pytest.raises(ValueError, match=message):
        TSNE(**params).fit(blobs(n=50, d=3, centres=2))


def test_tsne_exact_method_ignores_neighbors():
    x = blobs(n=40, d=3, centres=2)
    tsne = TSNE(method="exact", neighbors="approx", metric="manhattan", perplexity=5.0)
    assert tsne.fit(x).neighbors_ is None
