"""tfclust.serving: the KMeansAssign layer and the SavedModel export for TF Serving.

One model is exported per module and shared by the tests; the checks that need a fresh process
(``tf.saved_model.load`` without tfclust, ``saved_model_cli``) run one subprocess each.
"""

import json
import os
import re
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfclust._validation import NotFittedError
from tfclust.autoencoder import build_autoencoder, encode, save_autoencoder
from tfclust.cli import main
from tfclust.kmeans import KMeans
from tfclust.serving import (
    KMeansAssign,
    export,
    export_from_files,
    load_centers,
    save_centers,
)
from tfclust.tsne import TSNE, ParametricTSNE

K = 10
BATCHES = (1, 7, 1000)
SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _images(n=1000, seed=0):
    """uint8 (n, 28, 28): noisy copies of K random prototypes (so the latents form clusters),
    and one image in five pure noise (latents between the clusters)."""
    rng = np.random.default_rng(seed)
    prototypes = rng.integers(0, 256, (K, 28, 28))
    noise = rng.integers(-40, 41, (n, 28, 28))
    images = np.clip(prototypes[rng.integers(0, K, n)] + noise, 0, 255)
    images[::5] = rng.integers(0, 256, (len(images[::5]), 28, 28))
    return images.astype(np.uint8)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    autoencoder, encoder, _ = build_autoencoder(seed=0)
    images = _images()
    latents = encode(encoder, images)
    km = KMeans(n_clusters=K, random_state=0).fit(latents)
    base = tmp_path_factory.mktemp("serving") / "clusterer"
    version_dir = export(base, encoder, km, version=3)
    return SimpleNamespace(
        autoencoder=autoencoder,
        encoder=encoder,
        km=km,
        images=images,
        latents=latents,
        labels=km.predict(latents),
        distances=km.transform(latents),
        base=base,
        dir=version_dir,
    )


@pytest.fixture(scope="module")
def loaded(model):
    return tf.saved_model.load(model.dir)


def _float_images(images):
    return images.astype(np.float32)[..., np.newaxis] / 255.0


# -- KMeansAssign ----------------------------------------------------------------------------


def test_layer_matches_kmeans_and_a_numpy_argmin(model):
    layer = KMeansAssign(K, model.km.cluster_centers_)
    cluster, distances = layer(model.latents)
    assert cluster.dtype == tf.int64 and cluster.shape == (1000,)
    assert distances.dtype == tf.float32 and distances.shape == (1000, K)
    assert len(np.unique(model.labels)) == K
    np.testing.assert_array_equal(cluster, model.labels)
    np.testing.assert_allclose(distances, model.distances, rtol=1e-5, atol=1e-5)

    z, c = model.latents.astype(np.float64), model.km.cluster_centers_.astype(np.float64)
    exact = np.sqrt(((z[:, None, :] - c[None]) ** 2).sum(-1))
    np.testing.assert_array_equal(cluster, exact.argmin(1))
    np.testing.assert_allclose(distances, exact, rtol=1e-4, atol=1e-5)


