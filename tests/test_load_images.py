"""``tfclust.load_images`` / ``image_dataset``: folders of image files and .npy/.npz arrays."""

import io
import logging

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import tfclust
from tfclust.data import DataUnavailableError, ImageSet, image_dataset, load_images

RNG = np.random.default_rng(0)


def random_image(h, w, c):
    return RNG.integers(0, 256, (h, w, c), dtype=np.uint8)


def write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_png(path, image):
    return write(path, tf.io.encode_png(image).numpy())


def write_jpeg(path, image):
    return write(path, tf.io.encode_jpeg(image, quality=90).numpy())


def write_pil(path, image, fmt):
    buffer = io.BytesIO()
    Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(buffer, fmt)
    return write(path, buffer.getvalue())


@pytest.fixture
def classes(tmp_path):
    """Grey 7x5 PNGs in class folders, written out of order; returns (folder, expected)."""
    expected = {}
    for name in ["shirt/b.png", "bag/z.png", "shirt/a.png", "bag/c.PNG", "coat/x/deep.png"]:
        expected[name] = random_image(7, 5, 1)
        write_png(tmp_path / name, expected[name])
    return tmp_path, expected


# --------------------------------------------------------------------------- folders: good input


def test_class_folders_infer_labels_in_order(classes):
    folder, expected = classes
    data = load_images(folder)
    assert isinstance(data, ImageSet)
    order = ["bag/c.PNG", "bag/z.png", "coat/x/deep.png", "shirt/a.png", "shirt/b.png"]
    assert data.file_names == order
    assert data.class_names == ["bag", "coat", "shirt"]
    assert data.labels.dtype == np.int64 and data.labels.tolist() == [0, 0, 1, 2, 2]
    assert data.images.dtype == np.uint8 and data.images.shape == (5, 7, 5, 1)
    np.testing.assert_array_equal(data.images, np.stack([expected[n] for n in order]))
    assert data.source == f"folder {folder}"


def test_top_level_export():
    assert tfclust.load_images is load_images


def test_images_in_root_folder_have_no_labels(tmp_path):
    for i in range(3):
        write_png(tmp_path / f"{i}.png", random_image(4, 4, 1))
    data = load_images(tmp_path)
    assert data.labels is None and data.class_names is None
    assert data.file_names == ["0.png", "1.png", "2.png"]


def test_root_and_subfolder_images_mixed_give_no_labels_with_warning(tmp_path, caplog):
    write_png(tmp_path / "loose.png", random_image(4, 4, 1))
    write_png(tmp_path / "cls" / "a.png", random_image(4, 4, 1))
    with caplog.at_level(logging.WARNING, logger="tfclust.data"):
        data = load_images(tmp_path)
    assert data.labels is None and data.file_names == ["cls/a.png", "loose.png"]
    assert "1 images sit directly in the folder" in caplog.text


def test_labels_none_and_array(classes):
    folder, _ = classes
    assert load_images(folder, labels=None).labels is None
    data = load_images(folder, labels=[4, 3, 2, 1, 0.0])
    assert data.labels.tolist() == [4, 3, 2, 1, 0] and data.labels.dtype == np.int64
    assert data.class_names is None


def test_rgb_jpeg(tmp_path):
    written = [write_jpeg(tmp_path / f"photo {i}.jpg", random_image(9, 6, 3)) for i in range(3)]
    data = load_images(tmp_path)
    assert data.images.shape == (3, 9, 6, 3)
    for image, path in zip(data.images, written, strict=True):
        np.testing.assert_array_equal(image, tf.io.decode_jpeg(path.read_bytes()).numpy())


def test_color_modes(tmp_path):
    grey, rgb = random_image(4, 4, 1), random_image(4, 4, 3)
    write_png(tmp_path / "a_grey.png", grey)
    write_png(tmp_path / "b_rgb.png", rgb)
    auto = load_images(tmp_path).images  # mixed: RGB, grey copied to the three channels
    assert auto.shape == (2, 4, 4, 3)
    np.testing.assert_array_equal(auto[0], np.repeat(grey, 3, axis=-1))
    np.testing.assert_array_equal(auto[1], rgb)
    as_grey = load_images(tmp_path, color_mode="grayscale").images
    assert as_grey.shape == (2, 4, 4, 1)
    np.testing.assert_array_equal(as_grey[0], grey)
    reference = tf.image.rgb_to_grayscale(rgb).numpy().astype(int)
    assert np.abs(as_grey[1].astype(int) - reference).max() <= 1
    (tmp_path / "b_rgb.png").unlink()
    assert load_images(tmp_path).images.shape == (1, 4, 4, 1)  # all grey: grayscale
    assert load_images(tmp_path, color_mode="rgb").images.shape == (1, 4, 4, 3)


