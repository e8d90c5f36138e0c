"""Export latents to TensorBoard's Embedding Projector.

``export_projector(log_dir, latents, metadata, images)`` writes, as in the
``tensorboard.plugins.projector`` guide:

* a checkpoint of the embedding variable (``tf.train.Checkpoint``; tensor
  ``"<tensor_name>/.ATTRIBUTES/VARIABLE_VALUE"``), found by TensorBoard as the directory's latest
  checkpoint;
* ``metadata.tsv``: one row per point, with a header row when there is more than one column;
* ``sprite.png``: the thumbnails in a square, row-major grid, a grey (1-channel) PNG for grey
  thumbnails and an RGB one for RGB thumbnails (TensorBoard accepts at most 8,192 x 8,192
  pixels; larger exports are subsampled, with a warning);
* ``projector_config.pbtxt`` tying them together (paths relative to ``log_dir``).

View with ``tensorboard --logdir LOG_DIR`` and open the "Projector" tab. All file I/O goes
through ``tf.io.gfile``, so ``log_dir`` may also be a ``gs://`` path.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf
from tensorboard.plugins import projector
from tensorboard.plugins.projector.metadata import PROJECTOR_FILENAME

from tfclust._validation import check_array, check_int
from tfclust.data.pipeline import check_images

SPRITE_MAX_PIXELS = 8192
"""TensorBoard's projector refuses sprite images wider or taller than this."""

METADATA_FILENAME = "metadata.tsv"
SPRITE_FILENAME = "sprite.png"
CHECKPOINT_PREFIX = "embedding.ckpt"


@dataclasses.dataclass(frozen=True)
class ProjectorExport:
    """What :func:`export_projector` wrote.

    Attributes:
      config_path: the ``projector_config.pbtxt`` file.
      checkpoint_path: the checkpoint prefix (e.g. ``<log_dir>/embedding.ckpt-1``).
      tensor_name: the embedding's tensor name in the checkpoint and the config.
      metadata_path: ``metadata.tsv``, or None without metadata.
      sprite_path: ``sprite.png``, or None without images.
      indices: (n_exported,) int64 rows of the inputs that were exported, in order (all rows
        unless the sprite limit forced a subsample).

    Examples:
      >>> import os, tempfile
      >>> import numpy as np
      >>> from tfclust.projector import export_projector
      >>> latents = np.random.default_rng(0).normal(size=(6, 3))
      >>> labels, images = [0, 1, 2, 0, 1, 2], np.zeros((6, 28, 28), dtype=np.uint8)
      >>> written = export_projector(tempfile.mkdtemp(), latents, {"label": labels}, images)
      >>> type(written).__name__, written.indices.tolist()
      ('ProjectorExport', [0, 1, 2, 3, 4, 5])
    """

    config_path: str
    checkpoint_path: str
    tensor_name: str
    metadata_path: str | None
    sprite_path: str | None
    indices: np.ndarray


