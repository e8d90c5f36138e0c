"""``tf.data`` pipelines that feed images to the autoencoder and to the encoder."""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf

from tfclust._validation import check_int

CHANNELS = (1, 3)
"""Channel counts of the images tfclust takes: grey (1) or RGB (3)."""
PREFETCH_BATCHES = 2
"""Batches the pipelines prepare ahead of the model, on a background thread."""


def check_images(
    images,
    name: str = "images",
    *,
    size: tuple[int, int] | None = None,
    channels: tuple[int, ...] = CHANNELS,
    uint8_only: bool = False,
) -> np.ndarray:
    """Validate a batch of grey or RGB images and return it as a numpy array.

    The one image validator of tfclust: the ``tf.data`` pipelines, ``encode`` and the data set
    loaders all call it.

    Args:
      images: uint8 values in 0..255 or floats in [0, 1], shape (N, H, W) (grey),
        (N, H, W, 1) (grey) or (N, H, W, 3) (RGB), any H, W >= 1; a numpy array, ``tf.Tensor``
        or nested list.
      name: the argument's name (or the file's), for error messages.
      size: the required (H, W); None (the default) accepts any positive size.
      channels: the channel counts accepted, among 1 and 3; default (1, 3), grey or RGB. Pass
        (1,) where only grey images make sense (e.g. MNIST files); (N, H, W) is grey.
      uint8_only: refuse float images too (data files hold uint8 pixels).

    Returns:
      The images as numpy, shape (N, H, W, C) with C = 1 or 3 ((N, H, W) gains a last axis of
      size 1), dtype unchanged (uint8 or float); no copy.

    Raises:
      TypeError: a dtype that is neither uint8 nor floating point (int32, bool, strings, ...).
      ValueError: ragged input, wrong rank, size or channel count (C = 2, or 4: RGBA), no
        images, NaN/inf, or floats outside [0, 1].

    Examples:
      >>> import numpy as np
      >>> from tfclust.data import check_images
      >>> images = check_images(np.zeros((3, 28, 28), dtype=np.uint8))
      >>> images.shape, images.dtype
      ((3, 28, 28, 1), dtype('uint8'))
      >>> check_images(np.ones((2, 17, 23, 3), dtype=np.float32)).shape
      (2, 17, 23, 3)
    """
    if not channels or not set(channels) <= set(CHANNELS):
        raise ValueError(f"channels must hold 1 (grey) and/or 3 (RGB), got {channels!r}")
    try:
        arr = images.numpy() if isinstance(images, tf.Tensor) else np.asarray(images)
    except ValueError as err:  # numpy refuses ragged nested lists
        raise ValueError(f"{name} must be an array of equal-sized images ({err})") from err
    expected = "uint8 (0..255)" if uint8_only else "uint8 (0..255) or float (0..1)"
    if arr.dtype != np.uint8 and (uint8_only or arr.dtype.kind != "f"):
        raise TypeError(f"{name} must be {expected}, got dtype {arr.dtype}")
    if arr.ndim == 3 and 1 in channels:
        arr = arr[..., np.newaxis]
    if arr.ndim != 4 or arr.shape[-1] not in channels:
        hint = ""
        if arr.ndim == 4 and arr.shape[-1] == 4 and 3 in channels:
            # RGBA is the usual 4-channel input: say how to make it RGB.
            hint = "; drop the alpha channel of RGBA images: images[..., :3]"
        raise ValueError(
            f"{name} must have shape {_shapes(channels)}, got {np.shape(images)}{hint}"
        )
    if size is not None and arr.shape[1:3] != tuple(size):
        raise ValueError(
            f"{name} have shape {np.shape(images)}, expected {_shapes(channels, *size)}"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if 0 in arr.shape[1:3]:
        raise ValueError(f"{name} have zero height or width: shape {np.shape(images)}")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinity")
        low, high = arr.min(), arr.max()
        if low < 0 or high > 1:
            # 0..255 floats are the usual mistake: say how to fix it.
            raise ValueError(
                f"float {name} must lie in [0, 1] (divide uint8 pixels by 255), "
                f"got values in [{low:g}, {high:g}]"
            )
    return arr


def _shapes(channels: tuple[int, ...], h="H", w="W") -> str:
    """The accepted shapes, for messages: "(N, H, W), (N, H, W, 1) or (N, H, W, 3)"."""
    forms = [f"(N, {h}, {w})"] if 1 in channels else []
    forms += [f"(N, {h}, {w}, {c})" for c in channels]
    return forms[0] if len(forms) == 1 else f"{', '.join(forms[:-1])} or {forms[-1]}"


def _to_unit_float(x: tf.Tensor) -> tf.Tensor:
    """uint8 0..255 -> float32 0..1; float input is cast to float32."""
    if x.dtype == tf.uint8:
        return tf.cast(x, tf.float32) / 255.0
    return tf.cast(x, tf.float32)


def _prefetched(ds: tf.data.Dataset) -> tf.data.Dataset:
    """``ds`` computed :data:`PREFETCH_BATCHES` batches ahead on a background thread, tf.data's
    autotuning off.

    With autotuning on, Keras' ``fit`` stalled ~8 s at most epoch starts (docs/data.md).
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(PREFETCH_BATCHES).with_options(options)


def images_pipeline(images, batch_size: int = 256) -> tf.data.Dataset:
    """Batches of images in their original order, for inference (``encoder.predict``).

    Args:
      images: uint8 (0..255) or float (0..1) images, shape (N, H, W), (N, H, W, 1) or
        (N, H, W, 3); see :func:`check_images`.
      batch_size: images per batch (the last batch may be smaller).

    Returns:
      A ``tf.data.Dataset`` of float32 tensors (batch, H, W, C) in [0, 1], C = 1 for
      (N, H, W) input, prepared :data:`PREFETCH_BATCHES` batches ahead (tf.data autotuning off).

    Examples:
      >>> import numpy as np
      >>> from tfclust.data import images_pipeline
      >>> batches = images_pipeline(np.zeros((5, 28, 28), dtype=np.uint8), batch_size=2)
      >>> [tuple(b.shape) for b in batches]
      [(2, 28, 28, 1), (2, 28, 28, 1), (1, 28, 28, 1)]
    """
    arr = check_images(images)
    batch_size = check_int(batch_size, name="batch_size", low=1)
    return _prefetched(
        tf.data.Dataset.from_tensor_slices(arr).batch(batch_size).map(_to_unit_float)
    )


def autoencoder_pipeline(
    images, batch_size: int = 256, shuffle: bool = True, seed: int = 0, cache: bool | None = None
) -> tf.data.Dataset:
    """Training batches ``(x, x)`` for an autoencoder.

    The images stay in memory in their own compact dtype (uint8: a quarter of float32's bytes);
    the pipeline shuffles their indices, gathers each batch's images and casts and scales the
    whole batch at once, so neither a per-image map nor a shuffle buffer of float images stands
    between two training steps.

    Args:
      images: uint8 (0..255) or float (0..1) images, shape (N, H, W), (N, H, W, 1) or
        (N, H, W, 3); see :func:`check_images`.
      batch_size: images per batch (the last batch may be smaller).
      shuffle: reshuffle every epoch. The order is fixed by ``seed``: the same seed gives the
        same sequence of batches, epoch after epoch.
      seed: the shuffle seed.
      cache: deprecated, no effect (the images are always held in memory, uncast); passing it
        warns. It used to cache the images once cast to float32.

    Returns:
      A ``tf.data.Dataset`` of ``(x, x)``, x float32 (batch, H, W, C) in [0, 1] (C = 1 for
      (N, H, W) input), prepared :data:`PREFETCH_BATCHES` batches ahead (tf.data autotuning
      off).

    Examples:
      >>> import numpy as np
      >>> from tfclust.data import autoencoder_pipeline
      >>> images = np.full((10, 28, 28), 255, dtype=np.uint8)
      >>> x, target = next(iter(autoencoder_pipeline(images, batch_size=4, seed=0)))
      >>> tuple(x.shape), x.dtype.name, float(x.numpy().max())
      ((4, 28, 28, 1), 'float32', 1.0)
    """
    arr = check_images(images)
    batch_size = check_int(batch_size, name="batch_size", low=1)
    seed = check_int(seed, name="seed", low=0)
    if cache is not None:
        warnings.warn(
            "autoencoder_pipeline's cache argument is deprecated and has no effect: the images "
            "are always held in memory",
            DeprecationWarning,
            stacklevel=2,
        )
    pixels = tf.constant(arr)
    ds = tf.data.Dataset.range(len(arr))
    if shuffle:
        # Shuffling the indices draws the same permutation as shuffling the images would.
        ds = ds.shuffle(len(arr), seed=seed, reshuffle_each_iteration=True)

    def pairs(rows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = _to_unit_float(tf.gather(pixels, rows))
        return x, x

    return _prefetched(ds.batch(batch_size).map(pairs))