def test_alpha_channels_are_dropped(tmp_path):
    rgba, grey_alpha = random_image(3, 3, 4), random_image(3, 3, 2)
    write_png(tmp_path / "a.png", rgba)
    write_png(tmp_path / "b.png", grey_alpha)
    write_png(tmp_path / "grey" / "c.png", grey_alpha)
    images = load_images(tmp_path, labels=None).images
    np.testing.assert_array_equal(images[0], rgba[..., :3])
    np.testing.assert_array_equal(images[1], np.repeat(grey_alpha[..., :1], 3, axis=-1))
    only_grey = load_images(tmp_path / "grey").images  # grey + alpha alone: grayscale
    np.testing.assert_array_equal(only_grey, grey_alpha[np.newaxis, ..., :1])


def test_bmp_and_gif(tmp_path):
    grey, rgb = random_image(5, 6, 1), random_image(5, 6, 3)
    write_pil(tmp_path / "a.bmp", rgb, "BMP")
    write_pil(tmp_path / "b.gif", grey, "GIF")  # GIF decodes as RGB, palette kept exact
    images = load_images(tmp_path).images
    assert images.shape == (2, 5, 6, 3)
    np.testing.assert_array_equal(images[0], rgb)
    np.testing.assert_array_equal(images[1], np.repeat(grey, 3, axis=-1))


def test_mixed_sizes_need_image_size(tmp_path):
    small, large = random_image(8, 8, 1), random_image(16, 12, 1)
    write_png(tmp_path / "a small.png", small)
    write_png(tmp_path / "b.png", small)
    write_png(tmp_path / "c large.png", large)
    with pytest.raises(ValueError) as err:
        load_images(tmp_path)
    message = str(err.value)
    assert "a small.png is 8x8" in message and "c large.png is 16x12" in message
    assert "image_size=(height, width)" in message
    data = load_images(tmp_path, image_size=(8, 8))
    assert data.images.shape == (3, 8, 8, 1) and data.images.dtype == np.uint8
    np.testing.assert_array_equal(data.images[0], small)  # already 8x8: untouched
    resized = tf.image.resize(large, (8, 8), antialias=True).numpy()
    np.testing.assert_array_equal(data.images[2], np.round(resized).astype(np.uint8))


def test_non_image_files_and_hidden_files_are_ignored(classes, caplog):
    folder, _ = classes
    write(folder / "README.txt", b"hello")
    write(folder / "bag" / "notes.csv", b"1,2")
    write(folder / "bag" / "._z.png", b"mac resource fork")  # hidden: would not decode
    write_png(folder / ".thumbnails" / "t.png", random_image(2, 2, 1))
    with caplog.at_level(logging.INFO, logger="tfclust.data"):
        data = load_images(folder)
    assert len(data.file_names) == 5 and data.class_names == ["bag", "coat", "shirt"]
    assert "ignored 3 files that are not images" in caplog.text


def test_unicode_and_spaces_in_names(tmp_path):
    image = random_image(4, 4, 1)
    write_png(tmp_path / "café au lait" / "été 1 😀.png", image)
    write_png(tmp_path / "Ärger" / "x y.png", image)
    data = load_images(tmp_path)
    assert data.class_names == ["café au lait", "Ärger"]
    assert data.file_names == ["café au lait/été 1 😀.png", "Ärger/x y.png"]
    np.testing.assert_array_equal(data.images[0], image)


# ----------------------------------------------------------------------------- folders: bad input


def test_missing_path(tmp_path):
    missing = tmp_path / "no such folder"
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_images(missing)


def test_empty_folder(tmp_path):
    with pytest.raises(DataUnavailableError) as err:
        load_images(tmp_path)
    assert str(tmp_path) in str(err.value) and "is empty" in str(err.value)
    assert ".png" in str(err.value) and ".jpeg" in str(err.value)


