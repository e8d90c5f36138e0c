"""tfclust.metrics against scikit-learn (the oracle) and hand-checked cases."""

import itertools

import numpy as np
import pytest
import tensorflow as tf
from sklearn.manifold import trustworthiness as sk_trustworthiness
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    normalized_mutual_info_score,
    silhouette_score,
)
from sklearn.neighbors import KNeighborsClassifier

from tfclust import metrics

RTOL = 1e-10


def brute_force_accuracy(y_true, y_pred):
    """Best accuracy over every injective matching of clusters to classes (tiny inputs only)."""
    classes, clusters = np.unique(y_true), np.unique(y_pred)
    table = np.array([[np.sum((y_true == c) & (y_pred == k)) for k in clusters] for c in classes])
    if len(classes) >= len(clusters):
        best = max(
            table[list(p), range(len(clusters))].sum()
            for p in itertools.permutations(range(len(classes)), len(clusters))
        )
    else:
        best = max(
            table[range(len(classes)), list(p)].sum()
            for p in itertools.permutations(range(len(clusters)), len(classes))
        )
    return best / len(y_true)


def random_labelings(seed, n=300):
    rng = np.random.default_rng(seed)
    n_classes, n_clusters = rng.integers(2, 7, size=2)
    return rng.integers(0, n_classes, n), rng.integers(0, n_clusters, n)


# ---------------------------------------------------------------- cluster_accuracy


def test_accuracy_is_one_for_permuted_labels():
    y = np.repeat(np.arange(5), 7)
    assert metrics.cluster_accuracy(y, (y + 3) % 5) == 1.0


def test_accuracy_hand_example():
    # Cluster 7 -> class 0 (3 right), cluster 8 -> class 1 (2 right); the last 0 is wrong.
    y_true = [0, 0, 0, 0, 1, 1]
    y_pred = [7, 7, 7, 8, 8, 8]
    assert metrics.cluster_accuracy(y_true, y_pred) == pytest.approx(5 / 6)


@pytest.mark.parametrize("seed", range(6))
def test_accuracy_matches_brute_force_with_unequal_counts(seed):
    y_true, y_pred = random_labelings(seed, n=60)
    assert metrics.cluster_accuracy(y_true, y_pred) == pytest.approx(
        brute_force_accuracy(y_true, y_pred), rel=1e-12
    )


@pytest.mark.parametrize("seed", range(3))
def test_contingency_matrix_matches_sklearn_and_orders_by_matching(seed):
    from sklearn.metrics.cluster import contingency_matrix

    y_true, y_pred = random_labelings(seed, n=60)
    table, classes, clusters = metrics.contingency_matrix(y_true, y_pred)
    np.testing.assert_array_equal(table, contingency_matrix(y_true, y_pred))
    np.testing.assert_array_equal(classes, np.unique(y_true))
    np.testing.assert_array_equal(clusters, np.unique(y_pred))
    matched, _, order = metrics.contingency_matrix(y_true, y_pred, match=True)
    assert sorted(order.tolist()) == clusters.tolist()
    np.testing.assert_array_equal(matched, table[:, np.searchsorted(clusters, order)])
    if len(classes) <= len(clusters):  # every class matched: the diagonal is the matching
        diagonal = np.trace(matched[:, : len(classes)])
        assert diagonal / table.sum() == pytest.approx(brute_force_accuracy(y_true, y_pred))


def test_contingency_matrix_with_more_classes_than_clusters():
    table, classes, clusters = metrics.contingency_matrix(
        ["a", "a", "b", "b", "c"], [7, 7, 3, 3, 3], match=True
    )
    assert classes.tolist() == ["a", "b", "c"] and clusters.tolist() == [7, 3]
    assert table.tolist() == [[2, 0], [0, 2], [0, 1]]


def test_accuracy_extra_clusters_count_as_errors():
    assert metrics.cluster_accuracy([0, 0, 1, 1], [0, 1, 2, 3]) == 0.5


def test_accuracy_accepts_strings_and_tensors():
    y_true = np.array(["a", "a", "b", "b", "c"])
    assert metrics.cluster_accuracy(y_true, tf.constant([2, 2, 0, 0, 0])) == 0.8
    assert isinstance(metrics.cluster_accuracy(tf.constant([1, 2]), [1, 2]), float)


