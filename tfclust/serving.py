"""Cluster assignment as a Keras layer, and SavedModel export for TF Serving.

:class:`KMeansAssign` maps latents to their nearest K-means centre inside any Keras model.
:func:`export` writes the encoder and the centres as one SavedModel, ``<path>/<version>/``, the
layout TF Serving polls, so that serving needs neither Python nor scikit-learn nor tfclust.

Signatures of the exported model (H x W x C is the encoder's image shape, 28 x 28 x 1 for
MNIST, C = 1 for grey or 3 for RGB images; d the latent size, 64 by default; k the number of
clusters):

``serving_default``
    ``images``: float32 (None, H, W, C), pixels in [0, 1] ->
    ``latent`` float32 (None, d), ``cluster`` int64 (None,), ``distances`` float32 (None, k),
    and, when exported with a parametric map (``tsne=``), ``map`` float32 (None, 2): the image's
    position on the t-SNE map; when exported from a fitted :class:`tfclust.DEC`, also
    ``cluster_probabilities`` float32 (None, k), its soft assignments ``q`` (see :func:`export`).
``serving_uint8``
    ``images``: uint8 pixels 0..255 (divided by 255 in the graph), (None, H, W) for a grey
    encoder (no channel axis) or (None, H, W, 3) for an RGB one -> the same outputs.
``encode``
    ``images``: float32 (None, H, W, C) in [0, 1] -> ``latent`` float32 (None, d).

``distances`` are euclidean (not squared) distances to every centre, as ``KMeans.transform``
returns; ``cluster`` is the index of the nearest centre, as ``KMeans.predict`` returns. Any batch
size works, 1 included. Inputs of another dtype or shape are refused by the signature; float
pixels outside [0, 1] (e.g. uint8 values sent as floats) or NaN fail an assertion in the graph
(``InvalidArgumentError``) instead of giving a wrong answer. (In Python, a loaded signature
converts numpy arrays to its dtype before the graph sees them, truncating floats sent to
``serving_uint8``; pass tensors, or arrays of the signature's dtype.)
"""

from __future__ import annotations

import os
import shutil

import keras
import numpy as np
import tensorflow as tf

from tfclust._files import PARTIAL_MARK, atomic_path, load_npy, remove, save_npy
from tfclust._validation import check_array, check_int, check_is_fitted
from tfclust.autoencoder import load_autoencoder
from tfclust.data.pipeline import CHANNELS

__all__ = ["KMeansAssign", "export", "export_from_files", "load_centers", "save_centers"]


@keras.saving.register_keras_serializable(package="tfclust")
class KMeansAssign(keras.layers.Layer):
    """Nearest K-means centre of each latent, with the distances to every centre.

    The centres are a non-trainable weight named ``centers`` of shape (n_clusters, d). They are
    saved with the model's weights (``model.save``, SavedModel), not in ``get_config``, which
    holds ``n_clusters`` only, as Keras layers keep their weights out of their config.

    Args:
      n_clusters: number of centres k.
      centers: optional (k, d) array of centres (e.g. ``KMeans.cluster_centers_``) to set when
        the layer is built; without it the centres start at zero and are set by loading weights
        or by ``layer.centers.assign``.
      **kwargs: standard ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Call:
      latents: float (batch, d).

    Returns:
      ``(cluster, distances)``: int64 (batch,) index of the nearest centre (the first one on a
      tie, as ``KMeans.predict``), and float (batch, k) euclidean distances to every centre (as
      ``KMeans.transform``).

    Examples:
      >>> import numpy as np
      >>> from tfclust.serving import KMeansAssign
      >>> layer = KMeansAssign(2, centers=np.array([[0.0, 0.0], [10.0, 0.0]]))
      >>> cluster, distances = layer(np.array([[1.0, 0.0], [9.0, 0.0]], dtype=np.float32))
      >>> cluster.numpy().tolist(), np.round(distances.numpy(), 3).tolist()
      ([0, 1], [[1.0, 9.0], [9.0, 1.0]])
    """

    def __init__(self, n_clusters: int, centers=None, **kwargs):
        super().__init__(**kwargs)
        self.n_clusters = check_int(n_clusters, name="n_clusters", low=1)
        self._initial_centers = None
        if centers is not None:
            centers = _check_centers(centers)
            if centers.shape[0] != self.n_clusters:
                raise ValueError(
                    f"centers has {centers.shape[0]} rows, expected n_clusters={self.n_clusters}"
                )
            self._initial_centers = centers

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(
                f"KMeansAssign expects latents of shape (batch, d) with d known, got "
                f"{tuple(input_shape)}"
            )
        d = int(input_shape[-1])
        if self._initial_centers is not None and self._initial_centers.shape[1] != d:
            raise ValueError(
                f"centers have {self._initial_centers.shape[1]} features but the latents have {d}"
            )
        self.centers = self.add_weight(
            name="centers", shape=(self.n_clusters, d), initializer="zeros", trainable=False
        )
        if self._initial_centers is not None:
            self.centers.assign(self._initial_centers)

    def call(self, latents):
        centers = tf.convert_to_tensor(self.centers)
        # From the differences, not the matmul form: the serving device may multiply in TF32.
        d2 = tf.reduce_sum(tf.square(latents[:, tf.newaxis, :] - centers[tf.newaxis]), axis=-1)
        cluster = tf.argmin(d2, axis=1, output_type=tf.int64)
        return cluster, tf.sqrt(d2)

    def get_config(self):
        return {**super().get_config(), "n_clusters": self.n_clusters}


