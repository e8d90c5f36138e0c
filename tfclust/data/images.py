"""Your own images: a folder of PNG/JPEG/BMP/GIF files, or a ``.npy``/``.npz`` array file.

``load_images`` returns every image in memory as uint8 numpy; ``image_dataset`` streams them
through ``tf.data`` (for folders larger than memory). Both decode and resize with TensorFlow.

A folder is searched recursively for files whose names end in ``.png``, ``.jpg``, ``.jpeg``,
``.bmp`` or ``.gif`` (in any case); other files, and hidden files and folders (names starting
with ``.``), are ignored. As in ``keras.utils.image_dataset_from_directory``, when every image
sits in a sub-folder, the first-level sub-folder names, sorted, are the class names and each
image's label is its sub-folder's index; images directly in the folder give no labels. Images
are ordered by their path relative to the folder (so by class, then by file name).

Pixels: alpha channels are dropped (grey+alpha becomes grey, RGBA becomes RGB); an animated GIF
gives its first frame (GIF files always decode as RGB).
"""

from __future__ import annotations

import logging
import os
import re
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfclust._files import as_path
from tfclust._validation import check_int
from tfclust.data.pipeline import check_images
from tfclust.data.sources import DataUnavailableError, check_labels

logger = logging.getLogger("tfclust.data")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
"""File name endings read as images (compared in lower case)."""
ARRAY_EXTENSIONS = (".npy", ".npz")
NPZ_KEYS = (("x", "y"), ("images", "labels"), ("x_train", "y_train"))
"""``(images, labels)`` array names looked for in a ``.npz`` archive, in this order."""
COLOR_MODES = ("auto", "grayscale", "rgb")
_MAX_LISTED = 5  # file names quoted in one warning


class ImageSet(NamedTuple):
    """Images loaded by :func:`load_images`, with their labels and origin.

    Attributes:
      images: uint8 numpy array (N, H, W, C), C is 1 (grayscale) or 3 (RGB).
      labels: int64 (N,) class ids, or None.
      class_names: the class of each label id (a folder's sub-folder names), or None.
      file_names: each image's path relative to the folder, ``/``-separated; None for arrays.
      source: where the images came from (``"folder <path>"`` or ``"file <path>"``).

    Examples:
      >>> import os, tempfile
      >>> import numpy as np
      >>> from tfclust.data import load_images
      >>> path = os.path.join(tempfile.mkdtemp(), "digits.npy")
      >>> np.save(path, np.zeros((4, 8, 8), dtype=np.uint8))
      >>> data = load_images(path)
      >>> data.images.shape, data.labels, data.file_names
      ((4, 8, 8, 1), None, None)
    """

    images: np.ndarray
    labels: np.ndarray | None
    class_names: list[str] | None
    file_names: list[str] | None
    source: str


class ImageInfo(NamedTuple):
    """What :func:`image_dataset` will stream: the images' shape, labels and origin.

    Attributes:
      image_shape: ``(H, W, C)`` of every image; C is 1 (grayscale) or 3 (RGB).
      n_images: how many images the data set yields (unreadable files skipped left out).
      labels: int64 (N,) class ids, or None.
      class_names: the class of each label id, or None.
      file_names: each image's path relative to the folder, ``/``-separated; None for arrays.
      source: where the images come from (``"folder <path>"`` or ``"file <path>"``).

    Examples:
      >>> import os, tempfile
      >>> import numpy as np
      >>> from tfclust.data import image_dataset
      >>> path = os.path.join(tempfile.mkdtemp(), "digits.npy")
      >>> np.save(path, np.zeros((4, 8, 8, 3), dtype=np.uint8))
      >>> dataset, info = image_dataset(path)
      >>> info.image_shape, info.n_images
      ((8, 8, 3), 4)
    """

    image_shape: tuple[int, int, int]
    n_images: int
    labels: np.ndarray | None
    class_names: list[str] | None
    file_names: list[str] | None
    source: str


