"""Helpers shared by the K-means test files."""

import numpy as np


def initial_centers(x, k, seed):
    """k distinct rows of ``x`` (n, d), drawn by ``seed``: initial centres both libraries take."""
    return x[np.random.default_rng(seed).choice(len(x), k, replace=False)].copy()


RTOL = 1e-6
"""Relative tolerance of a float64 fit against scikit-learn's from the same initial centres."""


def assert_same_fit(ours, ref):
    """Same labels, inertia, centres (to RTOL) and iteration count as scikit-learn's fit."""
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=RTOL)
    np.testing.assert_allclose(
        ours.cluster_centers_,
        ref.cluster_centers_,
        rtol=RTOL,
        atol=RTOL * np.abs(ref.cluster_centers_).max(),
    )
    assert ours.n_iter_ == ref.n_iter_
