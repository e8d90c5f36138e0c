import numpy as np
import pytest
import tensorflow as tf

from tfclust.data import autoencoder_pipeline, check_images, images_pipeline


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


def test_same_batches_as_shuffling_the_cast_images():
    """Shuffling indices and casting per batch yields the batches that the earlier pipeline
    (cast each image, then shuffle the float images with the same seed) yielded."""
    images = _images(37, seed=1)
    floats = tf.data.Dataset.from_tensor_slices(images[..., None]).map(
        lambda x: tf.cast(x, tf.float32) / 255.0
    )
    earlier = floats.shuffle(37, seed=5, reshuffle_each_iteration=True).batch(8)
    ours = autoencoder_pipeline(images, batch_size=8, seed=5)
    for _ in range(2):  # two epochs: the reshuffles agree too
        for (x, y), reference in zip(ours, earlier, strict=True):
            np.testing.assert_array_equal(x.numpy(), reference.numpy())
            np.testing.assert_array_equal(y.numpy(), reference.numpy())


def test_cache_is_deprecated():
    with pytest.warns(DeprecationWarning, match="cache"):
        ds = autoencoder_pipeline(_images(4), batch_size=2, cache=False)
    assert len(list(ds)) == 2


def test_images_pipeline_keeps_order_and_accepts_floats():
    floats = _images(5).astype(np.float32)[..., None] / 255.0
    out = np.concatenate(list(images_pipeline(floats, batch_size=2)))
    np.testing.assert_allclose(out, floats)


@pytest.mark.parametrize(
    "images, error, message",
    [
        (np.zeros((3, 28, 28), np.int32), TypeError, "uint8"),
        (np.zeros((3, 28), np.uint8), ValueError, "shape"),
        (np.zeros((3, 28, 28, 2), np.uint8), ValueError, r"\(N, H, W, 3\), got \(3, 28, 28, 2\)$"),
        (np.zeros((3, 28, 28, 4), np.uint8), ValueError, r"got \(3, 28, 28, 4\); drop the alpha"),
        (np.zeros((3, 28, 28, 3, 1), np.uint8), ValueError, "shape"),
        (np.zeros((3, 17, 23, 3), np.int64), TypeError, "uint8"),
        (np.full((3, 17, 23, 3), 1.5, np.float32), ValueError, r"\[0, 1\]"),
        (np.zeros((3, 0, 23, 3), np.uint8), ValueError, "zero height or width"),
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


# -- grey or RGB images of any size ------------------------------------------------------------


@pytest.mark.parametrize("shape", [(28, 28, 1), (30, 30, 1), (32, 32, 3), (17, 23, 3), (1, 1, 3)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_grey_and_rgb_images_of_any_size(shape, dtype):
    images = np.random.default_rng(0).integers(0, 256, (5, *shape)).astype(np.uint8)
    if dtype is np.float32:
        images = images.astype(np.float32) / 255.0
    checked = check_images(images)
    assert checked.shape == (5, *shape) and checked.dtype == dtype
    x, y = next(iter(autoencoder_pipeline(images, batch_size=4, shuffle=False)))
    assert x.shape == (4, *shape) and x.dtype == tf.float32
    np.testing.assert_allclose(x, images[:4] / (255.0 if dtype is np.uint8 else 1.0), rtol=1e-6)
    batches = [b.numpy() for b in images_pipeline(images, batch_size=2)]
    assert [b.shape for b in batches] == [(2, *shape), (2, *shape), (1, *shape)]


def test_grey_images_gain_a_channel_axis():
    images = np.zeros((2, 17, 23), np.uint8)
    assert check_images(images).shape == (2, 17, 23, 1)
    assert next(iter(images_pipeline(images))).shape == (2, 17, 23, 1)


def test_channels_restricts_the_accepted_images():
    rgb, grey = np.zeros((2, 28, 28, 3), np.uint8), np.zeros((2, 28, 28), np.uint8)
    assert check_images(grey, channels=(1,)).shape == (2, 28, 28, 1)
    with pytest.raises(ValueError, match=r"shape \(N, H, W\) or \(N, H, W, 1\), got \(2, 28"):
        check_images(rgb, channels=(1,))
    assert check_images(rgb, channels=(3,)).shape == (2, 28, 28, 3)
    with pytest.raises(ValueError, match=r"must have shape \(N, H, W, 3\), got \(2, 28, 28\)$"):
        check_images(grey, channels=(3,))
    with pytest.raises(ValueError, match=r"expected \(N, 32, 32\), \(N, 32, 32, 1\) or"):
        check_images(rgb, size=(32, 32))
    for channels in [(), (2,), (1, 4)]:
        with pytest.raises(ValueError, match="channels must hold 1 .grey. and/or 3 .RGB."):
            check_images(rgb, channels=channels)


@pytest.mark.parametrize("pipeline", [autoencoder_pipeline, images_pipeline])
def test_pipelines_prefetch_with_tf_data_autotuning_off(pipeline):
    # With it on, Keras' fit stalled ~8 s at most epoch starts (docs/data.md).
    ds = pipeline(_images(4), batch_size=2)
    assert ds.options().autotune.enabled is False
    assert type(ds._input_dataset).__name__ == "_PrefetchDataset"