def test_folder_without_images(tmp_path):
    write(tmp_path / "a.txt", b"x")
    write(tmp_path / "sub" / "b.npy", b"x")
    with pytest.raises(FileNotFoundError) as err:
        load_images(tmp_path)
    assert str(tmp_path) in str(err.value) and "2 other files" in str(err.value)
    assert ".gif" in str(err.value)


@pytest.fixture
def with_corrupt(classes):
    folder, expected = classes
    write(folder / "bag" / "broken.png", b"this is not a PNG")
    jpeg = tf.io.encode_jpeg(random_image(7, 5, 3)).numpy()
    write(folder / "shirt" / "cut.jpg", jpeg[: len(jpeg) // 2])  # truncated
    return folder, expected


def test_corrupt_file_raises_naming_it(with_corrupt):
    folder, _ = with_corrupt
    with pytest.raises(ValueError) as err:
        load_images(folder)
    message = str(err.value)
    assert "2 of 7 image files cannot be decoded" in message
    assert "bag/broken.png (Unknown image file format" in message and "shirt/cut.jpg" in message
    assert "function_node" not in message and "[Op:" not in message
    assert "on_error='skip'" in message


def test_corrupt_file_skipped_with_warning(with_corrupt, caplog):
    folder, expected = with_corrupt
    with caplog.at_level(logging.WARNING, logger="tfclust.data"):
        data = load_images(folder, on_error="skip")
    assert "skipped 2 of 7" in caplog.text and "bag/broken.png" in caplog.text
    assert "shirt/cut.jpg" in caplog.text
    order = ["bag/c.PNG", "bag/z.png", "coat/x/deep.png", "shirt/a.png", "shirt/b.png"]
    assert data.file_names == order and data.labels.tolist() == [0, 0, 1, 2, 2]
    np.testing.assert_array_equal(data.images, np.stack([expected[n] for n in order]))
    # labels given for every file listed; those of the skipped files are dropped
    given = load_images(folder, on_error="skip", labels=[10, 11, 12, 13, 14, 15, 16])
    assert given.labels.tolist() == [11, 12, 13, 14, 15]  # broken.png first, cut.jpg last


def test_only_corrupt_files_raise_even_when_skipping(tmp_path):
    write(tmp_path / "a.png", b"junk")
    with pytest.raises(ValueError, match="1 of 1 image files cannot be decoded: a.png"):
        load_images(tmp_path, on_error="skip")


@pytest.mark.parametrize(
    "labels, match",
    [
        ([0, 1, 2, 3], r"5 images but labels of shape \(4,\)"),
        ([[0, 1, 2, 3, 4]], r"labels of shape \(1, 5\)"),
        ([0, 1, 2, 3, 4.5], "whole numbers"),
        ([0, 1, 2, 3, -1], "must lie in 0.."),
        (["a", "b", "c", "d", "e"], "expected integers"),
    ],
)
def test_bad_labels_argument(classes, labels, match):
    folder, _ = classes
    with pytest.raises(ValueError, match=match):
        load_images(folder, labels=labels)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"color_mode": "rgba"}, ValueError, "color_mode"),
        ({"on_error": "ignore"}, ValueError, "on_error"),
        ({"image_size": 28}, TypeError, "image_size"),
        ({"image_size": (28,)}, ValueError, "image_size"),
        ({"image_size": (0, 5)}, ValueError, "image_size height"),
        ({"image_size": (5, 2.5)}, TypeError, "image_size width"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"labels": "folders"}, ValueError, "labels must be 'inferred', None or"),
    ],
)
def test_bad_arguments(classes, kwargs, error, match):
    folder, _ = classes
    with pytest.raises(error, match=match):
        load_images(folder, **kwargs)


def test_path_that_is_neither_folder_nor_array_file(tmp_path):
    png = write_png(tmp_path / "one.png", random_image(2, 2, 1))
    with pytest.raises(ValueError, match="neither a folder of images nor a .npy or .npz"):
        load_images(png)
    with pytest.raises(TypeError, match="path"):
        load_images(None)


# ---------------------------------------------------------------------------------- array files


