"""The :class:`DEC` estimator: deep embedded clustering (Xie, Girshick and Farhadi, ICML 2016)
and its IDEC variant, which keeps the decoder's reconstruction loss (Guo, Gao, Liu and Yin,
IJCAI 2017)."""

from __future__ import annotations

import json
import logging
import math
import time
import types
import warnings

import numpy as np
import tensorflow as tf

from tfclust._base import BaseEstimator, SavedStatePickle
from tfclust._validation import (
    INT32_MAX,
    ConvergenceWarning,
    check_array,
    check_float,
    check_int,
    check_is_fitted,
    check_layer_sizes,
    check_random_state,
    fit_dtype,
    sklearn_compatible,
    stateless_seed,
)
from tfclust.deep._layer import ClusteringLayer, kl_divergence, target_distribution

__all__ = ["DEC"]

logger = logging.getLogger("tfclust.deep")

_AUTO_PRETRAIN = {"features": 100, "images": 20}
_PREDICT_BATCH = 2048
# Salts of the stateless seeds: pretraining epochs, then clustering intervals.
_PRETRAIN_SALT, _CLUSTER_SALT = 0, 1 << 20


def _seeds(seed: int, count: int) -> list[int]:
    """``count`` int31 seeds drawn from ``seed`` by a local ``SeedSequence``."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(count) >> 1]


def _dense_autoencoder(n_features, hidden_units, latent_dim, dtype, seed, mean, variance):
    """``(autoencoder, encoder, decoder)`` for feature vectors: ``Normalization`` (the features
    standardised with X's mean and variance), ReLU ``Dense`` layers of ``hidden_units``, a
    linear ``latent``; the decoder mirrors it (ReLU layers of ``reversed(hidden_units)``, a
    linear output in standardised units, then the inverse ``Normalization``), so the
    autoencoder maps features to features. Submodels named ``encoder`` and ``decoder``, as
    :func:`tfclust.build_autoencoder`'s."""
    import keras

    layers = keras.layers
    seeds = _seeds(seed, 2 * len(hidden_units) + 2)

    def dense(units, activation, name, s):
        init = keras.initializers.GlorotUniform(seed=s)
        return layers.Dense(
            units, activation=activation, kernel_initializer=init, dtype=dtype, name=name
        )

    x = keras.Input((n_features,), dtype=dtype, name="features")
    h = layers.Normalization(mean=mean, variance=variance, dtype=dtype, name="standardize")(x)
    for i, units in enumerate(hidden_units):
        h = dense(units, "relu", f"hidden_{i}", seeds[i])(h)
    latent = dense(latent_dim, None, "latent", seeds[len(hidden_units)])(h)
    encoder = keras.Model(x, latent, name="encoder")

    code = keras.Input((latent_dim,), dtype=dtype, name="latent_input")
    h = code
    for i, units in enumerate(reversed(hidden_units)):
        h = dense(units, "relu", f"decode_{i}", seeds[len(hidden_units) + 1 + i])(h)
    h = dense(n_features, None, "reconstruction", seeds[-1])(h)
    out = layers.Normalization(
        mean=mean, variance=variance, invert=True, dtype=dtype, name="unstandardize"
    )(h)
    decoder = keras.Model(code, out, name="decoder")
    autoencoder = keras.Model(x, decoder(encoder(x)), name="autoencoder")
    return autoencoder, encoder, decoder


def _parts(autoencoder):
    """The ``encoder`` and ``decoder`` submodels of an autoencoder, else a ValueError."""
    try:
        return autoencoder.get_layer("encoder"), autoencoder.get_layer("decoder")
    except ValueError as err:
        raise ValueError(
            "autoencoder must have submodels named 'encoder' and 'decoder', as the model of "
            "tfclust.build_autoencoder has"
        ) from err


def _copy_model(model):
    """A new model of ``model``'s architecture (from its JSON configuration) with copies of its
    weights: training it leaves ``model`` unchanged."""
    import keras

    copy = keras.models.model_from_json(model.to_json())
    copy.set_weights(model.get_weights())
    return copy


def _batches(seed, n, steps, batch):
    """(steps, batch) int32 row indices: consecutive stateless shuffles of 0 .. n-1 (as many
    as ``steps * batch`` rows need), cut into batches, so that every row is seen once per
    ``n`` rows drawn."""
    rounds = -(-steps * batch // n)
    keys = tf.random.stateless_uniform([rounds, n], seed)
    order = tf.reshape(tf.argsort(keys, axis=1, stable=True), [-1])
    return tf.reshape(tf.cast(order[: steps * batch], tf.int32), [steps, batch])


class _Trainer:
    """Mini-batch training of the autoencoder (and clustering layer) in a TensorFlow graph:
    one ``tf.function`` call runs up to ``max_steps`` Adam steps in a ``tf.while_loop``, on
    batches of a stateless shuffle drawn inside the call.

    The loss of a batch is ``kl_weight * KL(P || Q) + reconstruction_weight * MSE`` (the MSE
    in units of ``inv_var``, the features' standardisation, 1 for images)."""

    def __init__(
        self,
        encoder,
        decoder,
        clustering,
        *,
        kl_weight,
        reconstruction_weight,
        learning_rate,
        n,
        batch,
        max_steps,
        inv_var,
    ):
        import keras

        self.encoder, self.decoder, self.clustering = encoder, decoder, clustering
        self.kl_weight, self.rec_weight = kl_weight, reconstruction_weight
        variables = list(encoder.trainable_variables)
        if reconstruction_weight > 0:
            variables += decoder.trainable_variables
        if clustering is not None:
            variables += clustering.trainable_variables
        self.variables = variables
        self.optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
        self.optimizer.build(variables)
        self.n, self.batch, self.max_steps, self.inv_var = n, batch, max_steps, inv_var
        # A graph, not XLA: XLA's CPU convolutions trained 14x slower (docs/clustering.md).
        self._run = tf.function(self._steps, autograph=False, reduce_retracing=False)

    def _loss(self, xb, pb):
        z = self.encoder(xb, training=True)
        loss = tf.zeros([], z.dtype)
        kl = rec = tf.zeros([], z.dtype)
        if self.clustering is not None and self.kl_weight > 0:
            kl = kl_divergence(pb, self.clustering(z))
            loss += self.kl_weight * kl
        if self.rec_weight > 0:
            diff = tf.cast(self.decoder(z, training=True), xb.dtype) - xb
            rec = tf.cast(tf.reduce_mean(tf.square(diff) * self.inv_var), z.dtype)
            loss += self.rec_weight * rec
        return loss, kl, rec

    def _steps(self, x, p, n_steps, seed):
        idx = _batches(seed, self.n, self.max_steps, self.batch)
        dtype = self.variables[0].dtype

        def body(t, kl_sum, rec_sum):
            rows = idx[t]
            with tf.GradientTape() as tape:
                loss, kl, rec = self._loss(tf.gather(x, rows), tf.gather(p, rows))
            grads = tape.gradient(loss, self.variables)
            self.optimizer.apply_gradients(zip(grads, self.variables, strict=True))
            return t + 1, kl_sum + tf.cast(kl, dtype), rec_sum + tf.cast(rec, dtype)

        zero = tf.zeros([], dtype)
        _, kl_sum, rec_sum = tf.while_loop(
            lambda t, *_: t < n_steps,
            body,
            [tf.constant(0), zero, zero],
            maximum_iterations=self.max_steps,
        )
        steps = tf.cast(tf.maximum(n_steps, 1), dtype)
        return kl_sum / steps, rec_sum / steps

    def run(self, x, p, n_steps, seed):
        """``n_steps`` (<= max_steps) steps; the batches' mean KL and reconstruction losses."""
        kl, rec = self._run(x, p, tf.constant(n_steps, tf.int32), seed)
        return float(kl), float(rec)


class DEC(SavedStatePickle, BaseEstimator):
    """Deep embedded clustering (DEC) and improved DEC (IDEC) with a Keras autoencoder.

    DEC (Xie, Girshick and Farhadi, ICML 2016) pretrains an autoencoder, clusters its latents
    with K-means, then refines the encoder and the centres together: each point's soft
    assignment ``q_ij`` to the centres is a Student-t kernel (:class:`ClusteringLayer`), and
    the training minimises KL(P || Q) against the sharpened target ``P``
    (:func:`target_distribution`), recomputed on all the data every ``update_interval`` steps.
    IDEC (Guo et al., IJCAI 2017) keeps training the decoder's reconstruction loss alongside,
    so the latent space keeps the data's local structure; it is the default here.

    The training: encode X, fit ``tfclust.KMeans(n_clusters, n_init=n_init)`` on the latents
    and start the centres there; then, every ``update_interval`` steps, compute Q on all of X,
    take P from it, and stop when fewer than ``tol`` of the points changed cluster (argmax of Q)
    since the previous update; else run ``update_interval`` mini-batch Adam steps on ``KL(P ||
    Q) + reconstruction_weight * MSE`` (batches of P's rows). Each interval is one call of a
    TensorFlow graph (a ``tf.while_loop`` over the steps, batches from a stateless shuffle of
    the seed).

    Args:
      n_clusters: number of clusters k (int >= 1, at most n_samples; default 10).
      alpha: degrees of freedom of the Student-t kernel (> 0, default 1.0, as the papers).
      latent_dim: size of the latent space of the autoencoder built when ``fit`` is given none
        (int >= 1, default 10, the papers' embedding size); ignored with ``autoencoder=``.
      hidden_units: hidden ReLU layer sizes of the dense autoencoder built for feature input
        (tuple of ints >= 1, default (256, 256): quick to pretrain; the papers' network for
        784-pixel images is (500, 500, 2000)); the decoder mirrors them. Unused for images
        (they get :func:`tfclust.build_autoencoder`'s convolutional model) and with
        ``autoencoder=``.
      reconstruction_weight: weight of the reconstruction loss (mean squared error, in units
        of the standardised features for the dense autoencoder, of pixels for images) against
        the clustering loss KL(P || Q) (averaged over the batch's points): the loss is ``KL +
        reconstruction_weight * MSE``. 0 (or None) is DEC (the decoder is dropped during the
        clustering); the default 10.0 is IDEC's ``L_r + gamma * L_c`` with gamma = 0.1 (the
        same loss times 10, which Adam's steps do not depend on).
      learning_rate: Adam's step size (> 0, default 1e-3), for the pretraining and the
        clustering.
      batch_size: points per step (int >= 1, default 256, IDEC's; at most n_samples is used).
      max_iter: largest number of clustering steps (int >= 0, default 20000, as the papers'
        code); 0 keeps the K-means initialisation.
      update_interval: steps between two updates of the target P and the stopping test (int
        >= 1, default 140, DEC's for MNIST).
      tol: stop when the fraction of points whose cluster changed between two updates is
        below ``tol`` (>= 0, default 1e-3, the papers' 0.1%); 0 runs ``max_iter`` steps.
      n_init: K-means restarts on the latents (int >= 1, default 20, as the papers).
      pretrain_epochs: epochs of autoencoder pretraining (int >= 0) when ``fit`` builds the
        autoencoder, or ``"auto"`` (default): 100 for the dense autoencoder of feature input,
        20 for the convolutional one of images. Ignored with ``autoencoder=`` (taken as
        pretrained).
      random_state: None (fresh entropy), an int seed in 0 .. 2**32 - 1, or a numpy
        ``RandomState``/``Generator``: seeds the initial weights, the pretraining and
        clustering batches and the K-means; an int repeats the fit on the same machine.
      verbose: 0 (default) prints nothing; >= 1 prints each update (the same lines are logged
        at INFO level on the ``tfclust.deep`` logger).
      dtype: computation dtype of the dense autoencoder built for feature input:
        ``"float32"``, ``"float64"`` or None (default): X's own when float32 or float64, else
        float32. Images and a given ``autoencoder`` compute in the model's dtype (float32);
        another ``dtype`` than the model's is an error there.

    Fitted attributes: ``labels_`` (int32 (n_samples,): each point's cluster, the argmax of its
    soft assignment at the end), ``cluster_centers_`` ((k, latent_dim) numpy array of the
    latents' dtype: the refined centres, in latent space), ``autoencoder_`` and ``encoder_``
    (the fine-tuned Keras models; ``encoder_`` maps X's points to latents), ``n_iter_`` (int:
    clustering steps run), ``converged_`` (bool: stopped by ``tol``), ``history_`` (dict of
    lists, one entry per update of P: ``iteration``, ``kl`` (KL(P || Q) on all of X, nats per
    point), ``label_change`` (fraction of points whose cluster changed since the previous
    update, the first against K-means), ``reconstruction`` (the interval's mean reconstruction
    loss after it, NaN for DEC or before any step)), ``init_labels_`` (the K-means labels the
    clustering started from), ``n_features_in_`` (int: features, or H * W * C for images).

    Examples:
      >>> import numpy as np
      >>> from tfclust.deep import DEC
      >>> rng = np.random.default_rng(0)
      >>> X = np.concatenate([rng.normal(c, 0.5, (30, 4)) for c in (-3, 0, 3)]).astype("float32")
      >>> dec = DEC(n_clusters=3, latent_dim=2, hidden_units=(16,), pretrain_epochs=20,
      ...           batch_size=32, update_interval=10, max_iter=50, random_state=0).fit(X)
      >>> dec.labels_.shape, dec.labels_.dtype, dec.predict_proba(X[:2]).shape
      ((90,), dtype('int32'), (2, 3))
      >>> bool(len(set(dec.labels_[:30])) == 1 and dec.labels_[0] != dec.labels_[-1])
      True
      >>> dec.transform(X[:5]).shape  # the refined encoder's latents
      (5, 2)
    """

    _estimator_type = "clusterer"
    _fitted_attribute = "cluster_centers_"

    def __init__(
        self,
        n_clusters=10,
        *,
        alpha=1.0,
        latent_dim=10,
        hidden_units=(256, 256),
        reconstruction_weight=10.0,
        learning_rate=1e-3,
        batch_size=256,
        max_iter=20000,
        update_interval=140,
        tol=1e-3,
        n_init=20,
        pretrain_epochs="auto",
        random_state=None,
        verbose=0,
        dtype=None,
    ):
        self.n_clusters = n_clusters
        self.alpha = alpha
        self.latent_dim = latent_dim
        self.hidden_units = hidden_units
        self.reconstruction_weight = reconstruction_weight
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.update_interval = update_interval
        self.tol = tol
        self.n_init = n_init
        self.pretrain_epochs = pretrain_epochs
        self.random_state = random_state
        self.verbose = verbose
        self.dtype = dtype

    # -- validation -----------------------------------------------------------------------------

    def _check_params(self):
        p = types.SimpleNamespace(
            n_clusters=check_int(self.n_clusters, name="n_clusters", low=1, high=INT32_MAX),
            alpha=check_float(self.alpha, name="alpha", low=0.0, low_inclusive=False),
            latent_dim=check_int(self.latent_dim, name="latent_dim", low=1, high=INT32_MAX),
            learning_rate=check_float(
                self.learning_rate, name="learning_rate", low=0.0, low_inclusive=False
            ),
            batch_size=check_int(self.batch_size, name="batch_size", low=1, high=INT32_MAX),
            max_iter=check_int(self.max_iter, name="max_iter", low=0, high=INT32_MAX),
            update_interval=check_int(
                self.update_interval, name="update_interval", low=1, high=INT32_MAX
            ),
            tol=check_float(self.tol, name="tol", low=0.0, high=1.0),
            n_init=check_int(self.n_init, name="n_init", low=1, high=INT32_MAX),
            verbose=check_int(
                int(self.verbose) if isinstance(self.verbose, bool) else self.verbose,
                name="verbose",
                low=0,
            ),
        )
        weight = self.reconstruction_weight
        p.reconstruction_weight = (
            0.0 if weight is None else check_float(weight, name="reconstruction_weight", low=0.0)
        )
        p.hidden_units = check_layer_sizes(self.hidden_units, name="hidden_units")
        epochs = self.pretrain_epochs
        if isinstance(epochs, str):
            if epochs != "auto":
                raise ValueError(f"pretrain_epochs must be 'auto' or an integer, got {epochs!r}")
            p.pretrain_epochs = None
        else:
            p.pretrain_epochs = check_int(epochs, name="pretrain_epochs", low=0, high=INT32_MAX)
        p.seed = check_random_state(self.random_state)
        return p

    @staticmethod
    def _is_images(X, autoencoder) -> bool:
        """Whether X is a batch of images: 3-D or 4-D, or what an image autoencoder takes."""
        if autoencoder is not None:
            return len(autoencoder.input_shape) == 4
        ndim = X.ndim if hasattr(X, "ndim") else np.ndim(X)
        return ndim in (3, 4)

    def _check_images(self, X, *, size=None, channels=None):
        """Images validated by ``tfclust.data.check_images``, as float32 (N, H, W, C) in [0, 1]."""
        from tfclust.data.pipeline import CHANNELS, check_images

        arr = check_images(X, "X", size=size, channels=channels or CHANNELS)
        if arr.dtype == np.uint8:
            return tf.constant(arr.astype(np.float32) / np.float32(255.0))
        return tf.constant(arr, tf.float32)

    def _check_input(self, X):
        """X of a fitted model as a tensor in the model's dtype, checked against fit's shape."""
        check_is_fitted(self, "cluster_centers_")
        shape = tuple(self._input_shape)
        if len(shape) == 3:
            ndim = X.ndim if hasattr(X, "ndim") else np.ndim(X)
            if ndim not in (3, 4):
                raise ValueError(
                    f"X must be images of shape (N, {shape[0]}, {shape[1]}, {shape[2]}) as in "
                    f"fit, got an array of {ndim} dimensions"
                )
            return self._check_images(X, size=shape[:2], channels=(shape[2],))
        self._check_feature_names(X, reset=False)
        x = check_array(X, name="X", dtype=self.encoder_.inputs[0].dtype)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {x.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return x

    # -- fit ------------------------------------------------------------------------------------

    def fit(self, X, y=None, *, autoencoder=None):
        """Pretrain (or copy) the autoencoder, initialise the centres by K-means on the latents,
        and refine encoder and centres by DEC/IDEC.

        Args:
          X: feature vectors (n_samples, n_features), array-like or tensor (sparse is
            densified), finite; or images, uint8 0..255 or float in [0, 1], (N, H, W) (grey),
            (N, H, W, 1) or (N, H, W, 3), validated by ``tfclust.data.check_images``.
          y: ignored.
          autoencoder: None (default): build one (a dense autoencoder for features, see
            ``hidden_units``; :func:`tfclust.build_autoencoder` for images, trained with
            :func:`tfclust.train_autoencoder`) and pretrain it for ``pretrain_epochs``. Or a
            pretrained Keras autoencoder with submodels ``encoder`` and ``decoder`` (as
            :func:`tfclust.build_autoencoder` and :func:`tfclust.load_autoencoder` return),
            whose input X matches: DEC fine-tunes a copy (same architecture, copied weights);
            the model given is not changed.

        Returns:
          self.

        Raises:
          ValueError: bad parameters or X (NaN, wrong shape, n_clusters > n_samples), an
            autoencoder whose input does not match X, or without encoder/decoder.
          TypeError: non-numeric X, an autoencoder that is not a Keras model.
        """
        import keras

        p = self._check_params()
        if autoencoder is not None and not isinstance(autoencoder, keras.Model):
            raise TypeError(f"autoencoder must be a keras.Model, got {type(autoencoder).__name__}")
        images = self._is_images(X, autoencoder)
        if images:
            model_shape = None if autoencoder is None else tuple(autoencoder.input_shape[1:])
            x = self._check_images(X)
            if model_shape is not None and tuple(x.shape[1:]) != model_shape:
                raise ValueError(
                    f"X has images of shape {tuple(x.shape[1:])} but the autoencoder takes "
                    f"{model_shape}"
                )
            self.__dict__.pop("feature_names_in_", None)
        else:
            model_dtype = None if autoencoder is None else autoencoder.inputs[0].dtype
            dtype = fit_dtype(X, self.dtype, tf.float32) if model_dtype is None else model_dtype
            x = check_array(X, name="X", dtype=dtype)
            if autoencoder is not None and tuple(autoencoder.input_shape[1:]) != (x.shape[1],):
                raise ValueError(
                    f"X has {x.shape[1]} features but the autoencoder takes inputs of shape "
                    f"{tuple(autoencoder.input_shape[1:])}"
                )
            self._check_feature_names(X, reset=True)
        if (images or autoencoder is not None) and self.dtype is not None:
            model_dtype = "float32" if autoencoder is None else autoencoder.inputs[0].dtype
            if tf.as_dtype(self.dtype).name != tf.as_dtype(model_dtype).name:
                raise ValueError(
                    f"dtype={self.dtype!r} differs from the autoencoder's {model_dtype}; use "
                    "dtype=None"
                )
        n = int(x.shape[0])
        if p.n_clusters > n:
            raise ValueError(f"n_samples={n} should be >= n_clusters={p.n_clusters}.")
        t0 = time.perf_counter()
        batch = min(p.batch_size, n)

        inv_var = tf.ones([], x.dtype)
        if autoencoder is not None:
            model = _copy_model(autoencoder)
            encoder, decoder = _parts(model)
            if len(encoder.output_shape) != 2:
                raise ValueError(
                    f"the autoencoder's encoder must output (None, d) latents, outputs "
                    f"{encoder.output_shape}"
                )
        elif images:
            from tfclust.autoencoder import build_autoencoder, train_autoencoder
            from tfclust.data import autoencoder_pipeline

            model, encoder, decoder = build_autoencoder(
                p.latent_dim, image_shape=tuple(x.shape[1:]), seed=_seeds(p.seed, 1)[0]
            )
            epochs = _AUTO_PRETRAIN["images"] if p.pretrain_epochs is None else p.pretrain_epochs
            if epochs:
                data = autoencoder_pipeline(x.numpy(), batch_size=batch, seed=_seeds(p.seed, 2)[1])
                train_autoencoder(model, data, epochs, p.learning_rate, verbose=0)
        else:
            mean = tf.reduce_mean(x, axis=0)
            variance = tf.math.reduce_variance(x, axis=0)
            variance = tf.where(variance > 0, variance, tf.ones_like(variance))
            model, encoder, decoder = _dense_autoencoder(
                int(x.shape[1]),
                p.hidden_units,
                p.latent_dim,
                x.dtype.name,
                p.seed,
                mean.numpy(),
                variance.numpy(),
            )
            inv_var = 1.0 / variance
            epochs = _AUTO_PRETRAIN["features"] if p.pretrain_epochs is None else p.pretrain_epochs
            if epochs:
                self._pretrain(p, x, encoder, decoder, epochs, batch, inv_var)
        t_pretrain = time.perf_counter() - t0

        self.autoencoder_, self.encoder_ = model, encoder
        self._input_shape = tuple(int(v) for v in x.shape[1:])
        self.n_features_in_ = int(np.prod(self._input_shape))
        self._encode_fn = self._proba_fn = None
        z = self._encode(x)
        km = self._kmeans(p, z)
        clustering = ClusteringLayer(
            p.n_clusters,
            alpha=p.alpha,
            weights=[km.cluster_centers_],
            dtype=encoder.outputs[0].dtype,
            name="clustering",
        )
        clustering.build((None, z.shape[1]))
        self._clustering = clustering
        self.init_labels_ = km.labels_.astype(np.int32)
        self._cluster(p, x, decoder, batch, inv_var)
        self.cluster_centers_ = clustering.centers.numpy()
        logger.info(
            "DEC fit end: %d steps, converged %s, %.3f s (pretraining %.3f s)",
            self.n_iter_,
            self.converged_,
            time.perf_counter() - t0,
            t_pretrain,
        )
        return self

    def _pretrain(self, p, x, encoder, decoder, epochs, batch, inv_var):
        """Train the dense autoencoder on the reconstruction loss alone: ``epochs`` passes of
        ``ceil(n / batch)`` steps, one compiled call per epoch."""
        n = int(x.shape[0])
        steps = -(-n // batch)
        trainer = _Trainer(
            encoder,
            decoder,
            None,
            kl_weight=0.0,
            reconstruction_weight=1.0,
            learning_rate=p.learning_rate,
            n=n,
            batch=batch,
            max_steps=steps,
            inv_var=inv_var,
        )
        dummy = tf.zeros([n, 1], x.dtype)
        for epoch in range(epochs):
            _, rec = trainer.run(x, dummy, steps, stateless_seed(p.seed, _PRETRAIN_SALT + epoch))
            if (epoch + 1) % 10 == 0 or epoch + 1 == epochs:
                msg = "[DEC] pretraining epoch %d / %d: reconstruction loss %.6f"
                logger.info(msg, epoch + 1, epochs, rec)
                if p.verbose:
                    print(msg % (epoch + 1, epochs, rec))

    def _kmeans(self, p, z):
        from tfclust.kmeans import KMeans

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return KMeans(p.n_clusters, n_init=p.n_init, random_state=p.seed).fit(z)

    def _cluster(self, p, x, decoder, batch, inv_var):
        """The DEC/IDEC iterations; sets ``labels_``, ``n_iter_``, ``converged_``,
        ``history_``."""
        n = int(x.shape[0])
        interval = min(p.update_interval, max(p.max_iter, 1))
        trainer = None
        if p.max_iter > 0:
            trainer = _Trainer(
                self.encoder_,
                decoder,
                self._clustering,
                kl_weight=1.0,
                reconstruction_weight=p.reconstruction_weight,
                learning_rate=p.learning_rate,
                n=n,
                batch=batch,
                max_steps=interval,
                inv_var=inv_var,
            )
        history = {"iteration": [], "kl": [], "label_change": [], "reconstruction": []}
        previous, step, converged, rec, update = self.init_labels_, 0, False, math.nan, 0
        while True:
            q = self._proba(x)
            target = target_distribution(q)
            labels = tf.argmax(q, axis=1, output_type=tf.int32).numpy()
            change = float(np.mean(labels != previous))
            kl = float(kl_divergence(target, q))
            for key, value in zip(history, (step, kl, change, rec), strict=True):
                history[key].append(value)
            msg = "[DEC] iteration %d: KL %.6f, label change %.5f"
            logger.info(msg, step, kl, change)
            if p.verbose:
                print(msg % (step, kl, change))
            previous = labels
            if step > 0 and change < p.tol:
                converged = True
                break
            if step >= p.max_iter:
                break
            n_steps = min(interval, p.max_iter - step)
            seed = stateless_seed(p.seed, _CLUSTER_SALT + update)
            _, rec = trainer.run(x, target, n_steps, seed)
            if p.reconstruction_weight == 0:
                rec = math.nan
            step += n_steps
            update += 1
        if not converged and p.tol > 0 and p.max_iter > 0:
            warnings.warn(
                f"DEC stopped after max_iter={p.max_iter} steps with {change:.4%} of the labels "
                f"changing in the last interval (tol={p.tol}); increase max_iter or tol",
                sklearn_compatible(ConvergenceWarning),
                stacklevel=3,
            )
        self.labels_ = previous.astype(np.int32)
        self.n_iter_ = int(step)
        self.converged_ = bool(converged)
        self.history_ = history

    # -- inference ------------------------------------------------------------------------------

    def _compiled(self, name: str, fn):
        """``fn`` (rows of the fitted input shape -> outputs) as a ``tf.function``, kept in the
        attribute ``name`` until the next fit or load resets it."""
        if getattr(self, name, None) is None:
            spec = tf.TensorSpec([None, *self._input_shape], self.encoder_.inputs[0].dtype)
            setattr(self, name, tf.function(fn, input_signature=[spec], autograph=False))
        return getattr(self, name)

    @staticmethod
    def _batched(fn, x):
        """``fn`` over ``x`` in batches of ``_PREDICT_BATCH`` rows, concatenated."""
        n = int(x.shape[0])
        return tf.concat([fn(x[i : i + _PREDICT_BATCH]) for i in range(0, n, _PREDICT_BATCH)], 0)

    def _encode(self, x):
        encoder = self.encoder_
        fn = self._compiled("_encode_fn", lambda rows: encoder(rows, training=False))
        return self._batched(fn, x)

    def _proba(self, x):
        encoder, clustering = self.encoder_, self._clustering
        fn = self._compiled("_proba_fn", lambda rows: clustering(encoder(rows, training=False)))
        return self._batched(fn, x)

    def predict_proba(self, X):
        """Soft assignments ``q`` of X to the refined centres (Student-t kernel, rows sum to 1).

        Args:
          X: points as in ``fit`` (the same number of features, or images of the same shape).

        Returns:
          (n_samples, n_clusters) numpy array of the latents' dtype.

        Raises:
          NotFittedError: before ``fit``.
          ValueError: X of another shape than fit's, NaN/inf.
        """
        return self._proba(self._check_input(X)).numpy()

    def predict(self, X):
        """Cluster of each point: the argmax of :meth:`predict_proba` (int32 (n_samples,))."""
        q = self._proba(self._check_input(X))
        return tf.argmax(q, axis=1, output_type=tf.int32).numpy()

    def fit_predict(self, X, y=None, *, autoencoder=None):
        """Fit on X and return ``labels_``."""
        return self.fit(X, autoencoder=autoencoder).labels_

    def transform(self, X):
        """Latents of X by the refined encoder: (n_samples, latent_dim) numpy array."""
        return self._encode(self._check_input(X)).numpy()

    def fit_transform(self, X, y=None, *, autoencoder=None):
        """Fit on X and return its latents (``transform(X)``)."""
        self.fit(X, autoencoder=autoencoder)
        return self.transform(X)

    def score(self, X, y=None):
        """Minus the clustering loss on X: ``-KL(P || Q)`` in nats per point, P the target
        distribution of X's own soft assignments Q (higher is better; 0 for hard
        assignments)."""
        q = self._proba(self._check_input(X))
        return -float(kl_divergence(target_distribution(q), q))

    def get_feature_names_out(self, input_features=None):
        """Names of the latent dimensions (``transform``'s columns): ``["dec0", ...]``."""
        check_is_fitted(self, "cluster_centers_")
        if input_features is not None and len(input_features) != self.n_features_in_:
            raise ValueError(
                f"input_features should have length equal to number of features "
                f"({self.n_features_in_}), got {len(input_features)}"
            )
        return np.asarray([f"dec{i}" for i in range(self.cluster_centers_.shape[1])], dtype=object)

    # -- persistence ----------------------------------------------------------------------------

    _SCALARS = ("n_features_in_", "n_iter_", "converged_")

    def _get_saved_state(self) -> dict:
        """The fitted state as arrays and JSON values (for :mod:`tfclust.persistence` and
        pickling): the autoencoder's Keras JSON configuration (``autoencoder_config``) and
        weights (``autoencoder_weight_<i>``), the centres and the other fitted attributes;
        empty before ``fit``."""
        if getattr(self, "cluster_centers_", None) is None:
            return {}
        weights = self.autoencoder_.get_weights()
        state = {f"autoencoder_weight_{i}": np.asarray(w) for i, w in enumerate(weights)}
        state.update(
            autoencoder_config=self.autoencoder_.to_json(),
            n_autoencoder_weights=len(weights),
            cluster_centers_=np.asarray(self.cluster_centers_),
            labels_=np.asarray(self.labels_),
            init_labels_=np.asarray(self.init_labels_),
            input_shape=list(self._input_shape),
            clustering=[int(self._clustering.n_clusters), float(self._clustering.alpha)],
            history_=json.loads(json.dumps(self.history_)),
            n_features_in_=int(self.n_features_in_),
            n_iter_=int(self.n_iter_),
            converged_=bool(self.converged_),
        )
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            state["feature_names_in_"] = [str(v) for v in names]
        return state

    def _set_saved_state(self, state: dict) -> None:
        """Restore what :meth:`_get_saved_state` returned: the autoencoder is rebuilt from its
        JSON configuration and given the weights; the clustering layer from the centres."""
        import keras

        if not state:
            return
        model = keras.models.model_from_json(state["autoencoder_config"])
        model.set_weights(
            [
                np.asarray(state[f"autoencoder_weight_{i}"])
                for i in range(state["n_autoencoder_weights"])
            ]
        )
        self.autoencoder_ = model
        self.encoder_, _ = _parts(model)
        centers = np.asarray(state["cluster_centers_"])
        n_clusters, alpha = state["clustering"]
        clustering = ClusteringLayer(
            int(n_clusters),
            alpha=float(alpha),
            weights=[centers],
            dtype=self.encoder_.outputs[0].dtype,
            name="clustering",
        )
        clustering.build((None, centers.shape[1]))
        self._clustering = clustering
        self._encode_fn = self._proba_fn = None
        self._input_shape = tuple(int(v) for v in state["input_shape"])
        self.cluster_centers_ = centers
        self.labels_ = np.asarray(state["labels_"])
        self.init_labels_ = np.asarray(state["init_labels_"])
        self.history_ = {k: list(v) for k, v in state["history_"].items()}
        self.n_features_in_ = int(state["n_features_in_"])
        self.n_iter_ = int(state["n_iter_"])
        self.converged_ = bool(state["converged_"])
        if "feature_names_in_" in state:
            self.feature_names_in_ = np.asarray(state["feature_names_in_"], dtype=object)
        else:
            self.__dict__.pop("feature_names_in_", None)
