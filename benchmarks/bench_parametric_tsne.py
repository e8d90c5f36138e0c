"""Parametric t-SNE (``tfclust.ParametricTSNE``): map quality against the t-SNE map it learns
from, held-out points, fit time and serving throughput, on this CPU.

Data: Fashion-MNIST autoencoder latents (``common.latents``, float32 (n, 64)): the first
5,000 training images (the tutorial's map size) to fit, the next 1,000 as held-out points.
``TSNE(perplexity=30, random_state=0)`` maps the 5,000; each ``ParametricTSNE`` variant is then
trained on the same points (``"distill"`` regresses that very map, given as ``embedding=``;
``"tsne"`` optimises KL(P || Q) on mini-batches with P of the same perplexity). Columns:

* ``trust@10``: trustworthiness (k = 10, ``tfclust.metrics.trustworthiness``) of the map of the
  5,000 points against their latents; ``gap``: the TSNE map's minus it (goal: <= 0.02);
* ``knn_acc``: leave-one-out 10-NN label accuracy in the map (``knn_accuracy``);
* ``heldout_acc``: the 1,000 held-out points transformed, each labelled by its 10 nearest
  training points in the map (the training points' map positions: the network's own
  ``embedding_``); the ``latent 64-D`` row is the same vote in latent space, for reference;
* ``fit_s``: wall seconds of the fit (the network only, for ``"distill"``: plus ``tsne_s``
  for a map of its own); the default is fitted twice, first (tracing included) and warm;
* ``points/s``: ``transform``'s forward pass (the compiled model) on batches of 256 latents;
  ``images/s``: the served path, the encoder (the cached autoencoder's) then the network, one
  compiled function on batches of 256 float32 images, beside the encoder alone (goal:
  >= 10,000 images/s).

    python benchmarks/bench_parametric_tsne.py [--rounds 5]
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
from common import CACHE_DIR, latents, median_time, report  # noqa: E402

import tfclust  # noqa: E402
from tfclust import ParametricTSNE  # noqa: E402
from tfclust.metrics import knn_accuracy, trustworthiness  # noqa: E402
from tfclust.tsne import TSNE  # noqa: E402

N_FIT, N_HELD, PERPLEXITY, BATCH = 5000, 1000, 30.0, 256
VARIANTS = {
    "distill (default: 200 epochs, batch 256)": dict(objective="distill"),
    "distill, 100 epochs": dict(objective="distill", n_epochs=100),
    "tsne (300 epochs, batch 512)": dict(objective="tsne"),
    "tsne, 100 epochs, batch 1024": dict(objective="tsne", n_epochs=100, batch_size=1024),
}


def heldout_accuracy(train_map, train_labels, new_map, new_labels, k: int = 10) -> float:
    """Accuracy of the 10-NN vote of the training points' labels at each new point (euclidean,
    exact)."""
    d = (
        (new_map**2).sum(1)[:, None]
        + (train_map**2).sum(1)[None]
        - 2.0 * new_map.astype(np.float64) @ train_map.astype(np.float64).T
    )
    votes = train_labels[np.argsort(d, axis=1)[:, :k]]
    predicted = np.array([np.bincount(v, minlength=train_labels.max() + 1).argmax() for v in votes])
    return float(np.mean(predicted == new_labels))


def throughput(fn, x, rounds: int) -> float:
    """Items per second of ``fn(x)`` (median of ``rounds`` timings of 40 calls)."""
    fn(x)  # tracing, oneDNN primitive caches
    times = [median_time(lambda: [fn(x) for _ in range(40)], 1)[0] for _ in range(rounds)]
    return 40 * int(x.shape[0]) / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    z, labels = latents(N_FIT + N_HELD)
    x, y, x_new, y_new = z[:N_FIT], labels[:N_FIT], z[N_FIT:], labels[N_FIT:]
    _, encoder, _ = tfclust.load_autoencoder(
        os.path.join(CACHE_DIR, "fashion_mnist_e20_s0_model.keras")
    )
    images = tf.constant(
        np.random.default_rng(0).random((BATCH, *encoder.input_shape[1:]), dtype=np.float32)
    )
    latent_batch = tf.constant(x[:BATCH])
    encode = tf.function(lambda im: encoder(im, training=False))

    start = time.perf_counter()
    tsne = TSNE(perplexity=PERPLEXITY, random_state=0).fit(x)
    tsne_s = time.perf_counter() - start
    reference = trustworthiness(x, tsne.embedding_, 10)
    rows = [
        {
            "map": "TSNE (non-parametric)",
            "trust@10": reference,
            "gap": 0.0,
            "knn_acc": knn_accuracy(tsne.embedding_, y, 10),
            "heldout_acc": "",
            "fit_s": tsne_s,
        },
        {"map": "latent 64-D (reference)", "heldout_acc": heldout_accuracy(x, y, x_new, y_new)},
    ]
    encoder_rate = throughput(encode, images, args.rounds)
    for name, params in VARIANTS.items():
        runs, fit_times = 2 if name.startswith("distill (default") else 1, []
        for _ in range(runs):
            model = ParametricTSNE(perplexity=PERPLEXITY, random_state=0, **params)
            embedding = tsne.embedding_ if params["objective"] == "distill" else None
            start = time.perf_counter()
            model.fit(x, embedding=embedding)
            fit_times.append(time.perf_counter() - start)
            print(f"{name}: fit {fit_times[-1]:.1f} s", file=sys.stderr)
        forward = model._forward  # the compiled model transform runs
        served = tf.function(lambda im, m=model.model_: m(encoder(im, training=False)))
        trust = trustworthiness(x, model.embedding_, 10)
        rows.append(
            {
                "map": name,
                "trust@10": trust,
                "gap": reference - trust,
                "knn_acc": knn_accuracy(model.embedding_, y, 10),
                "heldout_acc": heldout_accuracy(model.embedding_, y, model.transform(x_new), y_new),
                "fit_s": fit_times[-1],
                "first_fit_s": fit_times[0] if runs == 2 else "",
                "tsne_s": tsne_s if params["objective"] == "distill" else "",
                "final_loss": model.loss_,
                "points/s": throughput(forward, latent_batch, args.rounds),
                "images/s (encoder + net)": throughput(served, images, args.rounds),
                "images/s (encoder alone)": encoder_rate,
            }
        )
    report(
        "parametric_tsne",
        rows,
        notes={
            "data": f"Fashion-MNIST AE latents (e20, seed 0): {N_FIT} fit, {N_HELD} held out",
            "perplexity": PERPLEXITY,
            "batch": BATCH,
            "rounds": args.rounds,
            "goal": "gap <= 0.02; images/s (encoder + net) >= 10,000 at batch 256",
        },
    )


if __name__ == "__main__":
    main()