def test_npy_grey_uint8(tmp_path):
    images = RNG.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    np.save(tmp_path / "x.npy", images)
    data = load_images(tmp_path / "x.npy")
    assert data.images.shape == (6, 5, 4, 1) and data.images.dtype == np.uint8
    np.testing.assert_array_equal(data.images[..., 0], images)
    assert data.labels is None and data.file_names is None and data.class_names is None
    assert data.source == f"file {tmp_path / 'x.npy'}"
    assert load_images(tmp_path / "x.npy", labels=np.arange(6)).labels.tolist() == list(range(6))
    with pytest.raises(ValueError, match=r"6 images but labels of shape \(5,\)"):
        load_images(tmp_path / "x.npy", labels=np.arange(5))


def test_npy_rgb_float(tmp_path):
    images = RNG.random((3, 4, 5, 3)).astype(np.float32)
    images[0, 0, 0] = [0.0, 1.0, 0.5]
    np.save(tmp_path / "x.npy", images)
    data = load_images(tmp_path / "x.npy")
    assert data.images.shape == (3, 4, 5, 3) and data.images.dtype == np.uint8
    np.testing.assert_array_equal(data.images, np.round(images * 255).astype(np.uint8))
    assert data.images[0, 0, 0].tolist() == [0, 255, 128]
    grey = load_images(tmp_path / "x.npy", color_mode="grayscale", image_size=(2, 2)).images
    assert grey.shape == (3, 2, 2, 1)


def test_npy_rgba_drops_alpha(tmp_path):
    images = RNG.integers(0, 256, (2, 3, 3, 4), dtype=np.uint8)
    np.save(tmp_path / "x.npy", images)
    np.testing.assert_array_equal(load_images(tmp_path / "x.npy").images, images[..., :3])


@pytest.mark.parametrize(
    "array, match",
    [
        (np.zeros((2, 4, 4), np.int32), "dtype int32"),
        (np.zeros((2, 4, 4), np.float64) + 2.0, r"must lie in \[0, 1\]"),
        (np.full((2, 4, 4), 255.0), r"divide uint8 pixels by 255"),
        (np.array([[[np.nan]]]), "NaN"),
        (np.zeros((2, 4, 4, 2), np.uint8), r"C in 1, 3 or 4"),
        (np.zeros((4, 4), np.uint8), r"got \(4, 4\)"),
        (np.zeros((0, 4, 4), np.uint8), "empty"),
        (np.full((2, 4, 4), "a"), "dtype <U1"),
        (np.zeros(3, np.uint8), r"got \(3,\)"),
    ],
)
def test_bad_arrays(tmp_path, array, match):
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(ValueError, match=match) as err:
        load_images(tmp_path / "x.npy")
    assert "x.npy" in str(err.value)


def test_corrupt_npy(tmp_path):
    write(tmp_path / "x.npy", b"not numpy")
    with pytest.raises(ValueError, match="x.npy: cannot read the array file"):
        load_images(tmp_path / "x.npy")


