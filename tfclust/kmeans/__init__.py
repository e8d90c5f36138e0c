"""K-means clustering as XLA kernels: the ``KMeans`` and ``MiniBatchKMeans`` estimators, and
``choose_n_clusters`` to pick k.

Modules: ``_steps`` (one Lloyd step's pieces), ``_init`` (k-means++ and random seeding),
``_lloyd`` (in-memory fit and assignment programs), ``_bounded`` (Lloyd iterations pruned by
triangle-inequality bounds, the default), ``_streaming`` (exact Lloyd by passes over
a ``tf.data.Dataset``, optionally across ``tf.distribute`` replicas), ``_estimator`` (the API),
``_minibatch`` and ``_minibatch_estimator`` (mini-batch K-means: kernels and API),
``_choose_k`` (K-means per k, chosen by silhouette score).
"""

from ._choose_k import KChoice, choose_n_clusters
from ._estimator import KMeans
from ._minibatch_estimator import MiniBatchKMeans

__all__ = ["KChoice", "KMeans", "MiniBatchKMeans", "choose_n_clusters"]
