"""Parametric t-SNE: a small Keras network mapping inputs to a t-SNE map.

A fitted :class:`ParametricTSNE` places new points on the map with one forward pass of its
network (``transform``), instead of a new t-SNE optimisation. Two ways to train the network:

* ``"distill"``: fit a :class:`~tfclust.tsne.TSNE` (or take a given map) and regress the
  inputs onto its embedding (mean squared error in units of the map's spread);
* ``"tsne"``: parametric t-SNE (van der Maaten, AISTATS 2009), the KL divergence KL(P || Q) on
  mini-batches, P the global k-NN affinities of the whole data restricted to the batch.
"""

from __future__ import annotations

import logging
import time
import types

import numpy as np
import tensorflow as tf

from tfclust._base import BaseEstimator, SavedStatePickle, prefixed_feature_names
from tfclust._precision import matmul
from tfclust._validation import (
    INT32_MAX,
    check_array,
    check_float,
    check_int,
    check_is_fitted,
    check_layer_sizes,
    check_random_state,
    fit_dtype,
    max_abs,
    power_of_two_scale,
)
from tfclust.tsne.affinities import (
    bucketed_conditionals,
    n_neighbors_for_perplexity,
    nearest_neighbors,
)
from tfclust.tsne.estimator import TSNE

__all__ = ["ParametricTSNE"]

logger = logging.getLogger("tfclust.tsne")

_OBJECTIVES = ("distill", "tsne")
# Defaults per objective where "auto" is given (measured: benchmarks/bench_parametric_tsne.py).
_AUTO_EPOCHS = {"distill": 200, "tsne": 300}
_AUTO_BATCH = {"distill": 256, "tsne": 512}
# Points per forward pass in transform.
_TRANSFORM_BATCH = 4096
# Early exaggeration of the "tsne" objective: factor on P during the first quarter of epochs.
_EXAGGERATION = 4.0
_EXAGGERATION_FRACTION = 0.25


def _seeds(seed: int, count: int) -> list[int]:
    """``count`` int31 seeds drawn from ``seed`` by a local ``SeedSequence``."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(count) >> 1]


def _build_model(n_features, layer_units, dtype, seed=None):
    """``(model, normalization)``: the Functional network from (n_features,) inputs through a
    ``Normalization`` layer, ReLU ``Dense`` layers of ``layer_units[:-1]`` units and a linear
    ``Dense`` output of ``layer_units[-1]`` units; seeded Glorot initialisers when ``seed``."""
    import keras  # imported on first use: ``import tfclust.tsne`` stays quick

    seeds = [None] * len(layer_units) if seed is None else _seeds(seed, len(layer_units))
    inputs = keras.Input((n_features,), dtype=dtype, name="inputs")
    normalization = keras.layers.Normalization(dtype=dtype, name="normalization")
    h = normalization(inputs)
    for i, (units, s) in enumerate(zip(layer_units, seeds, strict=True)):
        last = i == len(layer_units) - 1
        h = keras.layers.Dense(
            units,
            activation=None if last else "relu",
            kernel_initializer=keras.initializers.GlorotUniform(seed=s),
            dtype=dtype,
            name="embedding" if last else f"hidden_{i}",
        )(h)
    return keras.Model(inputs, h, name="parametric_tsne"), normalization


def _model_dtype(model) -> str:
    """The dtype of the network's inputs and outputs (``"float32"`` or ``"float64"``)."""
    return model.inputs[0].dtype