def test_npz_with_and_without_labels(tmp_path):
    images = RNG.integers(0, 256, (5, 4, 4), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", x=images, y=np.array([3, 1, 4, 1, 5]))
    data = load_images(tmp_path / "a.npz")
    np.testing.assert_array_equal(data.images[..., 0], images)
    assert data.labels.tolist() == [3, 1, 4, 1, 5] and data.labels.dtype == np.int64
    assert load_images(tmp_path / "a.npz", labels=None).labels is None
    assert load_images(tmp_path / "a.npz", labels=np.zeros(5)).labels.tolist() == [0] * 5
    np.savez(tmp_path / "b.npz", images=images)
    assert load_images(tmp_path / "b.npz").labels is None
    np.savez(tmp_path / "c.npz", x_train=images, y_train=np.arange(5), x_test=images[:1])
    assert load_images(tmp_path / "c.npz").labels.tolist() == [0, 1, 2, 3, 4]


def test_bad_npz(tmp_path):
    images = np.zeros((5, 4, 4), np.uint8)
    np.savez(tmp_path / "a.npz", pixels=images)
    with pytest.raises(ValueError, match=r"no images array.*x, images, x_train.*found pixels"):
        load_images(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", x=images, y=np.arange(4))
    with pytest.raises(ValueError, match=r"b.npz: 5 images but labels of shape \(4,\)"):
        load_images(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", x=images, y=np.array([0, 1, 2, 3, 0.5]))
    with pytest.raises(ValueError, match="whole numbers"):
        load_images(tmp_path / "c.npz")
    np.savez(tmp_path / "d.npz", x=images.astype(np.int64))
    with pytest.raises(ValueError, match="dtype int64"):
        load_images(tmp_path / "d.npz")


# ------------------------------------------------------------------------------------ streaming


def test_stream_matches_eager_folder(with_corrupt):
    folder, _ = with_corrupt
    eager = load_images(folder, image_size=(6, 6), color_mode="rgb", on_error="skip", batch_size=2)
    dataset, info = image_dataset(folder, image_size=(6, 6), color_mode="rgb", on_error="skip")
    assert info.image_shape == (6, 6, 3) and info.n_images == 5
    assert info.file_names == eager.file_names and info.class_names == eager.class_names
    assert dataset.element_spec[0].shape == (6, 6, 3) and dataset.element_spec[0].dtype == tf.uint8
    pairs = list(dataset.as_numpy_iterator())
    np.testing.assert_array_equal(np.stack([x for x, _ in pairs]), eager.images)
    assert [int(y) for _, y in pairs] == eager.labels.tolist()


def test_stream_matches_eager_arrays(tmp_path):
    images = RNG.integers(0, 256, (7, 5, 5), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", x=images, y=np.arange(7) % 2)
    eager = load_images(tmp_path / "a.npz", batch_size=3)
    dataset, info = image_dataset(tmp_path / "a.npz")
    assert info.image_shape == (5, 5, 1) and info.n_images == 7 and info.file_names is None
    pairs = list(dataset.as_numpy_iterator())
    np.testing.assert_array_equal(np.stack([x for x, _ in pairs]), eager.images)
    assert [int(y) for _, y in pairs] == [0, 1, 0, 1, 0, 1, 0]


# ----------------------------------------------------------------------------- arrays as arguments


def test_arrays_passed_directly():
    grey = RNG.integers(0, 256, (5, 6, 7), dtype=np.uint8)
    data = load_images(grey, labels=[0, 1, 0, 1, 2])
    assert data.images.shape == (5, 6, 7, 1) and data.source == "array"
    np.testing.assert_array_equal(data.images[..., 0], grey)
    assert data.labels.tolist() == [0, 1, 0, 1, 2] and data.file_names is None
    rgb = tf.constant(RNG.random((3, 4, 4, 3)).astype(np.float32))
    data = load_images(rgb, image_size=(8, 8))
    assert data.images.shape == (3, 8, 8, 3) and data.images.dtype == np.uint8
    rgba = RNG.integers(0, 256, (2, 4, 4, 4), dtype=np.uint8)
    np.testing.assert_array_equal(load_images(rgba).images, rgba[..., :3])
    assert load_images(rgba, color_mode="grayscale").images.shape == (2, 4, 4, 1)


@pytest.mark.parametrize(
    "images, error, match",
    [
        (np.zeros((2, 4, 4), np.int32), TypeError, "images must be uint8"),
        (np.full((2, 4, 4), 2.0), ValueError, r"must lie in \[0, 1\]"),
        (np.zeros((2, 4, 4, 2), np.uint8), ValueError, "C in 1, 3 or 4"),
        (np.zeros((0, 4, 4), np.uint8), ValueError, "images is empty"),
        (np.zeros((4, 4), np.uint8), ValueError, r"\(N, H, W\)"),
    ],
)
def test_bad_arrays_passed_directly(images, error, match):
    with pytest.raises(error, match=match):
        load_images(images)


def test_labels_of_arrays_passed_directly_are_checked():
    with pytest.raises(ValueError, match="labels"):
        load_images(np.zeros((3, 4, 4), np.uint8), labels=[0, 1])


@pytest.mark.parametrize("image_size", [None, (3, 5)])
@pytest.mark.parametrize("color_mode", ["auto", "grayscale", "rgb"])
def test_one_pass_load_matches_stream_with_grey_and_rgb_mixed(tmp_path, image_size, color_mode):
    """load_images decodes a folder once; batches of only grey, only RGB and both must give
    what the stream gives."""
    for i, c in enumerate([1, 1, 1, 3, 1, 3, 3]):
        write_png(tmp_path / f"{i}.png", random_image(6, 4, c))
    data = load_images(tmp_path, image_size=image_size, color_mode=color_mode, batch_size=2)
    dataset, info = image_dataset(tmp_path, image_size=image_size, color_mode=color_mode)
    assert data.images.shape == (7, *info.image_shape)
    np.testing.assert_array_equal(data.images, np.stack(list(dataset.as_numpy_iterator())))