def _check_centers(centers, name: str = "centers") -> np.ndarray:
    """Validate a (k, d) array of centres; return it as float32 numpy."""
    return check_array(centers, name=name, dtype=tf.float32).numpy()


def _centers_of(kmeans) -> np.ndarray:
    """The (k, d) float32 centres of a fitted estimator (anything with ``cluster_centers_``) or
    of a (k, d) array of centres."""
    if hasattr(kmeans, "fit") or hasattr(kmeans, "cluster_centers_"):
        check_is_fitted(kmeans, "cluster_centers_")
        return _check_centers(kmeans.cluster_centers_, name="kmeans.cluster_centers_")
    return _check_centers(kmeans, name="kmeans")


def save_centers(kmeans, path: str | os.PathLike) -> str:
    """Save the centres as a float32 (k, d) ``.npy`` (the suffix is added if missing).

    Args:
      kmeans: a fitted KMeans (anything with ``cluster_centers_``) or a (k, d) array.
      path: destination file.

    Returns:
      The path written.

    Examples:
      >>> import os, tempfile
      >>> import numpy as np
      >>> from tfclust.serving import load_centers, save_centers
      >>> path = save_centers(np.eye(3), os.path.join(tempfile.mkdtemp(), "centers"))
      >>> os.path.basename(path), load_centers(path).dtype
      ('centers.npy', dtype('float32'))
    """
    path = os.fspath(path)
    if not path.endswith(".npy"):
        path += ".npy"
    return save_npy(path, _centers_of(kmeans))


def load_centers(path: str | os.PathLike) -> np.ndarray:
    """Load centres saved by :func:`save_centers`: float32 (k, d), validated.

    Examples:
      >>> import os, tempfile
      >>> import numpy as np
      >>> from tfclust.serving import load_centers, save_centers
      >>> path = save_centers(np.zeros((10, 64)), os.path.join(tempfile.mkdtemp(), "centers.npy"))
      >>> load_centers(path).shape
      (10, 64)
    """
    path = os.fspath(path)
    return _check_centers(load_npy(path, "centres file"), name=path)


def _check_encoder(encoder) -> tuple[int, int, int, int]:
    """Return (H, W, C, d) of an encoder mapping (None, H, W, C) images, C = 1 or 3, to
    (None, d) latents."""
    if not isinstance(encoder, keras.Model):
        raise TypeError(f"encoder must be a keras.Model, got {type(encoder).__name__}")
    in_shape, out_shape = tuple(encoder.input_shape), tuple(encoder.output_shape)
    if len(in_shape) != 4 or in_shape[3] not in CHANNELS or None in in_shape[1:]:
        raise ValueError(
            "encoder must take images of shape (None, H, W, C) with C = 1 (grey) or 3 (RGB), "
            f"takes {in_shape}"
        )
    if len(out_shape) != 2 or out_shape[1] is None:
        raise ValueError(f"encoder must output latents of shape (None, d), outputs {out_shape}")
    return *in_shape[1:], out_shape[1]


