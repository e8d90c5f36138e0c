"""tfclust._precision: matmuls as exact as float32 where the hardware rounds operands (TF32 on
a GPU, bfloat16 on a TPU), checked by emulating that rounding (tests/tf32_emulation.py)."""

import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf32_emulation

from tfclust import _precision

TESTS = pathlib.Path(__file__).parent
PACKAGE = TESTS.parent / "tfclust"

# float32 oracles of labels and neighbours, and the float32 tests of the other oracle suites.
ORACLE_FILES = [
    "test_float32_oracles.py",
    "test_tsne_affinities.py",
    "test_tsne_gradients.py",
    "test_metrics.py",
    "test_gaussian_mixture.py",
    "test_kmeans.py",
    "test_kmeans_sklearn_api.py",
    "test_minibatch_kmeans.py",
]


@pytest.fixture
def reduced_precision(monkeypatch, request):
    """Matmuls that round float32 operands to ``request.param`` significant bits."""
    bits = request.param
    matmul, einsum = tf.linalg.matmul, tf.einsum
    monkeypatch.setattr(
        tf.linalg,
        "matmul",
        lambda a, b, **kw: matmul(
            tf32_emulation.rounded(a, bits), tf32_emulation.rounded(b, bits), **kw
        ),
    )
    monkeypatch.setattr(
        tf,
        "einsum",
        lambda eq, a, b: einsum(
            eq, tf32_emulation.rounded(a, bits), tf32_emulation.rounded(b, bits)
        ),
    )
    return bits


def _relative_errors(product, a, b):
    exact = a.astype(np.float64) @ b.astype(np.float64)
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    return np.max(np.abs(np.asarray(product, np.float64) - exact) / scale)


@pytest.mark.parametrize("reduced_precision", [11, 8], indirect=True, ids=["tf32", "bfloat16"])
def test_split_products_are_float32_exact(monkeypatch, reduced_precision):
    rng = np.random.default_rng(0)
    a = (rng.normal(size=(96, 64)) + 3.0).astype(np.float32)
    b = rng.normal(size=(64, 80)).astype(np.float32)
    float32_error = _relative_errors(a @ b, a, b)
    rounded_error = _relative_errors(tf.linalg.matmul(a, b), a, b)
    assert rounded_error > 100 * float32_error  # the emulation does round

    # tfclust told the truth splits its operands; told nothing, it computes the rounded product.
    monkeypatch.setattr(_precision, "float32_input_bits", lambda: reduced_precision)
    for product in (
        _precision.matmul(a, b),
        _precision.matmul(a, b.T, transpose_b=True),
        _precision.matmul(a.T, b, transpose_a=True),
        _precision.einsum("ij,jk->ik", a, b),
    ):
        assert _relative_errors(product, a, b) < 4 * float32_error
    assert _precision.relative_error(tf.float32) == 2.0**-20
    monkeypatch.setattr(_precision, "float32_input_bits", lambda: _precision.FLOAT32_BITS)
    assert _relative_errors(_precision.matmul(a, b), a, b) == pytest.approx(rounded_error)


def test_pieces_and_terms():
    assert _precision.n_pieces(24) == 1
    assert _precision.n_pieces(11) == 2 and len(_precision._kept_terms(11, 2)) == 4
    assert _precision.n_pieces(8) == 3 and len(_precision._kept_terms(8, 3)) == 6


def test_this_cpu_keeps_float32_and_float64_untouched():
    assert _precision.float32_input_bits() == _precision.FLOAT32_BITS
    assert _precision.relative_error(tf.float32) == np.finfo(np.float32).eps
    assert _precision.relative_error(tf.float64) == np.finfo(np.float64).eps
    a = np.random.default_rng(1).normal(size=(5, 3))
    np.testing.assert_array_equal(_precision.matmul(a, a.T), tf.matmul(a, a.T))


def test_tf32_turned_off_keeps_every_bit(monkeypatch):
    monkeypatch.setattr(_precision, "_hardware_float32_bits", lambda: 11)
    assert _precision.float32_input_bits() == 11
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        assert _precision.float32_input_bits() == _precision.FLOAT32_BITS
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(True)


def test_every_matmul_in_tfclust_goes_through_precision():
    direct = re.compile(r"\btf\.(linalg\.)?matmul\(|\btf\.einsum\(|\btf\.tensordot\(")
    offenders = [
        f"{path.relative_to(PACKAGE)}:{i}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "_precision.py"
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if direct.search(line)
    ]
    assert offenders == []


def _emulated_pytest(args, split: bool):
    env = dict(os.environ, PYTHONPATH=str(TESTS), TF32_EMULATION_SPLIT="1" if split else "0")
    command = [sys.executable, "-m", "pytest", "-p", "tf32_emulation", "-n", "0", "-q"]
    command += ["-p", "no:cacheprovider", *args]
    return subprocess.run(command, cwd=TESTS.parent, env=env, capture_output=True, text=True)


def test_float32_oracles_pass_with_tf32_rounding():
    files = [str(TESTS / f) for f in ORACLE_FILES]
    run = _emulated_pytest([*files, "-k", "float32"], split=True)
    assert run.returncode == 0, run.stdout[-3000:]
    assert re.search(r"\d+ passed", run.stdout)
    # The control: the same rounding without the split decides some labels and neighbours wrong.
    control = _emulated_pytest(
        [str(TESTS / "test_float32_oracles.py"), "-k", "reference"], split=False
    )
    assert control.returncode == 1 and "failed" in control.stdout, control.stdout[-3000:]


@pytest.mark.slow
def test_oracle_suites_pass_with_tf32_rounding():
    run = _emulated_pytest([str(TESTS / f) for f in ORACLE_FILES], split=True)
    assert run.returncode == 0, run.stdout[-3000:]