def test_layer_breaks_ties_towards_the_first_centre():
    layer = KMeansAssign(3, [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    cluster, distances = layer(np.array([[1.0, 1.0], [0.1, 0.0]], np.float32))
    np.testing.assert_array_equal(cluster, [1, 0])
    np.testing.assert_allclose(distances[0], [np.sqrt(2), 0, 0], atol=1e-6)


def test_layer_in_a_keras_model_saves_and_loads(model, tmp_path):
    latent = keras.Input((64,))
    cluster, distances = KMeansAssign(K, model.km.cluster_centers_, name="assign")(latent)
    clusterer = keras.Model(latent, {"cluster": cluster, "distances": distances})
    layer = clusterer.get_layer("assign")
    assert not layer.trainable_weights and len(layer.non_trainable_weights) == 1
    assert layer.get_config()["n_clusters"] == K
    assert KMeansAssign.from_config(layer.get_config()).n_clusters == K

    clusterer.save(tmp_path / "clusterer.keras")
    reloaded = keras.models.load_model(tmp_path / "clusterer.keras")
    np.testing.assert_array_equal(
        reloaded.get_layer("assign").centers.numpy(), model.km.cluster_centers_
    )
    out = reloaded.predict(model.latents[:50], verbose=0)
    np.testing.assert_array_equal(out["cluster"], model.labels[:50])


@pytest.mark.parametrize(
    "kwargs, input_shape, error, message",
    [
        ({"n_clusters": 0}, (None, 2), ValueError, "n_clusters must be >= 1"),
        ({"n_clusters": 2.5}, (None, 2), TypeError, "n_clusters must be an integer"),
        ({"n_clusters": 3, "centers": np.zeros((2, 2))}, (None, 2), ValueError, "has 2 rows"),
        ({"n_clusters": 1, "centers": [[np.nan, 0.0]]}, (None, 2), ValueError, "NaN"),
        ({"n_clusters": 1, "centers": [["a", "b"]]}, (None, 2), TypeError, "numeric"),
        ({"n_clusters": 2, "centers": np.zeros((2, 3))}, (None, 2), ValueError, "3 features"),
        ({"n_clusters": 2}, (None, 4, 2), ValueError, r"shape \(batch, d\)"),
    ],
)
def test_layer_rejects_bad_arguments(kwargs, input_shape, error, message):
    with pytest.raises(error, match=message):
        KMeansAssign(**kwargs).build(input_shape)


# -- export: in-process checks ---------------------------------------------------------------


def test_export_writes_a_version_folder(model):
    assert os.path.isfile(os.path.join(model.dir, "saved_model.pb"))
    assert os.listdir(model.base) == ["3"]  # no temporary folder left behind


def test_grey_28x28_export_keeps_its_signatures(loaded):
    specs = {
        name: sig.structured_input_signature[1]["images"] for name, sig in loaded.signatures.items()
    }
    assert specs["serving_uint8"] == tf.TensorSpec([None, 28, 28], tf.uint8, name="images")
    for name in ("serving_default", "encode"):
        assert specs[name] == tf.TensorSpec([None, 28, 28, 1], tf.float32, name="images")


def test_wrong_input_fails_with_a_shape_or_dtype_error(loaded):
    sigs = loaded.signatures
    dtype = r"expected to be a (float|uint8) tensor"
    shape = r"is not compatible with expected shape"
    value = r"images must lie in \[0, 1\]"
    cases = [
        ("serving_default", tf.zeros([2, 28, 28, 1], tf.float64), dtype),
        ("serving_default", tf.zeros([2, 28, 28, 1], tf.uint8), dtype),
        ("serving_default", tf.zeros([2, 28, 28]), shape),
        ("serving_default", tf.zeros([2, 28, 27, 1]), shape),
        ("serving_default", tf.zeros([2, 28, 28, 3]), shape),
        ("serving_default", tf.fill([2, 28, 28, 1], 255.0), value),
        ("serving_default", tf.fill([2, 28, 28, 1], np.nan), value),
        ("serving_uint8", tf.zeros([2, 28, 28]), dtype),
        ("serving_uint8", tf.zeros([2, 28, 28, 1], tf.uint8), shape),
        ("encode", tf.zeros([2, 784]), shape),
    ]
    for name, images, message in cases:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            sigs[name](images=images)


def test_empty_and_single_batches(loaded, model):
    out = loaded.signatures["serving_uint8"](images=tf.zeros([0, 28, 28], tf.uint8))
    assert out["latent"].shape == (0, 64) and out["cluster"].shape == (0,)
    assert out["distances"].shape == (0, K)
    out = loaded.signatures["serving_uint8"](images=tf.constant(model.images[4:5]))
    assert out["cluster"].numpy().tolist() == [model.labels[4]]


def test_export_rejects_bad_arguments(model, tmp_path):
    encoder, centers = model.encoder, model.km.cluster_centers_
    with pytest.raises(NotFittedError, match="not fitted"):
        export(tmp_path, encoder, KMeans(K))
    with pytest.raises(ValueError, match="32 features but the encoder's latents have 64"):
        export(tmp_path, encoder, np.zeros((K, 32), np.float32))
    nan_centers = centers.copy()
    nan_centers[2, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        export(tmp_path, encoder, nan_centers)
    with pytest.raises(ValueError, match="2-D"):
        export(tmp_path, encoder, centers[0])
    with pytest.raises(TypeError, match="keras.Model"):
        export(tmp_path, "encoder.keras", centers)
    flat = keras.Model(inp := keras.Input((784,)), keras.layers.Dense(64)(inp))
    with pytest.raises(ValueError, match=r"shape \(None, H, W, C\) with C = 1 .grey. or 3 .RGB."):
        export(tmp_path, flat, centers)
    two_channels = keras.Sequential([keras.Input((8, 8, 2)), keras.layers.Flatten()])
    with pytest.raises(ValueError, match=r"takes \(None, 8, 8, 2\)"):
        export(tmp_path, two_channels, np.zeros((K, 128), np.float32))
    with pytest.raises(ValueError, match="version must be >= 1"):
        export(tmp_path, encoder, centers, version=0)
    with pytest.raises(TypeError, match="version must be an integer"):
        export(tmp_path, encoder, centers, version="2")
    with pytest.raises(FileExistsError, match="exists; replace it"):
        export(model.base, encoder, centers, version=3)
    assert not os.listdir(tmp_path)


def test_export_from_files(model, tmp_path):
    model_path = save_autoencoder(model.autoencoder, tmp_path / "autoencoder")
    centers_path = save_centers(model.km, tmp_path / "centers")
    assert centers_path.endswith("centers.npy")
    centers = load_centers(centers_path)
    assert centers.dtype == np.float32
    np.testing.assert_array_equal(centers, model.km.cluster_centers_)

    out = tmp_path / "serving"
    version_dir = export_from_files(model_path, centers_path, out)
    assert version_dir == os.path.join(out, "1")
    version_dir = export_from_files(model_path, centers_path, out, overwrite=True)
    served = tf.saved_model.load(version_dir).signatures["serving_uint8"]
    result = served(images=tf.constant(model.images[:7]))
    np.testing.assert_array_equal(result["cluster"], model.labels[:7])
    np.testing.assert_allclose(result["latent"], model.latents[:7], rtol=0, atol=1e-6)


def test_load_centers_rejects_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_centers(tmp_path / "missing.npy")
    np.save(tmp_path / "flat.npy", np.zeros(5))
    with pytest.raises(ValueError, match="2-D"):
        load_centers(tmp_path / "flat.npy")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}]), allow_pickle=True)
    with pytest.raises(ValueError, match="holds Python objects"):
        load_centers(tmp_path / "objects.npy")


