"""tfclust.kmeans.choose_n_clusters: K-means per k, chosen by silhouette score.

Each new k compiles K-means programs of its own, so the tests share one small k range.
"""

import logging

import numpy as np
import pytest

from tfclust.kmeans import KChoice, KMeans, choose_n_clusters
from tfclust.metrics import silhouette_score

KS = [4, 5, 6]


@pytest.fixture(scope="module")
def blobs():
    """600 points in 8-d: 5 well separated gaussian blobs of 120 points."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=10.0, size=(5, 8))
    return np.concatenate([c + rng.normal(size=(120, 8)) for c in centres])


@pytest.fixture(scope="module")
def choice(blobs):
    return choose_n_clusters(blobs, [6, 4, 5, 4])  # unsorted, with a duplicate


def test_picks_the_number_of_blobs(choice):
    assert isinstance(choice, KChoice)
    assert choice.n_clusters == 5
    assert choice.ks == KS
    assert len(choice.inertia) == len(choice.silhouette) == len(KS)
    assert choice.silhouette[1] == max(choice.silhouette)
    assert sorted(np.bincount(choice.labels).tolist()) == [120] * 5
    assert choice.cluster_centers.shape == (5, 8)
    assert "highest silhouette score" in choice.rule and "all 600 rows" in choice.rule


def test_inertia_decreases(choice):
    assert np.all(np.diff(choice.inertia) < 0)


def test_result_is_the_fit_at_the_chosen_k(blobs, choice):
    km = KMeans(n_clusters=choice.n_clusters, n_init=3, random_state=0).fit(blobs)
    np.testing.assert_array_equal(choice.labels, km.labels_)
    np.testing.assert_array_equal(choice.cluster_centers, km.cluster_centers_)
    assert choice.inertia[KS.index(choice.n_clusters)] == km.inertia_
    assert choice.n_iter == km.n_iter_
    assert choice.silhouette[1] == silhouette_score(blobs, km.labels_)


def test_sampled_silhouette_uses_the_same_rows_for_every_k(blobs, caplog):
    with caplog.at_level(logging.INFO, logger="tfclust.kmeans"):
        sampled = choose_n_clusters(blobs, KS, sample_size=300, random_state=0)
    assert sampled.n_clusters == 5
    assert "300 sampled rows" in sampled.rule
    for k, labels_score in zip(KS, sampled.silhouette, strict=True):
        km = KMeans(n_clusters=k, n_init=3, random_state=0).fit(blobs)
        assert labels_score == silhouette_score(blobs, km.labels_, sample_size=300, random_state=0)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("k=")]
    assert [line.split(":")[0] for line in lines] == [f"k={k}" for k in KS]


@pytest.mark.parametrize(
    "k_range, error, match",
    [
        ([], ValueError, "k_range is empty"),
        (range(1, 4), ValueError, "must be >= 2"),
        ([2, 600], ValueError, r"must be < n_samples \(600\)"),
        ([2, 3.5], TypeError, "each k of k_range must be an integer"),
        ([2, True], TypeError, "each k of k_range must be an integer"),
        (5, TypeError, "k_range must be an iterable of integers"),
    ],
)
def test_bad_k_range(blobs, k_range, error, match):
    with pytest.raises(error, match=match):
        choose_n_clusters(blobs, k_range)


def test_sample_size_not_above_the_largest_k(blobs):
    with pytest.raises(ValueError, match=r"sample_size \(6\) must be larger than the largest k"):
        choose_n_clusters(blobs, KS, sample_size=6)