def _map_model(tsne, latent_dim: int) -> keras.Model:
    """The Keras network of a fitted ParametricTSNE, checked against the latent size."""
    from tfclust.tsne import TSNE, ParametricTSNE

    if isinstance(tsne, TSNE):
        raise TypeError(
            "a TSNE places new points by an optimisation, not a forward pass: export a "
            "ParametricTSNE, e.g. ParametricTSNE().fit(latents, embedding=tsne.embedding_)"
        )
    if not isinstance(tsne, ParametricTSNE):
        raise TypeError(f"tsne must be a fitted ParametricTSNE, got {type(tsne).__name__}")
    check_is_fitted(tsne, "model_")
    if tsne.n_features_in_ != latent_dim:
        raise ValueError(
            f"the map takes {tsne.n_features_in_} features but the encoder's latents have "
            f"{latent_dim}"
        )
    return tsne.model_


def _dec_of(kmeans):
    """``kmeans`` if it is a :class:`tfclust.DEC` (checked fitted), else None."""
    from tfclust.deep import DEC

    if not isinstance(kmeans, DEC):
        return None
    check_is_fitted(kmeans, "cluster_centers_")
    return kmeans


def _dec_encoder(encoder, dec):
    """``(image_encoder, features_encoder)`` of a DEC export: for a DEC fitted on images, its
    refined encoder (``encoder`` must be None or that model) and None; for a DEC fitted on
    features, ``encoder`` (images to those features) and the DEC's refined encoder."""
    refined = dec.encoder_
    if len(refined.input_shape) == 4:
        if encoder is not None and encoder is not refined:
            raise ValueError(
                "a DEC fitted on images serves its own refined encoder: pass encoder=None or "
                "dec.encoder_"
            )
        return refined, None
    if encoder is None:
        raise ValueError(
            "a DEC fitted on features (e.g. latents) needs the encoder from images to those "
            "features"
        )
    _, _, _, d = _check_encoder(encoder)
    if d != dec.n_features_in_:
        raise ValueError(
            f"the encoder outputs {d} features but the DEC was fitted on {dec.n_features_in_}"
        )
    return encoder, refined