# -- export: fresh processes -----------------------------------------------------------------

_LOADER = textwrap.dedent("""
    import json, sys
    sys.modules["tfclust"] = None  # any import of tfclust (or sklearn) now fails
    sys.modules["sklearn"] = None
    import numpy as np
    import tensorflow as tf

    model_dir, images_path, out_path, batches = sys.argv[1:5]
    sigs = tf.saved_model.load(model_dir).signatures
    images = np.load(images_path)
    results = {}
    for b in json.loads(batches):
        uint8 = tf.constant(images[:b])
        floats = tf.constant(images[:b].astype(np.float32)[..., None] / 255.0)
        for name, out in [("serving_default", sigs["serving_default"](images=floats)),
                          ("serving_uint8", sigs["serving_uint8"](images=uint8)),
                          ("encode", sigs["encode"](images=floats))]:
            for key, value in out.items():
                results[f"{name}/{b}/{key}"] = value.numpy()
    np.savez(out_path, **results)
""")


def test_fresh_process_without_tfclust_gives_the_same_answers(model, tmp_path):
    np.save(tmp_path / "images.npy", model.images)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _LOADER,
            model.dir,
            tmp_path / "images.npy",
            tmp_path / "out.npz",
            json.dumps(BATCHES),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = np.load(tmp_path / "out.npz")
    assert len(out.files) == len(BATCHES) * 7
    for b in BATCHES:
        for name in ("serving_default", "serving_uint8", "encode"):
            latent = out[f"{name}/{b}/latent"]
            assert latent.dtype == np.float32 and latent.shape == (b, 64)
            np.testing.assert_allclose(latent, model.latents[:b], rtol=0, atol=1e-6)
        for name in ("serving_default", "serving_uint8"):
            cluster, distances = out[f"{name}/{b}/cluster"], out[f"{name}/{b}/distances"]
            assert cluster.dtype == np.int64 and cluster.shape == (b,)
            np.testing.assert_array_equal(cluster, model.labels[:b])
            np.testing.assert_allclose(distances, model.distances[:b], rtol=1e-5, atol=1e-5)