# ---------------------------------------------------------------- NMI and ARI

EDGE_CASES = {
    "perfect": ([0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2]),
    "permuted": ([0, 0, 1, 1, 2, 2], [5, 5, 3, 3, 9, 9]),
    "both_single_cluster": ([1, 1, 1, 1], [0, 0, 0, 0]),
    "true_single_cluster": ([1, 1, 1, 1], [0, 1, 0, 2]),
    "pred_single_cluster": ([0, 1, 2, 2], [4, 4, 4, 4]),
    "all_singletons": ([0, 1, 2, 3], [3, 2, 1, 0]),
    "singletons_vs_one": ([0, 1, 2, 3], [0, 0, 0, 0]),
    "independent": ([0, 0, 1, 1], [0, 1, 0, 1]),
    "one_sample": ([3], [4]),
    "split_classes": ([0, 0, 1, 2], [0, 0, 1, 1]),
    "strings": (["x", "y", "y", "z", "z", "z"], ["p", "p", "q", "q", "r", "r"]),
}


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_nmi_and_ari_edge_cases_match_sklearn(case):
    y_true, y_pred = EDGE_CASES[case]
    np.testing.assert_allclose(
        metrics.normalized_mutual_info(y_true, y_pred),
        normalized_mutual_info_score(y_true, y_pred),
        rtol=RTOL,
        atol=0,
    )
    np.testing.assert_allclose(
        metrics.adjusted_rand_index(y_true, y_pred),
        adjusted_rand_score(y_true, y_pred),
        rtol=RTOL,
        atol=0,
    )


@pytest.mark.parametrize("seed", range(8))
def test_nmi_and_ari_random_match_sklearn(seed):
    y_true, y_pred = random_labelings(seed, n=1000)
    # Make the labelings partly agree, so the scores are not all near 0.
    y_pred[: 400 + 50 * seed] = y_true[: 400 + 50 * seed]
    np.testing.assert_allclose(
        metrics.normalized_mutual_info(y_true, y_pred),
        normalized_mutual_info_score(y_true, y_pred),
        rtol=RTOL,
        atol=0,
    )
    np.testing.assert_allclose(
        metrics.adjusted_rand_index(y_true, y_pred),
        adjusted_rand_score(y_true, y_pred),
        rtol=RTOL,
        atol=0,
    )


def test_nmi_and_ari_near_zero_for_independent_random_labels():
    y_true, y_pred = random_labelings(123, n=5000)
    np.testing.assert_allclose(
        metrics.normalized_mutual_info(y_true, y_pred),
        normalized_mutual_info_score(y_true, y_pred),
        rtol=RTOL,
        atol=0,
    )
    np.testing.assert_allclose(
        metrics.adjusted_rand_index(y_true, y_pred),
        adjusted_rand_score(y_true, y_pred),
        rtol=RTOL,
        atol=0,
    )


def test_ari_exact_for_large_n():
    # 200,000 samples: products of pair counts (~1e20) exceed int64; must still match.
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 10, 200_000)
    y_pred = np.where(rng.random(200_000) < 0.7, y_true, rng.integers(0, 10, 200_000))
    np.testing.assert_allclose(
        metrics.adjusted_rand_index(y_true, y_pred),
        adjusted_rand_score(y_true, y_pred),
        rtol=RTOL,
        atol=0,
    )


def test_label_metrics_accept_tensors_and_return_floats():
    y_true, y_pred = random_labelings(3)
    for fn in (
        metrics.normalized_mutual_info,
        metrics.adjusted_rand_index,
        metrics.cluster_accuracy,
    ):
        value = fn(tf.constant(y_true), tf.constant(y_pred))
        assert type(value) is float
        assert value == fn(y_true, y_pred)


@pytest.mark.parametrize(
    "fn", [metrics.cluster_accuracy, metrics.normalized_mutual_info, metrics.adjusted_rand_index]
)
@pytest.mark.parametrize(
    "y_true, y_pred, match",
    [
        ([0, 1, 1], [0, 1], "different lengths"),
        ([], [], "empty"),
        ([0.0, np.nan], [0, 1], "NaN"),
        ([[0, 1]], [[0, 1]], "1-D"),
    ],
)
def test_label_metrics_reject_bad_input(fn, y_true, y_pred, match):
    with pytest.raises(ValueError, match=match):
        fn(y_true, y_pred)


