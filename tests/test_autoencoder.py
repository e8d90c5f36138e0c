import keras
import numpy as np
import pytest

from tfclust.autoencoder import (
    STEPS_PER_EXECUTION,
    build_autoencoder,
    encode,
    load_autoencoder,
    save_autoencoder,
    train_autoencoder,
    tutorial_model,
)
from tfclust.data import autoencoder_pipeline


def _images(n=64, seed=0, shape=(28, 28)):
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def _layer_names(*models):
    return {layer.name for model in models for layer in model.layers}


def test_layers_match_the_tutorial():
    autoencoder, encoder, decoder = build_autoencoder()
    assert autoencoder.count_params() == 421_377
    assert not _layer_names(encoder, decoder) & {"pad", "crop"}  # 28 is a multiple of 4
    ours = [
        layer
        for m in (encoder, decoder)
        for layer in m.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    theirs = tutorial_model().layers
    assert len(ours) == len(theirs)
    keys = ("filters", "kernel_size", "strides", "padding", "activation", "units", "target_shape")
    for mine, ref in zip(ours, theirs, strict=True):
        assert type(mine) is type(ref)
        a, b = mine.get_config(), ref.get_config()
        assert {k: a.get(k) for k in keys} == {k: b.get(k) for k in keys}
        assert [w.shape for w in mine.weights] == [w.shape for w in ref.weights]


def test_functional_submodels_share_weights():
    autoencoder, encoder, decoder = build_autoencoder(latent_dim=16)
    assert not isinstance(autoencoder, keras.Sequential)
    x = _images(5).astype("float32")[..., None] / 255.0
    z = encoder(x)
    assert z.shape == (5, 16)
    np.testing.assert_allclose(autoencoder(x), decoder(z), rtol=1e-5, atol=1e-6)
    assert encoder.get_layer("latent") is autoencoder.get_layer("encoder").get_layer("latent")


def test_training_lowers_the_loss_and_is_reproducible():
    images = _images(128)

    def train():
        autoencoder, encoder, _ = build_autoencoder(seed=7)
        ds = autoencoder_pipeline(images, batch_size=32, seed=7)
        history = train_autoencoder(autoencoder, ds, epochs=2, verbose=0)
        return history.history["loss"], encode(encoder, images[:8])

    losses, z = train()
    assert losses[1] < losses[0]
    losses_again, z_again = train()
    assert losses_again == losses
    np.testing.assert_array_equal(z_again, z)


class _BatchCounter(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.calls = 0

    def on_train_batch_end(self, batch, logs=None):
        self.calls += 1


def _train_counting_batches(steps_per_execution):
    """A small model after 2 epochs of 9 batches, its losses and its batch callbacks' count."""
    autoencoder, _, _ = build_autoencoder(latent_dim=4, filters=(2, 3), seed=3)
    counter = _BatchCounter()
    ds = autoencoder_pipeline(_images(70), batch_size=8, seed=3)
    history = train_autoencoder(
        autoencoder,
        ds,
        epochs=2,
        verbose=0,
        callbacks=[counter],
        steps_per_execution=steps_per_execution,
    )
    return autoencoder, history.history["loss"], counter.calls


@pytest.fixture(scope="module")
def one_step_per_execution():
    return _train_counting_batches(1)


@pytest.mark.parametrize("steps_per_execution", [3, None])  # None: the default, 32 > 9 batches
def test_steps_per_execution_changes_neither_loss_nor_weights(
    one_step_per_execution, steps_per_execution
):
    reference, losses, calls = one_step_per_execution
    assert calls == 2 * 9
    autoencoder, losses_spe, calls_spe = _train_counting_batches(steps_per_execution)
    expected = steps_per_execution or STEPS_PER_EXECUTION
    assert autoencoder.steps_per_execution == expected
    assert calls_spe == 2 * -(-9 // expected)  # batch callbacks once per execution
    np.testing.assert_allclose(losses_spe, losses, rtol=1e-6)
    for a, b in zip(autoencoder.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_save_and_load_round_trip(tmp_path):
    autoencoder, encoder, _ = build_autoencoder(seed=1)
    path = save_autoencoder(autoencoder, tmp_path / "model")
    assert path.endswith("model.keras")
    _, loaded_encoder, loaded_decoder = load_autoencoder(path)
    images = _images(6)
    np.testing.assert_allclose(encode(loaded_encoder, images), encode(encoder, images), rtol=1e-6)
    assert loaded_decoder.output_shape == (None, 28, 28, 1)


def test_load_rejects_other_models(tmp_path):
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    other.save(tmp_path / "other.keras")
    with pytest.raises(ValueError, match="not a tfclust autoencoder"):
        load_autoencoder(tmp_path / "other.keras")
    with pytest.raises(FileNotFoundError):
        load_autoencoder(tmp_path / "missing.keras")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"latent_dim": 0}, ValueError, "latent_dim"),
        ({"latent_dim": 2.0}, TypeError, "latent_dim"),
        ({"filters": (32,)}, ValueError, "filters"),
        ({"image_shape": (28, 28)}, ValueError, r"image_shape must be \(H, W, C\)"),
        ({"image_shape": (28, 28, 1, 1)}, ValueError, r"got \(28, 28, 1, 1\)"),
        ({"image_shape": (28, 28, 2)}, ValueError, r"C = 1 \(grey\) or 3 \(RGB\), got"),
        ({"image_shape": (28, 28, 4)}, ValueError, r"got \(28, 28, 4\)"),
        ({"image_shape": (0, 28, 1)}, ValueError, r"H, W >= 1.*got \(0, 28, 1\)"),
        ({"image_shape": (28, -1, 3)}, ValueError, "image_shape"),
        ({"image_shape": (28.5, 28, 1)}, TypeError, "image_shape"),
        ({"image_shape": 28}, TypeError, "image_shape"),
        ({"image_shape": None}, TypeError, "image_shape"),
    ],
)
def test_bad_build_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        build_autoencoder(**kwargs)


