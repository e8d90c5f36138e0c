"""tfclust.deep: ClusteringLayer, target_distribution and the DEC/IDEC estimator.

The clustering head is checked against NumPy references of the DEC paper's formulas (soft
assignment, target distribution, the gradients of eq. 4-5); the estimator on blobs (dense
autoencoder) and on small synthetic images (a tiny ``build_autoencoder`` model). The fits share
shapes (300 points, latent size 4, k = 3) so that the K-means programs compile once.
"""

import pickle
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import make_blobs

import tfclust.persistence
from tfclust._validation import ConvergenceWarning, NotFittedError
from tfclust.autoencoder import build_autoencoder
from tfclust.deep import (
    DEC,
    ClusteringLayer,
    kl_divergence,
    soft_assignment,
    target_distribution,
)
from tfclust.metrics import cluster_accuracy

N, K, LATENT = 300, 3, 4
FAST = dict(
    n_clusters=K,
    latent_dim=LATENT,
    hidden_units=(32,),
    pretrain_epochs=20,
    batch_size=64,
    update_interval=20,
    max_iter=400,
    n_init=5,
)


# -- NumPy references ------------------------------------------------------------------------


def _q_ref(z, mu, alpha):
    d2 = ((z[:, None, :] - mu[None, :, :]) ** 2).sum(-1)
    w = (1.0 + d2 / alpha) ** (-(alpha + 1.0) / 2.0)
    return w / w.sum(1, keepdims=True)


def _p_ref(q):
    w = q**2 / q.sum(0)
    return w / w.sum(1, keepdims=True)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 10.0])
def test_soft_assignment_and_layer_match_numpy(alpha):
    rng = np.random.default_rng(0)
    z, mu = rng.normal(size=(20, 3)) * 3, rng.normal(size=(4, 3)) * 3
    np.testing.assert_allclose(soft_assignment(z, mu, alpha).numpy(), _q_ref(z, mu, alpha), 1e-12)
    layer = ClusteringLayer(4, alpha=alpha, weights=[mu], dtype="float64")
    np.testing.assert_allclose(layer(z).numpy(), _q_ref(z, mu, alpha), rtol=1e-12)
    # far points: no row underflows to zeros (the softmax form)
    q = soft_assignment(
        np.array([[1e6, 0.0]], np.float32), np.array([[0.0, 0], [1, 0]], np.float32)
    )
    assert np.all(np.isfinite(q.numpy())) and np.isclose(q.numpy().sum(), 1.0)


def test_target_distribution_matches_numpy():
    q = _q_ref(np.random.default_rng(1).normal(size=(30, 2)), np.eye(2) * 2, 1.0)
    p = target_distribution(q)
    assert isinstance(p, np.ndarray)
    np.testing.assert_allclose(p, _p_ref(q), rtol=1e-12)
    np.testing.assert_allclose(target_distribution(tf.constant(q)).numpy(), _p_ref(q), 1e-12)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("alpha", [1.0, 3.0])
def test_kl_gradients_match_the_papers_formulas(alpha):
    """DEC eq. 4-5, for L = mean_i sum_j p_ij log(p_ij / q_ij) (the batch mean, as used in
    training): dL/dz_i = (alpha+1)/alpha / B * sum_j (1 + d_ij/alpha)^-1 (p_ij - q_ij)(z_i - mu_j)
    and dL/dmu_j = -(alpha+1)/alpha / B * sum_i (1 + d_ij/alpha)^-1 (p_ij - q_ij)(z_i - mu_j),
    with P held constant."""
    rng = np.random.default_rng(2)
    b = 25
    z0, mu0 = rng.normal(size=(b, 3)), rng.normal(size=(4, 3)) * 2
    p = _p_ref(_q_ref(z0 + rng.normal(size=z0.shape) * 0.3, mu0, alpha))  # some other target
    z, mu = tf.Variable(z0), tf.Variable(mu0)
    with tf.GradientTape() as tape:
        loss = kl_divergence(tf.constant(p), soft_assignment(z, mu, alpha))
    gz, gmu = tape.gradient(loss, [z, mu])
    q = _q_ref(z0, mu0, alpha)
    diff = z0[:, None, :] - mu0[None, :, :]
    kernel = 1.0 / (1.0 + (diff**2).sum(-1) / alpha)
    coef = ((alpha + 1.0) / alpha / b) * kernel * (p - q)
    np.testing.assert_allclose(gz.numpy(), (coef[:, :, None] * diff).sum(1), atol=1e-12)
    np.testing.assert_allclose(gmu.numpy(), -(coef[:, :, None] * diff).sum(0), atol=1e-12)
    expected = (p * np.log(p / q)).sum(1).mean()
    np.testing.assert_allclose(float(loss), expected, rtol=1e-12)


