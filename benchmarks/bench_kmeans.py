"""tfclust.KMeans against scikit-learn's KMeans (and faiss) on autoencoder latents.

Cases: (a) the tutorial workload, 60,000 x 64 Fashion-MNIST latents, k=10, n_init=10;
(b) the same latents, k=256, n_init=3; (c) 200,000 x 64 (the latents tiled, plus noise), k=10,
n_init=10. Every implementation runs in this process; "cold" is the first fit of a case
(tfclust's XLA compile included), "warm" the median of ``--repeat`` further fits, repeat i with
random_state=i for tfclust and scikit-learn alike, the implementations taking turns. Inertias
are recomputed the same way (float64) for every implementation and averaged over the repeats;
ratios are against scikit-learn.

``--minibatch`` adds tfclust's and scikit-learn's MiniBatchKMeans (their defaults: batch 1024,
one k-means++ init, early stopping): approximate, so their inertia ratio is above 1.

faiss runs with nredo=n_init, every point used for training, and a fixed number of iterations
(``--faiss-iter``; it has no convergence test), so it is a speed reference more than an equal.

Usage: python benchmarks/bench_kmeans.py [--cases a,b,c] [--repeat 3] [--data latents|blobs]
       [--minibatch]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # noqa: E402

CASES = {
    "a": {"n": 60_000, "k": 10, "n_init": 10},
    "b": {"n": 60_000, "k": 256, "n_init": 3},
    "c": {"n": 200_000, "k": 10, "n_init": 10},
}


def load(data: str, n: int) -> np.ndarray:
    """(n, 64) float32 points: latents (tiled with 5% noise past 60,000 rows) or blobs."""
    rng = np.random.default_rng(0)
    if data == "blobs":
        centers = rng.normal(scale=3.0, size=(10, 64))
        return (centers[rng.integers(0, 10, n)] + rng.normal(size=(n, 64))).astype(np.float32)
    z, _ = common.latents(min(n, 60_000))
    if n <= len(z):
        return z[:n]
    tiled = np.tile(z, (-(-n // len(z)), 1))[:n]
    noise = rng.normal(size=tiled.shape) * 0.05 * z.std(axis=0)
    return (tiled + noise).astype(np.float32)


def runners(k: int, n_init: int, faiss_iter: int, minibatch: bool):
    """name -> fit(x, seed) returning (centers, n_iter)."""
    from sklearn.cluster import KMeans as SKMeans
    from sklearn.cluster import MiniBatchKMeans as SKMiniBatchKMeans

    import tfclust

    def fit_tfclust(x, seed):
        km = tfclust.KMeans(k, n_init=n_init, random_state=seed).fit(x)
        return km.cluster_centers_, km.n_iter_

    def fit_sklearn(x, seed):
        km = SKMeans(k, n_init=n_init, random_state=seed).fit(x)
        return km.cluster_centers_, km.n_iter_

    out = {"tfclust": fit_tfclust, "sklearn": fit_sklearn}
    if minibatch:
        for name, cls in (
            ("tfclust_minibatch", tfclust.MiniBatchKMeans),
            ("sklearn_minibatch", SKMiniBatchKMeans),
        ):

            def fit_minibatch(x, seed, cls=cls):
                km = cls(k, random_state=seed).fit(x)
                return km.cluster_centers_, km.n_iter_

            out[name] = fit_minibatch
    try:
        import faiss
    except ImportError:
        return out

    def fit_faiss(x, seed):
        km = faiss.Kmeans(
            x.shape[1],
            k,
            niter=faiss_iter,
            nredo=n_init,
            seed=seed + 1,
            max_points_per_centroid=len(x),
            verbose=False,
        )
        km.train(np.ascontiguousarray(x))
        return km.centroids, faiss_iter

    out["faiss"] = fit_faiss
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="a,b,c")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", choices=["latents", "blobs"], default="latents")
    parser.add_argument("--faiss-iter", type=int, default=50)
    parser.add_argument("--minibatch", action="store_true")
    args = parser.parse_args(argv)

    load_start = list(os.getloadavg())
    rows = []
    for case in args.cases.split(","):
        spec = CASES[case]
        x = load(args.data, spec["n"])
        fits_by_name = runners(spec["k"], spec["n_init"], args.faiss_iter, args.minibatch)
        cold = {}
        warm = {name: [] for name in fits_by_name}
        fits = {name: [] for name in fits_by_name}
        for name, fit in fits_by_name.items():
            start = time.perf_counter()
            fit(x, 0)
            cold[name] = time.perf_counter() - start
        # Repeats are interleaved (every implementation once per round) so that a burst of load
        # from other tenants of the machine falls on all of them alike.
        for seed in range(args.repeat):
            for name, fit in fits_by_name.items():
                start = time.perf_counter()
                fits[name].append(fit(x, seed))
                warm[name].append(time.perf_counter() - start)
        results = {}
        for name in fits_by_name:
            results[name] = {
                "cold_s": cold[name],
                "warm_s": float(np.median(warm[name])),
                "warm_all_s": warm[name],
                "inertia": float(np.mean([common.inertia(x, c) for c, _ in fits[name]])),
                "n_iter": float(np.mean([it for _, it in fits[name]])),
            }
            print(
                f"[{case}] {name}: warm {results[name]['warm_s']:.3f} s "
                f"{[round(t, 3) for t in warm[name]]}",
                file=sys.stderr,
            )
        ref = results["sklearn"]
        for name, r in results.items():
            rows.append(
                {
                    "case": case,
                    "impl": name,
                    "n": spec["n"],
                    "k": spec["k"],
                    "n_init": spec["n_init"],
                    "cold_s": r["cold_s"],
                    "warm_s": r["warm_s"],
                    "time_ratio": r["warm_s"] / ref["warm_s"],
                    "inertia_ratio": r["inertia"] / ref["inertia"],
                    "n_iter": r["n_iter"],
                }
            )
    common.report(
        "kmeans",
        rows,
        notes={
            "data": args.data,
            "repeat": args.repeat,
            "faiss_iter": args.faiss_iter,
            "minibatch": args.minibatch,
            # scikit-learn's OpenMP loops slow down several-fold when other processes compete for
            # the cores (its fits took 0.75 s idle and 6.5 s at load 3 on the 2-core machine), so
            # the ratios depend on the load the run saw.
            "loadavg_start": load_start,
            "loadavg_end": list(os.getloadavg()),
            "time_ratio": "warm seconds / scikit-learn's warm seconds, same process",
            "inertia_ratio": "mean inertia over the repeats / scikit-learn's",
        },
    )


if __name__ == "__main__":
    main()
