"""The tutorial's convolutional autoencoder, built with the Keras Functional API.

For the tutorial's 28 x 28 x 1 images (the default), encoder: Conv2D(32, 2, stride 2, elu) ->
Conv2D(64, 2, stride 2, elu) -> Flatten -> Dense(64, elu), whose output is the latent (the
tutorial's ``model.layers[3].output``); decoder: Dense(7*7*64, elu) -> Reshape(7, 7, 64) ->
Conv2DTranspose(32, 2, stride 2, same, elu) -> Conv2DTranspose(1, 2, stride 2, same, sigmoid).
It has 421,377 parameters.

Any H x W x C image, C = 1 (grey) or 3 (RGB), gets the same design: the two strided
convolutions halve H and W twice, so where H or W is not a multiple of 4 a ZeroPadding2D layer
``pad`` first pads the image symmetrically (the odd pixel at the bottom/right) up to the next
multiple of 4, and a Cropping2D layer ``crop`` ends the decoder, cutting the same border away;
the last Conv2DTranspose outputs C channels. Images whose H and W are multiples of 4 get neither
layer. The reconstruction always has the input's shape.
"""

from __future__ import annotations

import logging
import os
import zipfile

import keras
import numpy as np
import tensorflow as tf

from tfclust._files import atomic_path
from tfclust._validation import check_float, check_int
from tfclust.data.pipeline import CHANNELS, check_images, images_pipeline

logger = logging.getLogger("tfclust.autoencoder")