def test_bad_training_and_encoding_input():
    autoencoder, encoder, _ = build_autoencoder()
    with pytest.raises(TypeError, match="tf.data.Dataset"):
        train_autoencoder(autoencoder, _images(4), epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        train_autoencoder(autoencoder, autoencoder_pipeline(_images(4)), epochs=0)
    for bad, error in [(0, ValueError), (2.5, TypeError), ("32", TypeError)]:
        with pytest.raises(error, match="steps_per_execution"):
            train_autoencoder(
                autoencoder, autoencoder_pipeline(_images(4)), steps_per_execution=bad
            )
    with pytest.raises(ValueError, match="encoder expects"):
        encode(encoder, np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(ValueError, match=r"\(28, 28, 3\) per image, the encoder expects"):
        encode(encoder, np.zeros((2, 28, 28, 3), np.uint8))


# -- any H x W x C: padding to a multiple of 4, cropping back ------------------------------


@pytest.mark.parametrize(
    "shape, border",
    [
        ((30, 30, 1), ((1, 1), (1, 1))),
        ((32, 32, 3), None),
        ((17, 23, 3), ((1, 2), (0, 1))),  # the odd pixel goes to the bottom/right
        ((1, 1, 1), ((1, 2), (1, 2))),
        ((8, 5, 3), ((0, 0), (1, 2))),
    ],
)
def test_pad_and_crop_only_where_needed(shape, border):
    autoencoder, encoder, decoder = build_autoencoder(4, (2, 3), image_shape=shape, seed=0)
    assert autoencoder.input_shape == autoencoder.output_shape == (None, *shape)
    assert encoder.input_shape == (None, *shape) and decoder.output_shape == (None, *shape)
    if border is None:
        assert not _layer_names(encoder, decoder) & {"pad", "crop"}
    else:
        assert encoder.get_layer("pad").padding == border
        assert decoder.get_layer("crop").cropping == border
        padded = encoder.get_layer("pad").output.shape[1:3]
        assert padded[0] % 4 == 0 and padded[1] % 4 == 0
        assert padded[0] - shape[0] < 4 and padded[1] - shape[1] < 4
    reconstruction = autoencoder(_images(2, shape=shape) / 255.0).numpy()
    assert reconstruction.shape == (2, *shape)
    assert ((reconstruction >= 0) & (reconstruction <= 1)).all()  # sigmoid


@pytest.mark.parametrize("shape", [(30, 30, 1), (32, 32, 3), (17, 23, 3)])
def test_any_image_shape_trains_and_encodes(shape):
    autoencoder, encoder, _ = build_autoencoder(4, (2, 3), image_shape=shape, seed=0)
    images = _images(8, shape=shape)
    history = train_autoencoder(
        autoencoder, autoencoder_pipeline(images, batch_size=4), epochs=1, verbose=0
    )
    assert np.isfinite(history.history["loss"]).all()
    z = encode(encoder, images, batch_size=3)
    assert z.shape == (8, 4) and z.dtype == np.float32 and np.isfinite(z).all()
    assert autoencoder(images[:2] / 255.0).shape == images[:2].shape


def test_grey_images_may_come_without_a_channel_axis():
    _, encoder, _ = build_autoencoder(4, (2, 3), image_shape=(30, 30, 1), seed=0)
    images = _images(3, shape=(30, 30))
    np.testing.assert_array_equal(encode(encoder, images), encode(encoder, images[..., None]))


def test_padding_is_zeros_and_cropping_keeps_the_centre():
    _, encoder, decoder = build_autoencoder(4, (2, 3), image_shape=(2, 3, 1), seed=0)
    padded = keras.Model(encoder.input, encoder.get_layer("pad").output)(np.ones((1, 2, 3, 1)))
    np.testing.assert_array_equal(
        padded[0, ..., 0], [[0, 0, 0, 0], [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]]
    )
    crop = decoder.get_layer("crop")
    cropped = crop(np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1))
    np.testing.assert_array_equal(cropped[0, ..., 0], [[4, 5, 6], [8, 9, 10]])


@pytest.mark.parametrize(
    "images, error, message",
    [
        (np.zeros((2, 17, 23), np.uint8), ValueError, r"\(17, 23, 1\) per image.*\(17, 23, 3\)"),
        (np.zeros((2, 17, 23, 1), np.uint8), ValueError, "the encoder expects"),
        (np.zeros((2, 23, 17, 3), np.uint8), ValueError, "the encoder expects"),
        (np.zeros((2, 17, 23, 2), np.uint8), ValueError, r"shape .*, got \(2, 17, 23, 2\)"),
        (np.zeros((2, 17, 23, 4), np.uint8), ValueError, "alpha channel"),
        (np.full((2, 17, 23, 3), 2.0, np.float32), ValueError, r"\[0, 1\]"),
        (np.zeros((2, 17, 23, 3), np.int16), TypeError, "dtype int16"),
    ],
)
def test_rgb_encoder_refuses_images_that_do_not_fit(rgb_model, images, error, message):
    with pytest.raises(error, match=message):
        encode(rgb_model[1], images)


@pytest.fixture(scope="module")
def rgb_model():
    return build_autoencoder(4, (2, 3), image_shape=(17, 23, 3), seed=0)


def test_rgb_model_save_and_load_round_trip(rgb_model, tmp_path):
    autoencoder, encoder, _ = rgb_model
    _, loaded_encoder, loaded_decoder = load_autoencoder(
        save_autoencoder(autoencoder, tmp_path / "rgb")
    )
    assert loaded_decoder.output_shape == (None, 17, 23, 3)
    assert {"pad", "crop"} <= _layer_names(loaded_encoder, loaded_decoder)
    images = _images(3, shape=(17, 23, 3))
    np.testing.assert_allclose(encode(loaded_encoder, images), encode(encoder, images), rtol=1e-6)