def load_images(
    path,
    *,
    image_size: tuple[int, int] | None = None,
    color_mode: str = "auto",
    labels="inferred",
    on_error: str = "raise",
    batch_size: int = 256,
) -> ImageSet:
    """Load your own images into memory as uint8 numpy.

    A folder's files are decoded once each, in parallel through ``tf.data``; for folders
    larger than memory, stream them with :func:`image_dataset` instead.

    Args:
      path: a folder of image files (searched recursively), a ``.npy``/``.npz`` file holding
        images, or the images themselves (a numpy array or ``tf.Tensor``): (N, H, W) or
        (N, H, W, C) with C in {1, 3, 4}, uint8 (0..255) or float (0..1); floats are scaled to
        0..255 and rounded. A ``.npz`` holds the images under ``x``,
        ``images`` or ``x_train``, and optionally labels under ``y``, ``labels`` or ``y_train``
        (the name paired with the images' name).
      image_size: ``(height, width)`` to resize every image to (bilinear, antialiased, rounded
        back to uint8); None (the default) keeps the size, which must then be the same for all.
      color_mode: ``"grayscale"`` (1 channel), ``"rgb"`` (3 channels) or ``"auto"``: grayscale
        when every image has one channel, else RGB (grey images are then converted to RGB).
      labels: ``"inferred"`` (from the sub-folder names, or a ``.npz``'s labels), None (no
        labels), or an array-like of whole numbers in 0..2**31-1, one per image in the order
        described in the module docstring (before unreadable files are skipped).
      on_error: what to do with an image file that cannot be decoded: ``"raise"`` an error
        naming it, or ``"skip"`` it with a logged warning naming it.
      batch_size: images decoded per ``tf.data`` batch (default 256).

    Returns:
      An :class:`ImageSet`: ``images`` uint8 (N, H, W, C), ``labels``, ``class_names``,
      ``file_names`` and ``source``.

    Raises:
      FileNotFoundError: ``path`` does not exist (a :class:`DataUnavailableError`), or the
        folder holds no image files (the message names the extensions looked for).
      ValueError: a corrupt image (with ``on_error="raise"``), images of different sizes
        without ``image_size``, an array file of the wrong shape, dtype or range, labels of the
        wrong length or values, or a bad argument.
      TypeError: an argument of the wrong type.

    Examples:
      >>> import os, tempfile
      >>> import numpy as np
      >>> import tensorflow as tf
      >>> from tfclust.data import load_images
      >>> folder = tempfile.mkdtemp()
      >>> for name in ("cats/a.png", "cats/b.png", "dogs/c.png"):
      ...     os.makedirs(os.path.dirname(os.path.join(folder, name)), exist_ok=True)
      ...     tf.io.write_file(os.path.join(folder, name),
      ...                      tf.io.encode_png(np.zeros((6, 5, 1), np.uint8)))
      >>> data = load_images(folder)
      >>> data.images.shape, data.labels.tolist(), data.class_names
      ((3, 6, 5, 1), [0, 0, 1], ['cats', 'dogs'])
      >>> data.file_names
      ['cats/a.png', 'cats/b.png', 'dogs/c.png']
      >>> load_images(folder, image_size=(4, 4), color_mode="rgb").images.shape
      (3, 4, 4, 3)
    """
    batch_size = check_int(batch_size, name="batch_size", low=1)
    if isinstance(path, str | bytes | os.PathLike):
        path = _check_path(path)
        if os.path.isdir(path):
            size, labels = _check_options(image_size, color_mode, labels, on_error)
            return _load_folder(path, size, color_mode, labels, on_error, batch_size)
    dataset, info = image_dataset(
        path, image_size=image_size, color_mode=color_mode, labels=labels, on_error=on_error
    )
    images = np.empty((info.n_images, *info.image_shape), dtype=np.uint8)
    start = 0
    for batch in dataset.batch(batch_size):
        batch = (batch[0] if info.labels is not None else batch).numpy()
        images[start : start + len(batch)] = batch
        start += len(batch)
    if start != info.n_images:  # files removed or changed while loading
        raise ValueError(f"{info.source}: expected {info.n_images} images, read {start}")
    return ImageSet(images, info.labels, info.class_names, info.file_names, info.source)


