"""t-SNE past 60k points: tfclust with approximate neighbours against openTSNE's defaults.

Data: Fashion-MNIST autoencoder latents (the cached encoder of ``common.latents``): the
70,000 images of both splits, then augmented copies (each a random rotation in [-10, 10]
degrees and shift in [-2, 2] pixels per axis of a random original, label kept) encoded with
the same encoder, up to n rows; cached under ``benchmarks/.cache``. Sections (``--sections``):

* ``large``: n = ``--size`` (default 250,000), perplexity 30, 750 iterations. Each library fits
  in a fresh process (first call: tfclust's XLA compilation included): tfclust ``TSNE()``
  (``neighbors="auto"``, approximate here) and openTSNE with its defaults (``n_jobs`` = the
  machine's cores). Reported: wall seconds of the fit (tfclust's k-NN and P phases from its
  log), peak resident memory of the child (``ru_maxrss``), k-NN recall of tfclust's
  neighbours on ``--recall-rows`` random rows (exact neighbours of those rows against all n,
  ``_neighbors.nearest_reference_neighbors``), KL(P || Q) computed the same way for both
  embeddings with tfclust's approximate P (an exact P needs the exact k-NN of all n rows) and
  the exact Z (all pairs), and 10-NN label accuracy of ``--accuracy-rows`` random rows against
  all n in the embedding. Augmented copies of one image are near one another, so accuracy is
  higher than on the originals alone.
* ``knn``: the k-NN step alone at ``--knn-sizes`` (default 30,000 and 60,000 of the training
  latents, k = 91), each search of ``KNN_SEARCHES`` in a fresh process: first call
  (compilation included) and a second call, and the recall against tfclust's exact search.

Results arrive in ``benchmarks/results/tsne_large.json`` as each step ends (the earlier rows of
an interrupted run are kept; ``--merge`` keeps the rows of sections not run).

    python benchmarks/bench_tsne_large.py [--sections large knn] [--size 250000]
        [--knn-sizes 30000 60000] [--merge]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from common import CACHE_DIR, latents, report  # noqa: E402

CORES = os.cpu_count() or 1
RESULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "tsne_large.json")
PARAMS = dict(perplexity=30.0, max_iter=750, random_state=0)

ORIGINALS = 70000


def _augmented(images, n: int, seed: int):
    """``n`` random originals of ``images``, each rotated and shifted: ((n, 28, 28) uint8,
    (n,) indices of the originals)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    source = rng.integers(0, len(images), n)
    angles = rng.uniform(-10.0, 10.0, n)
    shifts = rng.integers(-2, 3, (n, 2))
    out = np.empty((n, 28, 28), np.uint8)
    for i, (j, angle, shift) in enumerate(zip(source, angles, shifts, strict=True)):
        rotated = ndimage.rotate(images[j].astype(np.float32), angle, reshape=False, order=1)
        out[i] = np.clip(ndimage.shift(rotated, shift, order=0), 0, 255).astype(np.uint8)
    return out, source


def large_latents(n: int, seed: int = 0):
    """Latents of ``n`` Fashion-MNIST images (see the module docstring), cached.

    Returns:
      (float32 (n, 64) latents, int64 (n,) labels); the first 70,000 rows are the originals
      (train then test split).
    """
    import tfclust
    from tfclust.autoencoder import encode, load_autoencoder

    latents(60000)  # trains and caches the encoder if needed
    stem = os.path.join(CACHE_DIR, f"fashion_mnist_e20_s0_large{n}_s{seed}")
    if not os.path.exists(stem + "_latents.npy"):
        train, test = (tfclust.load_dataset("fashion_mnist", s) for s in ("train", "test"))
        images = np.concatenate([train.images, test.images])
        labels = np.concatenate([train.labels, test.labels])
        extra, source = _augmented(images, max(0, n - ORIGINALS), seed)
        _, encoder, _ = load_autoencoder(stem.split("_large")[0] + "_model.keras")
        np.save(stem + "_latents.npy", encode(encoder, np.concatenate([images, extra])[:n]))
        np.save(stem + "_labels.npy", np.concatenate([labels, labels[source]])[:n])
    return np.load(stem + "_latents.npy"), np.load(stem + "_labels.npy")


def _embedding_path(n: int, library: str) -> str:
    return os.path.join(CACHE_DIR, f"tsne_large_{library}_{n}.npy")


def fit_child(n: int, library: str) -> None:
    """Runs in a fresh process: one fit of ``library``; saves the embedding (and tfclust's
    neighbours) and prints its figures as JSON."""
    x, _ = large_latents(n)
    if library == "tfclust":
        from bench_tsne_fft import tfclust_fit

        from tfclust import _ann

        est, times = tfclust_fit(x, **PARAMS)
        embedding = est.embedding_
        np.save(_embedding_path(n, "tfclust_neighbors"), est.neighbors_)
        times["own_kl"] = est.kl_divergence_
        times["n_probe"] = _ann.default_n_probe(_ann.default_n_lists(n, est.neighbors_.shape[1]))
    else:
        import openTSNE

        start = time.perf_counter()
        emb = openTSNE.TSNE(n_jobs=CORES, random_state=0, perplexity=PARAMS["perplexity"]).fit(x)
        times = {"total_s": time.perf_counter() - start, "own_kl": float(emb.kl_divergence)}
        embedding = np.asarray(emb)
    np.save(_embedding_path(n, library), embedding)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({**times, "peak_rss_mb": peak_mb}))


