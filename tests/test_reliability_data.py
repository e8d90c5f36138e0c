"""Bad input to the data loaders, the image validator and the autoencoder (issue 14).

Each case must end in a clear error that names the file or parameter, or in a correct result.
Every file is generated here (tests/idx_files.py); nothing needs the network.
"""

import gzip
import logging
import math
import random
import struct

import keras
import numpy as np
import pytest
import tensorflow as tf
from idx_files import idx_bytes, write_idx, write_mnist_folder

from tfclust import autoencoder as ae
from tfclust.data import (
    DataUnavailableError,
    autoencoder_pipeline,
    check_images,
    images_pipeline,
    load_dataset,
    read_idx,
)


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network, no $TFCLUST_DATA_DIR, and a Keras cache holding a valid MNIST.

    The cache is what the loaders used to fall back to silently: a test that expects an error
    for a bad data_dir fails if the loader still falls back.
    """
    monkeypatch.setenv("TFCLUST_OFFLINE", "1")
    monkeypatch.delenv("TFCLUST_DATA_DIR", raising=False)
    cache = tmp_path / "keras_home" / "datasets"
    cache.mkdir(parents=True)
    x = np.zeros((3, 28, 28), np.uint8)
    y = np.zeros(3, np.uint8)
    np.savez(cache / "mnist.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))


def _npz(folder, x, y, name="mnist"):
    np.savez(folder / f"{name}.npz", x_train=x, y_train=y, x_test=x, y_test=y)


# (a) an explicitly named data folder is the only source tried


def _bad_folder(tmp_path, kind):
    folder = tmp_path / "data"
    if kind == "missing":
        return tmp_path / "nonexistent"
    if kind == "file":
        folder.write_text("not a folder")
        return folder
    folder.mkdir()
    if kind == "unrelated":
        (folder / "notes.txt").write_text("no data here")
        (folder / "fashion_mnist").mkdir()  # another data set's sub-folder does not serve mnist
        write_mnist_folder(folder / "fashion_mnist")
    if kind == "other_split":
        write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
        write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(2, np.uint8))
    return folder


@pytest.mark.parametrize(
    "kind, state",
    [
        ("missing", "does not exist"),
        ("file", "is not a folder"),
        ("empty", "is empty"),
        ("unrelated", "has no mnist files for split 'train'"),
        ("other_split", "has no mnist files for split 'train'"),
    ],
)
@pytest.mark.parametrize("via", ["argument", "environment"])
def test_named_data_dir_without_the_files_is_an_error(tmp_path, monkeypatch, kind, state, via):
    folder = _bad_folder(tmp_path, kind)
    if via == "environment":
        monkeypatch.setenv("TFCLUST_DATA_DIR", str(folder))
        kwargs = {}
    else:
        kwargs = {"data_dir": folder}
    with pytest.raises(DataUnavailableError) as info:
        load_dataset("mnist", "train", **kwargs)
    text = str(info.value)
    assert str(folder) in text and state in text
    if kind != "file":
        assert "train-images-idx3-ubyte[.gz]" in text and "mnist.npz" in text
    if via == "environment":
        assert "$TFCLUST_DATA_DIR" in text


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_auto_with_a_bad_data_dir_does_not_fall_back(tmp_path, kind):
    folder = _bad_folder(tmp_path, kind)
    with pytest.raises(DataUnavailableError) as info:
        load_dataset("auto", data_dir=folder)
    assert str(folder) in str(info.value) and "mnist_5k.csv" in str(info.value)


def test_auto_uses_the_sample_csv_of_the_data_dir(tmp_path, caplog):
    rows = np.zeros((4, 785), np.int64)
    rows[:, -1] = [0, 1, 2, 3]
    np.savetxt(tmp_path / "mnist_5k.csv", rows, fmt="%d", delimiter=",")
    with caplog.at_level(logging.WARNING, logger="tfclust.data"):
        data = load_dataset("auto", data_dir=tmp_path)
    assert data.name == "mnist_sample" and data.source.startswith("data_dir")
    assert sorted(data.labels) == [0, 1, 2, 3]


def test_sample_from_an_empty_data_dir_names_the_csv(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(DataUnavailableError, match=r"is empty.*mnist_5k\.csv\[\.gz\]"):
        load_dataset("mnist_sample", data_dir=tmp_path / "data")


def test_without_a_data_dir_the_other_sources_still_serve(monkeypatch):
    monkeypatch.setenv("TFCLUST_DATA_DIR", "")  # an empty variable counts as unset
    assert load_dataset("mnist").source.startswith("Keras cache")


@pytest.mark.parametrize(
    "data_dir, error, message",
    [("", ValueError, "data_dir is an empty string"), (5, TypeError, "data_dir must be a path")],
)
def test_bad_data_dir_argument(data_dir, error, message):
    with pytest.raises(error, match=message):
        load_dataset("mnist", data_dir=data_dir)


# (b) IDX headers announcing more data than the file holds


@pytest.mark.parametrize(
    "shape",
    [
        (2**32 - 1, 65536, 65536),  # int64 product: the reported "-4294967296 bytes"
        (2**32 - 1, 2**32 - 1, 2**32 - 1),
        (65536, 65536, 65536),
        (2**32 - 1, 28, 28),
        (61, 28, 28),
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_header_larger_than_the_file(tmp_path, shape, gz):
    data = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", *shape) + bytes(60 * 28 * 28)
    path = tmp_path / ("huge-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(ValueError) as info:
        read_idx(path, 3)
    text = str(info.value)
    assert str(path) in text and "truncated or corrupt" in text
    assert f"({math.prod(shape)} bytes" in text and "-4294967296" not in text
    assert f"holds {60 * 28 * 28} bytes" in text


def test_huge_header_reports_a_binary_prefixed_size(tmp_path):
    path = tmp_path / "huge"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 65536, 65536, 65536))
    with pytest.raises(ValueError, match=r"281474976710656 bytes \(256 TiB\) of data"):
        read_idx(path, 3)


@pytest.mark.parametrize("gz", [False, True])
def test_padded_idx_is_rejected(tmp_path, gz):
    data = idx_bytes(np.zeros((2, 28, 28), np.uint8)) + b"\x00"
    path = tmp_path / ("padded" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(ValueError, match="padded or corrupt"):
        read_idx(path, 3)


def test_exact_idx_still_reads(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint64).astype(np.uint8).reshape(2, 28, 28)
    write_idx(tmp_path / "ok.gz", images)
    np.testing.assert_array_equal(read_idx(tmp_path / "ok.gz", 3), images)


# (c) labels and images of a data file


def _images(n=4, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.array([0, 1, np.nan, 3]), r"whole numbers, but 1 of 4 are not \(label 2 is nan\)"),
        (np.array([0, 1.5, 2, 3.5]), r"2 of 4 are not \(label 1 is 1\.5\)"),
        (np.array([0, 1, np.inf, 3]), "whole numbers"),
        (np.array([0, -1, 2, 3]), r"0\.\.2147483647.*\[-1, 3\]"),
        (np.array([0, 1, 2, 2**31]), r"0\.\.2147483647"),
        (np.array([0, 1, 2, 1e300]), r"0\.\.2147483647"),
        (np.array(["0", "1", "2", "3"]), "labels have dtype <U1, expected integers"),
        (np.array([True, False, True, False]), "labels have dtype bool"),
        (np.arange(3), r"4 images but labels of shape \(3,\)"),
        (np.arange(5), r"4 images but labels of shape \(5,\)"),
        (np.zeros((4, 1)), r"4 images but labels of shape \(4, 1\)"),
    ],
)
def test_bad_npz_labels(tmp_path, labels, message):
    _npz(tmp_path, _images(4), labels)
    with pytest.raises(ValueError, match=message) as info:
        load_dataset("mnist", data_dir=tmp_path)
    assert "mnist.npz" in str(info.value)


@pytest.mark.parametrize(
    "labels",
    [
        np.array([0.0, 3.0, 9.0, 1.0]),
        np.array([0, 3, 9, 1], np.uint64),
        np.array([0, 3, 9, 1], np.int8),
    ],
)
def test_whole_number_labels_of_any_numeric_dtype(tmp_path, labels):
    _npz(tmp_path, _images(4), labels)
    y = load_dataset("mnist", data_dir=tmp_path).labels
    assert y.dtype == np.int64 and y.tolist() == [0, 3, 9, 1]


def test_labels_beyond_the_ten_classes_are_kept_with_a_warning(tmp_path, caplog):
    _npz(tmp_path, _images(4), np.array([0, 255, 2, 2**31 - 1]))
    with caplog.at_level(logging.WARNING, logger="tfclust.data"):
        y = load_dataset("mnist", data_dir=tmp_path).labels
    assert y.tolist() == [0, 255, 2, 2**31 - 1]
    assert "labels reach 2147483647" in caplog.text and "0..9" in caplog.text


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((4, 28, 28), np.float32), "images must be uint8 .0..255., got dtype float32"),
        (np.zeros((4, 28, 28), np.int64), "got dtype int64"),
        (np.zeros((4, 28, 28, 3), np.uint8), r"shape \(N, H, W\) or \(N, H, W, 1\)"),
        (np.zeros((4, 32, 32), np.uint8), r"expected \(N, 28, 28\)"),
        (np.zeros((4, 784), np.uint8), "shape"),
    ],
)
def test_bad_npz_images(tmp_path, images, message):
    _npz(tmp_path, images, np.zeros(len(images), np.uint8))
    with pytest.raises(ValueError, match=message) as info:
        load_dataset("mnist", data_dir=tmp_path)
    assert "mnist.npz" in str(info.value)


def test_npz_images_with_a_channel_axis_are_accepted(tmp_path):
    images = _images(3)
    _npz(tmp_path, images[..., None], np.arange(3))
    x = load_dataset("mnist", data_dir=tmp_path).images
    assert x.shape == (3, 28, 28)
    np.testing.assert_array_equal(x, images)


# (e) one image validator for every caller


@pytest.fixture(scope="module")
def small_encoder():
    _, encoder, _ = ae.build_autoencoder(latent_dim=2, filters=(2, 2), seed=0)
    return encoder


BAD_IMAGES = [
    (np.full((2, 28, 28), np.nan, np.float32), ValueError, "NaN or infinity"),
    (np.full((2, 28, 28), np.inf, np.float64), ValueError, "NaN or infinity"),
    (np.full((2, 28, 28), -0.5, np.float32), ValueError, r"\[0, 1\].*\[-0.5, -0.5\]"),
    (np.full((2, 28, 28), 255.0, np.float32), ValueError, "divide uint8 pixels by 255"),
    (np.zeros((2, 28, 28), np.int32), TypeError, "got dtype int32"),
    (np.zeros((2, 28, 28), bool), TypeError, "got dtype bool"),
    (np.zeros((2, 28, 28), np.complex64), TypeError, "got dtype complex64"),
    (np.full((2, 28, 28), "a"), TypeError, "got dtype <U1"),
    (np.zeros((2, 28, 28), object), TypeError, "got dtype object"),
    ([np.zeros((28, 28)), np.zeros((27, 28))], ValueError, "equal-sized images"),
    (np.zeros((2, 28), np.uint8), ValueError, r"shape \(N, H, W\)"),
    (np.zeros((1, 2, 28, 28, 1), np.uint8), ValueError, r"shape \(N, H, W\)"),
    (np.zeros((2, 28, 28, 2), np.uint8), ValueError, r"shape \(N, H, W\)"),
    (np.zeros((0, 28, 28), np.uint8), ValueError, "empty"),
    (np.zeros((2, 0, 28), np.uint8), ValueError, "zero height or width"),
]


@pytest.mark.parametrize("images, error, message", BAD_IMAGES)
def test_every_caller_refuses_bad_images_the_same_way(small_encoder, images, error, message):
    callers = {
        "check_images": lambda: check_images(images),
        "images_pipeline": lambda: images_pipeline(images),
        "autoencoder_pipeline": lambda: autoencoder_pipeline(images),
        "encode": lambda: ae.encode(small_encoder, images),
    }
    texts = set()
    for caller in callers.values():
        with pytest.raises(error, match=message) as info:
            caller()
        texts.add(str(info.value))
    assert len(texts) == 1  # one validator: one message, whichever entry point is used
    assert next(iter(texts)).startswith(("images", "float images"))


def test_good_images_of_every_form(small_encoder):
    uint8 = _images(3)
    floats = uint8 / 255.0
    for images in (uint8, uint8[..., None], floats, tf.constant(uint8), floats.tolist()):
        assert check_images(images).shape == (3, 28, 28, 1)
        assert ae.encode(small_encoder, images).shape == (3, 2)


# (d) the autoencoder


def test_build_with_a_seed_is_reproducible_without_global_state(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("build_autoencoder must not set a global seed")

    monkeypatch.setattr(keras.utils, "set_random_seed", forbidden)
    monkeypatch.setattr(tf.random, "set_seed", forbidden)
    # the legacy global generators are exactly what must stay untouched
    numpy_state, python_state = np.random.get_state(), random.getstate()  # noqa: NPY002

    def weights(seed):
        return ae.build_autoencoder(latent_dim=4, filters=(2, 3), seed=seed)[0].get_weights()

    first, again, other = weights(0), weights(0), weights(1)
    assert len(first) == 12
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    kernels = [w for w in first if w.ndim > 1]
    assert all(not np.array_equal(a, b) for a, b in zip(kernels, other[::2], strict=True))
    # each layer has its own seed: no two kernels of the same size are equal
    assert not np.array_equal(first[4].ravel()[:20], first[6].ravel()[:20])
    after = np.random.get_state()  # noqa: NPY002
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1])
    assert after[2:] == numpy_state[2:] and random.getstate() == python_state


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"latent_dim": 100_000_000}, "627,300,019,905 parameters, more than the 2,147,483,647"),
        ({"filters": (10**6, 10**6)}, "parameters, more than"),
        ({"image_shape": (28_000, 28_000, 1)}, "parameters, more than"),
    ],
)
def test_oversized_model_is_refused_before_building(kwargs, message):
    assert ae.count_parameters(100_000_000) == 627_300_019_905
    with pytest.raises(ValueError, match=message):
        ae.build_autoencoder(**kwargs)


def test_model_larger_than_memory_is_refused(monkeypatch):
    monkeypatch.setattr(ae, "_physical_memory", lambda: 2**30)
    with pytest.raises(ValueError, match=r"needs about 1\.9 GiB .* has 1\.0 GiB"):
        ae.build_autoencoder(latent_dim=20_000)


@pytest.mark.parametrize(
    "latent_dim, filters, image_shape",
    [
        (64, (32, 64), (28, 28, 1)),
        (3, (2, 5), (8, 12, 1)),
        (3, (2, 5), (30, 30, 1)),
        (3, (2, 5), (32, 32, 3)),
        (3, (2, 5), (17, 23, 3)),
        (2, (1, 1), (1, 1, 1)),
        (5, (3, 2), (9, 4, 3)),
    ],
)
def test_parameter_count_matches_keras(latent_dim, filters, image_shape):
    model = ae.build_autoencoder(latent_dim, filters, image_shape=image_shape)[0]
    assert ae.count_parameters(latent_dim, filters, image_shape) == model.count_params()


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"filters": 32}, TypeError, "filters must hold two channel counts"),
        ({"filters": (32, 0)}, ValueError, "filters must hold two channel counts"),
        ({"image_shape": (28, 28)}, ValueError, r"image_shape must be \(H, W, C\)"),
        ({"image_shape": (28, 28, 2)}, ValueError, r"C = 1 \(grey\) or 3 \(RGB\)"),
        ({"image_shape": (28, 0, 3)}, ValueError, r"H, W >= 1"),
        ({"image_shape": (28.0, 28, 1)}, TypeError, "image_shape"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
    ],
)
def test_bad_build_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        ae.build_autoencoder(**kwargs)


@pytest.fixture(scope="module")
def small_model():
    return ae.build_autoencoder(latent_dim=2, filters=(2, 2), seed=0)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"learning_rate": -1}, ValueError, "learning_rate must be > 0"),
        ({"learning_rate": 0}, ValueError, "learning_rate must be > 0"),
        ({"learning_rate": float("nan")}, ValueError, "learning_rate must be finite"),
        ({"learning_rate": float("inf")}, ValueError, "learning_rate must be finite"),
        ({"learning_rate": "0.1"}, TypeError, "learning_rate"),
        ({"epochs": 0}, ValueError, "epochs"),
        ({"epochs": 1.5}, TypeError, "epochs"),
        ({"verbose": 3}, ValueError, "verbose"),
        ({"validation_data": np.zeros((2, 28, 28))}, TypeError, "validation_data"),
    ],
)
def test_bad_training_arguments_leave_the_weights_alone(small_model, kwargs, error, message):
    autoencoder = small_model[0]
    before = autoencoder.get_weights()
    ds = autoencoder_pipeline(_images(4), batch_size=2)
    with pytest.raises(error, match=message):
        ae.train_autoencoder(autoencoder, ds, **{"epochs": 1, "verbose": 0, **kwargs})
    for a, b in zip(before, autoencoder.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_training_needs_a_keras_model():
    with pytest.raises(TypeError, match="autoencoder must be a keras.Model"):
        ae.train_autoencoder("model.keras", autoencoder_pipeline(_images(2)), epochs=1)


def test_encode_refuses_the_whole_autoencoder(small_model):
    autoencoder, encoder, _ = small_model
    with pytest.raises(ValueError, match=r"outputs \(None, 28, 28, 1\); pass the encoder"):
        ae.encode(autoencoder, _images(2))
    with pytest.raises(TypeError, match="encoder must be a keras.Model"):
        ae.encode(None, _images(2))
    assert ae.encode(encoder, _images(2)).shape == (2, 2)


@pytest.fixture(scope="module")
def saved_model(small_model, tmp_path_factory):
    return ae.save_autoencoder(small_model[0], tmp_path_factory.mktemp("model") / "ae")


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated", "zip_without_model"])
def test_corrupt_keras_file(tmp_path, saved_model, damage):
    path = tmp_path / "bad.keras"
    good = open(saved_model, "rb").read()
    if damage == "garbage":
        path.write_bytes(b"this is not a model")
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    else:
        import zipfile

        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("readme.txt", "no model here")
    with pytest.raises(ValueError, match=f"{path} is not a valid Keras model file: ") as info:
        ae.load_autoencoder(path)
    assert "File not found" not in str(info.value)


def test_a_saved_model_still_loads(saved_model, small_model):
    _, encoder, _ = ae.load_autoencoder(saved_model)
    images = _images(3)
    np.testing.assert_array_equal(ae.encode(encoder, images), ae.encode(small_model[1], images))
