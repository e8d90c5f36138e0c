"""``tf.data`` pipelines that feed images to the autoencoder and to the encoder."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfclust._validation import check_int


def check_images(images, name: str = "images") -> np.ndarray:
    """Validate a batch of greyscale images and return it as a numpy array.

    Args:
      images: uint8 values in 0..255 or floats in [0, 1], shape (N, H, W) or (N, H, W, 1).
      name: the argument's name, for error messages.

    Returns:
      The images as numpy, shape (N, H, W, 1), dtype unchanged (uint8 or float).

    Raises:
      TypeError: a dtype that is neither uint8 nor floating point.
      ValueError: wrong rank, no images, NaN/inf, or floats outside [0, 1].
    """
    arr = images.numpy() if isinstance(images, tf.Tensor) else np.asarray(images)
    if arr.dtype != np.uint8 and arr.dtype.kind != "f":
        raise TypeError(f"{name} must be uint8 (0..255) or float (0..1), got dtype {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[..., np.newaxis]
    if arr.ndim != 4 or arr.shape[-1] != 1:
        raise ValueError(
            f"{name} must have shape (N, H, W) or (N, H, W, 1), got {np.shape(images)}"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinity")
        if arr.min() < 0 or arr.max() > 1:
            raise ValueError(
                f"float {name} must lie in [0, 1] (divide uint8 pixels by 255), "
                f"got values in [{arr.min():g}, {arr.max():g}]"
            )
    return arr


def _to_unit_float(x: tf.Tensor) -> tf.Tensor:
    """uint8 0..255 -> float32 0..1; float input is cast to float32."""
    if x.dtype == tf.uint8:
        return tf.cast(x, tf.float32) / 255.0
    return tf.cast(x, tf.float32)


def images_pipeline(images, batch_size: int = 256) -> tf.data.Dataset:
    """Batches of images in their original order, for inference (``encoder.predict``).

    Yields float32 tensors (batch, H, W, 1) in [0, 1]; the last batch may be smaller.
    """
    arr = check_images(images)
    batch_size = check_int(batch_size, name="batch_size", low=1)
    return (
        tf.data.Dataset.from_tensor_slices(arr)
        .batch(batch_size)
        .map(_to_unit_float, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def autoencoder_pipeline(
    images, batch_size: int = 256, shuffle: bool = True, seed: int = 0, cache: bool = True
) -> tf.data.Dataset:
    """Training batches ``(x, x)`` for an autoencoder.

    Args:
      images: uint8 (0..255) or float (0..1) images, shape (N, H, W) or (N, H, W, 1).
      batch_size: images per batch (the last batch may be smaller).
      shuffle: reshuffle every epoch. The order is fixed by ``seed``: the same seed gives the
        same sequence of batches, epoch after epoch.
      seed: the shuffle seed.
      cache: keep the normalised images in memory after the first epoch.

    Returns:
      A ``tf.data.Dataset`` of ``(x, x)``, x float32 (batch, H, W, 1) in [0, 1], prefetched.
    """
    arr = check_images(images)
    batch_size = check_int(batch_size, name="batch_size", low=1)
    seed = check_int(seed, name="seed", low=0)
    ds = tf.data.Dataset.from_tensor_slices(arr).map(
        _to_unit_float, num_parallel_calls=tf.data.AUTOTUNE
    )
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(arr), seed=seed, reshuffle_each_iteration=True)
    return (
        ds.batch(batch_size)
        .map(lambda x: (x, x), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