def _child(n: int, role: str, what: str) -> dict:
    """Run this script with ``--{role}-child what --size n`` in a fresh process: the JSON it
    prints last."""
    print(f"[bench_tsne_large] {role} {what} n={n} (subprocess)...", file=sys.stderr, flush=True)
    out = subprocess.run(
        [sys.executable, __file__, f"--{role}-child", what, "--size", str(n)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def neighbour_recall(x, neighbors, rows: int, seed: int = 0) -> float:
    """Share of the exact k nearest neighbours of ``rows`` random points found in
    ``neighbors`` (their rows)."""
    import tensorflow as tf

    from tfclust._neighbors import nearest_reference_neighbors

    k = neighbors.shape[1]
    picked = np.random.default_rng(seed).choice(len(x), rows, replace=False)
    exact, _ = nearest_reference_neighbors(tf.constant(x[picked]), tf.constant(x), k + 1)
    exact = exact.numpy()
    hits = [
        len(np.intersect1d(np.setdiff1d(e, [i])[:k], f))
        for i, e, f in zip(picked, exact, neighbors[picked], strict=True)
    ]
    return float(np.mean(hits) / k)


def sampled_knn_accuracy(embedding, labels, rows: int, seed: int = 0) -> float:
    """10-NN label accuracy (majority vote of the 10 nearest others, ties to the lowest label)
    of ``rows`` random points against all points of the embedding."""
    import tensorflow as tf

    from tfclust._neighbors import nearest_reference_neighbors

    picked = np.random.default_rng(seed).choice(len(embedding), rows, replace=False)
    y = tf.constant(embedding, tf.float32)
    idx, _ = nearest_reference_neighbors(tf.gather(y, picked), y, 11)
    idx = idx.numpy()
    correct = 0
    for i, near in zip(picked, idx, strict=True):
        votes = np.bincount(labels[np.setdiff1d(near, [i])[:10]], minlength=labels.max() + 1)
        correct += int(np.argmax(votes) == labels[i])
    return correct / rows


def kl_same_way(x, neighbors, embedding):
    """KL(P || Q) with P from the given neighbours of ``x`` (perplexity 30) and the exact Z."""
    import tensorflow as tf
    from bench_tsne_fft import exact_z

    from tfclust.tsne import affinities, gradients

    x64 = x.astype(np.float64)
    sq = np.concatenate(
        [
            ((x64[s : s + 4096, None, :] - x64[neighbors[s : s + 4096]]) ** 2).sum(-1)
            for s in range(0, len(x), 4096)
        ]
    ).astype(np.float32)
    p_cond, _ = affinities.bucketed_conditionals(sq, PARAMS["perplexity"])
    operands = gradients.FFTObjective.operands(tf.constant(neighbors), p_cond)
    y = tf.constant(embedding, tf.float32)
    z = tf.constant(exact_z(embedding), tf.float32)
    return float(gradients.directed_kl_divergence(y, operands[0], z))


class Results:
    """The rows so far, written to the JSON after every step."""

    def __init__(self, merge: bool, sections):
        self.rows = []
        if merge and os.path.exists(RESULT):
            with open(RESULT) as f:
                self.rows = [r for r in json.load(f)["rows"] if r["case"] not in sections]

    def add(self, row: dict) -> None:
        self.rows.append({**row, "load_avg_1_5_15": os.getloadavg()})
        report("tsne_large", self.rows, notes=NOTES)


NOTES = {
    "data": "Fashion-MNIST autoencoder latents: 70,000 originals (train + test) then "
    "augmented copies (rotation <= 10 degrees, shift <= 2 px) encoded by the same encoder",
    "cores": CORES,
    "params": {**PARAMS, "tfclust": "TSNE() defaults, neighbors='auto'", "openTSNE": "defaults"},
    "recall": "share of the exact 91 nearest neighbours found, on a random sample of rows",
    "kl_same_way": "KL(P||Q) with tfclust's approximate k-NN P (perplexity 30) and the exact Z",
    "knn_acc10": "10-NN label accuracy of a random sample of rows against all rows (2-D)",
    "timing": "wall seconds of a fresh process's fit (tfclust: XLA compilation included)",
    "memory": "peak_rss_mb: ru_maxrss of the child process that ran the fit",
    "load": "load_avg_1_5_15: the machine's load averages when the row was written",
}


def large(n: int, results: Results, recall_rows: int, accuracy_rows: int) -> None:
    x, labels = large_latents(n)
    recall = None
    for library in ("tfclust", "openTSNE"):
        fit = _child(n, "fit", library)
        neighbors = np.load(_embedding_path(n, "tfclust_neighbors"))
        if library == "tfclust":
            recall = neighbour_recall(x, neighbors, recall_rows)
        embedding = np.load(_embedding_path(n, library))
        results.add(
            {
                "case": "large",
                "library": library,
                "n": n,
                **fit,
                "knn_recall": recall if library == "tfclust" else None,
                "kl_same_way": kl_same_way(x, neighbors, embedding),
                "knn_acc10": sampled_knn_accuracy(embedding, labels, accuracy_rows),
            }
        )
    tf_row, ot_row = results.rows[-2:]
    results.add(
        {
            "case": "large",
            "library": "tfclust / openTSNE",
            "n": n,
            "total_s": tf_row["total_s"] / ot_row["total_s"],
            "peak_rss_mb": tf_row["peak_rss_mb"] / ot_row["peak_rss_mb"],
            "kl_same_way": tf_row["kl_same_way"] / ot_row["kl_same_way"],
        }
    )


KNN_SEARCHES = ("exact", "exact, one top_k", "approx", "scikit-learn brute")
"""The k-NN searches of the ``knn`` section: tfclust's exact search (``_selection.smallest_k``),
the same with one ``top_k`` per row (the selection before it, as the peer), the approximate
search, and scikit-learn's ``NearestNeighbors(algorithm="brute", n_jobs=-1)``."""


def knn_child(search: str, n: int) -> None:
    """One k-NN search of :data:`KNN_SEARCHES` in this fresh process, called twice: prints the
    two wall times as JSON and saves the second call's indices."""
    import tensorflow as tf

    from tfclust import _selection
    from tfclust._ann import approximate_nearest_neighbors
    from tfclust._neighbors import nearest_neighbors

    x = latents(60000)[0][:n]
    if search == "scikit-learn brute":
        from sklearn.neighbors import NearestNeighbors

        def run():
            model = NearestNeighbors(n_neighbors=91, algorithm="brute", n_jobs=-1).fit(x)
            return model.kneighbors(return_distance=False)
    else:
        if search == "exact, one top_k":
            _selection.MIN_BLOCK_WIDTH = sys.maxsize  # before the first trace
        find = approximate_nearest_neighbors if search == "approx" else nearest_neighbors
        xt = tf.constant(x)

        def run():
            return find(xt, 91)[0].numpy()

    times = []
    for _ in range(2):
        start = time.perf_counter()
        found = run()
        times.append(time.perf_counter() - start)
    np.save(_knn_path(search, n), found)
    print(json.dumps({"first_s": times[0], "second_s": times[1]}))


def _knn_path(search: str, n: int) -> str:
    return os.path.join(CACHE_DIR, f"knn_{n}_{search.replace(' ', '_').replace(',', '')}.npy")


def knn(results: Results, sizes) -> None:
    for n in sizes:
        for search in KNN_SEARCHES:
            times = _child(n, "knn", search)
            row = {"case": "knn", "library": f"tfclust {search}", "n": n}
            if search.startswith("scikit"):
                row["library"] = search
            found = np.load(_knn_path(search, n))
            exact = np.load(_knn_path("exact", n))
            hits = [len(np.intersect1d(a, b)) for a, b in zip(found, exact, strict=True)]
            results.add(
                {
                    **row,
                    **times,
                    "knn_recall": float(np.mean(hits) / 91),
                }
            )
        by_search = {
            r["library"].removeprefix("tfclust "): r for r in results.rows[-len(KNN_SEARCHES) :]
        }
        for search, peer in (
            ("exact", "exact, one top_k"),
            ("exact", "scikit-learn brute"),
            ("approx", "exact"),
        ):
            results.add(
                {
                    "case": "knn",
                    "library": f"{search} / {peer}",
                    "n": n,
                    "first_s": by_search[search]["first_s"] / by_search[peer]["first_s"],
                    "second_s": by_search[search]["second_s"] / by_search[peer]["second_s"],
                }
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="*", default=["large", "knn"])
    parser.add_argument("--size", type=int, default=250000)
    parser.add_argument("--recall-rows", type=int, default=2000)
    parser.add_argument("--accuracy-rows", type=int, default=10000)
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the rows of sections not run from the existing results file",
    )
    parser.add_argument("--knn-sizes", type=int, nargs="*", default=[30000, 60000])
    parser.add_argument("--fit-child", choices=("tfclust", "openTSNE"), help=argparse.SUPPRESS)
    parser.add_argument("--knn-child", choices=KNN_SEARCHES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fit_child:
        fit_child(args.size, args.fit_child)
        return
    if args.knn_child:
        knn_child(args.knn_child, args.size)
        return
    results = Results(args.merge, args.sections)
    if "large" in args.sections:
        large(args.size, results, args.recall_rows, args.accuracy_rows)
    if "knn" in args.sections:
        knn(results, args.knn_sizes)


if __name__ == "__main__":
    main()
