"""Deep embedded clustering: the :class:`DEC` estimator (DEC and IDEC) and its clustering
head, :class:`ClusteringLayer`, with :func:`target_distribution`."""

from tfclust.deep._estimator import DEC
from tfclust.deep._layer import (
    ClusteringLayer,
    kl_divergence,
    soft_assignment,
    target_distribution,
)

__all__ = ["DEC", "ClusteringLayer", "kl_divergence", "soft_assignment", "target_distribution"]