# ---------------------------------------------------------------- trustworthiness


@pytest.fixture(scope="module")
def embedding_data():
    """500 points in 20-D and a noisy 2-D projection of them (continuous: no ties)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 20))
    x[:, :2] *= 4.0
    e = x[:, :2] + rng.normal(scale=1.0, size=(500, 2))
    return x, e


@pytest.mark.parametrize("k", [1, 5, 10, 30])
def test_trustworthiness_matches_sklearn(embedding_data, k):
    x, e = embedding_data
    expected = sk_trustworthiness(x, e, n_neighbors=k)
    assert 0.6 < expected < 0.99  # a non-degenerate check
    np.testing.assert_allclose(
        metrics.trustworthiness(x, e, n_neighbors=k), expected, rtol=RTOL, atol=0
    )


def test_trustworthiness_tiled_equals_untiled(embedding_data):
    x, e = embedding_data
    # 8 rows per tile: 63 tiles, the last one padded.
    small = metrics.trustworthiness(x, e, n_neighbors=10, memory_budget=500 * 8 * 60)
    np.testing.assert_allclose(small, sk_trustworthiness(x, e, n_neighbors=10), rtol=RTOL)


def test_trustworthiness_accepts_float32_tensors(embedding_data):
    x, e = embedding_data
    value = metrics.trustworthiness(tf.constant(x, tf.float32), tf.constant(e, tf.float32), 5)
    assert type(value) is float
    expected = sk_trustworthiness(x.astype(np.float32), e.astype(np.float32), n_neighbors=5)
    np.testing.assert_allclose(value, expected, rtol=1e-6)


def test_trustworthiness_is_one_for_isometric_embedding(embedding_data):
    x, _ = embedding_data
    rotation = np.linalg.qr(np.random.default_rng(1).normal(size=(20, 20)))[0]
    assert metrics.trustworthiness(x, x @ rotation * 3.0, n_neighbors=7) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "x_shape, e_shape, k, match",
    [
        ((20, 3), (20, 2), 10, "n_samples / 2"),
        ((20, 3), (20, 2), 0, ">= 1"),
        ((20, 3), (19, 2), 3, "different numbers of samples"),
        ((20,), (20, 2), 3, "2-D"),
        ((20, 3), (20, 2, 1), 3, "2-D"),
    ],
)
def test_trustworthiness_rejects_bad_input(x_shape, e_shape, k, match):
    with pytest.raises(ValueError, match=match):
        metrics.trustworthiness(np.ones(x_shape), np.ones(e_shape), n_neighbors=k)


def test_trustworthiness_rejects_nan():
    x = np.random.default_rng(0).normal(size=(20, 3))
    e = x[:, :2].copy()
    e[4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        metrics.trustworthiness(x, e, n_neighbors=3)


# ---------------------------------------------------------------- knn_accuracy


def sklearn_loo_knn_accuracy(e, y, k):
    """Leave-one-out accuracy of KNeighborsClassifier fitted on all the other points."""
    hits = [
        KNeighborsClassifier(n_neighbors=k)
        .fit(np.delete(e, i, 0), np.delete(y, i))
        .predict(e[i : i + 1])[0]
        == y[i]
        for i in range(len(y))
    ]
    return float(np.mean(hits))


@pytest.mark.parametrize("k", [1, 4, 10])
def test_knn_accuracy_matches_sklearn(k):
    rng = np.random.default_rng(k)
    e = rng.normal(size=(200, 2))
    y = rng.integers(0, 4, 200)
    y[e[:, 0] > 0.3] = 3  # some structure, so the accuracy is not chance level
    expected = sklearn_loo_knn_accuracy(e, y, k)
    assert metrics.knn_accuracy(e, y, n_neighbors=k) == pytest.approx(expected, abs=1e-12)
    tiled = metrics.knn_accuracy(e, y, n_neighbors=k, memory_budget=200 * 8 * 3 * 9)
    assert tiled == pytest.approx(expected, abs=1e-12)


def test_knn_accuracy_vote_tie_goes_to_smallest_label():
    # Point 0's two nearest neighbours carry labels 5 and 2: the tie goes to 2.
    e = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.1], [9.0, 9.0], [9.0, 9.5]])
    assert metrics.knn_accuracy(e, [2, 5, 2, 7, 7], n_neighbors=2) == pytest.approx(0.4)
    # Points 3 and 4 see labels 7 and 9: 7 wins; points 0 and 2 see 5 and 9: 5 wins (wrongly).
    assert metrics.knn_accuracy(e, [9, 5, 9, 7, 7], n_neighbors=2) == pytest.approx(0.4)


def test_knn_accuracy_separated_clusters_and_tensor_input():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    e = rng.normal(scale=0.1, size=(90, 2)) + 10.0 * y[:, None]
    value = metrics.knn_accuracy(tf.constant(e), tf.constant(y), n_neighbors=5)
    assert type(value) is float and value == 1.0


@pytest.mark.parametrize(
    "e_shape, n_labels, k, match",
    [
        ((10, 2), 9, 3, "labels has 9 entries"),
        ((10, 2), 10, 10, "less than n_samples"),
        ((10, 2), 10, 0, ">= 1"),
        ((10,), 10, 3, "2-D"),
        ((0, 2), 0, 1, "at least 1"),
    ],
)
def test_knn_accuracy_rejects_bad_input(e_shape, n_labels, k, match):
    with pytest.raises(ValueError, match=match):
        metrics.knn_accuracy(np.ones(e_shape), np.zeros(n_labels), n_neighbors=k)


# ---------------------------------------------------------------- label-free clustering metrics


def clustered_data(seed, k, n=400, d=5, singleton=True):
    """n points in d-D around k centres, labelled by centre; the first point alone in cluster k
    if ``singleton``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    x = rng.normal(scale=3.0, size=(k, d))[labels] + rng.normal(size=(n, d))
    if singleton:
        labels[0] = k
    return x, labels