IMAGE_SHAPE = (28, 28, 1)
MAX_PARAMETERS = 2**31 - 1
"""Largest model :func:`build_autoencoder` builds (about 8 GiB of float32 weights)."""
TRAINING_BYTES_PER_PARAMETER = 16
"""Memory that training needs per parameter: float32 weights, gradients and Adam's two moments."""
STEPS_PER_EXECUTION = 32
"""Default training steps per call into TensorFlow (:func:`train_autoencoder`); measured in
docs/distributed.md."""
_SEEDED_LAYERS = ("conv1", "conv2", "latent", "expand", "deconv1", "deconv2")


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
      image_shape: (H, W, C) of the images, H, W >= 1 and C = 1 (grey) or 3 (RGB); default
        (28, 28, 1), MNIST's. H and W that are not multiples of 4 are padded with zeros up to
        the next multiple of 4 (layer ``pad``, half the padding on each side, the odd pixel at
        the bottom/right) and the reconstruction is cropped back to (H, W) (layer ``crop``).
      seed: makes the initial weights reproducible: each layer's Glorot-uniform initializer gets
        its own seed derived from it. No global random state (numpy, ``random``, TensorFlow,
        Keras) is read or changed. None (the default) draws fresh weights.

    Returns:
      ``(autoencoder, encoder, decoder)``: ``encoder`` maps float32 images (N, H, W, C) in
      [0, 1] to float32 latents (N, latent_dim); ``decoder`` maps latents back to float32
      images (N, H, W, C) in [0, 1]; ``autoencoder`` is ``decoder(encoder(x))`` and shares
      their weights.

    Raises:
      TypeError: a non-integer size or seed, or an ``image_shape`` that is not a sequence.
      ValueError: a bad size (``image_shape`` not of length 3, H or W < 1, C not 1 or 3), or a
        model too large to train: more than :data:`MAX_PARAMETERS` parameters, or needing more
        than the machine's physical memory at :data:`TRAINING_BYTES_PER_PARAMETER` bytes per
        parameter. Checked before building.

    Examples:
      >>> from tfclust.autoencoder import build_autoencoder
      >>> autoencoder, encoder, decoder = build_autoencoder(latent_dim=8, seed=0)
      >>> encoder.input_shape, encoder.output_shape, decoder.output_shape
      ((None, 28, 28, 1), (None, 8), (None, 28, 28, 1))
      >>> autoencoder, encoder, decoder = build_autoencoder(latent_dim=8, image_shape=(30, 30, 3))
      >>> encoder.get_layer("pad").output.shape, decoder.output_shape
      ((None, 32, 32, 3), (None, 30, 30, 3))
    """
    latent_dim = check_int(latent_dim, name="latent_dim", low=1)
    try:
        f1, f2 = (check_int(f, name="filters", low=1) for f in filters)
    except (TypeError, ValueError) as err:
        raise type(err)(f"filters must hold two channel counts >= 1, got {filters!r}") from err
    h, w, c = _check_image_shape(image_shape)
    _check_model_size(count_parameters(latent_dim, (f1, f2), (h, w, c)), latent_dim, (f1, f2))
    init = _initializers(seed)
    # Two stride-2 convolutions need H and W divisible by 4; pad to that, crop back after.
    pad_h, pad_w = -h % 4, -w % 4
    border = ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2))
    small_h, small_w = (h + pad_h) // 4, (w + pad_w) // 4

    layers = keras.layers
    image = keras.Input(shape=(h, w, c), name="image")
    x = layers.ZeroPadding2D(border, name="pad")(image) if pad_h or pad_w else image
    x = layers.Conv2D(f1, 2, strides=2, activation=activation, name="conv1", **init["conv1"])(x)
    x = layers.Conv2D(f2, 2, strides=2, activation=activation, name="conv2", **init["conv2"])(x)
    x = layers.Flatten(name="flatten")(x)
    latent = layers.Dense(latent_dim, activation=activation, name="latent", **init["latent"])(x)
    encoder = keras.Model(image, latent, name="encoder")

    code = keras.Input(shape=(latent_dim,), name="latent_input")
    y = layers.Dense(
        small_h * small_w * f2, activation=activation, name="expand", **init["expand"]
    )(code)
    y = layers.Reshape((small_h, small_w, f2), name="reshape")(y)
    y = layers.Conv2DTranspose(
        f1, 2, strides=2, padding="same", activation=activation, name="deconv1", **init["deconv1"]
    )(y)
    reconstruction = layers.Conv2DTranspose(
        c, 2, strides=2, padding="same", activation="sigmoid", name="deconv2", **init["deconv2"]
    )(y)
    if pad_h or pad_w:
        reconstruction = layers.Cropping2D(border, name="crop")(reconstruction)
    decoder = keras.Model(code, reconstruction, name="decoder")

    autoencoder = keras.Model(image, decoder(encoder(image)), name="autoencoder")
    return autoencoder, encoder, decoder


def _check_image_shape(image_shape) -> tuple[int, int, int]:
    """``image_shape`` as three ints (H, W, C), H, W >= 1 and C 1 or 3, else a TypeError (not
    a sequence of ints) or ValueError."""
    expected = "image_shape must be (H, W, C) with H, W >= 1 and C = 1 (grey) or 3 (RGB)"
    try:
        h, w, c = (check_int(v, name="image_shape", low=1) for v in image_shape)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{expected}, got {image_shape!r}") from err
    if c not in CHANNELS:
        raise ValueError(f"{expected}, got {image_shape!r}")
    return h, w, c


def count_parameters(
    latent_dim: int = 64,
    filters: tuple[int, int] = (32, 64),
    image_shape: tuple[int, int, int] = IMAGE_SHAPE,
) -> int:
    """Parameters of :func:`build_autoencoder`'s model, from the shapes alone (exact, Python int).

    421,377 with the defaults. Padding and cropping have no parameters: an H x W image counts as
    its padded size, H and W rounded up to multiples of 4. The arguments are not validated
    (:func:`build_autoencoder` validates them before counting).

    Examples:
      >>> from tfclust.autoencoder import count_parameters
      >>> count_parameters()
      421377
      >>> count_parameters(latent_dim=8)
      70089
      >>> count_parameters(latent_dim=8, image_shape=(30, 30, 3))
      86923
    """
    f1, f2 = filters
    h, w, c = image_shape
    flat = -(-h // 4) * -(-w // 4) * f2  # ceil: the padded size's quarter
    return (
        (2 * 2 * c * f1 + f1)  # conv1
        + (2 * 2 * f1 * f2 + f2)  # conv2
        + (flat * latent_dim + latent_dim)  # latent
        + (latent_dim * flat + flat)  # expand
        + (2 * 2 * f2 * f1 + f1)  # deconv1
        + (2 * 2 * f1 * c + c)  # deconv2
    )


def _check_model_size(n_params: int, latent_dim: int, filters: tuple[int, int]) -> None:
    """Refuse, before building, a model that would exhaust memory (a ResourceExhaustedError)."""
    what = f"an autoencoder with latent_dim={latent_dim} and filters={filters}"
    if n_params > MAX_PARAMETERS:
        raise ValueError(
            f"{what} would have {n_params:,} parameters, more than the {MAX_PARAMETERS:,} "
            "supported; use a smaller latent_dim or fewer filters"
        )
    needed, memory = n_params * TRAINING_BYTES_PER_PARAMETER, _physical_memory()
    if memory is not None and needed > memory:
        raise ValueError(
            f"{what} would have {n_params:,} parameters, and training it needs about "
            f"{needed / 2**30:.1f} GiB ({TRAINING_BYTES_PER_PARAMETER} bytes per parameter) but "
            f"this machine has {memory / 2**30:.1f} GiB of memory; use a smaller latent_dim or "
            "fewer filters"
        )


def _physical_memory() -> int | None:
    """Bytes of physical memory, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _initializers(seed: int | None) -> dict[str, dict]:
    """Per-layer ``kernel_initializer`` keyword arguments: seeded ones when ``seed`` is given.

    The layers' seeds are drawn from ``np.random.SeedSequence(seed)``, a local generator, so the
    global random state stays untouched and no two layers share a seed.
    """
    if seed is None:
        return {layer: {} for layer in _SEEDED_LAYERS}
    seed = check_int(seed, name="seed", low=0)
    seeds = np.random.SeedSequence(seed).generate_state(len(_SEEDED_LAYERS)) >> 1  # int31
    return {
        layer: {"kernel_initializer": keras.initializers.GlorotUniform(seed=int(s))}
        for layer, s in zip(_SEEDED_LAYERS, seeds, strict=True)
    }