def _batch_affinities(idx, neighbors, p_cond, n):
    """The joint P of a batch: the global conditional ``p_{j|i}`` of the batch's points
    (``idx``, (B,) int32) over their neighbours within the batch, symmetrised and normalised
    to sum 1 over the batch; (B, B) of ``p_cond``'s dtype."""
    b = tf.shape(idx)[0]
    position = tf.scatter_nd(idx[:, None], tf.range(1, b + 1), [n]) - 1  # -1: not in batch
    cols = tf.gather(position, tf.gather(neighbors, idx))  # (B, k)
    inside = cols >= 0
    rows = tf.broadcast_to(tf.range(b)[:, None], tf.shape(cols))
    values = tf.where(inside, tf.gather(p_cond, idx), tf.zeros([], p_cond.dtype))
    pairs = tf.stack([rows, tf.where(inside, cols, 0)], axis=-1)
    p = tf.scatter_nd(pairs, values, [b, b])
    p = p + tf.transpose(p)
    return p / tf.maximum(tf.reduce_sum(p), tf.constant(1e-12, p.dtype))


def _kl_loss(y, p, exaggeration):
    """KL(P || Q) of the batch (nats), Q Student-t (one degree of freedom) over the batch's
    outputs ``y`` (B, c); the attraction is scaled by ``exaggeration`` (not counted in the
    returned value's P log P term, so it is the plain KL divergence when it is 1)."""
    sq = tf.reduce_sum(tf.square(y), axis=1)
    d2 = tf.maximum(sq[:, None] + sq[None, :] - 2.0 * matmul(y, y, transpose_b=True), 0.0)
    w = 1.0 / (1.0 + d2)
    w = tf.linalg.set_diag(w, tf.zeros_like(sq))
    log_z = tf.math.log(tf.reduce_sum(w))
    positive = p > 0.0
    safe_p = tf.where(positive, p, tf.ones_like(p))
    entropy = tf.reduce_sum(tf.where(positive, p * tf.math.log(safe_p), tf.zeros_like(p)))
    cross = -tf.reduce_sum(p * tf.math.log(tf.where(positive, w, tf.ones_like(w))))
    return entropy + exaggeration * cross + log_z


