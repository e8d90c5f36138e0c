"""Shared helpers for the benchmark scripts: real latents, timing, and the result table/JSON.

Benchmarks run side by side with their peer in one process and report ratios, since these
machines are shared and noisy. Each script prints a table and writes
``benchmarks/results/<name>.json`` with the machine it ran on.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE_DIR = os.path.join(HERE, ".cache")
RESULTS_DIR = os.path.join(HERE, "results")


FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""Fashion-MNIST's class names, by label."""


def latents(n: int = 60000, dataset: str = "fashion_mnist", epochs: int = 20, seed: int = 0):
    """Autoencoder latents of the first ``n`` training images of ``dataset``.

    The first call trains tfclust's autoencoder (the tutorial's model and settings: Adam, MSE,
    ``epochs`` epochs, batch 256) on the full training split and caches the model and latents
    under ``benchmarks/.cache``; later calls load them.

    Returns:
      (float32 (n, 64) latents, int64 (n,) labels).
    """
    import tfclust

    os.makedirs(CACHE_DIR, exist_ok=True)
    stem = os.path.join(CACHE_DIR, f"{dataset}_e{epochs}_s{seed}")
    if not os.path.exists(stem + "_latents.npy"):
        images, labels = tfclust.load_dataset(dataset, "train")
        autoencoder, encoder, _ = tfclust.build_autoencoder(seed=seed)
        ds = tfclust.data.autoencoder_pipeline(images, batch_size=256, seed=seed)
        print(
            f"[common] training the autoencoder on {dataset} ({epochs} epochs) for latents...",
            file=sys.stderr,
        )
        tfclust.train_autoencoder(autoencoder, ds, epochs=epochs, verbose=2)
        tfclust.save_autoencoder(autoencoder, stem + "_model.keras")
        np.save(stem + "_latents.npy", tfclust.encode(encoder, images))
        np.save(stem + "_labels.npy", labels)
    z = np.load(stem + "_latents.npy")
    y = np.load(stem + "_labels.npy")
    if n > len(z):
        raise ValueError(f"{dataset} has {len(z)} training images, asked for {n}")
    return z[:n], y[:n]


def inertia(x: np.ndarray, centers: np.ndarray) -> float:
    """Sum of squared distances to the closest centre, float64, in chunks."""
    x64, c64 = x.astype(np.float64), centers.astype(np.float64)
    c_sq = (c64**2).sum(axis=1)
    total = 0.0
    for start in range(0, len(x64), 8192):
        xs = x64[start : start + 8192]
        d2 = (xs**2).sum(axis=1)[:, None] - 2 * xs @ c64.T + c_sq[None]
        total += np.maximum(d2.min(axis=1), 0).sum()
    return total


def median_time(fn, repeat: int = 3):
    """Run ``fn()`` ``repeat`` times; return (median wall seconds, the last result)."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def machine() -> dict:
    """What the numbers were measured on."""
    import tensorflow as tf

    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def report(name: str, rows: list[dict], notes: dict | None = None) -> str:
    """Print ``rows`` as an aligned table and write them to ``results/<name>.json``.

    Returns the table as text (Markdown), for issue notes.
    """
    columns = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[_fmt(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]

    def line(values):
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    lines = [line(columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [line(r) for r in cells]
    table = "\n".join(lines)
    print(table)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    with open(path, "w") as f:
        json.dump(
            {"benchmark": name, "machine": machine(), "notes": notes or {}, "rows": rows},
            f,
            indent=2,
            default=float,
        )
    print(f"\nwrote {path}")
    return table