def test_layer_config_round_trip_and_keras_file(tmp_path):
    centers = np.array([[0.0, 0.0], [5.0, 5.0]], np.float32)
    layer = ClusteringLayer(2, alpha=2.0, centers_initializer=centers, name="head")
    again = ClusteringLayer.from_config(layer.get_config())
    assert (again.n_clusters, again.alpha, again.name) == (2, 2.0, "head")
    inputs = keras.Input((2,))
    model = keras.Model(inputs, layer(inputs))
    np.testing.assert_array_equal(layer.centers.numpy(), centers)
    x = np.array([[1.0, 1.0], [4.0, 6.0]], np.float32)
    path = str(tmp_path / "head.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.get_layer("head"), ClusteringLayer)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="rows"):
        ClusteringLayer(3, weights=[centers])
    with pytest.raises(ValueError, match="alpha"):
        ClusteringLayer(2, alpha=0.0)
    with pytest.raises(ValueError, match="features"):
        ClusteringLayer(2, weights=centers)(np.zeros((1, 3), np.float32))


# -- the estimator on blobs ------------------------------------------------------------------


@pytest.fixture(scope="module")
def blobs():
    x, y = make_blobs(n_samples=N, n_features=8, centers=K, cluster_std=3.5, random_state=3)
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def idec(blobs):
    return DEC(random_state=0, **FAST).fit(blobs[0])


def test_idec_on_blobs(blobs, idec):
    x, y = blobs
    assert idec.labels_.shape == (N,) and idec.labels_.dtype == np.int32
    assert idec.cluster_centers_.shape == (K, LATENT)
    assert cluster_accuracy(y, idec.labels_) >= cluster_accuracy(y, idec.init_labels_) - 1e-9
    assert cluster_accuracy(y, idec.labels_) > 0.9
    assert idec.converged_ and 0 < idec.n_iter_ < FAST["max_iter"]  # stopped by tol
    assert idec.history_["label_change"][-1] < 1e-3  # the default tol
    assert idec.history_["iteration"][-1] == idec.n_iter_
    assert np.isfinite(idec.history_["reconstruction"][-1])
    q = idec.predict_proba(x)
    assert q.shape == (N, K) and q.dtype == np.float32
    np.testing.assert_allclose(q.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(idec.predict(x), q.argmax(1))
    np.testing.assert_array_equal(idec.predict(x), idec.labels_)
    assert idec.transform(x[:7]).shape == (7, LATENT)
    assert list(idec.get_feature_names_out()) == [f"dec{i}" for i in range(LATENT)]
    assert isinstance(idec.autoencoder_, keras.Model) and isinstance(idec.encoder_, keras.Model)
    assert idec.score(x) <= 0


def test_reproducible_and_dec_variant(blobs, idec):
    x, y = blobs
    again = DEC(random_state=0, **FAST).fit(x)
    np.testing.assert_array_equal(again.labels_, idec.labels_)
    np.testing.assert_array_equal(again.cluster_centers_, idec.cluster_centers_)
    dec = DEC(random_state=0, reconstruction_weight=0, **FAST).fit(x)
    assert dec.n_iter_ > 0 and np.isnan(dec.history_["reconstruction"][-1])
    assert cluster_accuracy(y, dec.labels_) >= cluster_accuracy(y, dec.init_labels_) - 1e-9
    # the decoder is not trained by DEC: its weights are the pretrained ones
    pretrained = DEC(random_state=0, **{**FAST, "max_iter": 0}).fit(x)
    for a, b in zip(
        dec.autoencoder_.get_layer("decoder").get_weights(),
        pretrained.autoencoder_.get_layer("decoder").get_weights(),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(pretrained.labels_, pretrained.init_labels_)


def test_max_iter_warns(blobs):
    params = {**FAST, "max_iter": 3, "tol": 1e-9, "learning_rate": 0.1, "pretrain_epochs": 1}
    dec = DEC(random_state=0, **params)
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        dec.fit(blobs[0])
    assert dec.n_iter_ == 3 and not dec.converged_


def test_pickle_and_save_load(blobs, idec, tmp_path, monkeypatch):
    x = blobs[0]
    again = pickle.loads(pickle.dumps(idec))
    np.testing.assert_array_equal(again.predict_proba(x), idec.predict_proba(x))
    assert repr(again) == repr(idec)
    monkeypatch.setitem(tfclust.persistence.ESTIMATORS, "DEC", "tfclust.deep:DEC")
    loaded = tfclust.persistence.load_estimator(idec.save(tmp_path / "dec"))
    np.testing.assert_array_equal(loaded.predict_proba(x), idec.predict_proba(x))
    np.testing.assert_array_equal(loaded.labels_, idec.labels_)
    for key, values in idec.history_.items():
        np.testing.assert_array_equal(loaded.history_[key], values)
    assert loaded.n_iter_ == idec.n_iter_ and loaded.converged_ == idec.converged_
    unfitted = tfclust.persistence.load_estimator(DEC(n_clusters=4).save(tmp_path / "u"))
    assert unfitted.get_params() == DEC(n_clusters=4).get_params()


# -- images ----------------------------------------------------------------------------------


def _images(seed=0):
    rng = np.random.default_rng(seed)
    prototypes = rng.integers(0, 256, (K, 16, 16))
    labels = rng.integers(0, K, N)
    noise = rng.integers(-30, 31, (N, 16, 16))
    return np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8), labels


def test_given_conv_autoencoder_is_copied_not_mutated():
    images, labels = _images()
    autoencoder, encoder, _ = build_autoencoder(LATENT, (4, 8), image_shape=(16, 16, 1), seed=0)
    before = [w.copy() for w in autoencoder.get_weights()]
    dec = DEC(K, batch_size=64, update_interval=10, max_iter=20, n_init=5, random_state=0)
    dec.fit(images, autoencoder=autoencoder)
    for a, b in zip(before, autoencoder.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert dec.autoencoder_ is not autoencoder and dec.encoder_ is not encoder
    assert dec.n_features_in_ == 16 * 16 and cluster_accuracy(labels, dec.labels_) > 0.9
    floats = images[..., None].astype(np.float32) / 255.0
    np.testing.assert_array_equal(dec.predict(floats), dec.predict(images))
    assert dec.transform(images[:3]).shape == (3, LATENT)
    with pytest.raises(ValueError, match="shape"):
        dec.predict(np.zeros((2, 15, 16), np.uint8))
    with pytest.raises(ValueError, match="autoencoder takes"):
        DEC(K).fit(np.zeros((10, 12, 12), np.uint8), autoencoder=autoencoder)
    with pytest.raises(ValueError, match="NaN"):
        bad = floats.copy()
        bad[0, 0, 0, 0] = np.nan
        DEC(K).fit(bad, autoencoder=autoencoder)


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_clusters": 0}, "n_clusters"),
        ({"n_clusters": N + 1}, "n_clusters"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": -1.0}, "alpha"),
        ({"tol": -1e-3}, "tol"),
        ({"batch_size": 0}, "batch_size"),
        ({"update_interval": 0}, "update_interval"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"reconstruction_weight": -1.0}, "reconstruction_weight"),
        ({"pretrain_epochs": "many"}, "pretrain_epochs"),
        ({"max_iter": -1}, "max_iter"),
    ],
)
def test_bad_parameters(blobs, params, match):
    with pytest.raises(ValueError, match=match):
        DEC(**{**FAST, **params}).fit(blobs[0])


def test_bad_input(blobs, idec):
    x = blobs[0]
    nan = x.copy()
    nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        DEC(**FAST).fit(nan)
    with pytest.raises(ValueError, match="NaN"):
        idec.predict(nan)
    with pytest.raises(ValueError, match="features"):
        idec.predict(x[:, :3])
    with pytest.raises(ValueError, match="features"):
        idec.transform(x[:, :3])
    with pytest.raises(NotFittedError):
        DEC().predict(x)
    with pytest.raises(NotFittedError):
        DEC().predict_proba(x)
    with pytest.raises(TypeError, match="keras.Model"):
        DEC(**FAST).fit(x, autoencoder="model")
    with pytest.raises(ValueError, match="features"):
        DEC(**FAST).fit(x, autoencoder=_dense(5))
    with pytest.raises(ValueError, match="encoder"):
        DEC(**FAST).fit(x, autoencoder=_dense(8, named=False))


def _dense(n_features, named=True):
    inputs = keras.Input((n_features,))
    if not named:
        return keras.Model(inputs, keras.layers.Dense(n_features)(inputs))
    encoder = keras.Model(inputs, keras.layers.Dense(LATENT)(inputs), name="encoder")
    code = keras.Input((LATENT,))
    decoder = keras.Model(code, keras.layers.Dense(n_features)(code), name="decoder")
    return keras.Model(inputs, decoder(encoder(inputs)), name="autoencoder")


def test_given_dense_autoencoder(blobs):
    x = blobs[0]
    given = _dense(8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dec = DEC(random_state=0, **{**FAST, "max_iter": 40}).fit(x, autoencoder=given)
    assert dec.cluster_centers_.shape == (K, LATENT) and dec.encoder_ is not given.get_layer(
        "encoder"
    )