def image_dataset(
    path,
    *,
    image_size: tuple[int, int] | None = None,
    color_mode: str = "auto",
    labels="inferred",
    on_error: str = "raise",
) -> tuple[tf.data.Dataset, ImageInfo]:
    """Stream your own images through ``tf.data``, for folders larger than memory.

    The files are listed and every image is decoded once up front (to find unreadable files,
    the images' sizes and channels; only their shapes are kept), then decoded again as the
    data set is iterated. Arguments, order and errors are those of :func:`load_images`;
    ``.npy``/``.npz`` files are read into memory.

    Returns:
      ``(dataset, info)``: a ``tf.data.Dataset`` of uint8 images (H, W, C), unbatched, in
      order, or of ``(image, label)`` pairs (label int64) when there are labels; and an
      :class:`ImageInfo` with the shape, the number of images, labels, class names, file names
      and source.

    Examples:
      >>> import os, tempfile
      >>> import numpy as np
      >>> import tensorflow as tf
      >>> from tfclust.data import image_dataset
      >>> folder = tempfile.mkdtemp()
      >>> for i in range(5):
      ...     tf.io.write_file(os.path.join(folder, f"{i}.png"),
      ...                      tf.io.encode_png(np.full((3, 4, 3), i, np.uint8)))
      >>> dataset, info = image_dataset(folder)
      >>> info.image_shape, info.n_images, info.labels
      ((3, 4, 3), 5, None)
      >>> [int(image[0, 0, 0]) for image in dataset]
      [0, 1, 2, 3, 4]
    """
    size, labels = _check_options(image_size, color_mode, labels, on_error)
    if isinstance(path, np.ndarray | tf.Tensor):  # the images themselves
        images = path.numpy() if isinstance(path, tf.Tensor) else path
        return _array_dataset(images, None, size, color_mode, labels, "images")
    path = _check_path(path)
    if os.path.isdir(path):
        return _folder_dataset(path, size, color_mode, labels, on_error)
    if path.lower().endswith(ARRAY_EXTENSIONS):
        return _array_dataset(*_read_array_file(path), size, color_mode, labels, path)
    raise ValueError(
        f"{path} is neither a folder of images nor a {' or '.join(ARRAY_EXTENSIONS)} array file"
    )


def check_load_options(image_size, color_mode: str, on_error: str) -> tuple[int, int] | None:
    """Check :func:`load_images`' ``image_size``, ``color_mode`` and ``on_error`` (the run's
    settings too); returns ``image_size`` as ``(height, width)`` or None.

    Examples:
      >>> from tfclust.data.images import check_load_options
      >>> check_load_options([64, 48], "rgb", "skip")
      (64, 48)
      >>> check_load_options(None, "sepia", "raise")
      Traceback (most recent call last):
      ...
      ValueError: color_mode must be one of ('auto', 'grayscale', 'rgb'), got 'sepia'
    """
    size = _check_image_size(image_size)
    if color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be one of {COLOR_MODES}, got {color_mode!r}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    return size


def _check_options(image_size, color_mode: str, labels, on_error: str):
    """``(size, labels)``: the checked ``image_size`` and ``labels`` (an array, "inferred" or
    None), after :func:`check_load_options`."""
    size = check_load_options(image_size, color_mode, on_error)
    if isinstance(labels, str) and not _is_inferred(labels):
        raise ValueError(f"labels must be 'inferred', None or an array of labels, got {labels!r}")
    if not (labels is None or _is_inferred(labels)):
        labels = np.asarray(labels)
    return size, labels


def _is_inferred(labels) -> bool:
    return isinstance(labels, str) and labels == "inferred"


def _check_path(path) -> str:
    path = as_path(path, name="path", what="a folder or file path")
    if not os.path.exists(path):
        raise DataUnavailableError(
            f"{path} does not exist (expected a folder of images or a .npy/.npz file)"
        )
    return path


def _check_image_size(image_size) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if isinstance(image_size, (str, bytes)) or not hasattr(image_size, "__len__"):
        raise TypeError(f"image_size must be (height, width) or None, got {image_size!r}")
    if len(image_size) != 2:
        raise ValueError(f"image_size must be (height, width), got {image_size!r}")
    height = check_int(image_size[0], name="image_size height", low=1)
    width = check_int(image_size[1], name="image_size width", low=1)
    return height, width


# ---------------------------------------------------------------------------------------------
# Folders


def _list_images(folder: str) -> tuple[list[str], int]:
    """Image files under ``folder`` as ``/``-separated relative paths, sorted; and the number
    of other files ignored."""
    found, ignored = [], 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel_root = os.path.relpath(root, folder)
        parts = () if rel_root == os.curdir else tuple(rel_root.split(os.sep))
        for name in files:
            if name.startswith(".") or not name.lower().endswith(IMAGE_EXTENSIONS):
                ignored += 1
            else:
                found.append((*parts, name))
    found.sort()  # by folder, then by name: by class, then by file name
    return ["/".join(parts) for parts in found], ignored


class _Files(NamedTuple):
    """A folder's image files before decoding: names relative to the folder, paths, labels."""

    folder: str
    names: list[str]
    paths: list[bytes]
    labels: np.ndarray | None
    class_names: list[str] | None

    def keep(self, rows) -> _Files:
        return self._replace(
            names=[self.names[i] for i in rows],
            paths=[self.paths[i] for i in rows],
            labels=None if self.labels is None else self.labels[rows],
        )