@pytest.mark.parametrize("seed, k", [(0, 2), (1, 3), (2, 6), (3, 12)])
@pytest.mark.parametrize("singleton", [False, True])
def test_label_free_metrics_match_sklearn(seed, k, singleton):
    x, labels = clustered_data(seed, k, singleton=singleton)
    for ours, theirs in [
        (metrics.silhouette_score, silhouette_score),
        (metrics.calinski_harabasz_score, calinski_harabasz_score),
        (metrics.davies_bouldin_score, davies_bouldin_score),
    ]:
        value = ours(x, labels)
        assert type(value) is float
        # scikit-learn's distance from a singleton to its centroid (itself) is the square root
        # of a rounding error, about 1e-8; ours is exactly 0.
        tol = 1e-6 if singleton and ours is metrics.davies_bouldin_score else RTOL
        assert value == pytest.approx(theirs(x, labels), rel=tol, abs=tol)


@pytest.mark.parametrize("relabel", [np.array([3, 7, 9]), np.array(["c", "a", "b"])])
def test_label_free_metrics_accept_any_label_values(relabel):
    x, codes = clustered_data(4, 3, singleton=False)
    labels = relabel[codes]
    for ours, theirs in [
        (metrics.silhouette_score, silhouette_score),
        (metrics.calinski_harabasz_score, calinski_harabasz_score),
        (metrics.davies_bouldin_score, davies_bouldin_score),
    ]:
        assert ours(x, labels) == pytest.approx(theirs(x, labels), rel=RTOL, abs=RTOL)
        assert ours(x, labels) == pytest.approx(ours(x, codes), rel=RTOL, abs=RTOL)


def test_silhouette_tiled_equals_untiled():
    x, labels = clustered_data(5, 4)
    whole = metrics.silhouette_score(x, labels)
    tiled = metrics.silhouette_score(x, labels, memory_budget=x.shape[0] * 17 * 33)  # 13 tiles
    assert tiled == pytest.approx(whole, rel=1e-13, abs=1e-13)
    assert tiled == pytest.approx(silhouette_score(x, labels), rel=RTOL, abs=RTOL)


