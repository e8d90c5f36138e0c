"""ParametricTSNE: a Keras network trained to map inputs to a t-SNE map."""

import json
import pickle

import numpy as np
import pytest

from tfclust import TSNE, NotFittedError, ParametricTSNE

CENTERS = np.array([[0.0] * 10, [10.0] + [0.0] * 9, [0.0, 10.0] + [0.0] * 8])
MAP_CENTERS = np.array([[-20.0, 0.0], [20.0, 0.0], [0.0, 30.0]])


def _blobs(n_per_blob, seed):
    """Three Gaussian blobs in 10-D (std 1, centres 10 apart), their labels, and a target map:
    each blob around its own 2-D centre."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n_per_blob)
    x = CENTERS[labels] + rng.normal(size=(labels.size, 10))
    target = MAP_CENTERS[labels] + rng.normal(size=(labels.size, 2))
    return x, labels, target


def _nearest_labels(train_map, train_labels, new_map):
    """Labels of each new point's nearest training point in the map."""
    d = ((new_map[:, None, :] - train_map[None]) ** 2).sum(-1)
    return train_labels[np.argmin(d, axis=1)]


@pytest.fixture(scope="module")
def data():
    return _blobs(100, 0)


@pytest.fixture(scope="module")
def new_points():
    x, labels, _ = _blobs(20, 1)
    return x, labels


@pytest.fixture(scope="module")
def distilled(data):
    x, _, target = data
    return ParametricTSNE(n_epochs=30, batch_size=32, random_state=0).fit(x, embedding=target)


def test_distill_shapes_and_new_points(distilled, data, new_points):
    x, labels, target = data
    model = distilled
    assert model.embedding_.shape == (300, 2) and model.embedding_.dtype == np.float32
    assert model.n_features_in_ == 10
    assert len(model.history_) == 30 and model.loss_ == model.history_[-1]
    assert model.history_[-1] < model.history_[0]
    assert model.model_.input_shape == (None, 10) and model.model_.output_shape == (None, 2)
    # The distilled map reproduces the target (in map units, whose blobs are ~40 apart).
    assert np.sqrt(np.mean((model.embedding_ - target) ** 2)) < 3.0
    assert np.array_equal(model.transform(x), model.embedding_)
    new_x, new_labels = new_points
    new_map = model.transform(new_x)
    assert new_map.shape == (60, 2) and new_map.dtype == np.float32
    assert np.mean(_nearest_labels(model.embedding_, labels, new_map) == new_labels) >= 0.95
    # Each new point lands near its blob's centre in the target map (centres >= 36 apart).
    assert np.all(np.linalg.norm(new_map - MAP_CENTERS[new_labels], axis=1) < 12.0)


def test_default_fits_a_tsne_map(data, new_points):
    x, labels, _ = data
    model = ParametricTSNE(perplexity=10, n_epochs=20, batch_size=32, random_state=0)
    y = model.fit_transform(x)
    assert y.shape == (300, 2) and np.all(np.isfinite(y))
    new_x, new_labels = new_points
    found = _nearest_labels(y, labels, model.transform(new_x))
    assert np.mean(found == new_labels) >= 0.95
    # A given TSNE's parameters fit the map; the instance itself stays unfitted.
    tsne = TSNE(perplexity=10, max_iter=250, random_state=0)
    model = ParametricTSNE(tsne=tsne, n_epochs=2, batch_size=64, random_state=0).fit(x)
    assert model.embedding_.shape == (300, 2) and not hasattr(tsne, "embedding_")


def test_tsne_objective(data, new_points):
    x, labels, _ = data
    model = ParametricTSNE(
        objective="tsne", perplexity=10, n_epochs=30, batch_size=150, random_state=0
    ).fit(x)
    assert model.embedding_.shape == (300, 2)
    assert np.isfinite(model.loss_) and len(model.history_) == 30
    # The KL divergence falls once the exaggeration stage is over.
    assert model.history_[-1] < model.history_[10]
    new_x, new_labels = new_points
    found = _nearest_labels(model.embedding_, labels, model.transform(new_x))
    assert np.mean(found == new_labels) >= 0.95