def export(
    path: str | os.PathLike,
    encoder: keras.Model | None,
    kmeans,
    version: int = 1,
    overwrite: bool = False,
    *,
    tsne=None,
) -> str:
    """Write the encoder and the K-means centres (and a t-SNE map) as a SavedModel for TF
    Serving.

    The model goes to ``<path>/<version>/`` with the signatures listed in this module's
    docstring (``serving_default``, ``serving_uint8``, ``encode``). Load it with
    ``tf.saved_model.load`` or serve ``path`` with TF Serving (``--model_base_path=<path>``).

    Args:
      path: the model's base folder (created if needed).
      encoder: Keras model from float32 images (None, H, W, C) in [0, 1], C = 1 (grey) or 3
        (RGB), to latents (None, d), e.g. the encoder of ``tfclust.build_autoencoder``.
      kmeans: a fitted KMeans (tfclust's, or anything with ``cluster_centers_``), or a (k, d)
        array of centres; or a fitted :class:`tfclust.DEC`, whose refined encoder and
        clustering head are served: ``cluster`` is the argmax of its soft assignments (as
        ``DEC.predict``), the extra output ``cluster_probabilities`` float32 (None, k) is ``q``
        (as ``DEC.predict_proba``), ``latent`` the refined latents (as ``DEC.transform``) and
        ``distances`` the euclidean distances to its refined centres. A DEC fitted on images
        brings its encoder: pass ``encoder=None`` (or ``dec.encoder_``); for a DEC fitted on
        features (e.g. an image encoder's latents), ``encoder`` maps the images to those
        features and the DEC's encoder follows it in the graph.
      version: the version folder's number, >= 1.
      overwrite: replace an existing ``<path>/<version>``; otherwise that is an error.
      tsne: None (default), or a fitted :class:`tfclust.ParametricTSNE` of the latents: its
        network is added to the graph, and ``serving_default``/``serving_uint8`` also return
        ``map``, each image's position on the map (one forward pass).

    Returns:
      The version folder written.

    Raises:
      TypeError: ``encoder`` is not a Keras model (or None with a DEC fitted on images);
        ``tsne`` is not a ParametricTSNE (a
        ``TSNE`` has no forward pass: distil it into one).
      NotFittedError: ``kmeans`` or ``tsne`` is an estimator that was not fitted.
      ValueError: NaN/inf or non-2-D centres, centres or a map whose d is not the encoder's
        latent size, an encoder of the wrong shape, or a bad version.
      FileExistsError: ``<path>/<version>`` exists and ``overwrite`` is False.

    Examples:
      >>> import os, tempfile
      >>> import numpy as np
      >>> import tensorflow as tf
      >>> from tfclust.autoencoder import build_autoencoder
      >>> from tfclust.serving import export
      >>> _, encoder, _ = build_autoencoder(latent_dim=4, seed=0)
      >>> folder = export(os.path.join(tempfile.mkdtemp(), "model"), encoder, np.eye(4))
      >>> os.path.basename(folder)
      '1'
      >>> served = tf.saved_model.load(folder)
      >>> out = served.signatures["serving_uint8"](tf.zeros((2, 28, 28), tf.uint8))
      >>> sorted(out), tuple(out["distances"].shape)
      (['cluster', 'distances', 'latent'], (2, 4))
      >>> _, rgb_encoder, _ = build_autoencoder(latent_dim=4, image_shape=(17, 23, 3), seed=0)
      >>> folder = export(os.path.join(tempfile.mkdtemp(), "rgb"), rgb_encoder, np.eye(4))
      >>> served = tf.saved_model.load(folder)
      >>> served.signatures["serving_uint8"](tf.zeros((2, 17, 23, 3), tf.uint8))["cluster"].shape
      TensorShape([2])

      With a map (a ParametricTSNE distilled from a t-SNE of the latents):

      >>> from tfclust import ParametricTSNE
      >>> latents = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
      >>> tsne = ParametricTSNE(n_epochs=2, random_state=0).fit(latents, embedding=latents[:, :2])
      >>> folder = export(os.path.join(tempfile.mkdtemp(), "map"), encoder, np.eye(4), tsne=tsne)
      >>> signature = tf.saved_model.load(folder).signatures["serving_uint8"]
      >>> out = signature(tf.zeros((3, 28, 28), tf.uint8))
      >>> sorted(out), tuple(out["map"].shape)
      (['cluster', 'distances', 'latent', 'map'], (3, 2))
    """
    version = check_int(version, name="version", low=1)
    dec = _dec_of(kmeans)
    refine = None
    if dec is not None:
        encoder, refine = _dec_encoder(encoder, dec)
    height, width, channels, latent_dim = _check_encoder(encoder)
    if refine is not None:
        latent_dim = int(refine.output_shape[1])
    centers = _centers_of(kmeans)
    map_model = None if tsne is None else _map_model(tsne, latent_dim)
    if centers.shape[1] != latent_dim:
        raise ValueError(
            f"the centres have {centers.shape[1]} features but the encoder's latents "
            f"have {latent_dim}"
        )
    base = os.fspath(path)
    target = os.path.join(base, str(version))
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(
            f"{target} exists; replace it (overwrite=True, on the command line --overwrite) "
            "or choose another version"
        )

    assign = KMeansAssign(centers.shape[0], centers, name="kmeans_assign")
    assign.build((None, latent_dim))
    head = None
    if dec is not None:
        from tfclust.deep import ClusteringLayer

        head = ClusteringLayer(
            centers.shape[0],
            alpha=dec._clustering.alpha,
            weights=[dec.cluster_centers_],
            dtype=dec.encoder_.outputs[0].dtype,
            name="dec_clustering",
        )
        head.build((None, latent_dim))
    float_spec = tf.TensorSpec([None, height, width, channels], tf.float32, name="images")
    # Grey uint8 images come without a channel axis (as MNIST's files hold them); RGB with one.
    uint8_shape = [None, height, width] if channels == 1 else [None, height, width, channels]
    uint8_spec = tf.TensorSpec(uint8_shape, tf.uint8, name="images")

    def encode_images(images):
        # Pixels outside [0, 1] (uint8 values cast to float, say) would give a plausible but wrong
        # cluster; fail the request instead. NaN fails these comparisons too.
        checks = [
            tf.debugging.assert_greater_equal(images, 0.0, message="images must lie in [0, 1]"),
            tf.debugging.assert_less_equal(images, 1.0, message="images must lie in [0, 1]"),
        ]
        with tf.control_dependencies(checks):
            # The convolutions fail on an empty batch; answer it with empty outputs.
            return tf.cond(
                tf.shape(images)[0] > 0,
                lambda: native_latent(images),
                lambda: tf.zeros([0, latent_dim], latent_dtype),
            )

    latent_dtype = tf.float32 if dec is None else tf.as_dtype(dec.encoder_.outputs[0].dtype)

    def native_latent(images):
        """The latents in the model's dtype: a DEC's may be float64 (its features')."""
        latent = encoder(images, training=False)
        if refine is not None:
            latent = refine(tf.cast(latent, refine.inputs[0].dtype), training=False)
        return latent

    def assign_images(images):
        native = encode_images(images)
        latent = tf.cast(native, tf.float32)
        cluster, distances = assign(latent)
        out = {"latent": latent, "cluster": cluster, "distances": distances}
        if head is not None:
            q = head(native)
            out["cluster"] = tf.argmax(q, axis=1, output_type=tf.int64)
            out["cluster_probabilities"] = tf.cast(q, tf.float32)
        if map_model is not None:
            position = map_model(tf.cast(latent, map_model.dtype), training=False)
            out["map"] = tf.cast(position, tf.float32)
        return out

    # A signature's callers (TF Serving included) can feed any shape of the right dtype; without
    # tf.ensure_shape a wrong shape fails somewhere inside the encoder, or broadcasts.
    def serving_default(images):
        return assign_images(tf.ensure_shape(images, float_spec.shape))

    def serving_uint8(images):
        images = tf.cast(tf.ensure_shape(images, uint8_spec.shape), tf.float32) / 255.0
        return assign_images(images[..., tf.newaxis] if channels == 1 else images)

    def encode(images):
        latent = encode_images(tf.ensure_shape(images, float_spec.shape))
        return {"latent": tf.cast(latent, tf.float32)}

    archive = keras.export.ExportArchive()
    archive.track(encoder)
    archive.track(assign)
    for extra in (refine, head):
        if extra is not None:
            archive.track(extra)
    if map_model is not None:
        archive.track(map_model)
    archive.add_endpoint("serving_default", serving_default, input_signature=[float_spec])
    archive.add_endpoint("serving_uint8", serving_uint8, input_signature=[uint8_spec])
    archive.add_endpoint("encode", encode, input_signature=[float_spec])

    os.makedirs(base, exist_ok=True)
    # TF Serving loads any numeric subfolder it sees: the version is written under a hidden
    # temporary name (created with the umask's mode, like any model folder) and renamed.
    remove(os.path.join(base, f".{version}{PARTIAL_MARK}*"))  # left by a killed export
    with atomic_path(target) as tmp:
        archive.write_out(tmp, verbose=False)
        if os.path.exists(target):
            shutil.rmtree(target)
    return target