def _signature_tensors(show_output: str, signature: str) -> dict:
    """{"inputs['images']": ("DT_FLOAT", "(-1, 28, 28, 1)"), ...} of one signature."""
    block = show_output.split(f"signature_def['{signature}']:", 1)[1].split("signature_def[")[0]
    found = re.findall(
        r"((?:in|out)puts\['\w+'\]) tensor_info:\s+dtype: (\w+)\s+shape: (.+)", block
    )
    return {name: (dtype, shape.strip()) for name, dtype, shape in found}


def test_saved_model_cli_show_and_run(model, tmp_path):
    show = subprocess.run(
        [SAVED_MODEL_CLI, "show", "--dir", model.dir, "--all"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert show.returncode == 0, show.stderr[-3000:]
    images = ("DT_FLOAT", "(-1, 28, 28, 1)")
    assigned = {
        "outputs['latent']": ("DT_FLOAT", "(-1, 64)"),
        "outputs['cluster']": ("DT_INT64", "(-1)"),
        "outputs['distances']": ("DT_FLOAT", f"(-1, {K})"),
    }
    assert _signature_tensors(show.stdout, "serving_default") == {
        "inputs['images']": images,
        **assigned,
    }
    assert _signature_tensors(show.stdout, "serving_uint8") == {
        "inputs['images']": ("DT_UINT8", "(-1, 28, 28)"),
        **assigned,
    }
    assert _signature_tensors(show.stdout, "encode") == {
        "inputs['images']": images,
        "outputs['latent']": ("DT_FLOAT", "(-1, 64)"),
    }

    np.save(tmp_path / "x.npy", _float_images(model.images[:5]))
    run = subprocess.run(
        [
            SAVED_MODEL_CLI,
            "run",
            "--dir",
            model.dir,
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"images={tmp_path / 'x.npy'}",
            "--outdir",
            tmp_path / "out",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "cluster.npy"), model.labels[:5])
    np.testing.assert_allclose(
        np.load(tmp_path / "out" / "latent.npy"), model.latents[:5], rtol=0, atol=1e-6
    )


def test_export_is_world_readable_and_clears_a_killed_exports_leftovers(model, tmp_path):
    leftover = tmp_path / ".1.partial-123-abcdef12"  # what a SIGKILL during an export leaves
    (leftover / "variables").mkdir(parents=True)
    old_umask = os.umask(0o022)
    try:
        version_dir = export(tmp_path, model.encoder, model.km)
    finally:
        os.umask(old_umask)
    assert sorted(os.listdir(tmp_path)) == ["1"]
    for folder, _dirs, files in os.walk(version_dir):
        assert os.stat(folder).st_mode & 0o777 == 0o755, folder
        for name in files:
            assert os.stat(os.path.join(folder, name)).st_mode & 0o044 == 0o044, name


# -- any H x W x C -------------------------------------------------------------------------


@pytest.fixture(scope="module", params=[(32, 32, 3), (30, 30, 1)], ids=["rgb32", "grey30"])
def small(request, tmp_path_factory):
    """A tiny encoder of another image shape, its export and the SavedModel loaded back."""
    shape = request.param
    _, encoder, _ = build_autoencoder(4, (2, 3), image_shape=shape, seed=0)
    images = np.random.default_rng(1).integers(0, 256, (6, *shape), dtype=np.uint8)
    centers = np.random.default_rng(2).normal(size=(3, 4)).astype(np.float32)
    folder = export(tmp_path_factory.mktemp("small") / "model", encoder, centers)
    return SimpleNamespace(
        shape=shape,
        images=images,
        latents=encode(encoder, images),
        centers=centers,
        served=tf.saved_model.load(folder),
    )


def test_other_shapes_answer_every_signature(small):
    sigs, images, (h, w, c) = small.served.signatures, small.images, small.shape
    uint8 = images if c == 3 else images[..., 0]  # grey: no channel axis, as for MNIST
    floats = images.astype(np.float32) / 255.0
    assert sigs["serving_uint8"].structured_input_signature[1]["images"].shape == (
        [None, h, w, 3] if c == 3 else [None, h, w]
    )
    assert sigs["serving_default"].structured_input_signature[1]["images"].shape == [None, h, w, c]
    by_uint8 = sigs["serving_uint8"](images=tf.constant(uint8[:2]))
    by_float = sigs["serving_default"](images=tf.constant(floats[:2]))
    expected = np.linalg.norm(small.latents[:2, None] - small.centers[None], axis=-1)
    for out in (by_uint8, by_float):
        np.testing.assert_allclose(out["latent"], small.latents[:2], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out["distances"], expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(out["cluster"], expected.argmin(1))
    latent = sigs["encode"](images=tf.constant(floats))["latent"]
    np.testing.assert_allclose(latent, small.latents, rtol=1e-5, atol=1e-6)
    empty = sigs["serving_uint8"](images=tf.zeros([0, *uint8.shape[1:]], tf.uint8))
    assert empty["latent"].shape == (0, 4) and empty["cluster"].shape == (0,)


def test_other_shapes_refuse_wrong_input(small):
    sigs, (h, w, c) = small.served.signatures, small.shape
    shape = r"is not compatible with expected shape"
    other = 1 if c == 3 else 3
    cases = [
        ("serving_default", tf.zeros([2, h, w, other]), shape),
        ("serving_default", tf.zeros([2, h, w]), shape),
        ("serving_default", tf.zeros([2, w + 1, h, c]), shape),
        ("serving_default", tf.fill([2, h, w, c], 255.0), r"images must lie in \[0, 1\]"),
        ("serving_default", tf.zeros([2, h, w, c], tf.uint8), "expected to be a float tensor"),
        ("serving_uint8", tf.zeros([2, h, w, 4], tf.uint8), shape),  # RGBA
        ("serving_uint8", tf.zeros([2, h, w] if c == 3 else [2, h, w, 1], tf.uint8), shape),
        ("serving_uint8", tf.zeros([2, h, w, c]), "expected to be a uint8 tensor"),
        ("encode", tf.zeros([2, h, w, other]), shape),
    ]
    for name, images, message in cases:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            sigs[name](images=images)


# -- the map output (a ParametricTSNE in the graph) --------------------------------------------


@pytest.fixture(scope="module")
def mapped(model, tmp_path_factory):
    parametric = ParametricTSNE(n_epochs=3, random_state=0)
    parametric.fit(model.latents, embedding=model.latents[:, :2] * 10)
    folder = tmp_path_factory.mktemp("map")
    version_dir = export(folder / "served", model.encoder, model.km, tsne=parametric)
    return SimpleNamespace(parametric=parametric, folder=folder, dir=version_dir)


def test_map_output_is_the_parametric_map(model, mapped):
    signatures = tf.saved_model.load(mapped.dir).signatures
    want = mapped.parametric.transform(model.latents[:7])
    for name, images in [
        ("serving_uint8", tf.constant(model.images[:7])),
        ("serving_default", tf.constant(_float_images(model.images[:7]))),
    ]:
        out = signatures[name](images=images)
        assert sorted(out) == ["cluster", "distances", "latent", "map"]
        assert out["map"].dtype == tf.float32 and out["map"].shape == (7, 2)
        np.testing.assert_allclose(out["map"], want, rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(out["cluster"], model.labels[:7])
    empty = signatures["serving_uint8"](images=tf.zeros([0, 28, 28], tf.uint8))
    assert empty["map"].shape == (0, 2)
    assert sorted(signatures["encode"].structured_outputs) == ["latent"]


def test_export_refuses_a_map_it_cannot_serve(model, mapped, tmp_path):
    encoder, km = model.encoder, model.km
    with pytest.raises(TypeError, match="forward pass: export a ParametricTSNE"):
        export(tmp_path, encoder, km, tsne=TSNE())
    with pytest.raises(TypeError, match="fitted ParametricTSNE, got ndarray"):
        export(tmp_path, encoder, km, tsne=np.zeros((3, 2)))
    with pytest.raises(NotFittedError):
        export(tmp_path, encoder, km, tsne=ParametricTSNE())
    small = ParametricTSNE(n_epochs=1, random_state=0).fit(
        model.latents[:50, :8], embedding=model.latents[:50, :2]
    )
    with pytest.raises(ValueError, match="map takes 8 features but the encoder's latents have 64"):
        export(tmp_path, encoder, km, tsne=small)
    assert not os.listdir(tmp_path)


def test_export_command_adds_the_map(model, mapped, tmp_path):
    model_path = save_autoencoder(model.autoencoder, tmp_path / "autoencoder")
    centers_path = save_centers(model.km, tmp_path / "centers")
    map_path = mapped.parametric.save(tmp_path / "parametric_tsne")
    out = tmp_path / "served"
    argv = ["export", "--model", model_path, "--kmeans", centers_path, "--out", str(out)]
    assert main([*argv, "--map", map_path]) == 0
    served = tf.saved_model.load(os.path.join(out, "1")).signatures["serving_uint8"]
    result = served(images=tf.constant(model.images[:5]))
    np.testing.assert_allclose(
        result["map"], mapped.parametric.transform(model.latents[:5]), rtol=1e-5, atol=1e-4
    )
    with pytest.raises(ValueError, match="is not an estimator file"):
        export_from_files(model_path, centers_path, out, overwrite=True, map_path=centers_path)


# -- DEC ------------------------------------------------------------------------------------


def test_export_of_a_dec_fitted_on_images_serves_its_refined_head(tmp_path):
    from tfclust.deep import DEC

    images = _images(n=200, seed=1)[:, 4:20, 4:20]  # 16 x 16: a small, quick model
    autoencoder, _, _ = build_autoencoder(latent_dim=4, filters=(4, 8), image_shape=(16, 16, 1))
    dec = DEC(3, batch_size=64, update_interval=5, max_iter=10, tol=0, n_init=2, random_state=0)
    dec.fit(images, autoencoder=autoencoder)
    folder = export(tmp_path / "dec", None, dec)
    served = tf.saved_model.load(folder)
    out = served.signatures["serving_uint8"](tf.constant(images))
    assert sorted(out) == ["cluster", "cluster_probabilities", "distances", "latent"]
    np.testing.assert_array_equal(out["cluster"].numpy(), dec.predict(images))
    np.testing.assert_allclose(
        out["cluster_probabilities"].numpy(), dec.predict_proba(images), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(out["latent"].numpy(), dec.transform(images), rtol=1e-5, atol=1e-5)
    floats = served.signatures["serving_default"](tf.constant(_float_images(images)))
    np.testing.assert_array_equal(floats["cluster"].numpy(), dec.predict(images))
    assert served.signatures["serving_uint8"](tf.zeros((0, 16, 16), tf.uint8))["cluster"].shape == (
        0,
    )
    with pytest.raises(ValueError, match="refined encoder"):
        export(tmp_path / "other", autoencoder.get_layer("encoder"), dec)
    with pytest.raises(NotFittedError):
        export(tmp_path / "unfitted", None, DEC(3))


def test_export_of_a_dec_fitted_on_latents_chains_the_encoders(model, tmp_path):
    from tfclust.deep import DEC

    images = model.images[:300]
    dec = DEC(
        K,
        latent_dim=5,
        hidden_units=(16,),
        pretrain_epochs=3,
        batch_size=64,
        update_interval=5,
        max_iter=10,
        tol=0,
        n_init=2,
        random_state=0,
        dtype="float64",
    )
    dec.fit(model.latents[:300].astype(np.float64))
    folder = export(tmp_path / "dec", model.encoder, dec)
    out = tf.saved_model.load(folder).signatures["serving_uint8"](tf.constant(images))
    latents = encode(model.encoder, images).astype(np.float64)
    np.testing.assert_array_equal(out["cluster"].numpy(), dec.predict(latents))
    np.testing.assert_allclose(
        out["cluster_probabilities"].numpy(), dec.predict_proba(latents), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(out["latent"].numpy(), dec.transform(latents), rtol=1e-4, atol=1e-4)
    assert out["distances"].shape == (len(images), K)
    with pytest.raises(ValueError, match="needs the encoder"):
        export(tmp_path / "none", None, dec)