class ParametricTSNE(SavedStatePickle, BaseEstimator):
    """Parametric t-SNE: a Keras network that maps inputs to a t-SNE map.

    After ``fit``, new points cost one forward pass of a small network (``transform``), with
    no new optimisation: the map of a model serving images (encoder, then this network).

    Args:
      n_components: dimension of the map (int >= 1, default 2).
      perplexity: perplexity of the input-space Gaussians (> 0, default 30.0): of the fitted
        :class:`~tfclust.tsne.TSNE` for ``"distill"`` (when ``tsne`` is None), of the k-NN
        affinities for ``"tsne"``.
      objective: how the network is trained. ``"distill"`` (default): fit a ``TSNE`` (see
        ``tsne``), or take ``fit``'s ``embedding``, and regress X onto that map (mean squared
        error of the outputs in units of the map's standard deviation). ``"tsne"``: parametric
        t-SNE (van der Maaten, 2009), the KL divergence KL(P || Q) on each mini-batch, with P the
        global k-NN affinities (each point's ``3 * perplexity + 1`` nearest neighbours, the
        conditionals calibrated to ``perplexity``) of the batch's points among themselves,
        symmetrised and normalised over the batch, and Q Student-t over the batch's outputs;
        P is exaggerated 4x during the first quarter of the epochs. Restricting the global P
        keeps each point's true neighbours (a perplexity calibrated within a batch of B of N
        points would spread over N / B times wider neighbourhoods). On 5,000 Fashion-MNIST
        latents (perplexity 30; ``benchmarks/bench_parametric_tsne.py``), the distilled map
        keeps the neighbourhoods better: trustworthiness (k = 10) 0.9916 against the TSNE
        map's 0.9929 (``"tsne"``: 0.9795), 10-NN label accuracy 0.826 (0.831; ``"tsne"``:
        0.794), in 23 s after the TSNE's 21 s (``"tsne"``: 44 s); held-out points' 10-NN
        accuracy is alike (0.724, ``"tsne"`` 0.732).
      hidden_units: sizes of the hidden ReLU ``Dense`` layers (tuple of ints >= 1, default
        (256, 256, 256)); the output layer is linear, in map units.
      n_epochs: passes over X (int >= 1), or ``"auto"`` (default): 200 for ``"distill"``
        (100 reached trustworthiness 0.9849 above), 300 for ``"tsne"`` (100: 0.958).
      batch_size: points per training step (int >= 2), or ``"auto"`` (default): 256 for
        ``"distill"``, 512 for ``"tsne"`` (whose batches need enough of each point's
        neighbours; 512 did better than 1024 at 300 epochs). Each epoch runs
        ``max(1, n_samples // batch_size)`` steps of equal batches, on a fresh shuffle.
      learning_rate: initial step size of Adam (> 0, default 1e-3), decayed to 1% of it over
        the training by a cosine schedule.
      tsne: ``"distill"`` only: a :class:`~tfclust.tsne.TSNE` whose parameters fit the map
        (copied, the instance itself is not fitted), or None (default):
        ``TSNE(n_components, perplexity=perplexity, random_state=...)``. Unused when ``fit`` is
        given ``embedding``.
      random_state: None (fresh entropy), an int seed in 0 .. 2**32 - 1, or a numpy
        ``RandomState``/``Generator``: seeds the network's initial weights, the shuffles and the
        default ``TSNE``; an int seed repeats the fit on the same machine.
      verbose: 0 (default) prints nothing; >= 1 prints the loss every 10 epochs (and the
        ``TSNE``'s verbose output at ``verbose >= 2``). The same lines are logged at INFO level
        on the ``tfclust.tsne`` logger.
      dtype: ``"float32"`` (default) or ``"float64"``: the network's weights and the map; None:
        X's own dtype when it is float32 or float64, else float32.

    Fitted attributes: ``model_`` (the ``keras.Model`` from (n_features,) inputs to
    (n_components,) outputs: a ``Normalization`` layer adapted on X, so it takes raw inputs,
    the hidden layers and the linear output), ``embedding_`` ((n_samples, n_components) numpy
    array of ``dtype``: the network's map of X), ``loss_`` (float: the last epoch's mean loss,
    the scaled mean squared error for ``"distill"``, the batches' KL divergence in nats for
    ``"tsne"``), ``history_`` (list of floats, each epoch's mean loss), ``n_features_in_``
    (int).

    Examples:
      >>> import numpy as np
      >>> from tfclust import ParametricTSNE
      >>> rng = np.random.default_rng(0)
      >>> X = np.concatenate([rng.normal(c, 1.0, (40, 5)) for c in (0, 8)])
      >>> embedding = np.concatenate([np.full((40, 2), -5.0), np.full((40, 2), 5.0)])
      >>> ptsne = ParametricTSNE(n_epochs=20, batch_size=16, random_state=0)
      >>> ptsne = ptsne.fit(X, embedding=embedding)  # distil a given map (else fits a TSNE)
      >>> Y = ptsne.transform(rng.normal(8, 1.0, (3, 5)))  # new points near the second blob
      >>> Y.shape, Y.dtype
      ((3, 2), dtype('float32'))
      >>> bool(np.all(Y > 2.5))
      True
    """

    def __init__(
        self,
        n_components=2,
        *,
        perplexity=30.0,
        objective="distill",
        hidden_units=(256, 256, 256),
        n_epochs="auto",
        batch_size="auto",
        learning_rate=1e-3,
        tsne=None,
        random_state=None,
        verbose=0,
        dtype="float32",
    ):
        self.n_components = n_components
        self.perplexity = perplexity
        self.objective = objective
        self.hidden_units = hidden_units
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.tsne = tsne
        self.random_state = random_state
        self.verbose = verbose
        self.dtype = dtype

    _fitted_attribute = "model_"

    def _check_params(self, X):
        """The constructor arguments validated, as a namespace of plain Python values, with
        ``dtype`` (a ``tf.DType``) and ``seed`` (from ``random_state``)."""
        if not isinstance(self.objective, str) or self.objective not in _OBJECTIVES:
            raise ValueError(f"objective must be one of {_OBJECTIVES}, got {self.objective!r}")
        p = types.SimpleNamespace(
            objective=self.objective,
            n_components=check_int(self.n_components, name="n_components", low=1, high=INT32_MAX),
            perplexity=check_float(
                self.perplexity, name="perplexity", low=0.0, low_inclusive=False
            ),
            learning_rate=check_float(
                self.learning_rate, name="learning_rate", low=0.0, low_inclusive=False
            ),
            verbose=check_int(
                int(self.verbose) if isinstance(self.verbose, bool) else self.verbose,
                name="verbose",
                low=0,
            ),
        )
        p.hidden_units = check_layer_sizes(self.hidden_units, name="hidden_units")
        p.n_epochs = self._auto(self.n_epochs, "n_epochs", _AUTO_EPOCHS[p.objective], low=1)
        p.batch_size = self._auto(self.batch_size, "batch_size", _AUTO_BATCH[p.objective], low=2)
        if self.tsne is not None and not isinstance(self.tsne, TSNE):
            raise TypeError(f"tsne must be None or a tfclust TSNE, got {self.tsne!r}")
        p.dtype = fit_dtype(X, self.dtype, tf.float32)
        p.seed = check_random_state(self.random_state)
        return p

    @staticmethod
    def _auto(value, name, auto, low):
        if isinstance(value, str):
            if value != "auto":
                raise ValueError(f"{name} must be 'auto' or an integer, got {value!r}")
            return auto
        return check_int(value, name=name, low=low, high=INT32_MAX)

    def fit(self, X, y=None, *, embedding=None):
        """Train the network on ``X``.

        Args:
          X: (n_samples, n_features) array-like or tensor (sparse is densified), finite,
            n_samples >= 2.
          y: ignored.
          embedding: ``"distill"`` only: the (n_samples, n_components) map to distil (e.g. a
            ``TSNE``'s ``embedding_`` of X); None (default): fit a ``TSNE`` (see ``tsne``).

        Returns:
          self.

        Raises:
          ValueError: bad parameters, X or ``embedding`` (wrong shape, NaN/inf, or given with
            ``objective="tsne"``).
        """
        p = self._check_params(X)
        x = check_array(X, name="X", dtype=p.dtype, min_samples=2)
        n, n_features = x.shape
        uses_perplexity = p.objective == "tsne" or (embedding is None and self.tsne is None)
        if uses_perplexity and p.perplexity >= n:
            raise ValueError(f"perplexity ({self.perplexity}) must be less than n_samples ({n})")
        self._check_feature_names(X, reset=True)
        if embedding is not None:
            if p.objective != "distill":
                raise ValueError("embedding is used by objective='distill' only")
            target = self._check_map(p, embedding, n, "embedding")
        t0 = time.perf_counter()
        model, normalization = _build_model(
            n_features, (*p.hidden_units, p.n_components), p.dtype.name, p.seed
        )
        normalization.adapt(x)
        if p.objective == "distill":
            if embedding is None:
                target = self._check_map(p, self._fit_tsne(p, X), n, "the tsne's embedding")
            history = self._distill(p, model, x, target)
        else:
            history = self._fit_tsne_objective(p, model, x)
        self.model_ = model
        self._forward = None
        self.n_features_in_ = int(n_features)
        self.history_ = history
        self.loss_ = history[-1]
        self.embedding_ = self._transform(x)
        logger.info(
            "ParametricTSNE fit end (%s): loss %.6f after %d epochs, %.3f s",
            p.objective,
            self.loss_,
            len(history),
            time.perf_counter() - t0,
        )
        return self

    @staticmethod
    def _check_map(p, embedding, n, name):
        """The map to distil as a tensor of ``p.dtype``, checked to be (n, n_components)."""
        target = check_array(embedding, name=name, dtype=p.dtype)
        if tuple(target.shape) != (n, p.n_components):
            raise ValueError(
                f"{name} must have shape (n_samples, n_components) = ({n}, "
                f"{p.n_components}), got {tuple(target.shape)}"
            )
        return target

    def _fit_tsne(self, p, X):
        """The map to distil: a ``TSNE`` fitted on X (the ``tsne`` parameter's copy, or the
        default one)."""
        if self.tsne is None:
            tsne = TSNE(
                p.n_components,
                perplexity=p.perplexity,
                random_state=p.seed,
                verbose=max(p.verbose - 1, 0),
                dtype=p.dtype.name,
            )
        else:
            tsne = type(self.tsne)(**self.tsne.get_params(deep=False))
        return tsne.fit(X).embedding_

    def _train(self, p, model, n, loss_fn, stage=None):
        """Adam with cosine decay over ``n_epochs`` epochs of ``n // batch_size`` equal shuffled
        batches; ``loss_fn(idx, outputs_of, extra)`` is the loss of a batch of row indices,
        ``stage(epoch)`` the float ``extra`` operand of an epoch. Returns each epoch's mean
        loss."""
        import keras

        batch = min(p.batch_size, n)
        steps = max(1, n // batch)
        decay = keras.optimizers.schedules.CosineDecay(
            p.learning_rate, decay_steps=steps * p.n_epochs, alpha=0.01
        )
        optimizer = keras.optimizers.Adam(learning_rate=decay)
        weights = model.trainable_variables
        optimizer.build(weights)

        @tf.function(autograph=False)
        def step(idx, extra):
            with tf.GradientTape() as tape:
                loss = loss_fn(idx, lambda rows: model(rows, training=True), extra)
            optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights, strict=True))
            return loss

        rng = np.random.default_rng(_seeds(p.seed, 1)[0])
        history = []
        for epoch in range(p.n_epochs):
            extra = tf.constant(1.0 if stage is None else stage(epoch), p.dtype)
            order = rng.permutation(n)[: steps * batch].reshape(steps, batch).astype(np.int32)
            losses = [step(tf.constant(idx), extra) for idx in order]
            history.append(float(np.mean([float(v) for v in losses])))
            if (epoch + 1) % 10 == 0 or epoch + 1 == p.n_epochs:
                msg = "[parametric t-SNE] epoch %d / %d: loss %.6f"
                logger.info(msg, epoch + 1, p.n_epochs, history[-1])
                if p.verbose:
                    print(msg % (epoch + 1, p.n_epochs, history[-1]))
        return history

    def _distill(self, p, model, x, target):
        """Regress ``x`` onto ``target`` (scaled to mean 0, standard deviation 1); the scaling
        is folded into the output layer afterwards, so the model outputs map units."""
        mean = tf.reduce_mean(target, axis=0)
        scale = tf.maximum(tf.math.reduce_std(target), tf.constant(1e-12, target.dtype))
        scaled = (target - mean) / scale

        def loss_fn(idx, outputs_of, _):
            y = outputs_of(tf.gather(x, idx))
            return tf.reduce_mean(tf.square(y - tf.gather(scaled, idx)))

        history = self._train(p, model, x.shape[0], loss_fn)
        out = model.get_layer("embedding")
        kernel, bias = out.get_weights()
        out.set_weights([kernel * scale.numpy(), bias * scale.numpy() + mean.numpy()])
        return history

    def _fit_tsne_objective(self, p, model, x):
        """Parametric t-SNE on mini-batches, P the global k-NN affinities (see the class
        docstring)."""
        n = x.shape[0]
        k = n_neighbors_for_perplexity(n, p.perplexity)
        # P does not depend on X's scale: bring it to [0.5, 1) if squares could overflow.
        scale = power_of_two_scale(max_abs(x), x.shape[1], tf.float32)
        neighbors, sq_distances = nearest_neighbors(x * scale if scale != 1.0 else x, k)
        p_cond, _ = bucketed_conditionals(sq_distances, p.perplexity)
        n_exaggerated = int(round(_EXAGGERATION_FRACTION * p.n_epochs))

        def loss_fn(idx, outputs_of, exaggeration):
            y = outputs_of(tf.gather(x, idx))
            return _kl_loss(y, _batch_affinities(idx, neighbors, p_cond, n), exaggeration)

        def stage(epoch):
            return _EXAGGERATION if epoch < n_exaggerated else 1.0

        return self._train(p, model, n, loss_fn, stage)

    def _transform(self, x):
        """The network's map of the tensor ``x``, in batches, as a numpy array."""
        if getattr(self, "_forward", None) is None:
            model = self.model_
            spec = tf.TensorSpec([None, self.n_features_in_], _model_dtype(model))
            self._forward = tf.function(
                lambda rows: model(rows, training=False), input_signature=[spec], autograph=False
            )
        parts = [
            self._forward(x[i : i + _TRANSFORM_BATCH]).numpy()
            for i in range(0, x.shape[0], _TRANSFORM_BATCH)
        ]
        return np.concatenate(parts)

    def transform(self, X):
        """Map new points: one forward pass of ``model_``.

        Args:
          X: (n_samples, n_features) array-like or tensor, finite.

        Returns:
          (n_samples, n_components) numpy array of the model's dtype, in map units.

        Raises:
          NotFittedError: before ``fit``.
          ValueError: X is not 2-D, has NaN/inf, or its number of features differs from fit's.
        """
        check_is_fitted(self, "model_")
        self._check_feature_names(X, reset=False)
        x = check_array(X, name="X", dtype=_model_dtype(self.model_))
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {x.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return self._transform(x)

    def fit_transform(self, X, y=None, *, embedding=None):
        """Fit on ``X`` and return ``embedding_`` ((n_samples, n_components) numpy array)."""
        return self.fit(X, embedding=embedding).embedding_

    def get_feature_names_out(self, input_features=None):
        """Names of the map's columns: ``["parametrictsne0", ...]``."""
        return prefixed_feature_names(self, "embedding_", input_features)

    # -- persistence ----------------------------------------------------------------------------

    def _get_saved_state(self) -> dict:
        """The fitted state as numpy arrays and JSON values (for :mod:`tfclust.persistence`
        and pickling): the model's weights (``model_weight_0`` ...; normalization mean,
        variance and count, then each Dense layer's kernel and bias) and the other fitted
        attributes; empty before ``fit``."""
        if getattr(self, "model_", None) is None:
            return {}
        weights = self.model_.get_weights()
        state = {f"model_weight_{i}": np.asarray(w) for i, w in enumerate(weights)}
        state.update(
            n_model_weights=len(weights),
            n_features_in_=int(self.n_features_in_),
            embedding_=np.asarray(self.embedding_),
            loss_=float(self.loss_),
            history_=[float(v) for v in self.history_],
        )
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            state["feature_names_in_"] = [str(v) for v in names]
        return state

    def _set_saved_state(self, state: dict) -> None:
        """Restore what :meth:`_get_saved_state` returned: the network is rebuilt from the
        weights' shapes and dtype (every layer size is there) and given the weights."""
        if not state:  # saved before fit
            return
        weights = [np.asarray(state[f"model_weight_{i}"]) for i in range(state["n_model_weights"])]
        n_features = int(state["n_features_in_"])
        kernels = weights[3::2]  # after the normalization's mean, variance and count
        model, normalization = _build_model(
            n_features, tuple(int(w.shape[1]) for w in kernels), weights[0].dtype.name
        )
        model.set_weights(weights)
        normalization.finalize_state()  # its mean and variance from the restored weights
        self.model_ = model
        self._forward = None
        self.n_features_in_ = n_features
        self.embedding_ = np.asarray(state["embedding_"])
        self.loss_ = float(state["loss_"])
        self.history_ = [float(v) for v in state["history_"]]
        if "feature_names_in_" in state:
            self.feature_names_in_ = np.asarray(state["feature_names_in_"], dtype=object)
        else:
            self.__dict__.pop("feature_names_in_", None)
