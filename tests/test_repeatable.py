"""The same seed gives the same t-SNE embedding, bit for bit (tfclust/_repeatable.py)."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from tfclust import _repeatable
from tfclust.tsne import TSNE


@pytest.mark.parametrize(
    "environ, flags, repeatable",
    [
        ({}, "--xla_cpu_multi_thread_eigen=false", True),
        (
            {"XLA_FLAGS": "--xla_dump_to=/tmp/d"},
            "--xla_dump_to=/tmp/d " + _repeatable.FLAG + "=false",
            True,
        ),
        (
            {"XLA_FLAGS": _repeatable.FLAG + "=true"},
            _repeatable.FLAG + "=true",
            False,
        ),  # the user's
    ],
)
def test_configure_adds_the_flag_unless_the_user_set_it(environ, flags, repeatable):
    assert _repeatable.configure(environ) is repeatable
    assert environ["XLA_FLAGS"] == flags


def test_importing_tfclust_set_the_flag():
    import os

    assert _repeatable.FLAG + "=false" in os.environ["XLA_FLAGS"]


CASES = {
    # the cases: two tight blobs at perplexity 2 (extents 104 to 5,143 before), 5 blobs
    "30 points": (dict(n_samples=30, centers=[[1, 1], [-1, -1]], n_features=2, cluster_std=0.1), 2),
    "500 points": (dict(n_samples=500, centers=5, n_features=10), 30),
}


@pytest.mark.parametrize("method", ["fft", "exact"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_same_seed_same_embedding(case, method):
    blobs, perplexity = CASES[case]
    x, _ = make_blobs(random_state=0, **blobs)
    fits = [
        TSNE(perplexity=perplexity, method=method, max_iter=300, random_state=0).fit(x)
        for _ in range(3)
    ]
    for fit in fits[1:]:
        np.testing.assert_array_equal(fit.embedding_, fits[0].embedding_)
        assert fit.kl_divergence_ == fits[0].kl_divergence_