def tutorial_model() -> keras.Sequential:
    """The tutorial's own model, as it writes it: a ``Sequential`` autoencoder, not compiled.

    Kept as the reference that :func:`build_autoencoder` is checked and benchmarked against
    (``input_shape=`` of the original becomes ``keras.Input``, as Keras 3 asks). Its latent is
    ``model.layers[3].output``.

    Examples:
      >>> from tfclust.autoencoder import tutorial_model
      >>> model = tutorial_model()
      >>> model.output_shape, model.layers[3].output.shape
      ((None, 28, 28, 1), (None, 64))
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
    steps_per_execution: int | None = None,
) -> keras.callbacks.History:
    """Train with Adam on the mean squared reconstruction error, as the tutorial does.

    Several devices or workers: build the model under a ``tf.distribute`` strategy's
    ``scope()`` (``with strategy.scope(): build_autoencoder(...)``); this function then compiles
    and trains it under that same strategy, each global batch of ``dataset`` split among the
    replicas. See docs/distributed.md, which also holds the measurement behind the default
    ``steps_per_execution``.

    Args:
      autoencoder: the model from :func:`build_autoencoder` (or a loaded one).
      dataset: batches of ``(x, x)``, e.g. from ``tfclust.data.autoencoder_pipeline``.
      epochs: passes over ``dataset``.
      learning_rate: Adam's step size (Keras' default 1e-3, as the tutorial's); finite, > 0.
      validation_data: optional dataset of ``(x, x)`` evaluated after each epoch.
      callbacks: extra Keras callbacks (e.g. TensorBoard).
      verbose: Keras' progress bar setting: "auto" (the default), 0, 1 or 2.
      steps_per_execution: training steps (batches) run per call into TensorFlow, >= 1, or
        None (the default): :data:`STEPS_PER_EXECUTION` (32) on one device, 1 under a
        multi-replica strategy, where Keras 3 fails with more (keras-team/keras#19246). The
        weights and the loss do not depend on it; larger values spare host round trips, but the
        progress bar and the callbacks' ``on_train_batch_*`` run only once per
        ``steps_per_execution`` batches (the per-epoch ones, and TensorBoard's default
        per-epoch logging, are unaffected).

    Returns:
      The Keras ``History``; ``history.history["loss"]`` holds the MSE per epoch.

    Raises:
      TypeError: ``autoencoder`` is not a Keras model, or the data are not ``tf.data`` datasets.
      ValueError: ``epochs`` < 1, a ``learning_rate`` that is not finite and > 0, a bad
        ``verbose``, a ``steps_per_execution`` < 1 (or > 1 under a multi-replica strategy), or a
        call under a strategy's scope for a model built outside it.

    Examples:
      >>> import numpy as np
      >>> from tfclust.autoencoder import build_autoencoder
      >>> autoencoder, encoder, decoder = build_autoencoder(latent_dim=8, seed=0)
      >>> from tfclust.autoencoder import train_autoencoder
      >>> from tfclust.data import autoencoder_pipeline
      >>> images = np.random.default_rng(0).integers(0, 256, size=(32, 28, 28), dtype=np.uint8)
      >>> dataset = autoencoder_pipeline(images, batch_size=16, seed=0)
      >>> history = train_autoencoder(autoencoder, dataset, epochs=1, verbose=0)
      >>> len(history.history["loss"])
      1
    """
    if not isinstance(autoencoder, keras.Model):
        raise TypeError(f"autoencoder must be a keras.Model, got {type(autoencoder).__name__}")
    epochs = check_int(epochs, name="epochs", low=1)
    # Adam with a step of 0, a negative or a NaN one trains nothing or fills the weights with NaN.
    learning_rate = check_float(learning_rate, name="learning_rate", low=0.0, low_inclusive=False)
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(
            "dataset must be a tf.data.Dataset of (x, x) batches; build one with "
            "tfclust.data.autoencoder_pipeline(images)"
        )
    if validation_data is not None and not isinstance(validation_data, tf.data.Dataset):
        raise TypeError(
            "validation_data must be None or a tf.data.Dataset of (x, x) batches, e.g. "
            "tfclust.data.autoencoder_pipeline(images, shuffle=False)"
        )
    if verbose not in ("auto", 0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    strategy = _model_strategy(autoencoder)
    replicas = strategy.num_replicas_in_sync
    if steps_per_execution is None:
        steps_per_execution = STEPS_PER_EXECUTION if replicas == 1 else 1
    steps_per_execution = check_int(steps_per_execution, name="steps_per_execution", low=1)
    if steps_per_execution > 1 and replicas > 1:
        raise ValueError(
            f"steps_per_execution must be 1 under a strategy with {replicas} replicas, got "
            f"{steps_per_execution}: Keras 3 cannot run more (keras-team/keras#19246)"
        )
    # Adam's slots must live where the weights live: create it under the model's strategy.
    trainer = _MultiWorkerTrainer(autoencoder) if _is_multi_worker(strategy) else autoencoder
    with strategy.scope():
        trainer.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss="mse",
            steps_per_execution=steps_per_execution,
        )
        # The dataset shuffles itself (with its own seed); Keras must not try to.
        return trainer.fit(
            dataset,
            epochs=epochs,
            validation_data=validation_data,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,
        )


class _MultiWorkerTrainer(keras.Model):
    """Trains a model under a multi-worker ``MultiWorkerMirroredStrategy``, which Keras 3's own
    ``fit`` cannot do (keras-team/keras#20585); shares the model's weights.

    Two Keras steps fail across workers: the reduction of the first ``(x, y)`` batch before
    building (skipped: with no strategy recorded, Keras builds in the first step, under the
    strategy of ``fit``'s caller) and the reduction of the step's scalar logs along axis 0
    (given here as shape (1,)).
    """

    def __init__(self, model: keras.Model):
        super().__init__(name=f"{model.name}_multi_worker")
        self.autoencoder = model
        self._distribute_strategy = None  # see the class docstring

    def call(self, x, training=False):
        return self.autoencoder(x, training=training)

    def train_step(self, data):
        return {name: tf.reshape(v, [1]) for name, v in super().train_step(data).items()}

    def test_step(self, data):
        return {name: tf.reshape(v, [1]) for name, v in super().test_step(data).items()}


def _is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """``strategy`` is a MultiWorkerMirroredStrategy over more than one task."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    cluster = strategy.cluster_resolver.cluster_spec()
    return sum(cluster.num_tasks(job) for job in cluster.jobs) > 1


def _model_strategy(model: keras.Model) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy that ``model``'s weights were created under (the default
    strategy for plain variables); a ValueError when the caller is in another multi-replica
    strategy's scope, which Keras would report later and less clearly."""
    current = tf.distribute.get_strategy()
    variable = model.weights[0].value if model.weights else None
    if not isinstance(variable, tf.distribute.DistributedValues):
        if current.num_replicas_in_sync > 1:
            raise ValueError(
                "the autoencoder was built outside the current tf.distribute strategy's scope; "
                "build it under it: with strategy.scope(): build_autoencoder(...)"
            )
        return current
    if tf.distribute.has_strategy() and current is not variable.distribute_strategy:
        raise ValueError(
            "the autoencoder was built under another tf.distribute strategy than the current one"
        )
    return variable.distribute_strategy


def encode(encoder: keras.Model, images, batch_size: int = 1024) -> np.ndarray:
    """Latent vectors of ``images``: float32 (N, latent_dim), in input order.

    Args:
      encoder: the encoder of :func:`build_autoencoder` or :func:`load_autoencoder` (a model
        whose output is (N, latent_dim)); not the whole autoencoder.
      images: uint8 (0..255) or float (0..1), shape (N, H, W, C) matching the encoder's input
        (H, W, C), or (N, H, W) for a grey (C = 1) encoder; see
        :func:`tfclust.data.check_images`.
      batch_size: images per ``predict`` batch.

    Raises:
      TypeError: ``encoder`` is not a Keras model, or images of a bad dtype.
      ValueError: a model whose output is not (N, latent_dim), e.g. the full autoencoder, or
        images that do not fit it.

    Examples:
      >>> import numpy as np
      >>> from tfclust.autoencoder import build_autoencoder
      >>> autoencoder, encoder, decoder = build_autoencoder(latent_dim=8, seed=0)
      >>> from tfclust.autoencoder import encode
      >>> images = np.zeros((5, 28, 28), dtype=np.uint8)
      >>> z = encode(encoder, images)
      >>> z.shape, z.dtype
      ((5, 8), dtype('float32'))
    """
    if not isinstance(encoder, keras.Model):
        raise TypeError(f"encoder must be a keras.Model, got {type(encoder).__name__}")
    output_shape = encoder.output_shape
    if not isinstance(output_shape, tuple) or len(output_shape) != 2:
        # The full autoencoder outputs images: they would silently become 784-d "latents".
        raise ValueError(
            f"encode() needs the encoder, whose output is (N, latent_dim), but model "
            f"{encoder.name!r} outputs {output_shape}; pass the encoder returned by "
            "build_autoencoder() or load_autoencoder(), not the whole autoencoder"
        )
    arr = check_images(images)
    expected = tuple(encoder.input_shape[1:])
    if arr.shape[1:] != expected:
        raise ValueError(
            f"images have shape {arr.shape[1:]} per image, the encoder expects {expected}"
        )
    return encoder.predict(images_pipeline(arr, batch_size=batch_size), verbose=0)


def save_autoencoder(autoencoder: keras.Model, path: str | os.PathLike) -> str:
    """Save in Keras' native format, atomically (a failed save leaves no file); the path gets a
    ``.keras`` suffix if it has none.

    Examples:
      >>> import numpy as np
      >>> from tfclust.autoencoder import build_autoencoder
      >>> autoencoder, encoder, decoder = build_autoencoder(latent_dim=8, seed=0)
      >>> import os, tempfile
      >>> from tfclust.autoencoder import save_autoencoder
      >>> folder = tempfile.mkdtemp()
      >>> path = save_autoencoder(autoencoder, os.path.join(folder, "model"))
      >>> os.path.basename(path)
      'model.keras'
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        path += ".keras"
    with atomic_path(path) as tmp:
        autoencoder.save(tmp)
    return path


def load_autoencoder(path: str | os.PathLike):
    """Load a model saved by :func:`save_autoencoder`.

    Returns:
      ``(autoencoder, encoder, decoder)`` as :func:`build_autoencoder` does.

    Raises:
      FileNotFoundError: no file at ``path``.
      ValueError: the file is not a valid Keras model file (corrupt, truncated, another format),
        or not a tfclust autoencoder (no ``encoder``/``decoder`` submodels).

    Examples:
      >>> import numpy as np
      >>> from tfclust.autoencoder import build_autoencoder
      >>> autoencoder, encoder, decoder = build_autoencoder(latent_dim=8, seed=0)
      >>> import os, tempfile
      >>> from tfclust.autoencoder import load_autoencoder, save_autoencoder
      >>> path = save_autoencoder(autoencoder, os.path.join(tempfile.mkdtemp(), "model.keras"))
      >>> autoencoder2, encoder2, decoder2 = load_autoencoder(path)
      >>> images = np.zeros((2, 28, 28, 1), dtype=np.float32)
      >>> bool(np.allclose(encoder2(images), encoder(images)))
      True
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no saved autoencoder at {path}")
    # Keras reports a corrupt .keras archive as "File not found"; check the zip ourselves.
    if path.endswith(".keras") and not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a valid Keras model file: not a zip archive")
    try:
        autoencoder = keras.models.load_model(path)
    except Exception as err:  # Keras raises many types (ValueError, KeyError, OSError, zip errors)
        raise ValueError(f"{path} is not a valid Keras model file: {err}") from err
    try:
        encoder, decoder = autoencoder.get_layer("encoder"), autoencoder.get_layer("decoder")
    except ValueError as err:
        raise ValueError(
            f"{path} is not a tfclust autoencoder (it has no encoder and decoder submodels)"
        ) from err
    return autoencoder, encoder, decoder
