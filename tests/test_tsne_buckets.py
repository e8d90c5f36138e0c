"""TSNE(method="fft") on size buckets: rows padded to ``padded_size(N)`` and neighbours to
``padded_size(k)`` change no force, Z or KL divergence, and every N (and k) of a bucket shares
one compiled program."""

import logging

import numpy as np
import tensorflow as tf

from tfclust._neighbors import nearest_neighbors
from tfclust._tiling import padded_size
from tfclust.tsne import TSNE, affinities, gradients, optimize
from tfclust.tsne.fft import fft_repulsion

GRID = dict(min_num_intervals=40, max_num_intervals=40)


def _points(n, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, dim)) + rng.integers(0, 4, size=(n, 1)) * 4.0).astype(np.float64)


def test_uncharged_points_change_nothing():
    y = np.random.default_rng(1).normal(scale=10.0, size=(200, 2))
    far = np.vstack([y, [[1e4, -1e4], [0.0, 0.0], [3.0, 1e3]]])  # three padding rows
    charge = np.r_[np.ones(200), np.zeros(3)]
    rep, z = fft_repulsion(tf.constant(y), **GRID)
    rep_pad, z_pad = fft_repulsion(tf.constant(far), tf.constant(charge), **GRID)
    np.testing.assert_allclose(rep_pad.numpy()[:200], rep.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(float(z_pad), float(z), rtol=1e-10)
    np.testing.assert_array_equal(rep_pad.numpy()[200:], 0.0)


def test_padded_objective_equals_the_unpadded_one():
    """Gradient and KL divergence of the estimator's padded operands (300 -> 320 rows, k 31 ->
    32) against the same P built without padding."""
    x = tf.constant(_points(300))
    est = TSNE(perplexity=10.0, dtype="float64", **GRID)
    objective, padded, n_rows = est._objective(est._check_params(x), x)
    assert n_rows == padded_size(300) == 320
    assert padded[0].neighbors.shape == (320, padded_size(31))
    k = affinities.n_neighbors_for_perplexity(300, 10.0)
    neighbors, sq = nearest_neighbors(x, k)
    plain = objective.operands(neighbors, affinities.binary_search_perplexity(sq, 10.0))
    y = np.random.default_rng(2).normal(scale=5.0, size=(300, 2))
    y_pad = tf.constant(np.vstack([y, np.zeros((20, 2))]))
    for exaggeration in (1.0, 12.0):
        e = tf.constant(exaggeration, tf.float64)
        want = objective.gradient(tf.constant(y), e, *plain).numpy()
        got = objective.gradient(y_pad, e, *padded).numpy()
        np.testing.assert_allclose(got[:300], want, rtol=1e-8, atol=1e-14)
        np.testing.assert_array_equal(got[300:], 0.0)
        np.testing.assert_allclose(
            float(objective.kl_divergence(y_pad, e, *padded)),
            float(objective.kl_divergence(tf.constant(y), e, *plain)),
            rtol=1e-10,
        )


def test_one_program_per_bucket():
    x = _points(600).astype(np.float32)
    TSNE(perplexity=14.0, max_iter=250, random_state=0, **GRID).fit(x)
    programs = optimize._chunk_program.cache_info().currsize
    # 580 rows share 600's bucket (640) and perplexity 15's 46 neighbours share 14's 43 (48).
    e = TSNE(perplexity=15.0, max_iter=250, random_state=0, **GRID).fit_transform(x[:580])
    assert optimize._chunk_program.cache_info().currsize == programs
    assert e.shape == (580, 2) and np.isfinite(e).all()
    TSNE(perplexity=15.0, max_iter=250, random_state=0, **GRID).fit_transform(x[:500])
    assert optimize._chunk_program.cache_info().currsize == programs + 1  # bucket 512


def test_nearest_neighbors_never_returns_padding():
    x = tf.constant(_points(37))  # bucket 40: three padding rows of zeros
    idx, d2 = nearest_neighbors(x, 36)
    assert idx.shape == (37, 36) and int(tf.reduce_max(idx)) <= 36
    for i, row in enumerate(idx.numpy()):
        assert sorted(row) == [j for j in range(37) if j != i]
    want = ((x.numpy()[:, None] - x.numpy()[None]) ** 2).sum(-1)
    np.testing.assert_allclose(d2.numpy(), np.take_along_axis(want, idx.numpy(), 1), rtol=1e-12)


def test_operands_default_charge_is_ones():
    neighbors = tf.constant([[1], [0]], tf.int32)
    ops = gradients.FFTObjective.operands(neighbors, tf.constant([[1.0], [1.0]]))
    np.testing.assert_array_equal(ops[1].numpy(), [1.0, 1.0])


def test_programs_of_different_buckets_are_not_retracing():
    """Seven neighbour counts are seven programs, not seven traces of one (TensorFlow's
    retracing warning counts per Python code object)."""
    messages = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    handler = Collect()
    tf.get_logger().addHandler(handler)
    try:
        x = tf.constant(_points(300).astype(np.float32))
        for k in (5, 10, 20, 30, 40, 60, 80):
            nearest_neighbors(x, k)
    finally:
        tf.get_logger().removeHandler(handler)
    assert not [m for m in messages if "retracing" in m]
