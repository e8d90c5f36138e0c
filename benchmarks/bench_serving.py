"""Images per second through the exported SavedModel, at batch 1 and 256, on this CPU.

Exports the encoder and K-means centres with ``tfclust.serving.export``, loads the SavedModel
with ``tf.saved_model.load`` and times its ``serving_default`` (float32) and ``serving_uint8``
signatures, and ``serving_uint8`` of a second export with a ParametricTSNE (``tsne=``), whose
``map`` output adds the map network to each request. The peer is the in-process Python path
the SavedModel replaces: the Keras encoder called on the batch, then ``KMeans.predict`` on the
latents. The paths are timed in alternation, round after round, so that load from other
processes hits them alike; each cell is the median.

Speed does not depend on the weights, so the model is a freshly initialised autoencoder
(seed 0) with K-means centres fitted on its latents of random images: no training, no data set.

    python benchmarks/bench_serving.py [--batches 1 256] [--rounds 5] [--k 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from common import median_time, report  # noqa: E402

import tfclust  # noqa: E402
from tfclust.kmeans import KMeans  # noqa: E402
from tfclust.serving import export  # noqa: E402
from tfclust.tsne import ParametricTSNE  # noqa: E402

# Calls per timing: max(MIN_CALLS, IMAGES_PER_TIMING // batch), a fraction of a second or more.
IMAGES_PER_TIMING = 512
MIN_CALLS = 20


def build(k: int):
    """The encoder, a KMeans fitted on its latents of 2,000 random images, and the default
    ParametricTSNE network trained for one epoch on them (for the ``map`` output)."""
    _, encoder, _ = tfclust.build_autoencoder(seed=0)
    images = np.random.default_rng(0).integers(0, 256, (2000, 28, 28), dtype=np.uint8)
    latents = tfclust.encode(encoder, images)
    parametric = ParametricTSNE(n_epochs=1, random_state=0).fit(latents, embedding=latents[:, :2])
    return encoder, KMeans(n_clusters=k, random_state=0).fit(latents), parametric


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 256])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--k", type=int, default=10, help="number of clusters")
    args = parser.parse_args()

    encoder, kmeans, parametric = build(args.k)
    with tempfile.TemporaryDirectory() as tmp:
        signatures = tf.saved_model.load(export(tmp, encoder, kmeans)).signatures
        mapped = tf.saved_model.load(export(tmp, encoder, kmeans, version=2, tsne=parametric))

        rng = np.random.default_rng(1)
        rows = []
        for batch in args.batches:
            uint8 = rng.integers(0, 256, (batch, 28, 28), dtype=np.uint8)
            floats = tf.constant(uint8.astype(np.float32)[..., None] / 255.0)
            uint8 = tf.constant(uint8)
            paths = {
                "SavedModel serving_default (float32)": lambda x=floats: signatures[
                    "serving_default"
                ](images=x)["cluster"].numpy(),
                "SavedModel serving_uint8": lambda x=uint8: signatures["serving_uint8"](images=x)[
                    "cluster"
                ].numpy(),
                "SavedModel serving_uint8 with map": lambda x=uint8: mapped.signatures[
                    "serving_uint8"
                ](images=x)["map"].numpy(),
                "in-process Keras encoder + KMeans.predict": lambda x=floats: kmeans.predict(
                    encoder(x, training=False)
                ),
            }
            calls = max(MIN_CALLS, IMAGES_PER_TIMING // batch)
            times = {name: [] for name in paths}
            for fn in paths.values():
                fn()  # warm-up: tracing, XLA compilation, oneDNN primitive caches
            for _ in range(args.rounds):
                for name, fn in paths.items():
                    seconds, _ = median_time(lambda f=fn, n=calls: [f() for _ in range(n)], 1)
                    times[name].append(seconds)
            in_process = statistics.median(times["in-process Keras encoder + KMeans.predict"])
            for name, t in times.items():
                seconds = statistics.median(t)
                rows.append(
                    {
                        "batch": batch,
                        "path": name,
                        "images/s": batch * calls / seconds,
                        "ms/call": 1000 * seconds / calls,
                        "speed vs in-process": in_process / seconds,
                    }
                )
            print(f"batch {batch} done", file=sys.stderr)

    report(
        "serving",
        rows,
        notes={
            "model": "untrained autoencoder (seed 0) and, for the map, the default "
            "ParametricTSNE network (one epoch); speed does not depend on the weights",
            "k": args.k,
            "rounds": args.rounds,
            "calls_per_timing": {b: max(MIN_CALLS, IMAGES_PER_TIMING // b) for b in args.batches},
        },
    )


if __name__ == "__main__":
    main()
