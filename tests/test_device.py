"""The device profile: detected from the devices TensorFlow lists, overridden by TFCLUST_DEVICE,
and what it changes (K-means' "auto" algorithm and tile sizes, the exact t-SNE tiles, the
default memory budget)."""

import numpy as np
import pytest
import tensorflow as tf
from sklearn.cluster import KMeans as SKMeans

from tfclust import KMeans, _neighbors
from tfclust._device import ENV_VAR, PROFILES, device_profile, use_deterministic_sums
from tfclust._tiling import memory_budget_bytes
from tfclust.kmeans import _estimator, _lloyd
from tfclust.tsne import gradients


def test_detected_profile_is_this_machines(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    assert device_profile().kind == ("gpu" if has_gpu else "cpu")
    assert device_profile() == PROFILES[device_profile().kind]


@pytest.mark.parametrize("value, kind", [("gpu", "gpu"), (" TPU ", "tpu"), ("cpu", "cpu")])
def test_environment_overrides(monkeypatch, value, kind):
    monkeypatch.setenv(ENV_VAR, value)
    assert device_profile() is PROFILES[kind]


def test_bad_environment_value_raises(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "quantum")
    with pytest.raises(ValueError, match="TFCLUST_DEVICE must be one of"):
        device_profile()
    with pytest.raises(ValueError, match="TFCLUST_DEVICE"):
        KMeans(3, n_init=1).fit(np.random.default_rng(0).normal(size=(50, 2)))


def test_profiles_are_consistent():
    for kind, profile in PROFILES.items():
        assert profile.kind == kind
        assert profile.kmeans_algorithm in ("lloyd", "elkan")
        assert isinstance(profile.deterministic_sums, bool)
        assert min(profile[3:]) > 0
    # Accelerators run every restart side by side in static chunks, with wider tiles.
    assert PROFILES["gpu"].kmeans_algorithm == "lloyd" == PROFILES["tpu"].kmeans_algorithm
    assert PROFILES["cpu"].kmeans_algorithm == "elkan"
    assert all(a <= b for a, b in zip(PROFILES["cpu"][3:], PROFILES["gpu"][3:], strict=True))
    # Accelerators add floats with atomics in a varying order; a CPU's scatters run in order.
    assert not PROFILES["cpu"].deterministic_sums
    assert PROFILES["gpu"].deterministic_sums and PROFILES["tpu"].deterministic_sums


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_deterministic_sums_default_to_the_profiles(monkeypatch, kind):
    monkeypatch.setenv(ENV_VAR, kind)
    assert use_deterministic_sums() is PROFILES[kind].deterministic_sums
    assert use_deterministic_sums(None) is PROFILES[kind].deterministic_sums
    assert use_deterministic_sums(True) is True and use_deterministic_sums(False) is False


def test_kmeans_auto_follows_the_profile(monkeypatch):
    x = np.random.default_rng(1).normal(size=(400, 3))
    init = x[:4].copy()
    ref = SKMeans(4, init=init, n_init=1).fit(x)
    results = {}
    for kind in ("cpu", "gpu"):
        monkeypatch.setenv(ENV_VAR, kind)
        programs = (_lloyd.lloyd_chunk, _lloyd.lloyd_chunk_deterministic)
        chunks = [program.experimental_get_tracing_count() for program in programs]
        km = KMeans(4, init=init, n_init=1, dtype="float64").fit(x)
        # The plain Lloyd chunks run (and are traced, once) only under the accelerator profile,
        # with its deterministic sums.
        traced = [program.experimental_get_tracing_count() for program in programs]
        assert traced == [chunks[0], chunks[1] + (kind == "gpu")]
        np.testing.assert_array_equal(km.labels_, ref.labels_)
        assert km.n_iter_ == ref.n_iter_
        results[kind] = km.inertia_
    assert results["cpu"] == pytest.approx(results["gpu"], rel=1e-12)


def test_tile_sizes_follow_the_profile(monkeypatch):
    sizes = {}
    for kind in ("cpu", "gpu"):
        monkeypatch.setenv(ENV_VAR, kind)
        sizes[kind] = (
            _estimator.tile_rows(60_000, 100, 4, 2**30),
            gradients.ExactObjective.for_problem(20_000, 2, tf.float32, 2**30).tile,
        )
    assert sizes["gpu"][0] > sizes["cpu"][0] and sizes["gpu"][1] > sizes["cpu"][1]
    # An explicit memory budget below the profile's tiles still wins.
    monkeypatch.setenv(ENV_VAR, "gpu")
    assert _estimator.tile_rows(60_000, 100, 4, 2**20) < sizes["cpu"][0]


def test_memory_budget_follows_the_profile(monkeypatch):
    x = tf.constant(np.random.default_rng(2).normal(size=(3000, 8)), tf.float32)
    tiles = {}
    for kind in ("cpu", "gpu"):
        monkeypatch.setenv(ENV_VAR, kind)
        assert memory_budget_bytes() == PROFILES[kind].memory_budget
        assert memory_budget_bytes(12345) == 12345  # an explicit budget wins
        assert KMeans().get_params()["memory_budget"] is None
        tiles[kind] = _neighbors._search_tile(60_000, 65_536, 64, 91, "euclidean", tf.float32, None)
    assert PROFILES["gpu"].memory_budget > PROFILES["cpu"].memory_budget
    # On the CPU profile the 256 MiB budget bounds the k-NN tile; the GPU's budget lets the
    # profile's wider tile through.
    assert tiles["cpu"] < PROFILES["cpu"].knn_max_tile
    assert tiles["gpu"] > tiles["cpu"]
    # A default (None) budget fits as the profile's; the estimators resolve it the same way.
    monkeypatch.setenv(ENV_VAR, "cpu")
    labels = KMeans(3, random_state=0).fit(x.numpy()).labels_
    explicit = KMeans(3, random_state=0, memory_budget=PROFILES["cpu"].memory_budget)
    np.testing.assert_array_equal(labels, explicit.fit(x.numpy()).labels_)
