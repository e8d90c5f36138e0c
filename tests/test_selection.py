"""``_selection.smallest_k`` gives exactly ``tf.math.top_k``'s columns, and the k-NN search's
compiled program selects without a ``top_k`` over whole rows where the blocks apply."""

import importlib.util
import math
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from tfclust import _neighbors
from tfclust._compile import specialised
from tfclust._selection import MIN_BLOCK_WIDTH, block_width, smallest_k
from tfclust._tiling import padded_size

_spec = importlib.util.spec_from_file_location(
    "_tfclust_bench_hlo", pathlib.Path(__file__).parents[1] / "benchmarks" / "hlo.py"
)
hlo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hlo)


def _top_k(keys, k):
    return tf.math.top_k(-keys, k=k).indices.numpy()


@pytest.mark.parametrize(
    "rows, n, k, levels",
    [
        (7, 4096, 8, None),  # continuous keys
        (7, 4096, 8, 40),  # many ties, inside and across blocks
        (5, 5000, 3, 6),  # n not a multiple of the width: padded blocks
        (3, 70000, 91, 200),  # a k-NN row at 60,000-point size
        (4, 300, 7, 5),  # below the blocks: one top_k
    ],
)
def test_smallest_k_is_top_k(rows, n, k, levels):
    rng = np.random.default_rng(n + k)
    keys = rng.random((rows, n)).astype(np.float32)
    if levels is not None:
        keys = np.floor(keys * levels).astype(np.float32)
    keys[:, rng.choice(n, n // 10, replace=False)] = np.inf
    keys = tf.constant(keys)
    got = tf.function(lambda x: smallest_k(x, k), jit_compile=True)(keys).numpy()
    np.testing.assert_array_equal(got, _top_k(keys, k))


def test_smallest_k_sorted_and_adversarial_orders():
    # Keys ascending along the row (the k smallest all in the first blocks), descending (all in
    # the last, padded block), and every block holding one key of the k smallest.
    n, k = 4099, 5
    ascending = np.arange(n, dtype=np.float32)
    width = block_width(n, k)
    spread = np.full(n, 1000.0, np.float32)
    spread[::width] = np.arange(len(spread[::width]), dtype=np.float32)
    keys = tf.constant(np.stack([ascending, ascending[::-1], spread, np.zeros(n, np.float32)]))
    got = smallest_k(keys, k).numpy()
    np.testing.assert_array_equal(got, _top_k(keys, k))
    assert got[3].tolist() == list(range(k))  # all equal: the lowest columns


def test_only_k_finite_keys_come_first():
    n, k = 8192, 6
    keys = np.full((2, n), np.inf, np.float32)
    finite = [[8191, 17, 4000, 1, 5555, 64], [0, 1, 2, 3, 4, 5]]
    for row, columns in enumerate(finite):
        keys[row, columns] = np.arange(k, 0, -1)
    got = smallest_k(tf.constant(keys), k).numpy()
    assert [r[::-1] for r in got.tolist()] == finite


def test_block_width():
    assert block_width(65536, 91) == 26
    assert block_width(20000, 91) == 1  # width 14 < MIN_BLOCK_WIDTH: one top_k
    assert block_width(MIN_BLOCK_WIDTH**2 * 10, 10) == MIN_BLOCK_WIDTH
    assert block_width(MIN_BLOCK_WIDTH**2 * 10 - 1, 10) == 1


def _top_k_widths(n, k):
    """The row lengths of the TopK custom calls and sorts in the exact k-NN program for n
    points of 8 features, k neighbours."""
    x = tf.constant(np.random.default_rng(0).normal(size=(n, 8)), tf.float32)
    tile = 64
    program = specialised(_neighbors._knn, n, 8, tf.float32, k, tile, "euclidean")
    text = program.experimental_get_compiler_ir(x, tf.constant(n), k, tile, "euclidean")(
        stage="optimized_hlo"
    )
    computations = hlo.parse(text)
    by_name = {i.name: i for c in computations.values() for i in c.instructions}
    widths = []
    for computation in computations.values():
        for instruction in computation.instructions:
            if 'custom_call_target="TopK"' in instruction.text or instruction.opcode == "sort":
                operand = by_name[hlo.operands(instruction)[0]]
                widths.append(hlo.dims(operand.shape.strip("("))[-1])
    return widths


def test_knn_program_selects_without_whole_rows():
    n = 8192
    blocked = _top_k_widths(n, 8)  # width 32: the block minima, their order, the candidates
    assert sorted(blocked) == [8, 256, 256], blocked
    # The control: where the blocks do not apply, the program holds a top_k over whole rows.
    assert n in _top_k_widths(n, 40), "the check finds a whole-row top_k"  # width 14


def test_nearest_neighbors_matches_a_sort_with_duplicates():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 4, size=(4200, 3)).astype(np.float32)  # many exact duplicates
    k = 5
    assert block_width(padded_size(4200), k) > 1  # the blocks apply
    idx, d2 = _neighbors.nearest_neighbors(tf.constant(x), k)
    full = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(full, math.inf)
    expected = np.argsort(full, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(idx.numpy(), expected)
    np.testing.assert_array_equal(d2.numpy(), np.take_along_axis(full, expected, axis=1))