def export_from_files(
    model_path: str | os.PathLike,
    centers_path: str | os.PathLike,
    out: str | os.PathLike,
    version: int = 1,
    overwrite: bool = False,
    *,
    map_path: str | os.PathLike | None = None,
) -> str:
    """:func:`export` from a saved autoencoder (``.keras``) and a centres ``.npy`` (and a
    saved map).

    Args:
      model_path: an autoencoder saved by ``tfclust.save_autoencoder``.
      centers_path: float (k, d) centres saved by :func:`save_centers`.
      map_path: None (default), or a ParametricTSNE saved by ``tfclust.persistence`` (``.npz``,
        e.g. a run's ``parametric_tsne.npz``), for the ``map`` output.
      out: the SavedModel's base folder; the model goes to ``<out>/<version>/``.
      version, overwrite: as for :func:`export`.

    Returns:
      The version folder written.

    Examples:
      >>> import os, tempfile
      >>> import numpy as np
      >>> from tfclust.autoencoder import build_autoencoder, save_autoencoder
      >>> from tfclust.serving import export_from_files, save_centers
      >>> folder = tempfile.mkdtemp()
      >>> autoencoder, _, _ = build_autoencoder(latent_dim=4, seed=0)
      >>> model = save_autoencoder(autoencoder, os.path.join(folder, "autoencoder.keras"))
      >>> centers = save_centers(np.eye(4), os.path.join(folder, "centers.npy"))
      >>> out = export_from_files(model, centers, os.path.join(folder, "serving"), version=2)
      >>> os.path.relpath(out, folder)
      'serving/2'
    """
    centers = load_centers(centers_path)
    _, encoder, _ = load_autoencoder(model_path)
    tsne = None
    if map_path is not None:
        from tfclust.persistence import load_estimator

        tsne = load_estimator(map_path)
    return export(out, encoder, centers, version=version, overwrite=overwrite, tsne=tsne)
