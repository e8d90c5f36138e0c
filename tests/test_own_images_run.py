"""``tfclust run --images``: a new user's folder of images through every stage, with and without
labels, and the errors an explicit folder that holds nothing usable gives."""

import csv
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from run_outputs import EVERY_FIGURE, retracing_warnings

import tfclust
from tfclust import pipeline
from tfclust.cli import main
from tfclust.data import read_idx
from tfclust.data.sources import DEBIAN_FASHION_MNIST_DIR

CLASS_NAMES = [
    "T-shirt top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot é",  # spaces and unicode in folder names
]


@pytest.fixture(scope="module")
def fashion_test_images():
    """The first 300 Fashion-MNIST test images and labels (Debian's dataset-fashion-mnist)."""
    folder = DEBIAN_FASHION_MNIST_DIR
    if not os.path.isdir(folder):
        pytest.skip(f"Debian's dataset-fashion-mnist is not installed ({folder})")
    images = read_idx(os.path.join(folder, "t10k-images-idx3-ubyte.gz"), 3)[:300]
    labels = read_idx(os.path.join(folder, "t10k-labels-idx1-ubyte.gz"), 1)[:300]
    return images, labels.astype(np.int64)


def write_png(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(path, tf.io.encode_png(image))


@pytest.fixture(scope="module")
def labelled_folder(fashion_test_images, tmp_path_factory):
    """Grey PNGs in class sub-folders named after Fashion-MNIST's classes."""
    images, labels = fashion_test_images
    root = tmp_path_factory.mktemp("labelled")
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        write_png(str(root / CLASS_NAMES[label] / f"image {i:03d}.png"), image[..., None])
    (root / "README.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def labelled_run(labelled_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "labelled"
    argv = ["run", "--quick", "--images", str(labelled_folder), "--out", str(out), "-q"]
    code = main([*argv, "--sweep-perplexities", "5", "--tsne-max-iter", "250", "--export"])
    assert code == 0
    return out, json.loads((out / pipeline.METRICS).read_text())


@pytest.fixture(scope="module")
def unlabelled_rgb_folder(fashion_test_images, tmp_path_factory):
    """200 RGB PNGs straight in the folder (no labels), of two sizes: 28x28 and 36x36."""
    images, _ = fashion_test_images
    root = tmp_path_factory.mktemp("unlabelled")
    for i, image in enumerate(images[:200]):
        rgb = np.stack([image, image // 2, 255 - image], axis=-1)  # colour that differs per channel
        if i % 2:
            rgb = tf.cast(tf.image.resize(rgb, (36, 36)), tf.uint8).numpy()
        write_png(str(root / f"img_{i:03d}.png"), rgb)
    return root


@pytest.fixture(scope="module")
def unlabelled_run(unlabelled_rgb_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "unlabelled"
    argv = ["run", "--quick", "--images", str(unlabelled_rgb_folder), "--out", str(out)]
    argv += ["--image-size", "32x32", "--n-clusters", "auto", "--k-range", "2,6", "--export"]
    argv += ["--sweep-perplexities", "none"]  # the labelled run draws the sweep
    with retracing_warnings() as retraced:
        assert main([*argv, "-q"]) == 0
    assert retraced == []  # one K-means program per k, not retracings of one
    return out, json.loads((out / pipeline.METRICS).read_text())


# ------------------------------------------------------------------------------- labelled folder


def test_labelled_folder_data_record(labelled_run):
    _, metrics = labelled_run
    data = metrics["data"]
    assert data["n_samples"] == 300 and data["image_shape"] == [28, 28, 1]
    assert data["labelled"] and data["class_names"] == sorted(CLASS_NAMES)
    assert data["source"].startswith("folder ") and "split" not in data


def test_labelled_folder_gets_label_and_label_free_metrics(labelled_run):
    _, metrics = labelled_run
    km = metrics["kmeans"]
    # Fashion-MNIST clusters far better than chance (0.1) even after a short training
    assert 0.3 < km["accuracy"] <= 1 and 0.2 < km["nmi"] <= 1
    assert -1 <= km["silhouette"] <= 1 and km["calinski_harabasz"] > 0 and km["davies_bouldin"] > 0
    assert "label_metrics" not in km
    assert 0.3 < metrics["tsne"]["knn_accuracy_10"] <= 1  # chance: about 0.1


def test_quick_scales_to_a_small_folder(labelled_run):
    _, metrics = labelled_run
    assert metrics["tsne"]["n_samples"] == 300  # --quick asks 1,000: all 300 are embedded
    # 300 images make 2 batches an epoch: --quick's 120 batches need 60 epochs, not 6
    assert metrics["autoencoder"]["epochs"] == 60 and metrics["autoencoder"]["steps"] == 120
    assert len(metrics["autoencoder"]["loss_per_epoch"]) == 60
    losses = metrics["autoencoder"]["loss_per_epoch"]
    assert losses[-1] < 0.5 * losses[0]


def test_labelled_folder_figures_use_class_names(labelled_run):
    out, metrics = labelled_run
    assert set(metrics["figures"]["files"]) == EVERY_FIGURE
    assert metrics["figures"]["coloured_by"] == "label"
    for path in metrics["figures"]["files"].values():
        assert os.path.getsize(path) > 0


def test_labelled_folder_points_back_to_files(labelled_run, labelled_folder):
    out, _ = labelled_run
    names = (out / pipeline.FILE_NAMES).read_text(encoding="utf-8").splitlines()
    assert len(names) == 300 and all((labelled_folder / name).is_file() for name in names)
    with open(out / pipeline.ASSIGNMENTS, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["index", "file", "label", "class", "cluster"]
    clusters = np.load(out / "kmeans_labels.npy")
    assert [int(r["cluster"]) for r in rows] == clusters.tolist()
    assert all(r["file"].split("/")[0] == r["class"] for r in rows)
    metadata = (out / "tensorboard" / "metadata.tsv").read_text(encoding="utf-8").splitlines()
    assert metadata[0].split("\t") == ["label", "cluster", "file"]
    label, cluster, file = metadata[1].split("\t")
    assert label == rows[0]["class"] and file == rows[0]["file"] and cluster == rows[0]["cluster"]


def test_labelled_folder_exports_a_grey_model(labelled_run, fashion_test_images):
    out, _ = labelled_run
    served = tf.saved_model.load(str(out / "serving" / "1"))
    # files sorted by class folder: the run's first image is the first of the first class
    names = (out / pipeline.FILE_NAMES).read_text(encoding="utf-8").splitlines()
    first = int(names[0].split("image ")[1][:3])
    answer = served.signatures["serving_uint8"](tf.constant(fashion_test_images[0][first:][:1]))
    assert int(answer["cluster"][0]) == int(np.load(out / "kmeans_labels.npy")[0])


def test_labelled_summary(labelled_run):
    _, metrics = labelled_run
    text = pipeline.summary(metrics)
    assert "300 images 28x28x1 (folder " in text
    assert "accuracy" in text and "silhouette" in text and "10-NN accuracy" in text


# ---------------------------------------------------------------------------- unlabelled RGB folder


@pytest.mark.slow  # an 80 s end-to-end run; RGB and choose-k have unit tests
def test_unlabelled_run_has_no_label_metrics(unlabelled_run):
    _, metrics = unlabelled_run
    assert metrics["data"]["labelled"] is False and metrics["data"]["image_shape"] == [32, 32, 3]
    km, ts = metrics["kmeans"], metrics["tsne"]
    assert km["label_metrics"] == ts["label_metrics"] == pipeline.NO_LABELS
    assert not {"accuracy", "nmi", "ari"} & set(km) and "knn_accuracy_10" not in ts
    assert {"silhouette", "calinski_harabasz", "davies_bouldin", "inertia"} <= set(km)
    text = pipeline.summary(metrics)
    assert "labels: none, so no accuracy" in text and "silhouette" in text


@pytest.mark.slow  # an 80 s end-to-end run; RGB and choose-k have unit tests
def test_unlabelled_run_chooses_k_and_says_why(unlabelled_run):
    out, metrics = unlabelled_run
    choice = metrics["kmeans"]["choose_k"]
    assert choice["ks"] == [2, 3, 4, 5, 6] and len(choice["silhouette"]) == 5
    best = choice["ks"][int(np.argmax(choice["silhouette"]))]
    assert choice["chosen"] == best == metrics["kmeans"]["n_clusters"]
    assert "silhouette" in choice["rule"]
    assert np.load(out / "kmeans_centers.npy").shape == (best, 64)
    assert "choose_k" in metrics["figures"]["files"]


@pytest.mark.slow  # an 80 s end-to-end run; RGB and choose-k have unit tests
def test_unlabelled_run_colours_by_cluster_and_draws_rgb(unlabelled_run):
    out, metrics = unlabelled_run
    expected = EVERY_FIGURE - {"perplexity_sweep", "confusion_matrix"} | {"choose_k"}
    assert set(metrics["figures"]["files"]) == expected
    assert metrics["figures"]["coloured_by"] == "cluster"
    sprite = tf.io.decode_png(tf.io.read_file(str(out / "tensorboard" / "sprite.png")))
    assert sprite.shape[-1] == 3
    metadata = (out / "tensorboard" / "metadata.tsv").read_text().splitlines()
    assert metadata[0].split("\t") == ["cluster", "file"]
    assert not (out / "labels.npy").exists()


@pytest.mark.slow  # an 80 s end-to-end run; RGB and choose-k have unit tests
def test_unlabelled_run_exports_an_rgb_model(unlabelled_run, unlabelled_rgb_folder):
    out, metrics = unlabelled_run
    served = tf.saved_model.load(str(out / "serving" / "1"))
    images = tfclust.load_images(unlabelled_rgb_folder, image_size=(32, 32)).images[:4]
    answer = served.signatures["serving_uint8"](tf.constant(images))
    clusters = np.load(out / "kmeans_labels.npy")[:4]
    np.testing.assert_array_equal(answer["cluster"].numpy(), clusters)


# ----------------------------------------------------------------- arrays, errors, other commands


def test_python_run_on_arrays_sorted_by_class(fashion_test_images, tmp_path):
    images, labels = fashion_test_images
    order = np.argsort(labels[:100], kind="stable")  # as a folder of class sub-folders is
    metrics = tfclust.run(
        images=images[order],
        labels=labels[order],
        out=str(tmp_path / "run"),
        epochs=1,
        min_steps=0,
        n_init=1,
        tsne_samples=40,
        tsne_max_iter=250,
        tsne_method="exact",  # 40 points cross five FFT grid sizes (test_run_folders.TINY_RUN)
        stop_after="tsne",
        verbose=0,
    )
    assert metrics["data"]["source"] == "array" and metrics["data"]["labelled"]
    assert "accuracy" in metrics["kmeans"]
    assert (tmp_path / "run" / "labels.npy").is_file()
    # the t-SNE takes 40 images drawn from all classes, not the first 40 (three classes)
    rows = np.load(tmp_path / "run" / pipeline.TSNE_ROWS)
    assert len(rows) == 40 and np.all(np.diff(rows) > 0) and rows[-1] >= 40
    assert len(set(labels[order][rows])) >= 7
    assert metrics["tsne"]["rows"].startswith("images drawn at random")
    assert metrics["tsne"]["knn_accuracy_10"] < 1


def test_python_run_refuses_settings_twice(tmp_path):
    with pytest.raises(TypeError, match="not both"):
        tfclust.run(pipeline.RunConfig(), epochs=2)
    with pytest.raises(ValueError, match="labels need images"):
        tfclust.run(labels=[0, 1], out=str(tmp_path / "o"))
    with pytest.raises(ValueError, match="excludes dataset"):
        tfclust.run(images=np.zeros((30, 8, 8), np.uint8), dataset="mnist")


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "is empty: looked (recursively) for files ending in .png"),
        (["--dataset", "mnist"], "images excludes dataset and data_dir"),
        (["--color-by", "label", "--tsne-samples", "0"], "color_by='label' but the images have"),
    ],
)
def test_explicit_folder_with_nothing_usable_is_an_error(tmp_path, capsys, extra, message):
    folder = tmp_path / "imgs"
    folder.mkdir()
    if "--color-by" in extra:
        for i in range(12):
            write_png(str(folder / f"{i}.png"), np.full((8, 8, 1), i, np.uint8))
    argv = ["run", "--images", str(folder), "--out", str(tmp_path / "o"), "-q", *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o" / "autoencoder.keras").exists()


def test_data_dir_of_images_points_to_images_flag(tmp_path, capsys):
    write_png(str(tmp_path / "imgs" / "a.png"), np.zeros((8, 8, 1), np.uint8))
    argv = ["run", "--data-dir", str(tmp_path / "imgs"), "--out", str(tmp_path / "o"), "-q"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "has no mnist files" in err and "use images= (CLI: --images) instead" in err


def test_corrupt_image_named_or_skipped(tmp_path, capsys):
    folder = tmp_path / "imgs"
    for i in range(40):
        write_png(str(folder / f"{i:02d}.png"), np.full((8, 8, 1), 6 * i, np.uint8))
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    argv = ["train", "--images", str(folder), "--epochs", "1", "--min-steps", "0", "-q"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 2
    assert "broken.png" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "b"), "--skip-bad-images"]) == 0
    metrics = json.loads((tmp_path / "b" / pipeline.METRICS).read_text())
    assert metrics["data"]["n_samples"] == 40


def test_encode_command_on_a_folder(labelled_run, labelled_folder, tmp_path):
    out, _ = labelled_run
    argv = ["encode", "--images", str(labelled_folder), "--model", str(out / "autoencoder.keras")]
    assert main([*argv, "--out", str(tmp_path / "enc"), "-q"]) == 0
    latents = np.load(tmp_path / "enc" / "latents.npy")
    np.testing.assert_allclose(latents, np.load(out / "latents.npy"), rtol=1e-5, atol=1e-6)
    assert (tmp_path / "enc" / pipeline.FILE_NAMES).is_file()
    assert (tmp_path / "enc" / "labels.npy").is_file()


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--image-size", "0x5", "expected HEIGHTxWIDTH"),
        ("--image-size", "big", "expected HEIGHTxWIDTH"),
        ("--n-clusters", "many", "expected a number or 'auto'"),
        ("--k-range", "5", "expected LOW,HIGH"),
    ],
)
def test_bad_image_flags(flag, value, message, capsys):
    with pytest.raises(SystemExit):
        main(["run", "--images", "x", flag, value])
    assert message in capsys.readouterr().err


def test_k_range_larger_than_the_data(tmp_path, capsys):
    folder = tmp_path / "imgs"
    for i in range(3):
        write_png(str(folder / f"{i}.png"), np.full((8, 8, 1), 50 * i, np.uint8))
    argv = ["run", "--images", str(folder), "--n-clusters", "auto", "--k-range", "4,6"]
    assert main([*argv, "--out", str(tmp_path / "o"), "-q"]) == 2
    assert "k_range starts at 4 but there are only 3 images" in capsys.readouterr().err


def test_image_flags_need_images(capsys):
    assert main(["run", "--image-size", "32", "--skip-bad-images", "--out", "x", "-q"]) == 2
    assert "--image-size, --skip-bad-images apply to --images only" in capsys.readouterr().err
