"""tfclust: unsupervised clustering and visualisation of images in pure TensorFlow.

The public names below are imported on first use, so ``import tfclust`` (and ``tfclust
--help``) is quick and lets a caller configure TensorFlow's logging before TensorFlow loads.
Importing it makes XLA's CPU programs repeatable bit for bit (docs/reproducibility.md) and
turns on the persistent compilation cache (docs/compilation_cache.md).
"""

import importlib

from tfclust import _compile_cache, _repeatable

__version__ = "0.1.0"

# Before XLA's first compilation, when it reads XLA_FLAGS; first, as the cache is keyed by them.
_repeatable.configure()
# Before TensorFlow sets up its devices, which is when it reads the cache's flag.
_compile_cache.configure()

_EXPORTS = {
    "NotFittedError": "tfclust._validation",
    "ConvergenceWarning": "tfclust._validation",
    "build_autoencoder": "tfclust.autoencoder",
    "train_autoencoder": "tfclust.autoencoder",
    "encode": "tfclust.autoencoder",
    "save_autoencoder": "tfclust.autoencoder",
    "load_autoencoder": "tfclust.autoencoder",
    "load_dataset": "tfclust.data",
    "load_images": "tfclust.data",
    "run": "tfclust.pipeline",
    "KMeans": "tfclust.kmeans",
    "MiniBatchKMeans": "tfclust.kmeans",
    "TSNE": "tfclust.tsne",
    "ParametricTSNE": "tfclust.tsne",
    "GaussianMixture": "tfclust.mixture",
    "ManifoldClustering": "tfclust.manifold_clustering",
    "DEC": "tfclust.deep",
    "ClusteringLayer": "tfclust.deep",
    "target_distribution": "tfclust.deep",
    "cluster_accuracy": "tfclust.metrics",
    "normalized_mutual_info": "tfclust.metrics",
    "adjusted_rand_index": "tfclust.metrics",
    "trustworthiness": "tfclust.metrics",
    "knn_accuracy": "tfclust.metrics",
    "silhouette_score": "tfclust.metrics",
    "calinski_harabasz_score": "tfclust.metrics",
    "davies_bouldin_score": "tfclust.metrics",
    "load_estimator": "tfclust.persistence",
}
_SUBMODULES = (
    "autoencoder",
    "data",
    "deep",
    "kmeans",
    "manifold_clustering",
    "metrics",
    "mixture",
    "persistence",
    "pipeline",
    "plots",
    "projector",
    "serving",
    "tsne",
)

__all__ = ["__version__", *_EXPORTS, *_SUBMODULES]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"tfclust.{name}")
    else:
        raise AttributeError(f"module 'tfclust' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