def _list_folder(folder: str, labels) -> _Files:
    """The image files under ``folder`` with their labels (inferred, given or None)."""
    names, ignored = _list_images(folder)
    if ignored:
        logger.info("%s: ignored %d files that are not images", folder, ignored)
    if not names:
        state = "is empty" if not ignored else f"holds no image files ({ignored} other files)"
        raise DataUnavailableError(
            f"folder {folder} {state}: looked (recursively) for files ending in "
            f"{', '.join(IMAGE_EXTENSIONS)}"
        )
    class_names = None
    if _is_inferred(labels):
        labels, class_names = _infer_labels(folder, names)
    elif labels is not None:
        labels = check_labels(labels, len(names), f"{folder}: labels argument")
    paths = [os.fsencode(os.path.join(folder, *name.split("/"))) for name in names]
    return _Files(folder, names, paths, labels, class_names)


def _drop_unreadable(files: _Files, bad: list[int], on_error: str) -> _Files:
    """``files`` without those at ``bad`` (which cannot be decoded), or a ValueError naming
    them (``on_error="raise"``, or when none is left)."""
    if not bad:
        return files
    n = len(files.names)
    reasons = [(files.names[i], _decode_error(files.paths[i])) for i in bad]
    listed = "; ".join(f"{name} ({why})" for name, why in reasons[:_MAX_LISTED])
    more = f"; and {len(bad) - _MAX_LISTED} more" if len(bad) > _MAX_LISTED else ""
    if on_error == "raise" or len(bad) == n:
        raise ValueError(
            f"{files.folder}: {len(bad)} of {n} image files cannot be decoded: "
            f"{listed}{more}. Remove or fix them"
            + (", or pass on_error='skip' to leave them out" if on_error == "raise" else "")
        )
    logger.warning(
        "%s: skipped %d of %d image files that cannot be decoded: %s%s",
        files.folder,
        len(bad),
        n,
        listed,
        more,
    )
    return files.keep(np.setdiff1d(np.arange(n), bad))


def _common_size(files: _Files, shapes: np.ndarray) -> tuple[int, int]:
    """The (height, width) all images share, from their (N, 3) shapes; else a ValueError."""
    sizes = {tuple(s[:2]): i for i, s in reversed(list(enumerate(shapes.tolist())))}
    if len(sizes) > 1:
        (a, i), (b, j) = sorted(sizes.items(), key=lambda kv: kv[1])[:2]
        raise ValueError(
            f"{files.folder}: the images have {len(sizes)} different sizes, e.g. "
            f"{files.names[i]} is {a[0]}x{a[1]} and {files.names[j]} is {b[0]}x{b[1]} "
            "(height x width); pass image_size=(height, width) to resize them all"
        )
    return tuple(int(v) for v in shapes[0, :2])


