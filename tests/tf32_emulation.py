"""pytest plugin: run tests as if float32 matmuls were TF32 (``-p tf32_emulation``).

Every float32 operand of ``tf.matmul``/``tf.linalg.matmul``/``tf.einsum`` is rounded to 11
significant bits (round to nearest, as NVIDIA's TF32 conversion), and tfclust is told that its
float32 matmuls keep 11 bits (so ``tfclust._precision`` splits its operands). With
``TF32_EMULATION_SPLIT=0`` the rounding stays but tfclust is not told (the control: what the
kernels would compute on an Ampere GPU without the split).
"""

import os

import tensorflow as tf

from tfclust import _precision

BITS = 11


def rounded(x, bits: int = BITS):
    """float32 ``x`` rounded to ``bits`` significant bits (nearest, ties away from zero)."""
    x = tf.convert_to_tensor(x)
    if x.dtype != tf.float32:
        return x
    shift = _precision.FLOAT32_BITS - bits
    as_int = tf.bitcast(x, tf.int32) + (1 << (shift - 1))
    return tf.bitcast(tf.bitwise.bitwise_and(as_int, -(1 << shift)), tf.float32)


_matmul, _einsum = tf.linalg.matmul, tf.einsum


def tf32_matmul(a, b, *args, **kwargs):
    return _matmul(rounded(a), rounded(b), *args, **kwargs)


def tf32_einsum(equation, *operands, **kwargs):
    return _einsum(equation, *(rounded(o) for o in operands), **kwargs)


def pytest_configure(config):
    tf.linalg.matmul = tf.matmul = tf32_matmul
    tf.einsum = tf32_einsum
    if os.environ.get("TF32_EMULATION_SPLIT", "1") != "0":
        _precision.float32_input_bits = lambda: BITS
