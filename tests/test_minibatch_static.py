"""MiniBatchKMeans' compiled steps run in fixed-length chunks with no branch inside a step.

The chunk programs have static trip counts and no conditional inside a loop (read from XLA's
optimized HLO with ``benchmarks/hlo.py``, as tests/test_hlo.py); fits that stop inside a chunk
run exactly the steps, and give exactly the results, of the earlier single-loop program
(recorded from it on fixed data) and the step counts of scikit-learn; bad input still raises.
"""

import importlib.util
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from sklearn.cluster import MiniBatchKMeans as SKMiniBatchKMeans
from sklearn.datasets import make_blobs

from tfclust.kmeans import MiniBatchKMeans, _minibatch

_spec = importlib.util.spec_from_file_location(
    "_tfclust_bench_hlo", pathlib.Path(__file__).parents[1] / "benchmarks" / "hlo.py"
)
hlo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hlo)

CHUNK = _minibatch.CHUNK_STEPS


def optimized_hlo(program, *args, **kwargs):
    return program.experimental_get_compiler_ir(*args, **kwargs)(stage="optimized_hlo")


@pytest.mark.parametrize(
    "k,batch_size,deterministic_sums",
    [(4, 32, False), (8, 10, True)],  # batches of 10 re-seed at most 5 of 8 centres
)
def test_chunk_program_is_static(k, batch_size, deterministic_sums):
    n, d = 64, 3
    x = tf.constant(np.random.default_rng(0).normal(size=(n, d)), tf.float32)
    state = _minibatch.FitState.start(x[:k])
    scalars = (tf.constant(100), tf.constant(1e-4), tf.constant(10), tf.constant(0.01))
    args = (x, tf.ones((n,)), tf.constant(n), tf.constant([0, 1]), state, *scalars)
    kwargs = dict(batch_size=batch_size, deterministic_sums=deterministic_sums)
    text = optimized_hlo(_minibatch.fit_chunk, *args, length=CHUNK, **kwargs)
    assert hlo.dynamic_control_flow(text) == []
    assert CHUNK in [hlo.trip_count(w) for _, w in hlo.loops(hlo.parse(text))]
    step = optimized_hlo(
        _minibatch.partial_fit_step,
        x[:batch_size],
        tf.ones((batch_size,)),
        x[:k],
        tf.ones((k,)),
        tf.constant(True),
        tf.constant(0.01),
        tf.constant([0, 1]),
        deterministic_sums=deterministic_sums,
    )
    assert hlo.dynamic_control_flow(step) == []
    assert "conditional(" not in step


@pytest.fixture(scope="module")
def data():
    x, _ = make_blobs(n_samples=500, n_features=2, centers=4, cluster_std=1.5, random_state=7)
    w = np.random.default_rng(1).uniform(0.2, 2.0, size=500)
    return x, w


# Far centre: wins no row, so it is re-seeded on a batch row at the first step.
FAR = np.array([[0.0, 0.0], [1.0, 1.0], [-1.0, 2.0], [300.0, 300.0]])

# The rows of ``data`` that the single-loop program's k-means++ seeding chose: the cases start
# from them, as the seeding's random stream changed after the recording (the steps' did not).
SEEDED = [362, 421, 153, 220]

CASES = {
    "max_iter": dict(batch_size=45, max_iter=2, max_no_improvement=None, init=SEEDED),
    "no_improvement": dict(batch_size=45, max_iter=50, max_no_improvement=3, init=SEEDED),
    "tol": dict(batch_size=45, max_iter=50, tol=1e-3, max_no_improvement=None, init=SEEDED),
    "reassign": dict(
        batch_size=30, max_iter=5, max_no_improvement=None, reassignment_ratio=0.3, init="far"
    ),
    "no_labels": dict(batch_size=45, compute_labels=False, init=SEEDED),
    "weights": dict(
        batch_size=45, max_iter=3, max_no_improvement=5, sample_weight=True, init=[30, 421, 99, 334]
    ),
    "zero_patience": dict(batch_size=45, max_no_improvement=0, init=SEEDED),
    "float32": dict(
        batch_size=64, dtype="float32", max_no_improvement=4, init=[420, 159, 226, 303]
    ),
}

