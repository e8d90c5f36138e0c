import numpy as np
import pytest
import tensorflow as tf

from tfclust.data import autoencoder_pipeline, images_pipeline


def _images(n=10, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def test_batches_are_normalised_pairs():
    images = _images(10)
    ds = autoencoder_pipeline(images, batch_size=4, shuffle=False)
    batches = list(ds)
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    x, y = batches[0]
    assert x.dtype == tf.float32 and x.shape == (4, 28, 28, 1)
    np.testing.assert_array_equal(x.numpy(), y.numpy())
    np.testing.assert_allclose(x.numpy()[..., 0], images[:4] / 255.0, rtol=1e-6)


def test_shuffle_is_deterministic_per_seed_and_varies_by_epoch():
    images = np.arange(50, dtype=np.uint8).repeat(28 * 28).reshape(50, 28, 28)

    def order(ds):
        return [int(round(v * 255)) for x, _ in ds for v in x.numpy()[:, 0, 0, 0]]

    ds = autoencoder_pipeline(images, batch_size=8, seed=3)
    first, second = order(ds), order(ds)
    assert sorted(first) == list(range(50))
    assert first != second  # reshuffled each epoch
    again = autoencoder_pipeline(images, batch_size=8, seed=3)
    assert order(again) == first and order(again) == second
    assert order(autoencoder_pipeline(images, batch_size=8, seed=4)) != first


def test_images_pipeline_keeps_order_and_accepts_floats():
    floats = _images(5).astype(np.float32)[..., None] / 255.0
    out = np.concatenate(list(images_pipeline(floats, batch_size=2)))
    np.testing.assert_allclose(out, floats)


def test_dataset_is_prefetched():
    ds = autoencoder_pipeline(_images(4), batch_size=2)
    assert type(ds).__name__ == "_PrefetchDataset"


@pytest.mark.parametrize(
    "images, error, message",
    [
        (np.zeros((3, 28, 28), np.int32), TypeError, "uint8"),
        (np.zeros((3, 28), np.uint8), ValueError, "shape"),
        (np.zeros((3, 28, 28, 3), np.uint8), ValueError, "shape"),
        (np.zeros((0, 28, 28), np.uint8), ValueError, "empty"),
        (np.full((2, 28, 28), np.nan, np.float32), ValueError, "NaN"),
        (np.full((2, 28, 28), 255.0, np.float32), ValueError, r"\[0, 1\]"),
    ],
)
def test_bad_images(images, error, message):
    with pytest.raises(error, match=message):
        autoencoder_pipeline(images)


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        autoencoder_pipeline(_images(3), batch_size=0)
    with pytest.raises(TypeError, match="batch_size"):
        images_pipeline(_images(3), batch_size=2.5)