@pytest.mark.parametrize("sample_size", [50, 399, 1000])
def test_silhouette_samples_the_rows_sklearn_samples(sample_size):
    x, labels = clustered_data(6, 3)
    for seed in [0, 123]:
        expected = silhouette_score(x, labels, sample_size=sample_size, random_state=seed)
        value = metrics.silhouette_score(x, labels, sample_size=sample_size, random_state=seed)
        assert value == pytest.approx(expected, rel=RTOL, abs=RTOL)
    # A RandomState is drawn from directly, as scikit-learn does.
    expected = silhouette_score(
        x, labels, sample_size=sample_size, random_state=np.random.RandomState(7)
    )
    value = metrics.silhouette_score(
        x, labels, sample_size=sample_size, random_state=np.random.RandomState(7)
    )
    assert value == pytest.approx(expected, rel=RTOL, abs=RTOL)


def test_silhouette_sample_with_generator_and_none_runs():
    x, labels = clustered_data(6, 3)
    for random_state in [None, np.random.default_rng(0)]:
        value = metrics.silhouette_score(x, labels, sample_size=50, random_state=random_state)
        assert -1.0 <= value <= 1.0


def test_silhouette_float32_tensor_and_scale():
    x, labels = clustered_data(7, 3)
    x32 = x.astype(np.float32)
    expected = silhouette_score(x32.astype(np.float64), labels)
    assert metrics.silhouette_score(tf.constant(x32), tf.constant(labels)) == pytest.approx(
        expected, rel=RTOL, abs=RTOL
    )
    tiny = metrics.silhouette_score(x * 2.0**-600, labels)  # squares would underflow
    assert tiny == pytest.approx(silhouette_score(x, labels), rel=RTOL, abs=RTOL)


def test_label_free_metrics_special_cases_match_sklearn():
    # Every point on its centroid: CH is 1.0, DB is 0.0; silhouette is 1 (a = 0 < b).
    x = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    labels = [0, 0, 1, 1]
    assert metrics.calinski_harabasz_score(x, labels) == calinski_harabasz_score(x, labels) == 1.0
    assert metrics.davies_bouldin_score(x, labels) == davies_bouldin_score(x, labels) == 0.0
    assert metrics.silhouette_score(x, labels) == silhouette_score(x, labels) == 1.0
    # Identical points in two clusters: a = b = 0, coefficient 0; centroids coincide: DB 0.0.
    same = np.zeros((4, 2))
    assert metrics.silhouette_score(same, labels) == silhouette_score(same, labels) == 0.0
    assert metrics.davies_bouldin_score(same, labels) == davies_bouldin_score(same, labels)


@pytest.mark.parametrize(
    "fn", [metrics.silhouette_score, metrics.calinski_harabasz_score, metrics.davies_bouldin_score]
)
@pytest.mark.parametrize(
    "x, labels, match",
    [
        (np.ones((5, 2)), np.zeros(5), "Number of labels is 1"),
        (np.arange(10.0).reshape(5, 2), np.arange(5), "Number of labels is 5"),
        (np.ones((5, 2)), [0, 1, 0, 1], "labels has 4 entries but X has 5 samples"),
        (np.array([[0.0, np.nan], [1, 1], [2, 2]]), [0, 1, 1], "NaN or infinity"),
        (np.ones((3, 2)), [0.0, np.nan, 1.0], "labels contains NaN"),
        (np.ones(3), [0, 1, 1], "2-D"),
    ],
)
def test_label_free_metrics_reject_bad_input(fn, x, labels, match):
    with pytest.raises(ValueError, match=match):
        fn(x, labels)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"metric": "cosine"}, ValueError, "metric must be 'euclidean'"),
        ({"sample_size": 0}, ValueError, "sample_size must be >= 1"),
        ({"sample_size": 2.5}, TypeError, "sample_size must be an integer"),
        ({"sample_size": 3, "random_state": "seed"}, TypeError, "random_state must be"),
        ({"sample_size": 1}, ValueError, "Number of labels is 1"),  # checked on the sample
    ],
)
def test_silhouette_rejects_bad_arguments(kwargs, error, match):
    x, labels = np.arange(8.0).reshape(4, 2), [0, 0, 1, 1]
    with pytest.raises(error, match=match):
        metrics.silhouette_score(x, labels, **kwargs)