def test_repeatable_with_an_int_seed(data):
    x, _, target = data
    a = ParametricTSNE(n_epochs=3, batch_size=64, random_state=5).fit(x, embedding=target)
    b = ParametricTSNE(n_epochs=3, batch_size=64, random_state=5).fit(x, embedding=target)
    c = ParametricTSNE(n_epochs=3, batch_size=64, random_state=6).fit(x, embedding=target)
    assert np.array_equal(a.embedding_, b.embedding_)
    assert not np.array_equal(a.embedding_, c.embedding_)


def test_float64(data):
    x, _, target = data
    model = ParametricTSNE(n_epochs=2, batch_size=64, random_state=0, dtype="float64")
    y = model.fit_transform(x, embedding=target)
    assert y.dtype == np.float64 and model.transform(x[:5]).dtype == np.float64


def test_errors(distilled, data):
    x, _, target = data
    with pytest.raises(NotFittedError):
        ParametricTSNE().transform(x)
    with pytest.raises(ValueError, match="2-D"):
        ParametricTSNE(n_epochs=1).fit(x[:, 0], embedding=target)
    with pytest.raises(ValueError, match="expecting 10 features"):
        distilled.transform(x[:, :5])
    with pytest.raises(ValueError, match="NaN"):
        distilled.transform(np.full((2, 10), np.nan))
    with pytest.raises(ValueError, match="embedding must have shape"):
        ParametricTSNE(n_epochs=1).fit(x, embedding=target[:10])
    with pytest.raises(ValueError, match="embedding must have shape"):
        ParametricTSNE(n_components=3, n_epochs=1).fit(x, embedding=target)
    with pytest.raises(ValueError, match="objective='distill' only"):
        ParametricTSNE(objective="tsne", n_epochs=1).fit(x, embedding=target)
    with pytest.raises(ValueError, match="objective"):
        ParametricTSNE(objective="umap").fit(x, embedding=target)
    with pytest.raises(ValueError, match="perplexity"):
        ParametricTSNE(perplexity=300).fit(x)
    with pytest.raises(ValueError, match="n_epochs"):
        ParametricTSNE(n_epochs=0).fit(x, embedding=target)
    with pytest.raises(TypeError, match="tsne"):
        ParametricTSNE(tsne="fft").fit(x)


def test_pickle_round_trip(distilled, data):
    x, _, _ = data
    loaded = pickle.loads(pickle.dumps(distilled))
    assert loaded.get_params() == distilled.get_params()
    assert np.array_equal(loaded.transform(x), distilled.transform(x))
    assert np.array_equal(loaded.embedding_, distilled.embedding_)
    assert loaded.history_ == distilled.history_ and loaded.loss_ == distilled.loss_
    unfitted = pickle.loads(pickle.dumps(ParametricTSNE(n_epochs=7)))
    assert unfitted.n_epochs == 7
    with pytest.raises(NotFittedError):
        unfitted.transform(x)


def test_saved_state_hooks(distilled, data):
    x, _, _ = data
    state = distilled._get_saved_state()
    for name, value in state.items():
        assert name.isidentifier()
        if not isinstance(value, np.ndarray):
            json.dumps(value)  # the rest is JSON
    fresh = ParametricTSNE()
    fresh._set_saved_state(state)
    assert np.array_equal(fresh.transform(x), distilled.transform(x))
    assert fresh.n_features_in_ == 10 and fresh.loss_ == distilled.loss_


def test_save_and_load_estimator(distilled, data, tmp_path):
    persistence = pytest.importorskip("tfclust.persistence")
    x, _, _ = data
    path = persistence.save_estimator(distilled, tmp_path / "ptsne")
    loaded = persistence.load_estimator(path)
    assert isinstance(loaded, ParametricTSNE)
    assert loaded.get_params() == distilled.get_params()
    assert np.array_equal(loaded.transform(x), distilled.transform(x))


def test_get_params_and_clone(distilled):
    from sklearn.base import clone

    params = distilled.get_params()
    assert params["n_epochs"] == 30 and params["objective"] == "distill"
    copy = clone(distilled)
    assert copy.get_params() == params and not hasattr(copy, "model_")
    copy.set_params(hidden_units=(8,))
    assert copy.hidden_units == (8,)
    assert "ParametricTSNE(" in repr(distilled)
