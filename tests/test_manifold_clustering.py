"""ManifoldClustering: a t-SNE map, then a mixture (or K-means) on it; and the run's
``clustering`` stage with each method."""

import pickle

import numpy as np
import pytest
from sklearn.datasets import make_blobs

import tfclust
from tfclust import ManifoldClustering, NotFittedError, pipeline
from tfclust.metrics import cluster_accuracy


@pytest.fixture(scope="module")
def blobs():
    x, y = make_blobs(n_samples=160, n_features=10, centers=4, cluster_std=1.0, random_state=3)
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def fitted(blobs):
    return ManifoldClustering(n_clusters=4, perplexity=15, random_state=0).fit(blobs[0])


def test_finds_the_blobs_and_places_new_points(fitted, blobs):
    x, y = blobs
    assert cluster_accuracy(y, fitted.labels_) == 1.0
    assert fitted.labels_.dtype == np.int32 and fitted.embedding_.shape == (160, 2)
    # the map is the fitted TSNE's, and the clusters are the mixture's on it
    np.testing.assert_array_equal(fitted.embedding_, fitted.tsne_.embedding_)
    np.testing.assert_array_equal(fitted.clusterer_.predict(fitted.embedding_), fitted.labels_)
    assert isinstance(fitted.clusterer_, tfclust.GaussianMixture)
    # training rows placed again land in their own cluster
    assert np.mean(fitted.predict(x[:60]) == fitted.labels_[:60]) >= 0.95
    proba = fitted.predict_proba(x[:10])
    assert proba.shape == (10, 4) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert fitted.transform(x[:3]).shape == (3, 2)


def test_kmeans_on_the_map(blobs):
    model = ManifoldClustering(n_clusters=4, perplexity=15, clusterer="kmeans", random_state=0)
    labels = model.fit_predict(blobs[0])
    assert cluster_accuracy(blobs[1], labels) == 1.0
    assert isinstance(model.clusterer_, tfclust.KMeans)
    with pytest.raises(AttributeError, match="clusterer='gmm'"):
        model.predict_proba(blobs[0][:3])


def test_same_seed_same_clusters(fitted, blobs):
    again = ManifoldClustering(n_clusters=4, perplexity=15, random_state=0).fit(blobs[0])
    np.testing.assert_array_equal(again.labels_, fitted.labels_)


def test_pickle_and_save_round_trip(fitted, blobs, tmp_path):
    x = blobs[0][:20]
    expected = fitted.predict_proba(x)
    for copy in (
        pickle.loads(pickle.dumps(fitted)),
        tfclust.load_estimator(fitted.save(tmp_path / "manifold.npz")),
    ):
        assert copy.get_params() == fitted.get_params()
        np.testing.assert_array_equal(copy.labels_, fitted.labels_)
        np.testing.assert_allclose(copy.predict_proba(x), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"n_clusters": 0}, ValueError, "n_clusters"),
        ({"perplexity": -1.0}, ValueError, "perplexity"),
        ({"perplexity": 200.0}, ValueError, "perplexity"),
        ({"n_init": 0}, ValueError, "n_init"),
        ({"clusterer": "dbscan"}, ValueError, "clusterer must be one of"),
        ({"covariance_type": "banana"}, ValueError, "covariance_type"),
        ({"random_state": -3}, ValueError, "random_state"),
    ],
)
def test_bad_parameters(blobs, params, error, message):
    with pytest.raises(error, match=message):
        ManifoldClustering(**{"n_clusters": 4, "perplexity": 15, **params}).fit(blobs[0])


