"""FFT-interpolated t-SNE repulsion against the exact O(N^2) sums.

Errors are measured as
  force error = ||R_fft - R_exact||_F / ||R_exact||_F   (Frobenius norm over all N x d entries,
                                                         i.e. RMS error / RMS force),
  Z error     = |Z_fft / Z_exact - 1|.
"""

import inspect
import re

import numpy as np
import pytest
import tensorflow as tf

from tfclust.tsne import TSNE
from tfclust.tsne.fft import (
    INTS_IN_INTERVAL,
    MAX_NUM_INTERVALS,
    MIN_NUM_INTERVALS,
    _fixed_grid_repulsion,
    default_nodes,
    fft_repulsion,
    grid_extent,
    grid_intervals,
    interval_ladder,
)
from tfclust.tsne.gradients import FFTObjective

TOL = 1e-3
FIVE_NODES = dict(
    n_interpolation_points=5, min_num_intervals=50, ints_in_interval=1.0, max_num_intervals=200
)
"""The accurate settings TOL is for (the defaults are TSNE's faster ones)."""


def exact_repulsion(y, dof=1.0, z_exponent=None):
    """float64 reference: sum_j (1 + d_ij^2/dof)^-(dof+1) (y_i - y_j) and
    sum_{i != j} (1 + d_ij^2/dof)^-z_exponent (z_exponent defaults to dof)."""
    e = dof if z_exponent is None else z_exponent
    y = np.asarray(y, dtype=np.float64)
    rep = np.zeros_like(y)
    z = 0.0
    for start in range(0, len(y), 500):
        block = y[start : start + 500]
        diff = block[:, None, :] - y[None, :, :]
        base = 1.0 + (diff**2).sum(-1) / dof
        base[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf
        rep[start : start + 500] = ((base ** -(dof + 1.0))[:, :, None] * diff).sum(1)
        z += (base**-e).sum()
    return rep, z


def mixture(n, dim, spread, seed=0):
    """Ten Gaussian clusters in a box of side ``spread``, like a t-SNE embedding mid-run."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-spread / 2, spread / 2, size=(10, dim))
    return centres[rng.integers(0, 10, n)] + rng.normal(scale=spread / 20, size=(n, dim)) + 7.0


def errors(y, dtype=np.float32, dof=1.0, z_exponent=None, **kwargs):
    rep, z = exact_repulsion(y, dof, z_exponent)
    got_rep, got_z = fft_repulsion(
        tf.constant(y.astype(dtype)), dof=dof, z_exponent=z_exponent, **{**FIVE_NODES, **kwargs}
    )
    assert got_rep.dtype == tf.as_dtype(dtype) and got_z.dtype == tf.as_dtype(dtype)
    assert got_rep.shape == y.shape and got_z.shape == ()
    got_rep = got_rep.numpy().astype(np.float64)
    return np.linalg.norm(got_rep - rep) / np.linalg.norm(rep), abs(float(got_z) / z - 1.0)


@pytest.mark.parametrize("dim", [2, 1])
@pytest.mark.parametrize("spread", [25.0, 85.0])
def test_matches_exact_sums(dim, spread):
    y = mixture(2000, dim, spread)
    assert 25 <= np.ptp(y) <= 110
    force_err, z_err = errors(y)
    assert force_err <= TOL and z_err <= TOL, (force_err, z_err)


def test_float64():
    y = mixture(1000, 2, 40.0, seed=1)
    force_err, z_err = errors(y, dtype=np.float64, max_num_intervals=64)
    assert force_err <= TOL and z_err <= TOL, (force_err, z_err)


@pytest.mark.parametrize(
    "dof, z_exponent",
    [(0.6, None), (2.0, None), (2.0, 1.5)],  # openTSNE's kernels; scikit-learn's for dof=2
)
def test_heavy_tailed_kernels(dof, z_exponent):
    y = mixture(1000, 2, 40.0, seed=2)
    force_err, z_err = errors(y, dof=dof, z_exponent=z_exponent, max_num_intervals=64)
    assert force_err <= TOL and z_err <= TOL, (force_err, z_err)


def test_openTSNE_settings_are_coarser_but_sane():
    # openTSNE's defaults (3 nodes per interval) trade accuracy for ~3x less FFT work.
    y = mixture(1000, 2, 40.0, seed=3)
    force_err, z_err = errors(y, n_interpolation_points=3, max_num_intervals=64)
    assert force_err <= 2e-2 and z_err <= 2e-3, (force_err, z_err)


def _descent(n_boxes, settings):
    """Steps of y += 100 R / Z on a static grid, in one compiled while loop."""

    @tf.function(jit_compile=True)
    def descend(y, steps):
        def body(i, y, z):
            rep, z = fft_repulsion(y, n_boxes=n_boxes, **settings)
            return i + 1, y + 100.0 * rep / z, z

        _, y, z = tf.while_loop(
            lambda i, y, z: i < steps, body, (tf.constant(0), y, tf.zeros((), y.dtype))
        )
        return y, z

    return descend


def test_static_grid_inside_a_jit_compiled_while_loop():
    settings = dict(min_num_intervals=20, ints_in_interval=1.0, max_num_intervals=40)
    rng = np.random.default_rng(4)
    base = rng.normal(size=(300, 2))
    for scale, want_boxes in ((2.5, 20), (6.0, 40)):  # extents ~15 and ~36: different rungs
        y0 = base * scale
        n_boxes = grid_intervals(float(np.ptp(y0, axis=0).max()), **settings)
        assert n_boxes == want_boxes

        descend = _descent(n_boxes, dict(settings, n_interpolation_points=5))
        args = (tf.constant(y0, tf.float32), tf.constant(2))
        hlo = descend.experimental_get_compiler_ir(*args)(stage="optimized_hlo")
        assert "conditional(" not in hlo  # the grid is static: no run-time branch
        y1, _ = descend(*args)
        # Replay the same two steps eagerly against the exact sums.
        y_ref = y0.copy()
        for _ in range(2):
            rep, z = exact_repulsion(y_ref)
            y_ref = y_ref + 100.0 * rep / z
        step = np.linalg.norm(y_ref - y0)
        assert np.linalg.norm(y1.numpy() - y_ref) <= 2e-3 * step


def test_grid_is_chosen_from_the_extent_on_the_host():
    settings = dict(min_num_intervals=20, max_num_intervals=40, ladder_growth=1.5)
    settings["ints_in_interval"] = 1.0
    assert interval_ladder(20, 40, 1.5) == (20, 30, 40)
    # Nearest rung in ratio: the boundaries are sqrt(20 * 30) = 24.5 and sqrt(30 * 40) = 34.6.
    assert [grid_intervals(s, **settings) for s in (24.0, 25.0, 34.0, 35.0)] == [20, 30, 30, 40]
    assert grid_intervals(1e-9, **settings) == 20 and grid_intervals(1e9, **settings) == 40
    assert grid_intervals(35.0, **{**settings, "ints_in_interval": 2.0}) == 20
    y = tf.constant([[0.0, 0.0], [30.0, 1.0], [5.0, 5.0]])
    assert float(grid_extent(y)) == 30.0
    assert float(grid_extent(y, tf.constant([1.0, 0.0, 1.0]))) == 5.0  # padding rows do not count
    # Eager calls choose the same grid as an explicit n_boxes.
    auto = fft_repulsion(y, **settings)
    fixed = fft_repulsion(y, n_boxes=30, **settings)
    np.testing.assert_array_equal(auto[0].numpy(), fixed[0].numpy())

    @tf.function
    def traced(y):
        return fft_repulsion(y, **settings)

    with pytest.raises(ValueError, match="static n_boxes"):
        traced(y)


def test_degenerate_inputs_are_finite():
    small = dict(FIVE_NODES, max_num_intervals=50)
    # All points identical, and nearly identical: every pair has w = 1.
    for jitter in (0.0, 1e-6):
        y = 3.0 + jitter * np.random.default_rng(5).normal(size=(64, 2))
        rep, z = fft_repulsion(tf.constant(y, tf.float32), **small)
        assert np.all(np.isfinite(rep.numpy())) and np.isfinite(float(z))
        assert np.max(np.abs(rep.numpy())) < 1e-3
        assert float(z) == pytest.approx(64 * 63, rel=1e-3)
    # Two points, near and far apart. float32 round-off adds ~1e-6 (self-interactions) to z and
    # ~1e-7 * extent to the forces (the force kernel's offsets reach the extent); this only shows
    # when the true values are that small. float64 is accurate throughout (to ~1e-16 absolute).
    for dist in (0.5, 3.0, 30.0, 1000.0):
        y = np.array([[0.0, 1.0], [dist, 1.0]])
        want_rep, want_z = exact_repulsion(y)
        rep, z = fft_repulsion(tf.constant(y, tf.float32), **small)
        assert abs(float(z) - want_z) <= 1e-3 * want_z + 1e-5
        np.testing.assert_allclose(rep.numpy(), want_rep, rtol=1e-3, atol=1e-6 * dist)
        rep, z = fft_repulsion(tf.constant(y, tf.float64), **small)
        assert float(z) == pytest.approx(want_z, rel=1e-4)
        np.testing.assert_allclose(rep.numpy(), want_rep, rtol=1e-3, atol=1e-12)
    rep, z = fft_repulsion(tf.constant([[1.0]], tf.float32), **small)
    assert np.isfinite(rep.numpy()).all() and abs(float(z)) < 1e-4


def test_one_set_of_grid_defaults():
    defaults = dict(
        min_num_intervals=MIN_NUM_INTERVALS,
        ints_in_interval=INTS_IN_INTERVAL,
        max_num_intervals=MAX_NUM_INTERVALS,
    )
    estimator = TSNE().get_params()
    objective = FFTObjective(deterministic_sums=False)
    for function in (fft_repulsion, grid_intervals):
        parameters = inspect.signature(function).parameters
        assert {name: parameters[name].default for name in defaults} == defaults
    assert {name: estimator[name] for name in defaults} == defaults
    assert {name: getattr(objective, name) for name in defaults} == defaults
    # The nodes of "auto": the kernel's default is the estimator's.
    y = tf.constant(mixture(300, 2, 20.0, seed=6), tf.float32)
    nodes, stencil = default_nodes(2)
    by_default = fft_repulsion(y)[0].numpy()
    explicit = fft_repulsion(y, n_interpolation_points=nodes, stencil_size=stencil)[0].numpy()
    np.testing.assert_array_equal(by_default, explicit)
    assert not np.array_equal(by_default, fft_repulsion(y, n_interpolation_points=5)[0].numpy())


def test_memory_is_linear_in_n_plus_grid():
    n = 6000
    max_intervals = 100
    m = 5 * max_intervals
    y = tf.zeros((n, 2), tf.float32)
    settings = dict(n_boxes=max_intervals, n_interp=5, n_taps=5, dof=1.0, z_exponent=1.0)
    charge = tf.ones((n,))
    hlo = _fixed_grid_repulsion.experimental_get_compiler_ir(y, charge, **settings)(stage="hlo")
    sizes = [
        int(np.prod([int(d) for d in dims.split(",")]))
        for dims in re.findall(r"(?:f32|c64|s32|pred)\[([\d,]+)\]", hlo)
    ]
    assert max(sizes) <= 4 * (2 * m) ** 2 + 64 * n < n * n // 4


def test_interval_ladder_and_validation():
    assert interval_ladder(50, 200, 1.25) == (50, 63, 80, 100, 125, 160, 200)
    assert interval_ladder(32, 250) == (32, 48, 72, 108, 162, 250)  # no rung next to the top
    assert interval_ladder(50, 50) == (50,)
    with pytest.raises(ValueError):
        interval_ladder(60, 50)
    with pytest.raises(ValueError):
        fft_repulsion(tf.zeros((5, 3)))
    with pytest.raises(TypeError):
        fft_repulsion(tf.zeros((5, 2), tf.int32))
    with pytest.raises(ValueError):
        fft_repulsion(tf.zeros((5, 2)), dof=0.0)
