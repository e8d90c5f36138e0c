import keras
import numpy as np
import pytest

from tfclust.autoencoder import (
    build_autoencoder,
    encode,
    load_autoencoder,
    save_autoencoder,
    train_autoencoder,
    tutorial_model,
)
from tfclust.data import autoencoder_pipeline


def _images(n=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def test_layers_match_the_tutorial():
    autoencoder, encoder, decoder = build_autoencoder()
    assert autoencoder.count_params() == 421_377
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
        ({"image_shape": (30, 30, 1)}, ValueError, "divisible by 4"),
        ({"filters": (32,)}, ValueError, "filters"),
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
    with pytest.raises(ValueError, match="encoder expects"):
        encode(encoder, np.zeros((2, 32, 32), np.uint8))