def test_bad_input_and_not_fitted(fitted, blobs):
    with pytest.raises(NotFittedError):
        ManifoldClustering().predict(blobs[0])
    x = blobs[0].copy()
    x[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ManifoldClustering(n_clusters=4, perplexity=15).fit(x)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(blobs[0][:, :5])


# ------------------------------------------------------------------ the run's clustering stage


@pytest.fixture(scope="module")
def stage_inputs():
    """A run's state after K-means: tiny images, their autoencoder, latents and K-means."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    images = np.zeros((120, 28, 28), dtype=np.uint8)
    for i, y in enumerate(labels):  # a bright square whose place is the class
        images[i, 4 + 7 * y : 11 + 7 * y, 4:24] = 255
    images = np.clip(images + rng.integers(0, 40, images.shape), 0, 255).astype(np.uint8)
    autoencoder, encoder, _ = tfclust.build_autoencoder(latent_dim=8, seed=0)
    latents = tfclust.encode(encoder, images)
    km = tfclust.KMeans(3, n_init=2, random_state=0).fit(latents)
    return {
        "images": images,
        "labels": labels,
        "autoencoder": autoencoder,
        "encoder": encoder,
        "latents": latents,
        "kmeans_centers": km.cluster_centers_,
        "kmeans_labels": km.labels_,
    }


SMALL = {  # the run's estimators, with settings for 120 points and a quick test
    "manifold": lambda k: ManifoldClustering(k, perplexity=10, n_init=1, random_state=0),
    "dec": lambda k: tfclust.DEC(k, update_interval=5, max_iter=10, n_init=1, random_state=0),
}


def test_clustering_models_are_the_documented_defaults():
    config = pipeline.RunConfig(seed=3)
    for method, cls in [("gmm", tfclust.GaussianMixture), ("manifold", ManifoldClustering)]:
        model = pipeline._clustering_model(pipeline.RunConfig(clustering=method, seed=3), 7)
        assert type(model) is cls and model.random_state == config.seed
        defaults = cls().get_params()
        changed = {k for k, v in model.get_params().items() if v != defaults[k]}
        assert changed == {"random_state", "n_components" if method == "gmm" else "n_clusters"}
    dec = pipeline._clustering_model(pipeline.RunConfig(clustering="dec"), 7)
    assert isinstance(dec, tfclust.DEC) and dec.n_clusters == 7


@pytest.mark.parametrize("method", pipeline.CLUSTERING_METHODS)
def test_clustering_stage(stage_inputs, method, tmp_path, monkeypatch):
    if method in SMALL:
        monkeypatch.setattr(pipeline, "_clustering_model", lambda config, k: SMALL[method](k))
    config = pipeline.RunConfig(out=str(tmp_path), clustering=method, n_clusters=3, n_init=2)
    job = pipeline.Run(str(tmp_path), config)
    job.metrics["stages"]["kmeans"] = {"seconds": 1.25}
    state = dict(stage_inputs)
    pipeline.STAGE_SPECS["clustering"].run(job, config, state)
    record = job.metrics["clustering"]
    assert record["method"] == method and record["n_clusters"] == 3
    clusters = np.load(tmp_path / pipeline.CLUSTERING_LABELS)
    np.testing.assert_array_equal(clusters, state["clusters"])
    assert record["accuracy"] == cluster_accuracy(stage_inputs["labels"], clusters)
    if method == "kmeans":
        np.testing.assert_array_equal(clusters, stage_inputs["kmeans_labels"])
        assert record["seconds"] == 1.25 and "model" not in record
    else:
        model = tfclust.load_estimator(tmp_path / pipeline.CLUSTERING_MODEL)
        fitted = model.labels_ if method != "gmm" else model.predict(state["latents"])
        np.testing.assert_array_equal(np.asarray(fitted), clusters)
        assert record["seconds"] > 0
    restored = dict(stage_inputs)
    pipeline.STAGE_SPECS["clustering"].restore(job, config, restored)
    np.testing.assert_array_equal(restored["clusters"], clusters)


def test_clustering_flag(tmp_path):
    from tfclust.cli import build_parser

    run = build_parser()._subparsers._group_actions[0].choices["run"]
    (flag,) = [a for a in run._actions if "--clustering" in a.option_strings]
    assert tuple(flag.choices) == pipeline.CLUSTERING_METHODS
    with pytest.raises(ValueError, match="clustering must be one of"):
        pipeline.RunConfig(clustering="spectral").validate()
