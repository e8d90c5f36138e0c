"""Matmuls as exact as float32 on hardware that multiplies float32 in reduced precision.

On NVIDIA Ampere and newer GPUs TensorFlow runs float32 matmuls and einsums in TF32 (each
operand rounded to 11 significant bits, ~5e-4 relative) unless
``tf.config.experimental.enable_tensor_float_32_execution(False)``; TPUs multiply float32 in
bfloat16 (8 significant bits). tfclust decides labels and neighbours from matmuls, so every one
of its matmuls goes through :func:`matmul` or :func:`einsum`. Where the operands are rounded,
each float32 operand is split into pieces the hardware holds exactly (``a = a0 + a1 + ...``),
and the product is the sum of the pieces' products above ``2 ** -21`` of ``|a| |b|`` (4
matmuls under TF32, 6 under bfloat16), as JAX's ``Precision.HIGH`` does for bfloat16. Elsewhere
(a CPU, float64, TF32 turned off) they are ``tf.matmul`` and ``tf.einsum``.
docs/accelerators.md has the error analysis.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import tensorflow as tf

from tfclust._device import detected_kind

FLOAT32_BITS = 24
"""Significant bits of a float32 (23 stored mantissa bits and the implicit one)."""

_REDUCED_BITS = {"gpu": 11, "tpu": 8}  # TF32 on Ampere and newer; bfloat16 on a TPU
_TARGET_BITS = 21  # the split's terms are dropped below 2 ** -21 of |a| |b|


def float32_input_bits() -> int:
    """Significant bits a float32 matmul keeps of each operand in this process: 11 on an
    Ampere or newer GPU and 8 on a TPU while TensorFlow's TF32 execution is on (its default),
    24 otherwise. Read when a program is traced."""
    if not tf.config.experimental.tensor_float_32_execution_enabled():
        return FLOAT32_BITS
    return _hardware_float32_bits()


@functools.cache
def _hardware_float32_bits() -> int:
    kind = detected_kind()
    if kind == "gpu":
        details = [
            tf.config.experimental.get_device_details(gpu)
            for gpu in tf.config.list_physical_devices("GPU")
        ]
        if not any(d.get("compute_capability", (0, 0)) >= (8, 0) for d in details):
            return FLOAT32_BITS  # before Ampere, no TF32
    return _REDUCED_BITS.get(kind, FLOAT32_BITS)


def n_pieces(bits: int) -> int:
    """Pieces each float32 operand is split into when the hardware keeps ``bits`` significant
    bits of it: 1 at 24 bits, 2 under TF32, 3 under bfloat16. Piece ``i`` is below
    ``2 ** (-(bits - 1) * i)`` of the operand, and the last one is rounded by the hardware."""
    if bits >= FLOAT32_BITS:
        return 1
    return 1 + math.ceil((_TARGET_BITS - bits) / (bits - 1))


def _kept_terms(bits: int, pieces: int) -> list[tuple[int, int]]:
    """The pieces' products (i, j) above ``2 ** -_TARGET_BITS`` of ``|a| |b|``, smallest first:
    4 of them under TF32, 6 under bfloat16."""
    terms = [
        (i, j) for i in range(pieces) for j in range(pieces) if (bits - 1) * (i + j) < _TARGET_BITS
    ]
    return sorted(terms, key=lambda t: -(t[0] + t[1]))


def relative_error(dtype) -> float:
    """Relative rounding unit of one product term of :func:`matmul` for ``dtype`` operands in
    this process: the dtype's machine epsilon, or the split's residual where that is larger
    (2 ** -20 under TF32 or bfloat16). Error bounds such as K-means' pruning slack scale with it."""
    dtype = tf.as_dtype(dtype)
    eps = float(np.finfo(dtype.as_numpy_dtype).eps)
    if dtype != tf.float32:
        return eps
    bits = float32_input_bits()
    return eps if bits >= FLOAT32_BITS else max(eps, 2.0 ** (1 - _TARGET_BITS))


def _truncated(x, bits: int):
    """``x`` (float32) with all but its first ``bits`` significant bits cleared: exact in the
    hardware's format, and ``x - _truncated(x)`` is exact in float32."""
    mask = tf.constant(-(1 << (FLOAT32_BITS - bits)), tf.int32)
    return tf.bitcast(tf.bitwise.bitwise_and(tf.bitcast(x, tf.int32), mask), tf.float32)


def _split(x, bits: int, pieces: int):
    """``[x0, x1, ...]``, ``pieces`` float32 tensors summing to ``x`` (up to the last piece's
    rounding), each exactly representable with ``bits`` significant bits but the last."""
    out = []
    for _ in range(pieces - 1):
        head = _truncated(x, bits)
        out.append(head)
        x = x - head
    return out + [x]


def _split_products(product, a, b):
    """``product(a, b)`` as the sum of :func:`_kept_terms` of the split pieces;
    ``product(a, b)`` itself when the hardware keeps every float32 bit."""
    if a.dtype != tf.float32:
        return product(a, b)
    bits = float32_input_bits()
    pieces = n_pieces(bits)
    if pieces == 1:
        return product(a, b)
    a_parts, b_parts = _split(a, bits, pieces), _split(b, bits, pieces)
    total = None
    for i, j in _kept_terms(bits, pieces):
        term = product(a_parts[i], b_parts[j])
        total = term if total is None else total + term
    return total


def matmul(a, b, transpose_a: bool = False, transpose_b: bool = False):
    """``tf.matmul(a, b)`` to float32 accuracy on TF32 and bfloat16 hardware (see the module
    docstring). Same arguments, shapes and dtype as ``tf.matmul``'s."""
    a, b = tf.convert_to_tensor(a), tf.convert_to_tensor(b)
    return _split_products(
        lambda p, q: tf.linalg.matmul(p, q, transpose_a=transpose_a, transpose_b=transpose_b),
        a,
        b,
    )


def einsum(equation: str, a, b):
    """``tf.einsum(equation, a, b)`` for two operands, to float32 accuracy on TF32 and bfloat16
    hardware (see the module docstring)."""
    a, b = tf.convert_to_tensor(a), tf.convert_to_tensor(b)
    return _split_products(lambda p, q: tf.einsum(equation, p, q), a, b)