def _folder_dataset(folder: str, size, color_mode: str, labels, on_error: str):
    source = f"folder {os.path.abspath(folder)}"
    files = _list_folder(folder, labels)
    shapes, bad = _scan(files.paths)
    files = _drop_unreadable(files, bad, on_error)
    shapes = np.delete(shapes, bad, axis=0)
    size = size or _common_size(files, shapes)
    channels = _target_channels(color_mode, bool((shapes[:, 2] == 1).all()))

    convert = bool((shapes[:, 2] != channels).any())
    resize = bool((shapes[:, :2] != size).any())

    def decode(path):
        image = _decode(path)
        image = _to_channels(image, channels) if convert else image
        image = _resize(image, size) if resize else image
        return tf.ensure_shape(image, [*size, channels])

    if files.labels is None:
        dataset = tf.data.Dataset.from_tensor_slices(files.paths).map(
            decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
    else:
        dataset = tf.data.Dataset.from_tensor_slices((files.paths, files.labels)).map(
            lambda p, y: (decode(p), y), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
    logger.info("%s: %d images of %dx%dx%d", source, len(files.names), *size, channels)
    info = ImageInfo(
        (*size, channels), len(files.names), files.labels, files.class_names, files.names, source
    )
    return dataset.prefetch(tf.data.AUTOTUNE), info


def _load_folder(folder: str, size, color_mode: str, labels, on_error: str, batch_size: int):
    """:func:`load_images` of a folder, decoding each file once (``image_dataset`` decodes
    twice: a scan for sizes, then the stream)."""
    files = _list_folder(folder, labels)
    fixed = None if color_mode == "auto" else _target_channels(color_mode, all_grey=False)

    def prepare(i, path):
        image = _decode(path)
        shape = tf.shape(image, out_type=tf.int64)
        if fixed is not None:
            image = _to_channels(image, fixed)
        return i, shape, image if size is None else _resize(image, size)

    n = len(files.paths)
    decoded = tf.data.Dataset.from_tensor_slices((tf.range(n, dtype=tf.int64), files.paths)).map(
        prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    try:  # the usual folder first: every file decodes, to one shape (a quarter faster)
        batches = list(decoded.batch(batch_size).prefetch(tf.data.AUTOTUNE).as_numpy_iterator())
    except tf.errors.OpError:  # a file that cannot be decoded, or images of several shapes
        batches = list(
            decoded.ignore_errors()
            .padded_batch(batch_size)  # pads only images of other sizes or channels
            .prefetch(tf.data.AUTOTUNE)
            .as_numpy_iterator()
        )
    index = np.concatenate([b[0] for b in batches]) if batches else np.zeros(0, np.int64)
    files = _drop_unreadable(files, np.setdiff1d(np.arange(n), index).tolist(), on_error)
    shapes = np.concatenate([b[1] for b in batches])
    size = size or _common_size(files, shapes)
    channels = fixed or _target_channels(color_mode, bool((shapes[:, 2] == 1).all()))
    images = np.empty((len(index), *size, channels), dtype=np.uint8)
    start = 0
    for _, batch_shapes, pixels in batches:
        out = images[start : start + len(pixels)]
        pixels = pixels[:, : size[0], : size[1]]
        out[...] = pixels[..., :channels]
        if channels == 3 and fixed is None:  # "auto" with some RGB: grey images tiled to RGB
            grey = batch_shapes[:, 2] == 1
            out[grey] = pixels[grey][..., :1]
        start += len(pixels)
    logger.info(
        "folder %s: %d images of %dx%dx%d", os.path.abspath(folder), len(images), *size, channels
    )
    return ImageSet(
        images, files.labels, files.class_names, files.names, f"folder {os.path.abspath(folder)}"
    )


def _infer_labels(folder: str, names: list[str]):
    """Labels from the first-level sub-folders, when every image sits in one; else None."""
    at_root = sum("/" not in name for name in names)
    if at_root:
        if at_root < len(names):
            logger.warning(
                "%s: %d images sit directly in the folder and %d in sub-folders: no labels "
                "inferred (put every image in a class sub-folder to get labels)",
                folder,
                at_root,
                len(names) - at_root,
            )
        return None, None
    classes = [name.split("/", 1)[0] for name in names]
    class_names = sorted(set(classes))
    index = {c: i for i, c in enumerate(class_names)}
    return np.array([index[c] for c in classes], dtype=np.int64), class_names


def _decode(path: tf.Tensor) -> tf.Tensor:
    """uint8 (H, W, C) with its own channels, alpha dropped: C is 1 or 3."""
    image = tf.io.decode_image(
        tf.io.read_file(path), channels=0, dtype=tf.uint8, expand_animations=False
    )
    channels = tf.shape(image)[-1]
    return image[..., : tf.where(channels % 2 == 0, channels - 1, channels)]


def _scan(paths: list[bytes]) -> tuple[np.ndarray, list[int]]:
    """Every file's decoded shape (N, 3) and the indices of the files that cannot be decoded."""
    n = len(paths)
    dataset = (
        tf.data.Dataset.from_tensor_slices((tf.range(n, dtype=tf.int64), paths))
        .map(
            lambda i, p: (i, tf.shape(_decode(p), out_type=tf.int64)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        .ignore_errors()
        .batch(1024)
    )
    shapes = np.zeros((n, 3), dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    for index, shape in dataset.as_numpy_iterator():
        shapes[index] = shape
        ok[index] = True
    return shapes, np.flatnonzero(~ok).tolist()


def _decode_error(path: bytes) -> str:
    """Why TensorFlow cannot decode ``path``: the first line of its error."""
    try:
        _decode(tf.constant(path))
    except (tf.errors.OpError, ValueError) as err:
        message = getattr(err, "message", None) or str(err)
        message = re.sub(r"\{\{function_node [^}]*\}\}", "", message)  # TF's op context
        message = re.sub(r"\[Op:\w+\].*", "", message, flags=re.DOTALL).strip()
        return message.splitlines()[0].strip() if message else type(err).__name__
    return "unreadable"  # readable now: changed since the scan


def _target_channels(color_mode: str, all_grey: bool) -> int:
    if color_mode == "grayscale":
        return 1
    if color_mode == "rgb":
        return 3
    return 1 if all_grey else 3


def _to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """uint8 (H, W, 1 or 3) -> uint8 (H, W, ``channels``): grey tiled to RGB, or RGB to grey."""
    have = tf.shape(image)[-1]
    if channels == 3:
        image = tf.cond(have == 1, lambda: tf.tile(image, [1, 1, 3]), lambda: image)
    else:
        image = tf.cond(have == 3, lambda: _to_grey(image), lambda: image)
    return tf.ensure_shape(image, [None, None, channels])


def _resize(image: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """uint8 (H, W, C) -> uint8 (``size``, C): bilinear, antialiased, rounded; unchanged if
    it already has that size."""

    def resize():
        resized = tf.image.resize(image, size, method="bilinear", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)

    same = tf.reduce_all(tf.shape(image)[:2] == tf.constant(size))
    image = tf.cond(same, lambda: image, resize)
    return tf.ensure_shape(image, [*size, None])


def _to_grey(image: tf.Tensor) -> tf.Tensor:
    """RGB -> grey with ITU-R 601 luma weights (those of ``tf.image.rgb_to_grayscale``)."""
    weights = tf.constant([0.2989, 0.5870, 0.1140], dtype=tf.float32)
    grey = tf.reduce_sum(tf.cast(image, tf.float32) * weights, axis=-1, keepdims=True)
    return tf.cast(tf.clip_by_value(tf.round(grey), 0, 255), tf.uint8)


# ---------------------------------------------------------------------------------------------
# Array files


def _array_dataset(images, file_labels, size, color_mode: str, labels, origin: str):
    """The data set of in-memory images (from a file, or an array argument); ``origin`` names
    them in errors (a file's path, or ``"images"``)."""
    source = f"file {os.path.abspath(origin)}" if origin != "images" else "array"
    images = _check_array_images(images, origin)
    if _is_inferred(labels):
        labels = None if file_labels is None else check_labels(file_labels, len(images), origin)
    elif labels is not None:
        labels = check_labels(labels, len(images), f"{origin}: labels argument")
    channels = _target_channels(color_mode, images.shape[-1] == 1)
    size = images.shape[1:3] if size is None else size
    dataset = tf.data.Dataset.from_tensor_slices(images).map(
        lambda x: _resize(_to_channels(x, channels), size),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if labels is not None:
        dataset = tf.data.Dataset.zip(dataset, tf.data.Dataset.from_tensor_slices(labels))
    logger.info("%s: %d images of %dx%dx%d", source, len(images), *size, channels)
    info = ImageInfo((*size, channels), len(images), labels, None, None, source)
    return dataset.prefetch(tf.data.AUTOTUNE), info


def _read_array_file(path: str):
    """``(images, labels or None)`` from a ``.npy`` or ``.npz`` file."""
    try:
        if path.lower().endswith(".npy"):
            return np.load(path, allow_pickle=False), None
        with np.load(path, allow_pickle=False) as archive:
            for x_key, y_key in NPZ_KEYS:
                if x_key in archive.files:
                    y = archive[y_key] if y_key in archive.files else None
                    return archive[x_key], y
            found = ", ".join(archive.files) or "none"
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{path}: cannot read the array file ({err})") from err
    wanted = ", ".join(x for x, _ in NPZ_KEYS)
    raise ValueError(f"{path}: no images array in the archive (looked for {wanted}; found {found})")


def _check_array_images(images: np.ndarray, origin: str) -> np.ndarray:
    """uint8 (N, H, W, 1 or 3) from an array file's images (``origin`` its path) or from an
    array argument (``origin`` is ``"images"``), else a ValueError (a TypeError for an argument
    of the wrong dtype)."""
    name = "images" if origin == "images" else f"{origin}: images"
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"{name} must have shape (N, H, W) or (N, H, W, C) with C in 1, 3 or 4 "
            f"(4: RGBA, alpha dropped), got {images.shape}"
        )
    if images.shape[-1] == 4:  # RGBA: the alpha channel is dropped, not validated
        images = images[..., :3]
    try:  # the one image validator: dtype, emptiness, NaN and range
        images = check_images(images, name)
    except TypeError as err:  # a file's content, not an argument, has the wrong type
        if origin == "images":
            raise
        raise ValueError(str(err)) from err
    if images.dtype != np.uint8:
        images = np.round(images * 255.0).astype(np.uint8)
    return images