# n_steps_, n_iter_, inertia_, cluster_centers_ of MiniBatchKMeans(4, random_state=3, **case)
# (float64 unless said) fitted on ``data`` by the single-loop program before the chunks.
RECORDED = {
    "max_iter": (
        22,
        2,
        2066.766824929841,
        [
            [-1.323791905106, 4.235234357786],
            [9.631754971849, 0.492153636942],
            [0.013326651325, -8.432248672604],
            [-8.501236133874, 5.567555077238],
        ],
    ),
    "no_improvement": (
        25,
        3,
        2067.7797672208962,
        [
            [-1.348525704299, 4.210495920318],
            [9.686539918649, 0.497359928887],
            [0.014830413287, -8.439033962317],
            [-8.563921885883, 5.572507327479],
        ],
    ),
    "tol": (
        7,
        1,
        2067.8547254544346,
        [
            [-1.200752161316, 4.253066267596],
            [9.533186839649, 0.565583711665],
            [0.046805130871, -8.349517566852],
            [-8.539175510945, 5.473375267493],
        ],
    ),
    "reassign": (
        83,
        5,
        2095.8600197855258,
        [
            [0.059268655334, -8.422009080109],
            [9.672877619283, 0.466703305711],
            [-1.700848425, 4.214447840882],
            [-8.656901048101, 5.565388310402],
        ],
    ),
    "no_labels": (
        32,
        3,
        2062.57430152742,
        [
            [-1.345651233832, 4.176582426259],
            [9.682628530781, 0.474935298127],
            [0.011935185385, -8.464805044968],
            [-8.588522167629, 5.572801489034],
        ],
    ),
    "weights": (
        23,
        3,
        2279.371918198607,
        [
            [-8.571979611553, 5.486380258126],
            [9.578896868341, 0.547230228243],
            [-0.008619486229, -8.400410793913],
            [-1.202858565619, 4.152875193889],
        ],
    ),
    "zero_patience": (
        2,
        1,
        2115.9645678523284,
        [
            [-1.387272477166, 4.470015773726],
            [9.218141674407, 0.29777748839],
            [-0.092309597089, -8.320056763896],
            [-8.525956347834, 5.460715094947],
        ],
    ),
    "float32": (
        26,
        4,
        2064.2626953125,
        [
            [-8.441070556641, 5.596091270447],
            [9.726822853088, 0.534995675087],
            [0.115280330181, -8.41098690033],
            [-1.212275624275, 4.176076412201],
        ],
    ),
}
# The same for five partial_fit calls on the fifths of ``data`` from FAR, reassignment_ratio 0.3.
RECORDED_PARTIAL = (
    5,
    676.9600991895912,
    [
        [0.132629066182, -8.313825940235],
        [9.062983793111, 0.484545930709],
        [-4.508810355731, 4.825419640559],
        [-10.29151044288, 6.200290474368],
    ],
)


def _fit(data, params):
    x, w = data
    params = dict(params)
    sample_weight = w if params.pop("sample_weight", False) else None
    if params.get("init") == "far":
        params["init"] = FAR + x.mean(axis=0)
    elif isinstance(params.get("init"), list):
        params["init"] = x[params["init"]]
    params.setdefault("dtype", "float64")
    return MiniBatchKMeans(4, random_state=3, **params).fit(x, sample_weight=sample_weight)


@pytest.mark.parametrize("case", sorted(CASES))
def test_fit_matches_the_single_loop_program(data, case):
    m = _fit(data, CASES[case])
    n_steps, n_iter, inertia, centers = RECORDED[case]
    rtol, atol = (1e-5, 1e-4) if case == "float32" else (1e-9, 1e-9)
    assert (m.n_steps_, m.n_iter_) == (n_steps, n_iter)
    np.testing.assert_allclose(m.inertia_, inertia, rtol=rtol)
    np.testing.assert_allclose(m.cluster_centers_, centers, rtol=rtol, atol=atol)


def test_the_cases_stop_inside_a_chunk():
    # The recorded fits stop inside a chunk (all but one) and run over several chunks.
    stops = [n_steps for n_steps, *_ in RECORDED.values()]
    assert sum(s % CHUNK != 0 for s in stops) >= 6
    assert min(stops) < CHUNK < max(stops)


def test_partial_fit_matches_the_single_loop_program(data):
    x, _ = data
    m = MiniBatchKMeans(4, random_state=3, init=FAR + x.mean(axis=0), reassignment_ratio=0.3)
    m.set_params(dtype="float64")
    for batch in np.array_split(x, 5):
        m.partial_fit(batch)
    n_steps, inertia, centers = RECORDED_PARTIAL
    assert m.n_steps_ == n_steps
    np.testing.assert_allclose(m.inertia_, inertia, rtol=1e-9)
    np.testing.assert_allclose(m.cluster_centers_, centers, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    "params,n_steps",
    [
        (dict(max_iter=2, max_no_improvement=None), 22),  # 2 * 500 // 45, no early stop
        (dict(max_no_improvement=0), 2),  # the first step only warms up
        (dict(tol=1e6, max_no_improvement=None), 2),
    ],
)
def test_step_counts_match_sklearn(data, params, n_steps, capsys):
    x, _ = data
    ours = MiniBatchKMeans(4, batch_size=45, random_state=3, verbose=1, **params).fit(x)
    ref = SKMiniBatchKMeans(4, batch_size=45, random_state=3, n_init=1, **params).fit(x)
    assert ours.n_steps_ == ref.n_steps_ == n_steps
    assert ours.n_iter_ == ref.n_iter_
    printed = capsys.readouterr().out
    if params.get("max_iter") != 2:
        assert f"at step {n_steps}/" in printed
    else:
        assert "Converged" not in printed


@pytest.mark.parametrize(
    "params,fit_kw,error,match",
    [
        ({}, {"X": [[0.0, np.nan], [1.0, 1.0], [2.0, 0.0]]}, ValueError, "NaN or infinity"),
        ({}, {"sample_weight": [1.0, -1.0, 1.0]}, ValueError, "Negative values"),
        ({}, {"sample_weight": [1.0, np.inf, 1.0]}, ValueError, "NaN or infinity"),
        ({"batch_size": 0}, {}, ValueError, "batch_size"),
        ({"max_iter": 2**31}, {}, ValueError, "max_iter"),
        ({"max_no_improvement": -1}, {}, ValueError, "max_no_improvement"),
        ({"reassignment_ratio": np.nan}, {}, ValueError, "reassignment_ratio"),
        ({"n_clusters": 4}, {}, ValueError, "n_samples=3 should be >= n_clusters=4"),
    ],
)
def test_bad_input_raises(params, fit_kw, error, match):
    fit_kw = {"X": [[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]], **fit_kw}
    params = {"n_clusters": 2, **params}
    with pytest.raises(error, match=match):
        MiniBatchKMeans(**params).fit(**fit_kw)
