"""Gaussian mixture models as XLA kernels: the ``GaussianMixture`` estimator.

Modules: ``_kernels`` (log-densities, E- and M-steps and the compiled EM loop, in
scikit-learn's formulas) and ``_estimator`` (the API).
"""

from tfclust.mixture._estimator import GaussianMixture

__all__ = ["GaussianMixture"]
