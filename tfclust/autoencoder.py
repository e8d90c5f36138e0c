"""The tutorial's convolutional autoencoder, built with the Keras Functional API.

Encoder: Conv2D(32, 2, stride 2, elu) -> Conv2D(64, 2, stride 2, elu) -> Flatten -> Dense(64, elu),
whose output is the latent (the tutorial's ``model.layers[3].output``). Decoder:
Dense(7*7*64, elu) -> Reshape(7, 7, 64) -> Conv2DTranspose(32, 2, stride 2, same, elu) ->
Conv2DTranspose(1, 2, stride 2, same, sigmoid). With the defaults it has 421,377 parameters.
"""

from __future__ import annotations

import logging
import os

import keras
import numpy as np
import tensorflow as tf

from tfclust._validation import check_int
from tfclust.data.pipeline import check_images, images_pipeline

logger = logging.getLogger("tfclust.autoencoder")

IMAGE_SHAPE = (28, 28, 1)


def build_autoencoder(
    latent_dim: int = 64,
    filters: tuple[int, int] = (32, 64),
    activation: str = "elu",
    image_shape: tuple[int, int, int] = IMAGE_SHAPE,
    seed: int | None = None,
):
    """Build the autoencoder and its two halves.

    Args:
      latent_dim: size of the latent vector (the tutorial's 64).
      filters: channels of the two strided convolutions.
      activation: activation of every layer but the last (which is a sigmoid).
      image_shape: (H, W, 1), H and W divisible by 4.
      seed: seeds Keras' random state so the initial weights are reproducible.

    Returns:
      ``(autoencoder, encoder, decoder)``: ``encoder`` maps float32 images (N, H, W, 1) in [0, 1]
      to float32 latents (N, latent_dim); ``decoder`` maps latents back to images;
      ``autoencoder`` is ``decoder(encoder(x))`` and shares their weights.
    """
    latent_dim = check_int(latent_dim, name="latent_dim", low=1)
    if len(filters) != 2:
        raise ValueError(f"filters must hold two channel counts, got {filters!r}")
    f1, f2 = (check_int(f, name="filters", low=1) for f in filters)
    h, w, c = image_shape
    if c != 1 or h % 4 or w % 4 or h < 4 or w < 4:
        raise ValueError(
            f"image_shape must be (H, W, 1) with H, W divisible by 4, got {image_shape}"
        )
    if seed is not None:
        keras.utils.set_random_seed(check_int(seed, name="seed", low=0))

    layers = keras.layers
    image = keras.Input(shape=image_shape, name="image")
    x = layers.Conv2D(f1, 2, strides=2, activation=activation, name="conv1")(image)
    x = layers.Conv2D(f2, 2, strides=2, activation=activation, name="conv2")(x)
    x = layers.Flatten(name="flatten")(x)
    latent = layers.Dense(latent_dim, activation=activation, name="latent")(x)
    encoder = keras.Model(image, latent, name="encoder")

    code = keras.Input(shape=(latent_dim,), name="latent_input")
    y = layers.Dense((h // 4) * (w // 4) * f2, activation=activation, name="expand")(code)
    y = layers.Reshape((h // 4, w // 4, f2), name="reshape")(y)
    y = layers.Conv2DTranspose(
        f1, 2, strides=2, padding="same", activation=activation, name="deconv1"
    )(y)
    reconstruction = layers.Conv2DTranspose(
        1, 2, strides=2, padding="same", activation="sigmoid", name="deconv2"
    )(y)
    decoder = keras.Model(code, reconstruction, name="decoder")

    autoencoder = keras.Model(image, decoder(encoder(image)), name="autoencoder")
    return autoencoder, encoder, decoder


def tutorial_model() -> keras.Sequential:
    """The tutorial's own model, as it writes it: a ``Sequential`` autoencoder, not compiled.

    Kept as the reference that :func:`build_autoencoder` is checked and benchmarked against
    (``input_shape=`` of the original becomes ``keras.Input``, as Keras 3 asks). Its latent is
    ``model.layers[3].output``.
    """
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(filters=32, kernel_size=2, strides=(2, 2), activation="elu"),
            layers.Conv2D(filters=64, kernel_size=2, strides=(2, 2), activation="elu"),
            layers.Flatten(),
            layers.Dense(64, activation="elu"),
            layers.Dense(7 * 7 * 64, activation="elu"),
            layers.Reshape(target_shape=(7, 7, 64)),
            layers.Conv2DTranspose(
                filters=32, kernel_size=2, strides=(2, 2), padding="same", activation="elu"
            ),
            layers.Conv2DTranspose(
                filters=1, kernel_size=2, strides=(2, 2), padding="same", activation="sigmoid"
            ),
        ]
    )


def train_autoencoder(
    autoencoder: keras.Model,
    dataset: tf.data.Dataset,
    epochs: int = 20,
    learning_rate: float = 1e-3,
    validation_data=None,
    callbacks=None,
    verbose="auto",
) -> keras.callbacks.History:
    """Train with Adam on the mean squared reconstruction error, as the tutorial does.

    Args:
      autoencoder: the model from :func:`build_autoencoder` (or a loaded one).
      dataset: batches of ``(x, x)``, e.g. from ``tfclust.data.autoencoder_pipeline``.
      epochs: passes over ``dataset``.
      learning_rate: Adam's step size (Keras' default 1e-3, as the tutorial's).
      validation_data: optional dataset of ``(x, x)`` evaluated after each epoch.
      callbacks: extra Keras callbacks (e.g. TensorBoard).
      verbose: Keras' progress bar setting.

    Returns:
      The Keras ``History``; ``history.history["loss"]`` holds the MSE per epoch.
    """
    epochs = check_int(epochs, name="epochs", low=1)
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(
            "dataset must be a tf.data.Dataset of (x, x) batches; build one with "
            "tfclust.data.autoencoder_pipeline(images)"
        )
    autoencoder.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    # The dataset shuffles itself (with its own seed); Keras must not try to.
    return autoencoder.fit(
        dataset,
        epochs=epochs,
        validation_data=validation_data,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,
    )


def encode(encoder: keras.Model, images, batch_size: int = 1024) -> np.ndarray:
    """Latent vectors of ``images``: float32 (N, latent_dim), in input order.

    ``images`` are uint8 (0..255) or float (0..1), shape (N, H, W) or (N, H, W, 1).
    """
    arr = check_images(images)
    expected = tuple(encoder.input_shape[1:])
    if arr.shape[1:] != expected:
        raise ValueError(
            f"images have shape {arr.shape[1:]} per image, the encoder expects {expected}"
        )
    return encoder.predict(images_pipeline(arr, batch_size=batch_size), verbose=0)


def save_autoencoder(autoencoder: keras.Model, path: str | os.PathLike) -> str:
    """Save in Keras' native format; the path gets a ``.keras`` suffix if it has none."""
    path = os.fspath(path)
    if not path.endswith(".keras"):
        path += ".keras"
    autoencoder.save(path)
    return path


def load_autoencoder(path: str | os.PathLike):
    """Load a model saved by :func:`save_autoencoder`.

    Returns:
      ``(autoencoder, encoder, decoder)`` as :func:`build_autoencoder` does.

    Raises:
      ValueError: the file is not a tfclust autoencoder (no ``encoder``/``decoder`` submodels).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no saved autoencoder at {path}")
    autoencoder = keras.models.load_model(path)
    try:
        encoder, decoder = autoencoder.get_layer("encoder"), autoencoder.get_layer("decoder")
    except ValueError as err:
        raise ValueError(
            f"{path} is not a tfclust autoencoder (it has no encoder and decoder submodels)"
        ) from err
    return autoencoder, encoder, decoder
