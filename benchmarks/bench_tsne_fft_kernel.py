"""Time per call of the FFT-interpolated t-SNE repulsion, against openTSNE's and the exact sums.

Embeddings: 2-D mixtures of ten Gaussian clusters whose extent grows like sqrt(N), as a t-SNE
embedding's does (side ~50 units at N=10,000, ~125 at N=60,000). For every N, tfclust's
:func:`tfclust.tsne.fft.fft_repulsion` runs under four settings,

* ``five_nodes``: 5 nodes per 1-unit interval (node spacing 0.2), the accurate setting;
* ``stencil5``: 3 nodes per interval, 5-node interpolation stencils;
* ``openTSNE``: 3 nodes per interval, 3-node stencils (openTSNE's settings);
* ``tsne_auto``: the defaults (``TSNE``'s), 2 nodes per 0.8-unit interval, 4-node stencils,

alternating with openTSNE's own ``estimate_negative_gradient_fft_2d`` (its defaults: 3 nodes,
``min_num_intervals=50``; if openTSNE is installed), so that load from other processes hits all
alike. Reported per row: cold seconds (first call: tracing and XLA compilation of every grid
size of the ladder), the median warm milliseconds per call, openTSNE's median, and the force
error ``||R - R_exact||_F / ||R_exact||_F`` and relative Z error against the exact float64 sums
(computed once per N with the XLA exact kernel). Small-N rows (``--exact-sizes``) time the exact
O(N^2) repulsion in float32 (XLA, row tiles) instead.

    python benchmarks/bench_tsne_fft_kernel.py [--sizes 10000 20000 40000 60000]
        [--exact-sizes 2000 5000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from common import report  # noqa: E402

from tfclust._tiling import map_row_tiles, rows_per_tile, squared_distances  # noqa: E402
from tfclust.tsne.fft import fft_repulsion  # noqa: E402

try:
    from openTSNE import _tsne as opentsne_kernels
except ImportError:  # pragma: no cover - optional peer
    opentsne_kernels = None

# openTSNE's intervals: side 1, 50 to 200 per axis.
UNIT_INTERVALS = dict(min_num_intervals=50, ints_in_interval=1.0, max_num_intervals=200)
SETTINGS = {
    "five_nodes": dict(UNIT_INTERVALS, n_interpolation_points=5),
    "stencil5": dict(UNIT_INTERVALS, n_interpolation_points=3, stencil_size=5),
    "openTSNE": dict(UNIT_INTERVALS, n_interpolation_points=3),
    "tsne_auto": {},  # fft_repulsion's defaults, TSNE's in 2-D: nodes 0.4 units apart
}


def embedding(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spread = 42.0 * np.sqrt(n / 10000)
    centres = rng.uniform(-spread / 2, spread / 2, size=(10, 2))
    return centres[rng.integers(0, 10, n)] + rng.normal(scale=spread / 20, size=(n, 2))


def exact_kernel(n: int, itemsize: int = 4):
    """XLA-compiled exact repulsion and Z of an (n, 2) embedding, in row tiles."""
    tile = rows_per_tile(n, 4 * n * itemsize, 64 * 2**20)

    @tf.function(jit_compile=True)
    def exact(y):
        def block(rows):
            w = 1.0 / (1.0 + squared_distances(rows, y))
            w2 = tf.square(w)
            rep = rows * tf.reduce_sum(w2, axis=1, keepdims=True) - tf.matmul(w2, y)
            return rep, tf.reduce_sum(w, axis=1) - 1.0

        spec = (tf.TensorSpec([tile, 2], y.dtype), tf.TensorSpec([tile], y.dtype))
        rep, z_rows = map_row_tiles(block, y, tile, spec)
        return rep, tf.reduce_sum(z_rows)

    return exact


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def fft_rows(n: int, repeat: int) -> list[dict]:
    y64 = embedding(n)
    y = tf.constant(y64, tf.float32)
    want_rep, want_z = (t.numpy() for t in exact_kernel(n, 8)(tf.constant(y64)))

    def call(kw):
        rep, z = fft_repulsion(y, **kw)
        return rep.numpy(), float(z)

    def peer():
        gradient = np.zeros_like(y64)
        z = opentsne_kernels.estimate_negative_gradient_fft_2d(y64, gradient, 3, 50, 1.0, 1.0)
        return -gradient * z, z  # openTSNE returns -R / Z

    rows = []
    peer_times = []
    cold = {}
    results = {}
    for name, kw in SETTINGS.items():
        cold[name], results[name] = timed(lambda kw=kw: call(kw))
    warm = {name: [] for name in SETTINGS}
    for _ in range(repeat):
        for name, kw in SETTINGS.items():
            warm[name].append(timed(lambda kw=kw: call(kw))[0])
        if opentsne_kernels is not None:
            peer_times.append(timed(peer)[0])
    peer_ms = 1e3 * statistics.median(peer_times) if peer_times else float("nan")
    entries = list(results.items())
    if opentsne_kernels is not None:
        entries.append(("openTSNE itself", peer()))
    for name, (rep, z) in entries:
        row = {
            "n": n,
            "extent": float(np.ptp(y64)),
            "method": name,
            "cold_s": cold.get(name, float("nan")),
            "ms_per_call": 1e3 * statistics.median(warm[name]) if name in warm else peer_ms,
            "openTSNE_ms": peer_ms,
            "force_err": float(np.linalg.norm(rep - want_rep) / np.linalg.norm(want_rep)),
            "z_err": abs(z / want_z - 1.0),
        }
        rows.append(row)
    return rows


def exact_row(n: int, repeat: int) -> dict:
    y = tf.constant(embedding(n), tf.float32)
    kernel = exact_kernel(n)
    cold, _ = timed(lambda: [t.numpy() for t in kernel(y)])
    warm = [timed(lambda: [t.numpy() for t in kernel(y)])[0] for _ in range(repeat)]
    return {
        "n": n,
        "extent": float(np.ptp(y.numpy())),
        "method": "exact O(N^2)",
        "cold_s": cold,
        "ms_per_call": 1e3 * statistics.median(warm),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10000, 20000, 40000, 60000])
    parser.add_argument("--exact-sizes", type=int, nargs="*", default=[2000, 5000])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    rows = [exact_row(n, args.repeat) for n in args.exact_sizes]
    for n in args.sizes:
        rows.extend(fft_rows(n, args.repeat))
    report(
        "tsne_fft_kernel",
        rows,
        notes={
            "settings": {k: v or "defaults" for k, v in SETTINGS.items()},
            "errors": "vs exact float64 sums; force: Frobenius norm ratio; z: relative",
            "openTSNE": "estimate_negative_gradient_fft_2d(..., 3, 50, 1.0, dof=1), float64",
        },
    )


if __name__ == "__main__":
    main()