def _check_metadata(metadata: Mapping[str, Sequence] | None, n: int) -> dict[str, list[str]]:
    """Validate metadata columns of ``n`` values each; returns column -> list of strings."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or not metadata:
        raise ValueError("metadata must be None or a non-empty mapping of column name -> values")
    columns = {}
    for name, values in metadata.items():
        arr = np.asarray(values)
        if arr.ndim != 1 or arr.shape[0] != n:
            raise ValueError(f"metadata column {name!r} must have shape ({n},), got {arr.shape}")
        cells = [v.decode() if isinstance(v, bytes) else str(v) for v in arr.tolist()]
        for text in [str(name), *cells]:
            if "\t" in text or "\n" in text or "\r" in text:
                raise ValueError(
                    f"metadata column {name!r}: names and values may not contain "
                    f"tabs or newlines, got {text!r}"
                )
        columns[str(name)] = cells
    return columns


def _check_sprite_images(images, n: int) -> np.ndarray | None:
    """Validate N grey or RGB images (see :func:`tfclust.data.check_images`); returns
    (N, H, W, C) uint8, C = 1 (grey) or 3 (RGB)."""
    if images is None:
        return None
    arr = check_images(images)
    if arr.shape[0] != n:
        raise ValueError(
            f"images must have shape ({n}, H, W), ({n}, H, W, 1) or ({n}, H, W, 3), "
            f"got {np.shape(images)}"
        )
    return arr if arr.dtype == np.uint8 else np.round(arr * 255.0).astype(np.uint8)


def _sprite(images: np.ndarray) -> np.ndarray:
    """Tile (N, H, W, C) uint8 images row-major into a square grid: (side*H, side*W, C),
    side = ceil(√N).

    Unused cells at the end are black.
    """
    n, height, width, channels = images.shape
    side = math.ceil(math.sqrt(n))
    grid = np.zeros((side * side, height, width, channels), dtype=np.uint8)
    grid[:n] = images
    return (
        grid.reshape(side, side, height, width, channels)
        .transpose(0, 2, 1, 3, 4)
        .reshape(side * height, side * width, channels)
    )


def _exported_rows(n: int, image_shape: tuple[int, int] | None, seed: int) -> np.ndarray:
    """All ``n`` rows, or a sorted random subset whose sprite fits in SPRITE_MAX_PIXELS."""
    if image_shape is None:
        return np.arange(n)
    per_side = SPRITE_MAX_PIXELS // max(image_shape)
    if per_side == 0:
        raise ValueError(
            f"images of {image_shape} pixels cannot fit in a {SPRITE_MAX_PIXELS} px sprite"
        )
    if n <= per_side * per_side:
        return np.arange(n)
    keep = per_side * per_side
    warnings.warn(
        f"{n} thumbnails exceed TensorBoard's {SPRITE_MAX_PIXELS} x {SPRITE_MAX_PIXELS} px sprite "
        f"limit; exporting a random subset of {keep} points (see ProjectorExport.indices)",
        UserWarning,
        stacklevel=3,
    )
    return np.sort(np.random.default_rng(seed).choice(n, size=keep, replace=False))


def _write_metadata(path: str, columns: dict[str, list[str]], rows: np.ndarray) -> None:
    """Write the selected rows as TSV; a header row only when there are several columns."""
    lines = ["\t".join(columns)] if len(columns) > 1 else []
    lines += ["\t".join(column[i] for column in columns.values()) for i in rows]
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def export_projector(
    log_dir: str | os.PathLike,
    latents,
    metadata: Mapping[str, Sequence] | None = None,
    images=None,
    tensor_name: str = "embedding",
    *,
    seed: int = 0,
) -> ProjectorExport:
    """Write what TensorBoard's Embedding Projector needs to show ``latents``.

    Use a directory of its own for ``log_dir`` (e.g. ``runs/mnist/projector``): the embedding is
    saved as the directory's latest checkpoint, which TensorBoard loads.

    Args:
      log_dir: output directory, created if missing.
      latents: (N, D) embedding (numpy array or tensor), stored as float32.
      metadata: optional column name -> (N,) values (e.g. ``{"label": y, "cluster": c}``, or
        class names and file names), any dtype, written with ``str`` as UTF-8 text; names and
        values may not contain tabs or newlines.
      images: optional thumbnails for the sprite, uint8 in [0, 255] or floats in [0, 1]:
        grey (N, H, W) or (N, H, W, 1), giving a grey ``sprite.png``, or RGB (N, H, W, 3),
        giving an RGB one. If N thumbnails do not fit in an 8,192 px square sprite
        (N > 85,264 for 28 x 28), a random subset of points that does fit is exported instead
        (latents, metadata and sprite alike), with a ``UserWarning``.
      tensor_name: the variable's name in the checkpoint, a Python identifier.
      seed: seed of that subset.

    Returns:
      A :class:`ProjectorExport` with the written paths and exported row indices.

    Raises:
      ValueError: bad latents (not 2-D, empty, NaN/inf), mismatched metadata or image counts,
        tabs or newlines in metadata, bad image shapes (e.g. RGBA) or pixel values, or a bad
        tensor name.
      TypeError: images neither uint8 nor floating point.

    Examples:
      >>> import os, tempfile
      >>> import numpy as np
      >>> from tfclust.projector import export_projector
      >>> latents = np.random.default_rng(0).normal(size=(6, 3))
      >>> labels, images = [0, 1, 2, 0, 1, 2], np.zeros((6, 28, 28), dtype=np.uint8)
      >>> written = export_projector(tempfile.mkdtemp(), latents, {"label": labels}, images)
      >>> sorted(os.path.basename(p) for p in (written.config_path, written.metadata_path,
      ...                                       written.sprite_path))
      ['metadata.tsv', 'projector_config.pbtxt', 'sprite.png']

    RGB thumbnails give an RGB sprite; metadata may hold any text without tabs or newlines:

      >>> import tensorflow as tf
      >>> rgb = np.zeros((6, 16, 16, 3), dtype=np.uint8)
      >>> files = [f"été photo {i}.png" for i in range(6)]
      >>> written = export_projector(tempfile.mkdtemp(), latents, {"file": files}, rgb)
      >>> tuple(tf.io.decode_png(tf.io.read_file(written.sprite_path)).shape)
      (48, 48, 3)
    """
    values = check_array(latents, name="latents", dtype=tf.float32).numpy()
    n = values.shape[0]
    if not (isinstance(tensor_name, str) and tensor_name.isidentifier()):
        raise ValueError(f"tensor_name must be a Python identifier, got {tensor_name!r}")
    columns = _check_metadata(metadata, n)
    thumbnails = _check_sprite_images(images, n)
    seed = check_int(seed, name="seed", low=0)
    rows = _exported_rows(n, None if thumbnails is None else thumbnails.shape[1:3], seed)

    log_dir = os.fspath(log_dir)
    tf.io.gfile.makedirs(log_dir)
    checkpoint = tf.train.Checkpoint(**{tensor_name: tf.Variable(values[rows])})
    checkpoint_path = checkpoint.save(os.path.join(log_dir, CHECKPOINT_PREFIX))

    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = f"{tensor_name}/.ATTRIBUTES/VARIABLE_VALUE"
    metadata_path = sprite_path = None
    if columns:
        metadata_path = os.path.join(log_dir, METADATA_FILENAME)
        _write_metadata(metadata_path, columns, rows)
        embedding.metadata_path = METADATA_FILENAME
    if thumbnails is not None:
        sprite_path = os.path.join(log_dir, SPRITE_FILENAME)
        tf.io.write_file(sprite_path, tf.io.encode_png(_sprite(thumbnails[rows])))
        embedding.sprite.image_path = SPRITE_FILENAME
        height, width = thumbnails.shape[1:3]
        embedding.sprite.single_image_dim.extend([width, height])
    projector.visualize_embeddings(log_dir, config)
    return ProjectorExport(
        config_path=os.path.join(log_dir, PROJECTOR_FILENAME),
        checkpoint_path=checkpoint_path,
        tensor_name=embedding.tensor_name,
        metadata_path=metadata_path,
        sprite_path=sprite_path,
        indices=rows.astype(np.int64),
    )
