"""K-means clustering as XLA kernels: the ``KMeans`` and ``MiniBatchKMeans`` estimators.

Modules: ``_steps`` (one Lloyd step's pieces), ``_init`` (k-means++ and random seeding),
``_lloyd`` (in-memory fit and assignment programs), ``_bounded`` (Lloyd iterations pruned by
triangle-inequality bounds, the default), ``_streaming`` (exact Lloyd by passes over
a ``tf.data.Dataset``, optionally across ``tf.distribute`` replicas), ``_estimator`` (the API),
``_minibatch`` and ``_minibatch_estimator`` (mini-batch K-means: kernels and API).
"""

from ._estimator import KMeans
from ._minibatch_estimator import MiniBatchKMeans

__all__ = ["KMeans", "MiniBatchKMeans"]
