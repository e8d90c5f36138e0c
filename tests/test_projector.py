"""tfclust.projector: the files TensorBoard's Embedding Projector reads."""

import os
import re

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorboard.plugins.projector import ProjectorConfig

from tfclust import projector

N, DIM = 50, 8


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    latents = rng.normal(size=(N, DIM)).astype(np.float32)
    images = rng.integers(0, 256, size=(N, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, N)
    clusters = rng.integers(0, 10, N)
    return latents, images, labels, clusters


def read_config(path):
    with open(path) as f:
        return text_format.Parse(f.read(), ProjectorConfig())


def read_png(path):
    return tf.io.decode_png(tf.io.read_file(path)).numpy()


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def sprite_cells(sprite, height, width):
    """Cut a (side*H, side*W, C) sprite back into its (side*side, H, W, C) row-major cells."""
    side = sprite.shape[0] // height
    channels = sprite.shape[-1]
    return (
        sprite.reshape(side, height, side, width, channels)
        .transpose(0, 2, 1, 3, 4)
        .reshape(side * side, height, width, channels)
    )


def checkpoint_value(result):
    name = result.tensor_name
    return tf.train.load_checkpoint(result.checkpoint_path).get_tensor(name)


def test_full_export(data, tmp_path):
    latents, images, labels, clusters = data
    result = projector.export_projector(
        tmp_path, latents, {"label": labels, "cluster": clusters}, images=images
    )
    for path in (result.config_path, result.metadata_path, result.sprite_path):
        assert os.path.isfile(path)
    assert result.config_path == str(tmp_path / "projector_config.pbtxt")

    config = read_config(result.config_path)
    (embedding,) = config.embeddings
    assert embedding.tensor_name == "embedding/.ATTRIBUTES/VARIABLE_VALUE"
    assert embedding.metadata_path == "metadata.tsv"
    assert embedding.sprite.image_path == "sprite.png"
    assert list(embedding.sprite.single_image_dim) == [28, 28]

    # TensorBoard finds the checkpoint as the directory's latest, and reads the latents from it.
    assert tf.train.latest_checkpoint(str(tmp_path)) == result.checkpoint_path
    np.testing.assert_array_equal(checkpoint_value(result), latents)

    lines = read_lines(result.metadata_path)
    assert len(lines) == N + 1
    assert lines[0] == "label\tcluster"
    assert lines[1:] == [f"{a}\t{b}" for a, b in zip(labels, clusters, strict=True)]

    sprite = read_png(result.sprite_path)
    assert sprite.shape == (8 * 28, 8 * 28, 1)  # ceil(sqrt(50)) = 8 cells per side
    cells = sprite[..., 0].reshape(8, 28, 8, 28).transpose(0, 2, 1, 3).reshape(64, 28, 28)
    np.testing.assert_array_equal(cells[:N], images)  # row-major order
    assert not cells[N:].any()  # unused cells are black
    np.testing.assert_array_equal(result.indices, np.arange(N))


def test_single_column_metadata_has_no_header(data, tmp_path):
    latents, _, labels, _ = data
    result = projector.export_projector(tmp_path, tf.constant(latents), {"label": labels})
    assert read_lines(result.metadata_path) == [str(v) for v in labels]
    assert result.sprite_path is None
    config = read_config(result.config_path)
    assert not config.embeddings[0].HasField("sprite")


def test_latents_only_and_custom_tensor_name(data, tmp_path):
    latents = data[0].astype(np.float64)
    result = projector.export_projector(tmp_path / "new" / "dir", latents, tensor_name="latents")
    assert result.metadata_path is None and result.sprite_path is None
    assert sorted(os.listdir(tmp_path / "new" / "dir")) == [
        "checkpoint",
        "embedding.ckpt-1.data-00000-of-00001",
        "embedding.ckpt-1.index",
        "projector_config.pbtxt",
    ]
    (embedding,) = read_config(result.config_path).embeddings
    assert embedding.tensor_name == "latents/.ATTRIBUTES/VARIABLE_VALUE"
    assert embedding.metadata_path == ""
    value = checkpoint_value(result)
    assert value.dtype == np.float32
    np.testing.assert_allclose(value, latents, rtol=1e-6)


def test_float_images_and_string_metadata(data, tmp_path):
    latents, images, _, _ = data
    names = np.array([f"digit {i}" for i in range(N)])
    result = projector.export_projector(
        tmp_path, latents, {"name": names, "id": range(N)}, images=(images / 255.0)[..., np.newaxis]
    )
    sprite = read_png(result.sprite_path)[..., 0]
    np.testing.assert_array_equal(sprite[:28, 28:56], images[1])
    assert read_lines(result.metadata_path)[:2] == ["name\tid", "digit 0\t0"]


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_rgb_thumbnails_give_an_rgb_sprite(data, tmp_path, dtype):
    latents = data[0]
    rgb = np.random.default_rng(1).integers(0, 256, size=(N, 12, 20, 3)).astype(np.uint8)
    images = rgb if dtype == np.uint8 else (rgb / 255.0).astype(np.float32)
    result = projector.export_projector(tmp_path, latents, images=images)
    sprite = read_png(result.sprite_path)
    assert sprite.shape == (8 * 12, 8 * 20, 3)  # 8 x 8 cells of 12 high, 20 wide
    cells = sprite_cells(sprite, 12, 20)
    np.testing.assert_array_equal(cells[:N], rgb)
    assert not cells[N:].any()
    (embedding,) = read_config(result.config_path).embeddings
    assert list(embedding.sprite.single_image_dim) == [20, 12]  # width, height


def test_rgb_sprite_is_subsampled_like_grey(data, tmp_path, monkeypatch):
    latents, images, _, _ = data
    rgb = np.stack([images, 255 - images, images // 2], axis=-1)
    monkeypatch.setattr(projector, "SPRITE_MAX_PIXELS", 5 * 28 + 10)
    with pytest.warns(UserWarning, match="random subset of 25 points"):
        result = projector.export_projector(tmp_path, latents, images=rgb)
    sprite = read_png(result.sprite_path)
    assert sprite.shape == (140, 140, 3)
    np.testing.assert_array_equal(sprite_cells(sprite, 28, 28)[:25], rgb[result.indices])


def test_class_and_file_names_round_trip_as_utf8(data, tmp_path):
    latents = data[0][:4]
    classes = ["cats", "dogs", "été", "日本の猫"]
    files = ["été photo 1.png", "my dog (2).JPG", "Ünïcødé 🐱.png", "  leading space.png"]
    result = projector.export_projector(
        tmp_path, latents, {"class": np.array(classes), "file": files, "cluster": [3, 0, 1, 3]}
    )
    with open(result.metadata_path, "rb") as f:
        raw = f.read()
    assert raw.decode("utf-8").splitlines() == [
        "class\tfile\tcluster",
        *(f"{c}\t{f}\t{k}" for c, f, k in zip(classes, files, [3, 0, 1, 3], strict=True)),
    ]
    single = projector.export_projector(tmp_path / "single", latents, {"file": files})
    assert read_lines(single.metadata_path) == files  # one column: no header


@pytest.mark.parametrize(
    "metadata, bad",
    [
        ({"file": ["a.png", "été\tphoto.png", "c.png", "d.png"]}, "été\tphoto.png"),
        ({"class": ["cats", "dogs", "owls\n", "ants"]}, "owls\n"),
        ({"class": ["cats", "dogs", "owls", "ants\r"]}, "ants\r"),
        ({"class\tname": ["cats", "dogs", "owls", "ants"]}, "class\tname"),
    ],
)
def test_tabs_and_newlines_in_metadata_are_refused(data, tmp_path, metadata, bad):
    with pytest.raises(ValueError, match=re.escape(f"tabs or newlines, got {bad!r}")):
        projector.export_projector(tmp_path / "out", data[0][:4], metadata)
    assert not (tmp_path / "out").exists()


def test_reexport_replaces_the_embedding(data, tmp_path):
    latents, _, _, _ = data
    projector.export_projector(tmp_path, latents)
    result = projector.export_projector(tmp_path, latents * 2.0)
    assert tf.train.latest_checkpoint(str(tmp_path)) == result.checkpoint_path
    np.testing.assert_array_equal(checkpoint_value(result), latents * 2.0)


def test_too_many_thumbnails_are_subsampled_consistently(data, tmp_path, monkeypatch):
    latents, images, labels, _ = data
    monkeypatch.setattr(projector, "SPRITE_MAX_PIXELS", 5 * 28 + 10)  # room for 5 x 5 cells
    with pytest.warns(UserWarning, match="random subset of 25 points"):
        result = projector.export_projector(tmp_path, latents, {"label": labels}, images=images)
    rows = result.indices
    assert len(rows) == 25 and np.all(np.diff(rows) > 0) and rows[-1] < N
    np.testing.assert_array_equal(checkpoint_value(result), latents[rows])
    assert read_lines(result.metadata_path) == [str(v) for v in labels[rows]]
    sprite = read_png(result.sprite_path)[..., 0]
    assert sprite.shape == (140, 140)
    np.testing.assert_array_equal(sprite[28:56, :28], images[rows[5]])
    # The same seed picks the same subset; another seed another one.
    with pytest.warns(UserWarning):
        again = projector.export_projector(tmp_path / "b", latents, images=images)
        other = projector.export_projector(tmp_path / "c", latents, images=images, seed=1)
    np.testing.assert_array_equal(again.indices, rows)
    assert not np.array_equal(other.indices, rows)


def test_mnist_sized_export_fits_without_subsampling():
    # 60,000 thumbnails of 28 x 28 fit in a 245 x 245 grid = 6,860 px < 8,192 px.
    rows = projector._exported_rows(60_000, (28, 28), seed=0)
    np.testing.assert_array_equal(rows, np.arange(60_000))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"latents": np.zeros(N)}, ValueError, "2-D"),
        ({"latents": np.full((N, 2), np.nan)}, ValueError, "NaN"),
        ({"metadata": {"label": np.zeros(N - 1)}}, ValueError, r"shape \(50,\)"),
        ({"metadata": {}}, ValueError, "non-empty mapping"),
        ({"metadata": {"label": ["a\tb"] * N}}, ValueError, "tabs or newlines"),
        ({"metadata": {"a\nb": np.zeros(N)}}, ValueError, "tabs or newlines"),
        ({"images": np.zeros((N - 1, 28, 28))}, ValueError, r"shape \(50, H, W\)"),
        ({"images": np.zeros((N, 28, 28, 4))}, ValueError, r"\(N, H, W, 3\).*alpha"),
        ({"images": np.zeros((N, 28, 28, 2), np.uint8)}, ValueError, r"\(N, H, W, 3\)"),
        ({"images": np.zeros((N - 1, 28, 28, 3))}, ValueError, r"\(50, H, W, 3\)"),
        ({"images": np.full((N, 8, 8, 3), -0.5)}, ValueError, r"\[0, 1\]"),
        ({"images": np.zeros((N, 9000, 8, 3), np.uint8)}, ValueError, "cannot fit"),
        ({"images": np.full((N, 28, 28), 1.5)}, ValueError, r"\[0, 1\]"),
        ({"images": np.full((N, 28, 28), 256)}, TypeError, r"uint8 \(0..255\)"),
        ({"images": np.zeros((N, 28, 9000), np.uint8)}, ValueError, "cannot fit"),
        ({"tensor_name": "my embedding"}, ValueError, "identifier"),
    ],
)
def test_bad_input_raises_before_writing(data, tmp_path, kwargs, error, match):
    args = {"latents": data[0], **kwargs}
    with pytest.raises(error, match=match):
        projector.export_projector(tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()
