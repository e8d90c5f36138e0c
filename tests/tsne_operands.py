"""Operands of the FFT t-SNE objective with the shapes of a real problem, for HLO tests."""

import tensorflow as tf

from tfclust.tsne import gradients


def zero_fft_operands(n: int, k: int):
    """``(p, charge)`` for N points and k neighbours: an all-zero :class:`gradients.EdgeP` whose
    one-way edge list holds half of the N k edges (perplexity 30's ~43%, rounded up to eighths),
    all of them padding, and unit charges."""
    capacity = n * k // 2
    p = gradients.EdgeP(
        neighbors=tf.zeros((n, k), tf.int32),
        weights=tf.zeros((n, k)),
        entropy=tf.zeros(()),
        one_way=tf.zeros((capacity,), tf.int32),
        one_way_targets=tf.fill((capacity,), n),
    )
    return p, tf.ones((n,))
