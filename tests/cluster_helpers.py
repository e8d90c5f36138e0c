"""Helpers shared by the K-means test files."""

import numpy as np


def initial_centers(x, k, seed):
    """k distinct rows of ``x`` (n, d), drawn by ``seed``: initial centres both libraries take."""
    return x[np.random.default_rng(seed).choice(len(x), k, replace=False)].copy()
