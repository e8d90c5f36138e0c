"""The clustering head of deep embedded clustering: Student-t soft assignment, the target
distribution and the KL divergence between them (Xie, Girshick and Farhadi, ICML 2016)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfclust._validation import check_array, check_float, check_int

__all__ = ["ClusteringLayer", "kl_divergence", "soft_assignment", "target_distribution"]


def _check_alpha(alpha) -> float:
    return check_float(alpha, name="alpha", low=0.0, low_inclusive=False)


def soft_assignment(z, centers, alpha=1.0):
    """Student-t soft assignment of the embedded points ``z`` (N, d) to ``centers`` (k, d):
    ``q_ij = (1 + |z_i - mu_j|^2 / alpha)^(-(alpha + 1) / 2)``, normalised over ``j``.

    Computed as a softmax of ``-(alpha + 1) / 2 * log1p(|z_i - mu_j|^2 / alpha)``, so no row
    underflows to all zeros however far the points lie; the squared distances are summed
    differences (not the matmul form), exact near the centres. Returns (N, k) of z's dtype.

    Examples:
      >>> import numpy as np
      >>> from tfclust.deep import soft_assignment
      >>> q = soft_assignment(np.array([[0.0, 0.0]]), np.array([[0.0, 0.0], [1.0, 0.0]]))
      >>> np.round(q.numpy(), 4).tolist()  # 1 / (1 + d^2), normalised: 1 and 1/2 -> 2/3, 1/3
      [[0.6667, 0.3333]]
    """
    z = tf.convert_to_tensor(z)
    centers = tf.cast(centers, z.dtype)
    d2 = tf.reduce_sum(tf.square(z[:, tf.newaxis, :] - centers[tf.newaxis, :, :]), axis=-1)
    alpha = tf.cast(alpha, z.dtype)
    logits = -(alpha + 1.0) / 2.0 * tf.math.log1p(d2 / alpha)
    return tf.nn.softmax(logits, axis=-1)


def target_distribution(q):
    """DEC's auxiliary target ``p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j')``, with
    ``f_j = sum_i q_ij`` the soft cluster frequencies (DEC, eq. 3).

    Squaring sharpens the assignments; dividing by ``f_j`` keeps large clusters from taking
    over. ``q``: (N, k) soft assignments (rows summing to 1), a numpy array (then a numpy array
    is returned) or a tensor (then a tensor). The frequencies are those of the rows given, so
    pass all the data (DEC computes P on the whole data set, not per batch).

    Examples:
      >>> import numpy as np
      >>> from tfclust.deep import target_distribution
      >>> q = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
      >>> p = target_distribution(q)
      >>> p.shape, bool(np.allclose(p.sum(axis=1), 1.0)), bool(p[0, 0] > q[0, 0])
      ((3, 2), True, True)
    """
    if not isinstance(q, tf.Tensor | tf.Variable):
        return target_distribution(tf.convert_to_tensor(np.asarray(q))).numpy()
    weight = tf.square(q) / tf.reduce_sum(q, axis=0, keepdims=True)
    return weight / tf.reduce_sum(weight, axis=1, keepdims=True)


def kl_divergence(p, q):
    """KL(P || Q) in nats, summed over the clusters and **averaged over the rows** (Keras'
    ``"kld"`` loss, as the DEC and IDEC Keras implementations use): ``mean_i sum_j p_ij
    log(p_ij / q_ij)``; terms with ``p_ij = 0`` count 0. ``p`` is a constant target (no
    gradient flows into it).

    Examples:
      >>> import numpy as np
      >>> from tfclust.deep import kl_divergence
      >>> q = np.array([[0.5, 0.5]])
      >>> float(kl_divergence(q, q)), round(float(kl_divergence(np.array([[1.0, 0.0]]), q)), 4)
      (0.0, 0.6931)
    """
    q = tf.convert_to_tensor(q)
    p = tf.stop_gradient(tf.cast(p, q.dtype))
    positive = p > 0
    tiny = tf.constant(np.finfo(q.dtype.as_numpy_dtype).tiny, q.dtype)
    safe_p = tf.where(positive, p, tf.ones_like(p))
    terms = tf.where(positive, p * (tf.math.log(safe_p) - tf.math.log(tf.maximum(q, tiny))), 0.0)
    return tf.reduce_mean(tf.reduce_sum(terms, axis=-1))


@keras.saving.register_keras_serializable(package="tfclust")
class ClusteringLayer(keras.layers.Layer):
    """DEC's clustering layer: trainable centres and the Student-t soft assignment to them.

    Maps embedded points z (batch, d) to ``q`` (batch, n_clusters), ``q_ij = (1 + |z_i -
    mu_j|^2 / alpha)^(-(alpha + 1) / 2)`` normalised over j (see :func:`soft_assignment`). The
    centres ``mu`` are the trainable weight ``centers``, (n_clusters, d); as Keras layers do,
    they are saved with the weights, not in ``get_config``.

    Args:
      n_clusters: number of centres k (int >= 1).
      alpha: degrees of freedom of the Student-t kernel (> 0, default 1.0, as DEC).
      centers_initializer: Keras initializer of the centres (default ``"glorot_uniform"``), or
        a (k, d) array of initial centres (e.g. a K-means fit's ``cluster_centers_``); an array
        is used when the layer is built and is not part of ``get_config``.
      weights: optional ``[centres]`` (or the (k, d) array itself), set when the layer is
        built, as ``weights=`` of Keras 2 layers (DEC's Keras code passes the K-means centres
        so); overrides ``centers_initializer``.
      **kwargs: standard ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Examples:
      >>> import numpy as np
      >>> from tfclust.deep import ClusteringLayer
      >>> layer = ClusteringLayer(2, weights=[np.array([[0.0, 0.0], [3.0, 0.0]])])
      >>> q = layer(np.array([[0.0, 0.0], [3.0, 0.0]], dtype=np.float32))
      >>> q.numpy().argmax(axis=1).tolist(), np.round(q.numpy()[0].astype(float), 2).tolist()
      ([0, 1], [0.91, 0.09])
      >>> ClusteringLayer.from_config(layer.get_config()).alpha
      1.0
    """

    def __init__(
        self, n_clusters, alpha=1.0, centers_initializer="glorot_uniform", weights=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.n_clusters = check_int(n_clusters, name="n_clusters", low=1)
        self.alpha = _check_alpha(alpha)
        self._initial_centers = None
        if isinstance(centers_initializer, np.ndarray | list | tuple | tf.Tensor):
            self._initial_centers = self._check_initial(centers_initializer)
            centers_initializer = "zeros"
        if weights is not None:
            if isinstance(weights, list | tuple) and len(weights) == 1:
                weights = weights[0]
            self._initial_centers = self._check_initial(weights)
        self.centers_initializer = keras.initializers.get(centers_initializer)

    def _check_initial(self, centers) -> np.ndarray:
        arr = check_array(centers, name="centers", dtype=tf.float64).numpy()
        if arr.shape[0] != self.n_clusters:
            raise ValueError(
                f"centers has {arr.shape[0]} rows, expected n_clusters={self.n_clusters}"
            )
        return arr

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(
                f"ClusteringLayer expects inputs of shape (batch, d) with d known, got "
                f"{tuple(input_shape)}"
            )
        d = int(input_shape[-1])
        if self._initial_centers is not None and self._initial_centers.shape[1] != d:
            raise ValueError(
                f"centers have {self._initial_centers.shape[1]} features but the inputs have {d}"
            )
        self.centers = self.add_weight(
            name="centers", shape=(self.n_clusters, d), initializer=self.centers_initializer
        )
        if self._initial_centers is not None:
            self.centers.assign(self._initial_centers.astype(self.centers.dtype))
            self._initial_centers = None

    def call(self, inputs):
        return soft_assignment(inputs, self.centers, self.alpha)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n_clusters)

    def get_config(self):
        return {
            **super().get_config(),
            "n_clusters": self.n_clusters,
            "alpha": self.alpha,
            "centers_initializer": keras.initializers.serialize(self.centers_initializer),
        }
