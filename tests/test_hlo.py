"""The hot programs run on an accelerator without host round trips inside their iterations.

XLA:GPU copies a loop's predicate to the host on every trip unless it knows the trip count,
and a ``conditional`` inside an iteration waits for its predicate too (docs/accelerators.md).
Each test compiles a hot program at small sizes, reads its optimized HLO and fails on a loop
whose trip count is decided at run time or a branch inside an iteration
(``benchmarks/hlo.py``).
"""

import importlib.util
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from tsne_operands import zero_fft_operands

from tfclust._compile import specialised
from tfclust._device import PROFILES
from tfclust.kmeans import _lloyd
from tfclust.tsne import gradients, optimize

_spec = importlib.util.spec_from_file_location(
    "_tfclust_bench_hlo", pathlib.Path(__file__).parents[1] / "benchmarks" / "hlo.py"
)
hlo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hlo)


def optimized_hlo(program, *args, **kwargs):
    return program.experimental_get_compiler_ir(*args, **kwargs)(stage="optimized_hlo")


def test_the_check_finds_run_time_loops_and_branches():
    @tf.function(jit_compile=True)
    def dynamic(x, n):
        def body(i, x):
            # Branches with real work (a matmul), which XLA keeps as a conditional.
            heavy = lambda: tf.matmul(x, x, transpose_b=True)[:, :3]  # noqa: E731
            return i + 1, tf.cond(tf.reduce_sum(x) > 0, heavy, lambda: tf.sin(x))

        return tf.while_loop(lambda i, x: i < n, body, (tf.constant(0), x))[1]

    @tf.function(jit_compile=True)
    def static(x):
        body = lambda i, x: (i + 1, tf.where(tf.reduce_sum(x) > 0, x * 0.5, x + 1.0))  # noqa: E731
        return tf.while_loop(lambda i, x: i < 7, body, (tf.constant(0), x))[1]

    x = tf.ones((4, 3))
    problems = hlo.dynamic_control_flow(optimized_hlo(dynamic, x, tf.constant(5)))
    assert any("trip count decided at run time" in p for p in problems), problems
    assert any(p.startswith("conditional") for p in problems), problems
    text = optimized_hlo(static, x)
    assert hlo.dynamic_control_flow(text) == []
    assert [hlo.trip_count(w) for _, w in hlo.loops(hlo.parse(text))] == [7]


def _chunk_args(n, operands):
    y = tf.zeros((n, 2))
    scalars = [tf.constant(v) for v in (0.8, 200.0, 1.0)]
    return (y, y, tf.ones_like(y), tf.constant(30), *scalars, operands)


@pytest.mark.parametrize("length", [optimize.N_ITER_CHECK, 10])
def test_tsne_fft_chunk_is_static(length):
    n, k = 256, 16
    objective = gradients.FFTObjective(n_interpolation_points=2, stencil_size=4, n_boxes=24)
    operands = zero_fft_operands(n, k)
    run = optimize._chunk_program(objective, length, "hlo test")
    text = optimized_hlo(run, *_chunk_args(n, operands))
    assert hlo.dynamic_control_flow(text) == []
    trips = [hlo.trip_count(w) for _, w in hlo.loops(hlo.parse(text))]
    assert length - 1 in trips


def test_tsne_exact_chunk_is_static():
    n = 96
    objective = gradients.ExactObjective.for_problem(n, 2, tf.float32)
    run = optimize._chunk_program(objective, optimize.N_ITER_CHECK, "hlo test")
    text = optimized_hlo(run, *_chunk_args(n, (tf.fill((n, n), 1.0 / n**2),)))
    assert hlo.dynamic_control_flow(text) == []


def _lloyd_args(n=300, d=4, k=5, restarts=3, tile=64):
    x = tf.constant(np.random.default_rng(0).normal(size=(n, d)), tf.float32)
    settings = dict(n_clusters=k, n_restarts=restarts, init="k-means++", tile=tile, init_tile=tile)
    start = specialised(_lloyd._start_plain, "hlo test")
    args = (x, tf.ones((n,)), tf.constant(n), None, tf.constant([0, 1]), tf.constant(1e-4))
    return start, args, dict(settings, n_local_trials=3)


CHUNK = PROFILES["gpu"].kmeans_chunk_iterations


def test_kmeans_plain_lloyd_programs_are_static():
    start, args, settings = _lloyd_args()
    assert hlo.dynamic_control_flow(optimized_hlo(start, *args, **settings)) == []
    data = start(*args, **settings)
    state = _lloyd.LloydState.start(data.centers, data.valid)
    tiles = (data.xb, data.valid, data.wb, data.xsq, state, data.tol, tf.constant(300))
    chunk = optimized_hlo(_lloyd.lloyd_chunk, *tiles, length=CHUNK)
    assert hlo.dynamic_control_flow(chunk) == []
    trips = [hlo.trip_count(w) for _, w in hlo.loops(hlo.parse(chunk))]
    assert CHUNK in trips
    step = optimized_hlo(_lloyd.lloyd_relocating_step, *tiles)
    assert hlo.dynamic_control_flow(step) == []


def test_gpu_cost_model_prices_selection_as_a_gpu_selects():
    """docs/accelerators.md's GPU estimate: a top-k with k <= 16 reads its rows once, a larger
    k sorts keys and indices in ``sort_passes`` passes (bitonic, tiles in shared memory)."""
    assert [hlo.sort_passes(n) for n in (16, 2048, 4096, 65536)] == [1, 1, 3, 21]
    x = tf.zeros((64, 4096))
    keys = 64 * 4096 * 4

    def moved(k):
        program = tf.function(lambda v: tf.math.top_k(v, k), jit_compile=True)
        return hlo.module_stats(optimized_hlo(program, x))["bytes"]

    assert moved(8) < 2 * keys
    assert moved(40) >= 2 * hlo.sort_passes(4096) * 2 * keys
