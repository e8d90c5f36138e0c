"""tfclust's exact t-SNE against scikit-learn's exact and Barnes-Hut t-SNE, side by side.

Data: autoencoder latents of Fashion-MNIST (``common.latents``), the first n rows. Parameters:
the tutorial's (perplexity 15, learning_rate 100, random_state 0; otherwise defaults, so PCA
init and 1,000 iterations). Rows:

* n = 1,000 and 2,500: tfclust ``method="exact"`` vs scikit-learn ``method="exact"``;
* n = 5,000: tfclust ``method="exact"`` vs scikit-learn's default ``method="barnes_hut"``.

tfclust is timed cold (first fit at that size: tracing and XLA compilation included) and warm
(median of ``--repeat`` further fits); scikit-learn is the median of ``--sk-repeat`` fits. The
runs alternate so that load from other processes hits both alike. Reported: wall seconds, the
process CPU seconds, the warm speed-up (scikit-learn time / tfclust warm time), the final KL
divergences and their ratio (tfclust / scikit-learn), and trustworthiness (k=10) of both.

    python benchmarks/bench_tsne_exact.py [--exact-sizes 1000 2500] [--bh-size 5000]
        [--repeat 3] [--sk-repeat 1] [--max-iter 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import latents, report  # noqa: E402
from sklearn.manifold import TSNE as SkTSNE  # noqa: E402
from sklearn.manifold import trustworthiness  # noqa: E402

from tfclust.tsne import TSNE  # noqa: E402

TUTORIAL = dict(perplexity=15.0, learning_rate=100.0, random_state=0)


def timed(estimator, x):
    """Fit ``estimator`` on ``x``; return (wall s, process CPU s, the fitted estimator)."""
    wall, cpu = time.perf_counter(), time.process_time()
    estimator.fit(x)
    return time.perf_counter() - wall, time.process_time() - cpu, estimator


def compare(x, sk_method: str, repeat: int, sk_repeat: int, max_iter: int) -> dict:
    """One row of the table: tfclust exact vs scikit-learn ``sk_method`` on ``x``."""

    def ours():
        return TSNE(method="exact", max_iter=max_iter, **TUTORIAL)

    def peer():
        return SkTSNE(method=sk_method, max_iter=max_iter, **TUTORIAL)

    cold_wall, _, _ = timed(ours(), x)
    tf_runs, sk_runs = [], []
    for i in range(max(repeat, sk_repeat)):
        if i < repeat:
            tf_runs.append(timed(ours(), x))
        if i < sk_repeat:
            sk_runs.append(timed(peer(), x))
    tf_wall = statistics.median(r[0] for r in tf_runs)
    sk_wall = statistics.median(r[0] for r in sk_runs)
    est, ref = tf_runs[-1][2], sk_runs[-1][2]
    return {
        "n": len(x),
        "peer": f"sklearn {sk_method}",
        "tfclust_cold_s": cold_wall,
        "tfclust_warm_s": tf_wall,
        "sklearn_s": sk_wall,
        "speedup_warm": sk_wall / tf_wall,
        "tfclust_cpu_s": statistics.median(r[1] for r in tf_runs),
        "sklearn_cpu_s": statistics.median(r[1] for r in sk_runs),
        "tfclust_kl": est.kl_divergence_,
        "sklearn_kl": ref.kl_divergence_,
        "kl_ratio": est.kl_divergence_ / ref.kl_divergence_,
        "tfclust_trust10": trustworthiness(x, est.embedding_, n_neighbors=10),
        "sklearn_trust10": trustworthiness(x, ref.embedding_, n_neighbors=10),
        "tfclust_n_iter": est.n_iter_ + 1,
        "sklearn_n_iter": ref.n_iter_ + 1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exact-sizes", type=int, nargs="*", default=[1000, 2500])
    parser.add_argument("--bh-size", type=int, default=5000, help="0 to skip")
    parser.add_argument("--repeat", type=int, default=3, help="warm tfclust fits per size")
    parser.add_argument("--sk-repeat", type=int, default=1, help="scikit-learn fits per size")
    parser.add_argument("--max-iter", type=int, default=1000)
    args = parser.parse_args()

    n_max = max([*args.exact_sizes, args.bh_size])
    z, _ = latents(n=n_max)
    cases = [(n, "exact") for n in args.exact_sizes]
    if args.bh_size:
        cases.append((args.bh_size, "barnes_hut"))
    rows = []
    for n, method in cases:
        print(f"[bench_tsne_exact] n={n}, peer sklearn {method}...", file=sys.stderr)
        rows.append(compare(z[:n], method, args.repeat, args.sk_repeat, args.max_iter))
    report(
        "tsne_exact",
        rows,
        notes={
            "data": "Fashion-MNIST autoencoder latents (common.latents), first n rows, float32",
            "parameters": {**TUTORIAL, "max_iter": args.max_iter, "init": "pca"},
            "timing": "wall seconds; tfclust warm = median of --repeat fits after a cold one; "
            "runs alternate with scikit-learn's",
            "goal": "speedup_warm >= 3 at n=2500 (exact vs exact), kl_ratio <= 1.02",
        },
    )


if __name__ == "__main__":
    main()
