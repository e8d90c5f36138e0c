"""t-SNE in TensorFlow: affinities, gradients and descent as XLA kernels, and the estimator.

Modules: :mod:`~tfclust.tsne.affinities` (perplexity calibration, dense and k-NN P),
:mod:`~tfclust.tsne.gradients` (KL divergence, attractive/repulsive forces, objectives),
:mod:`~tfclust.tsne.optimize` (initial embeddings, the chunked descent loop),
:mod:`~tfclust.tsne.fft` (FFT-interpolated repulsion), :mod:`~tfclust.tsne.distances` (the
``metric`` parameter: precomputed sparse graphs, scipy-computed metrics).
"""

from tfclust.tsne.estimator import TSNE
from tfclust.tsne.parametric import ParametricTSNE

__all__ = ["TSNE", "ParametricTSNE"]
